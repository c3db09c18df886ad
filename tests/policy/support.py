"""Shared pieces of the policy tests: small policies from rule triples, inputs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from custos.policy import (
    HttpRequest,
    Identity,
    McpCall,
    Policy,
    PolicyInput,
    parse_policy,
)

ALICE = Identity(
    issuer="https://issuer.example",
    subject="alice",
    email="alice@example.org",
    groups=("phi-readers",),
    claims={"org": {"unit": "cardiology", "site": {"id": "north"}}, "level": 3},
)


def policy_of(*rules: tuple[str, str, str]) -> Policy:
    """A policy from (name, when, effect) triples; `when` is quoted so any CEL fits."""
    body = "".join(
        f"  - name: {name}\n    when: {when!r}\n    effect: {effect}\n"
        for name, when, effect in rules
    )
    return parse_policy("rules:\n" + body, source="test.yaml")


def input_of(
    *calls: McpCall,
    identity: Identity = ALICE,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> PolicyInput:
    extra: dict[str, Any] = {} if now is None else {"now": now}
    return PolicyInput(
        identity=identity,
        request=HttpRequest(method=method, path="/mcp", headers=headers or {}),
        calls=calls,
        is_batch=len(calls) > 1,
        **extra,
    )


def tool_call(tool: str, call_id: int = 1, **arguments: Any) -> McpCall:
    return McpCall(method="tools/call", id=call_id, tool=tool, name=tool, arguments=arguments)


ALLOW_ALL = ("everyone", "true", "allow")
DENY_DELETE = ("no-delete", "mcp.tool == 'delete_patient'", "deny")
