"""The ext_authz pipeline end to end, in process: a bearer token and an HTTP request in,
Envoy's CheckResponse protobuf out.

Every object is the real one: the development OIDC issuer served over HTTP on loopback,
an `httpx.AsyncClient` fetching its discovery document and JWKS, `IssuerKeys`,
`TokenVerifier`, `TokenCache`, a `PolicyReloader` on the example policy, `CredentialSource`
and `ResponseBuilder`. Verdicts are captured through `on_verdict`, the hook the metrics
(and later the audit record) hang on, so the tests see exactly what would be recorded.

Assertions are made on the protobuf fields Envoy acts on (status, headers to set and
remove, the denial's HTTP status, headers and body, dynamic metadata), because a field
set wrong there is a request Envoy forwards or refuses wrongly."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from google.protobuf import json_format
from google.rpc import code_pb2

from custos.dev_issuer import DevIssuer
from custos.errors import ConfigError
from custos.policy import HttpRequest
from custos.policy.reloader import PolicyReloader
from extauthz.config import IdentityHeaders, IssuerConfig, UpstreamCredential
from extauthz.identity import TokenCache, TokenVerifier
from extauthz.jwks import IssuerKeys
from extauthz.mcp_request import DEFAULT_LIMITS, McpLimits
from extauthz.pipeline import Authorizer, Verdict
from extauthz.response import ResponseBuilder
from extauthz.upstream_credential import CredentialSource
from tests.issuer_server import IssuerServer

AUDIENCE = "custos-pipeline-test"
EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "policy.yaml"
RESOURCE_METADATA_URL = "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
MAX_TOKEN_BYTES = 8192
IDENTITY_HEADER_NAMES = (
    "x-custos-subject",
    "x-custos-issuer",
    "x-custos-email",
    "x-custos-groups",
    "x-custos-decision-id",
)
CREDENTIAL_ENV = "CUSTOS_TEST_PIPELINE_UPSTREAM_TOKEN"


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[IssuerServer]:
    """One issuer for the tests that leave it running and unchanged; starting and stopping
    uvicorn costs more than everything else these tests do."""
    with IssuerServer(audience=AUDIENCE) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # As in extauthz.server: a redirect from an IdP is not followed to wherever it points.
    async with httpx.AsyncClient(follow_redirects=False) as http:
        yield http


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


@pytest.fixture
async def pipeline(idp: IssuerServer, client: httpx.AsyncClient) -> AsyncIterator[Pipeline]:
    """The pipeline without an upstream credential (the configuration's default)."""
    built = make_pipeline(client, issuer_config(idp.url))
    yield built
    await built.verifier.aclose()


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


# --- allow: what the MCP server receives --------------------------------------------------


async def test_allowed_call_without_credential_strips_the_client_token(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"], email="alice@clinic.example")

    verdict, response = await pipeline.check(http(token), tools_call("search_patients", q="x"))

    assert (verdict.status, verdict.code, verdict.rule) == (200, "allow", "readers-read-patients")
    assert_allowed(response)
    headers = set_headers(response)
    # No credential configured: the client's token must still never reach the MCP server.
    assert "authorization" in removed(response)
    assert "authorization" not in headers
    assert headers == {
        "x-custos-subject": "alice",
        "x-custos-issuer": idp.url,
        "x-custos-email": "alice@clinic.example",
        "x-custos-groups": "phi-readers",
        "x-custos-decision-id": verdict.decision_id,
    }
    assert (
        metadata(response)
        == {
            "decision_id": verdict.decision_id,
            "request_id": "req-1",  # the x-request-id Envoy set, linking the access log
            "effect": "allow",
            "code": "allow",
            "rule": "readers-read-patients",
            "policy": hashlib.sha256(EXAMPLE_POLICY.read_bytes()).hexdigest()[:12],
            "issuer": idp.url,
            "subject": "alice",
            "mcp_methods": ["tools/call"],  # tells ext_proc what the answer will be
            "identity": {  # lets ext_proc judge tools/list entries with the same policy
                "issuer": idp.url,
                "subject": "alice",
                "email": "alice@clinic.example",
                "groups": ["phi-readers"],
                "claims": metadata(response)["identity"]["claims"],
            },
        }
    )
    assert metadata(response)["identity"]["claims"]["sub"] == "alice"


async def test_env_credential_overwrites_the_authorization_header(
    idp: IssuerServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CREDENTIAL_ENV, "  upstream-s3cret\n")  # stripped: env files end in \n
    credential = CredentialSource(UpstreamCredential(env=CREDENTIAL_ENV))
    pipeline = make_pipeline(client, issuer_config(idp.url), credential=credential)
    token = idp.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(http(token), tools_call("get_patient_record"))

    assert_allowed(response)
    assert set_headers(response)["authorization"] == "Bearer upstream-s3cret"
    # Removing the header Envoy is told to set would drop our credential as well.
    assert "authorization" not in removed(response)
    assert token not in str(response)
    # The verdict carries the credential for the response only; it must never be printed.
    assert "upstream-s3cret" not in repr(verdict)


async def test_file_credential_on_its_own_header_still_removes_the_client_token(
    idp: IssuerServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "upstream-token"
    secret.write_text("file-s3cret\n")
    credential = CredentialSource(UpstreamCredential(file=secret, header="x-upstream-token"))
    pipeline = make_pipeline(client, issuer_config(idp.url), credential=credential)
    token = idp.issuer.mint("alice", ["phi-readers"])

    _, response = await pipeline.check(http(token), tools_call("search_patients"))

    assert_allowed(response)
    headers = set_headers(response)
    assert headers["x-upstream-token"] == "Bearer file-s3cret"
    assert "authorization" not in headers
    assert "authorization" in removed(response)


async def test_rotated_file_credential_is_used_by_the_next_allow(
    idp: IssuerServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "upstream-token"
    secret.write_text("first-secret")
    credential = CredentialSource(UpstreamCredential(file=secret, header="x-upstream-token"))
    pipeline = make_pipeline(client, issuer_config(idp.url), credential=credential)
    token = idp.issuer.mint("alice", ["phi-readers"])
    _, before = await pipeline.check(http(token), tools_call("search_patients"))
    assert set_headers(before)["x-upstream-token"] == "Bearer first-secret"

    # The way a Kubernetes Secret rotates: a new file swapped in, not an edit in place.
    staged = tmp_path / "upstream-token.new"
    staged.write_text("second-secret")
    os.replace(staged, secret)
    _, after = await pipeline.check(http(token), tools_call("search_patients"))

    assert_allowed(after)
    assert set_headers(after)["x-upstream-token"] == "Bearer second-secret"


async def test_deleted_credential_file_denies_with_500_instead_of_allowing(
    idp: IssuerServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "upstream-token"
    secret.write_text("first-secret")
    credential = CredentialSource(UpstreamCredential(file=secret, header="x-upstream-token"))
    pipeline = make_pipeline(client, issuer_config(idp.url), credential=credential)
    token = idp.issuer.mint("alice", ["phi-readers"])
    secret.unlink()

    verdict, response = await pipeline.check(http(token), tools_call("search_patients"))

    # The policy allowed, but forwarding without the credential would fail upstream (or
    # worse, reach it unauthenticated): the recorded verdict is the 500, not the allow.
    assert pipeline.verdicts == [verdict]
    assert (verdict.status, verdict.code) == (500, ConfigError.code)
    assert not verdict.allowed
    assert isinstance(verdict.error, ConfigError)
    assert verdict.decision is not None and verdict.decision.allowed
    assert verdict.upstream_credential == ""
    body = assert_denied(response, 500)
    assert body["error"]["code"] == -32603
    assert metadata(response)["code"] == ConfigError.code
    assert "upstream-token" not in response.denied_response.body  # no internal detail


async def test_token_without_email_removes_the_email_header(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    token = mint_without_email(idp.issuer, "svc-batch", ["phi-readers"])

    verdict, response = await pipeline.check(http(token), tools_call("search_patients"))

    assert verdict.identity is not None and verdict.identity.email == ""
    assert_allowed(response)
    # Otherwise a client could send its own x-custos-email and the MCP server believe it.
    assert "x-custos-email" in removed(response)
    assert "x-custos-email" not in set_headers(response)


async def test_claims_cannot_inject_or_split_identity_headers(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    token = idp.issuer.mint(
        "eve",
        ["a,b", "phi-readers"],
        email="eve@example.com\r\nx-custos-groups: phi-admins",
    )

    verdict, response = await pipeline.check(http(token), tools_call("search_patients"))

    assert verdict.rule == "readers-read-patients"
    assert_allowed(response)
    headers = set_headers(response)
    for value in headers.values():
        assert "\r" not in value and "\n" not in value
    assert headers["x-custos-email"] == "eve@example.com%0D%0Ax-custos-groups: phi-admins"
    # "a,b" is one group: its comma is encoded so the list still splits into two groups.
    assert headers["x-custos-groups"] == "a%2Cb,phi-readers"
    assert [o.header.key for o in response.ok_response.headers].count("x-custos-groups") == 1


# --- deny: what the client receives -------------------------------------------------------


async def test_missing_token_gets_401_with_the_discovery_challenge(pipeline: Pipeline) -> None:
    verdict, response = await pipeline.check(http(None), tools_call("search_patients"))

    assert (verdict.status, verdict.code) == (401, "token_missing")
    body = assert_denied(response, 401)
    assert denied_headers(response)["www-authenticate"] == (
        f'Bearer error="invalid_token", resource_metadata="{RESOURCE_METADATA_URL}"'
    )
    assert body["error"]["code"] == -32001
    assert body["id"] is None  # the body was never parsed for an unauthenticated caller
    assert metadata(response)["code"] == "token_missing"
    assert metadata(response)["subject"] == ""


async def test_delete_by_a_reader_gets_403_naming_no_rule(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(
        http(token), tools_call("delete_patient", call_id=42, mrn="MRN-1")
    )

    assert (verdict.status, verdict.code, verdict.rule) == (403, "deny", "delete-requires-admin")
    body = assert_denied(response, 403)
    assert body["error"]["code"] == -32003
    assert body["id"] == 42
    assert body["error"]["data"]["decision_id"] == verdict.decision_id
    # The rule's name tells an attacker what to try next: only the operator sees it.
    assert "delete-requires-admin" not in response.denied_response.body
    assert "www-authenticate" not in denied_headers(response)
    assert metadata(response)["rule"] == "delete-requires-admin"
    assert metadata(response)["subject"] == "alice"


async def test_idp_down_from_the_start_is_503_not_401(client: httpx.AsyncClient) -> None:
    server = IssuerServer(audience=AUDIENCE).start()
    server.stop()  # the port is closed before any key was fetched
    pipeline = make_pipeline(client, issuer_config(server.url))
    token = server.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(http(token), tools_call("search_patients"))

    assert (verdict.status, verdict.code) == (503, "keys_unavailable")
    assert_denied(response, 503)
    # A 401 challenge would make the client throw away a token that is perfectly good.
    assert "www-authenticate" not in denied_headers(response)
    assert metadata(response)["code"] == "keys_unavailable"


# --- bodies the policy never sees ---------------------------------------------------------


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


async def test_batch_over_the_limit_is_400(idp: IssuerServer, pipeline: Pipeline) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])
    limit = DEFAULT_LIMITS.max_batch_size
    ping = {"jsonrpc": "2.0", "method": "ping"}
    batch = [dict(ping, id=i) for i in range(limit + 1)]

    verdict, response = await pipeline.check(http(token), json.dumps(batch).encode())

    assert (verdict.status, verdict.code) == (400, "mcp_request_invalid")
    body = assert_denied(response, 400)
    assert body["error"]["code"] == -32600
    assert body["error"]["message"] == f"Bad request: batch of more than {limit} messages"

    # One fewer is a batch the policy judges (and allows: pings by staff).
    verdict, response = await pipeline.check(http(token), json.dumps(batch[:limit]).encode())
    assert (verdict.status, verdict.rule) == (200, "staff-lifecycle")


async def test_duplicate_json_key_is_400(idp: IssuerServer, pipeline: Pipeline) -> None:
    # Which `method` wins differs between parsers; the MCP server's may not pick ours.
    token = idp.issuer.mint("alice", ["phi-readers"])
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}'

    verdict, response = await pipeline.check(http(token), body)

    assert (verdict.status, verdict.code) == (400, "mcp_request_invalid")
    assert verdict.decision is None  # refused before the policy
    error = assert_denied(response, 400)["error"]
    assert error["code"] == -32600
    assert error["message"] == "Bad request: a JSON object has the same key twice"


async def test_json_nested_past_the_limit_is_400(idp: IssuerServer, pipeline: Pipeline) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])
    depth = DEFAULT_LIMITS.max_depth

    verdict, response = await pipeline.check(http(token), nested_tools_call(depth + 1))

    assert (verdict.status, verdict.code) == (400, "mcp_request_invalid")
    error = assert_denied(response, 400)["error"]
    assert error["code"] == -32600
    assert error["message"] == f"Bad request: JSON nested deeper than {depth} levels"


async def test_arguments_nested_to_the_limit_are_decided_by_the_right_rule(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    # The deepest body the limit lets through must still bind into CEL: if it did not,
    # the deny rule would err, fail closed and deny a legitimate search in its name.
    token = idp.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(
        http(token), nested_tools_call(DEFAULT_LIMITS.max_depth)
    )

    assert (verdict.status, verdict.rule) == (200, "readers-read-patients")
    assert_allowed(response)


async def test_get_without_body_is_judged_as_transport(
    idp: IssuerServer, pipeline: Pipeline
) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(http(token, "GET", accept="text/event-stream"))

    assert (verdict.status, verdict.rule) == (200, "staff-session-transport")
    assert verdict.mcp.calls == ()
    assert_allowed(response)


async def test_put_with_a_body_is_400(idp: IssuerServer, pipeline: Pipeline) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])

    verdict, response = await pipeline.check(http(token, "PUT"), tools_call("search_patients"))

    assert (verdict.status, verdict.code) == (400, "mcp_request_invalid")
    error = assert_denied(response, 400)["error"]
    assert error["message"] == "Bad request: PUT with a body is not MCP"


# --- recording ----------------------------------------------------------------------------


async def test_cancelled_check_is_still_recorded(client: httpx.AsyncClient) -> None:
    # An IdP that accepts the connection and never answers: the first token from it waits
    # on discovery until Envoy's own timeout makes gRPC cancel the Check.
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.setblocking(False)
        port = silent.getsockname()[1]
        slow = DevIssuer("https://slow-idp.example", audience=AUDIENCE)
        config = issuer_config(
            slow.issuer,
            discovery_url=f"http://127.0.0.1:{port}/.well-known/openid-configuration",
            http_timeout_seconds=30,  # far past this test: only the cancellation ends it
        )
        pipeline = make_pipeline(client, config)
        task = asyncio.create_task(
            pipeline.authorizer.authorize(
                http(slow.mint("alice", ["phi-readers"])), tools_call("search_patients")
            )
        )
        async with asyncio.timeout(5):
            conn, _ = await loop.sock_accept(silent)
        with conn:
            async with asyncio.timeout(5):
                received = await loop.sock_recv(conn, 4096)
            assert received.startswith(b"GET /.well-known/openid-configuration ")
            assert not task.done()
            assert pipeline.verdicts == []

            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    [verdict] = pipeline.verdicts
    assert (verdict.status, verdict.code) == (503, "cancelled")
    assert not verdict.allowed
    assert verdict.elapsed > 0


async def test_one_verdict_is_recorded_per_check(idp: IssuerServer, pipeline: Pipeline) -> None:
    token = idp.issuer.mint("alice", ["phi-readers"])
    checks = [
        (http(token), tools_call("search_patients")),  # allow
        (http(token), tools_call("delete_patient")),  # deny by rule
        (http(None), tools_call("search_patients")),  # no token
        (http("not.a.jwt"), tools_call("search_patients")),  # bad token
        (http(token), b"{"),  # not JSON
        (http(token, "GET"), b""),  # transport
    ]

    returned = [(await pipeline.check(request, body))[0] for request, body in checks]

    assert [v.status for v in returned] == [200, 403, 401, 401, 400, 200]
    # The very objects returned were recorded, once each, in order.
    assert len(pipeline.verdicts) == len(checks)
    assert all(r is v for r, v in zip(returned, pipeline.verdicts, strict=True))
    assert all(v.elapsed > 0 for v in pipeline.verdicts)
    assert len({v.decision_id for v in pipeline.verdicts}) == len(checks)
