"""Shared pieces of the pipeline tests: the pipeline assembled the way
`extauthz.server.serve` assembles it, HTTP requests and MCP bodies as Envoy sends them, and
readers of the CheckResponse fields Envoy acts on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from google.protobuf import json_format
from google.rpc import code_pb2

from custos.dev_issuer import DevIssuer
from custos.policy import HttpRequest
from custos.policy.reloader import PolicyReloader
from custos.stack import EXAMPLE_POLICY
from extauthz.config import IdentityHeaders, IssuerConfig
from extauthz.identity import TokenCache, TokenVerifier
from extauthz.jwks import IssuerKeys
from extauthz.mcp_request import DEFAULT_LIMITS, McpLimits
from extauthz.pipeline import Authorizer, Verdict
from extauthz.response import ResponseBuilder
from extauthz.upstream_credential import CredentialSource

AUDIENCE = "custos-pipeline-test"
RESOURCE_METADATA_URL = "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
MAX_TOKEN_BYTES = 8192
CREDENTIAL_ENV = "CUSTOS_TEST_PIPELINE_UPSTREAM_TOKEN"


# --- the pipeline under test --------------------------------------------------------------


@dataclass
class Pipeline:
    """An Authorizer and the ResponseBuilder that turns its verdicts into CheckResponses,
    assembled the way `extauthz.server.serve` assembles them."""

    authorizer: Authorizer
    responses: ResponseBuilder
    verifier: TokenVerifier
    verdicts: list[Verdict] = field(default_factory=list)

    async def check(
        self, request: HttpRequest, body: bytes = b""
    ) -> tuple[Verdict, authz.CheckResponse]:
        verdict = await self.authorizer.authorize(request, body)
        return verdict, self.responses.build(verdict)


def issuer_config(url: str, **overrides: Any) -> IssuerConfig:
    settings: dict[str, Any] = {"issuer": url, "audience": AUDIENCE, "http_timeout_seconds": 2}
    settings.update(overrides)
    return IssuerConfig(**settings)


def make_pipeline(
    client: httpx.AsyncClient,
    *issuers: IssuerConfig,
    credential: CredentialSource | None = None,
    policy: Path = EXAMPLE_POLICY,
    limits: McpLimits = DEFAULT_LIMITS,
) -> Pipeline:
    verifier = TokenVerifier({i.issuer: IssuerKeys(i, client) for i in issuers}, TokenCache(64))
    verdicts: list[Verdict] = []
    authorizer = Authorizer(
        verifier,
        PolicyReloader(policy),
        MAX_TOKEN_BYTES,
        limits,
        credential,
        on_verdict=verdicts.append,
    )
    responses = ResponseBuilder(
        IdentityHeaders(),
        RESOURCE_METADATA_URL,
        credential.config.header if credential is not None else None,
    )
    return Pipeline(authorizer, responses, verifier, verdicts)


# --- requests and responses as Envoy sends and reads them ---------------------------------


def http(token: str | None, method: str = "POST", **headers: str) -> HttpRequest:
    """An HTTP request as the servicer builds it from a CheckRequest (lower-case names)."""
    all_headers = {"content-type": "application/json", "accept": "application/json"}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    all_headers.update(headers)
    return HttpRequest(
        method=method, path="/mcp", headers=all_headers, source_address="127.0.0.1", id="req-1"
    )


def tools_call(tool: str, call_id: int = 1, **arguments: Any) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return json.dumps(message).encode()


def nested_tools_call(depth: int) -> bytes:
    """A tools/call whose JSON is `depth` containers deep in total: the message, params,
    arguments, then dicts nested inside one argument."""
    inner: Any = "deep"
    for _ in range(depth - 3):
        inner = {"level": inner}
    message = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "search_patients", "arguments": {"filter": inner}},
    }
    return json.dumps(message).encode()


def set_headers(response: authz.CheckResponse) -> dict[str, str]:
    """The headers an allow sets upstream. Each must overwrite: appending would let a
    client-sent `x-custos-groups` (or `authorization`) survive next to ours."""
    options = response.ok_response.headers
    for option in options:
        assert option.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    names = [o.header.key for o in options]
    assert len(names) == len(set(names)), f"a header is set twice: {names}"
    return {o.header.key: o.header.value for o in options}


def removed(response: authz.CheckResponse) -> list[str]:
    return list(response.ok_response.headers_to_remove)


def denied_headers(response: authz.CheckResponse) -> dict[str, str]:
    return {o.header.key: o.header.value for o in response.denied_response.headers}


def denied_body(response: authz.CheckResponse) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.denied_response.body)
    return body


def metadata(response: authz.CheckResponse) -> dict[str, Any]:
    return json_format.MessageToDict(response.dynamic_metadata)


def assert_denied(response: authz.CheckResponse, http_status: int) -> dict[str, Any]:
    """A denial as Envoy reads it; returns the JSON-RPC error body for further checks."""
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.HasField("denied_response")
    assert not response.HasField("ok_response")
    assert response.denied_response.status.code == http_status
    assert denied_headers(response)["content-type"] == "application/json"
    body = denied_body(response)
    assert body["jsonrpc"] == "2.0"
    # The client can quote the decision id to an operator; it must be the recorded one.
    assert body["error"]["data"] == {"decision_id": metadata(response)["decision_id"]}
    assert metadata(response)["effect"] == "deny"
    return body


def assert_allowed(response: authz.CheckResponse) -> None:
    assert response.status.code == code_pb2.OK
    assert response.HasField("ok_response")
    assert not response.HasField("denied_response")
    assert metadata(response)["effect"] == "allow"


def mint_without_email(issuer: DevIssuer, subject: str, groups: list[str]) -> str:
    """DevIssuer.mint always adds an email; some IdPs send none (service accounts)."""
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "sub": subject,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "groups": groups,
    }
    key = issuer.current
    return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})
