"""Policy test cases: YAML files of requests with the decision each must get.

    cases:
      - name: readers may read a record
        identity: {subject: alice, groups: [phi-readers]}
        request: {method: POST}                     # optional; path defaults to /mcp
        mcp: {method: tools/call, tool: get_patient_record, arguments: {patient_id: p1}}
        expect: {effect: allow, rule: readers-read-patients}   # rule is optional

`mcp` may be a list (a batch) or left out (a request without a body)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from custos.config_file import load_model
from custos.policy.document import Effect, Policy
from custos.policy.engine import Decision, decide
from custos.policy.inputs import HttpRequest, Identity, McpCall, PolicyInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentitySpec(_Strict):
    issuer: str = "https://issuer.example"
    subject: str
    email: str = ""
    groups: list[str] = []
    claims: dict[str, Any] = {}


class RequestSpec(_Strict):
    method: str = "POST"
    path: str = "/mcp"
    headers: dict[str, str] = {}
    source_address: str = "127.0.0.1"


class McpSpec(_Strict):
    method: str = ""
    id: str | int | None = 1
    tool: str = ""
    arguments: dict[str, Any] = {}
    uri: str = ""
    name: str = ""


class Expectation(_Strict):
    effect: Effect
    rule: str | None = None


class Case(_Strict):
    name: str
    identity: IdentitySpec
    request: RequestSpec = RequestSpec()
    mcp: McpSpec | list[McpSpec] | None = None
    expect: Expectation

    def to_input(self) -> PolicyInput:
        specs = self.mcp if isinstance(self.mcp, list) else [self.mcp] if self.mcp else []
        calls = tuple(
            McpCall(
                method=s.method,
                id=s.id,
                tool=s.tool,
                arguments=s.arguments,
                uri=s.uri,
                name=s.name or s.tool,
                is_notification=s.id is None,
            )
            for s in specs
        )
        ident = self.identity
        return PolicyInput(
            identity=Identity(
                ident.issuer, ident.subject, ident.email, tuple(ident.groups), ident.claims
            ),
            request=HttpRequest(**self.request.model_dump()),
            calls=calls,
            is_batch=isinstance(self.mcp, list),
        )


class CaseFile(_Strict):
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    decision: Decision

    @property
    def passed(self) -> bool:
        expect = self.case.expect
        if self.decision.effect != expect.effect:
            return False
        return expect.rule is None or expect.rule == self.decision.rule


def load_cases(path: str | Path) -> list[Case]:
    return load_model(path, CaseFile).cases


def run_cases(policy: Policy, cases: list[Case]) -> Iterator[CaseResult]:
    for case in cases:
        yield CaseResult(case, decide(policy, case.to_input()))
