"""The spine, end to end: real Envoy in front of the demo MCP server, ext_authz deciding
with OIDC and CEL, driven by the real MCP SDK client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mcp.shared.exceptions import MCPError

from custos.stack import EXAMPLE_POLICY, LocalStack
from tests.stack_fixture import (
    INITIALIZE,
    MCP_HEADERS,
    mcp_client,
    post_jsonrpc,
    running_stack,
    spooled,
    token,
    tool_call,
    upstream_requests,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHALLENGE_PREFIX = 'Bearer error="invalid_token", resource_metadata="http://127.0.0.1:'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    async with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


async def test_reader_initializes_lists_and_calls_tools(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"search_patients", "get_patient_record"} <= tools
        found = await client.call_tool("search_patients", {"query": ""})
        assert not found.is_error
        record = await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
        assert not record.is_error
        assert record.structured_content is not None
        assert record.structured_content["patient_id"] == "pt-0001"


async def test_default_client_mode_passes_header_checks(stack: LocalStack) -> None:
    # The SDK's default (stateless) mode sends Mcp-Method / Mcp-Name headers, which
    # ext_authz checks against the body: agreeing headers must pass.
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer, mode="auto") as client:
        record = await client.call_tool("get_patient_record", {"patient_id": "pt-0002"})
        assert not record.is_error


async def test_reader_cannot_delete_a_patient(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer) as client:
        with pytest.raises(MCPError):
            await client.call_tool("delete_patient", {"patient_id": "pt-0003"})
    response = await post_jsonrpc(
        stack, tool_call("delete_patient", {"patient_id": "pt-0003"}), bearer
    )
    assert response.status_code == 403
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 1
    assert body["error"]["code"] == -32003
    assert "delete-requires-admin" not in response.text  # no internal detail to the client
    # The patient is still there: the MCP server never saw a delete.
    async with mcp_client(stack, bearer) as client:
        record = await client.call_tool("get_patient_record", {"patient_id": "pt-0003"})
        assert not record.is_error


async def test_admin_may_delete_a_patient(stack: LocalStack) -> None:
    bearer = await token(stack, "bob", ["phi-admins"])
    async with mcp_client(stack, bearer) as client:
        result = await client.call_tool("delete_patient", {"patient_id": "pt-0006"})
        assert not result.is_error


@pytest.mark.parametrize("case", ["missing", "expired", "garbage", "wrong-audience"])
async def test_unauthenticated_gets_401_with_resource_metadata(
    stack: LocalStack, case: str
) -> None:
    bearer: str | None = {
        "missing": None,
        "garbage": "not-a-jwt",
    }.get(case, "")
    if case == "expired":
        bearer = await token(stack, "alice", ["phi-readers"], expires_in=-3600)
    if case == "wrong-audience":
        bearer = await token(stack, "alice", ["phi-readers"], aud="another-service")
    response = await post_jsonrpc(
        stack, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, bearer
    )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(CHALLENGE_PREFIX)
    assert challenge.endswith('/.well-known/oauth-protected-resource"')
    assert response.json()["error"]["code"] == -32001


async def test_real_client_without_token_is_refused(stack: LocalStack) -> None:
    with pytest.raises(Exception) as raised:  # the SDK surfaces the 401 its own way
        async with mcp_client(stack, None) as client:
            await client.list_tools()
    assert "401" in repr(raised.value) or "Unauthorized" in repr(raised.value)


async def test_protected_resource_metadata_needs_no_token(stack: LocalStack) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.ports.envoy}/.well-known/oauth-protected-resource"
        )
    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == stack.mcp_url
    assert document["authorization_servers"] == [stack.issuer_url]


async def test_upstream_never_sees_the_client_token(stack: LocalStack) -> None:
    bearer = await token(stack, "carol", ["phi-readers"], email="carol@example.org")
    sent = {"x-custos-subject": "admin", "x-custos-groups": "phi-admins"}  # forged by the client
    response = await post_jsonrpc(stack, INITIALIZE, bearer, headers=sent)
    assert response.status_code == 200
    seen = [r for r in upstream_requests(stack) if r["headers"].get("x-custos-subject") == "carol"]
    assert seen, "the MCP server saw no request from carol"
    for request in upstream_requests(stack):
        assert bearer not in json.dumps(request)
    headers = seen[-1]["headers"]
    assert headers["authorization"] == f"Bearer {stack.upstream_token}"
    assert headers["x-custos-groups"] == "phi-readers"
    assert headers["x-custos-email"] == "carol@example.org"
    assert len(headers["x-custos-decision-id"]) == 32
    # One id links what the MCP server saw, the decision and Envoy's access log.
    entry = await access_log_entry(stack, headers["x-custos-decision-id"])
    assert entry["request_id"] == entry["decision_request_id"] == headers["x-request-id"]


async def test_batch_with_one_denied_call_is_denied_whole(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    before = len(upstream_requests(stack))
    batch = [
        tool_call("search_patients", {"query": "a"}, 1),
        tool_call("delete_patient", {"patient_id": "pt-0001"}, 2),
    ]
    response = await post_jsonrpc(stack, batch, bearer)
    assert response.status_code == 403
    assert len(upstream_requests(stack)) == before


async def test_header_body_disagreement_is_refused(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    body = tool_call("search_patients", {"query": "a"})
    headers = {"mcp-method": "tools/call", "mcp-name": "delete_patient"}
    response = await post_jsonrpc(stack, body, bearer, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


async def test_malformed_json_is_a_parse_error(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    response = await post_jsonrpc(stack, b'{"jsonrpc": "2.0", "method": ', bearer)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


@pytest.mark.parametrize("name", [b"\\ud800", b"\xed\xa0\x80"], ids=["lone-surrogate", "cesu-8"])
async def test_a_name_that_is_no_unicode_is_a_parse_error(stack: LocalStack, name: bytes) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s"}}' % name
    before = len(upstream_requests(stack))
    response = await post_jsonrpc(stack, call, bearer)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700
    assert len(upstream_requests(stack)) == before


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "notifications/../tools/call"}, 400),
        ({"jsonrpc": "2.0", "method": "notifications/../tools/call"}, 400),
        ({"jsonrpc": "2.0", "id": 1, "method": "notifications/initialized"}, 403),
        ({"jsonrpc": "2.0", "method": "notifications/tools/call"}, 403),
    ],
    ids=["relative-request", "relative-notification", "notification-with-an-id", "unknown"],
)
async def test_what_is_not_a_notification_is_not_let_through_as_one(
    stack: LocalStack, message: dict[str, object], status: int
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    before = len(upstream_requests(stack))
    response = await post_jsonrpc(stack, message, bearer)
    assert response.status_code == status
    assert len(upstream_requests(stack)) == before


async def test_oversized_body_is_refused_with_413(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    huge = tool_call("search_patients", {"query": "x" * (2 * 1024 * 1024)})
    before = len(upstream_requests(stack))
    response = await post_jsonrpc(stack, huge, bearer)
    assert response.status_code == 413
    assert len(upstream_requests(stack)) == before


async def test_access_log_links_request_id_and_decision(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    response = await post_jsonrpc(stack, tool_call("delete_patient", {"patient_id": "x"}), bearer)
    decision_id = response.json()["error"]["data"]["decision_id"]
    entry = await access_log_entry(stack, decision_id)
    assert entry["decision"] == "deny"
    assert entry["rule"] == "delete-requires-admin"
    assert entry["subject"] == "alice"
    assert entry["status"] == 403
    assert entry["request_id"]


async def access_log_entry(stack: LocalStack, decision_id: str) -> dict[str, object]:
    """Envoy flushes its access log on an interval: wait for the line, a bounded time."""
    for _ in range(50):
        for line in stack.output:
            if line.startswith("envoy") and decision_id in line:
                return dict(json.loads(line.split("| ", 1)[1]))
        await asyncio.sleep(0.1)
    raise AssertionError(f"no access log line for decision {decision_id}")


async def test_unrouted_paths_are_404_without_reaching_upstream(stack: LocalStack) -> None:
    before = len(upstream_requests(stack))
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{stack.ports.envoy}/admin")
    assert response.status_code == 404
    assert len(upstream_requests(stack)) == before


async def test_metrics_count_decisions(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    denied = await post_jsonrpc(stack, tool_call("delete_patient", {"patient_id": "x"}), bearer)
    assert denied.status_code == 403
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{stack.ports.authz_metrics}/metrics")
    text = response.text
    denials = 'custos_authz_decisions_total{code="deny",effect="deny",rule="delete-requires-admin"}'
    assert denials in text
    assert "custos_authz_decision_seconds_bucket" in text
    assert 'custos_jwks_fetches_total{issuer="' in text
    assert bearer not in text  # labels carry rule names and codes, never request data


async def test_get_and_delete_are_judged_by_the_policy(stack: LocalStack) -> None:
    outsider = await token(stack, "mallory", ["contractors"])
    reader = await token(stack, "alice", ["phi-readers"])
    async with httpx.AsyncClient(timeout=10) as client:
        for method in ("GET", "DELETE"):
            denied = await client.request(
                method, stack.mcp_url, headers={"authorization": f"Bearer {outsider}"}
            )
            assert denied.status_code == 403, method
            # Allowed through to the MCP server, which wants a session id: its own 400.
            allowed = await client.request(
                method, stack.mcp_url, headers={"authorization": f"Bearer {reader}"}
            )
            assert allowed.status_code == 400, method
            assert "session" in allowed.text.lower()


async def test_ext_authz_reports_serving_on_grpc_health(stack: LocalStack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports.authz}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "envoy.service.auth.v3.Authorization"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_policy_edits_apply_live_and_a_broken_file_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE_POLICY.read_text())
    async with running_stack(tmp_path / "run", policy=policy) as stack:
        bearer = await token(stack, "alice", ["phi-readers"])
        search = tool_call("search_patients", {"query": "a"})
        assert (await post_jsonrpc(stack, search, bearer)).status_code != 403

        # The operator forbids search: the running sidecar follows within the reload interval.
        policy.write_text(
            EXAMPLE_POLICY.read_text()
            + "\n  - name: no-search\n    when: mcp.tool == 'search_patients'\n    effect: deny\n"
        )
        assert await eventually_status(stack, search, bearer, 403)

        # A broken edit is refused; the last good policy (search denied) keeps deciding.
        policy.write_text("rules:\n  - name: broken\n    when: identity.grups\n    effect: allow\n")
        await asyncio.sleep(2.5)
        assert (await post_jsonrpc(stack, search, bearer)).status_code == 403
        assert any("policy reload refused" in line for line in stack.output)


async def eventually_status(
    stack: LocalStack, body: dict[str, object], bearer: str, status: int
) -> bool:
    for _ in range(50):
        if (await post_jsonrpc(stack, body, bearer)).status_code == status:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_ext_authz_down_means_envoy_refuses(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        bearer = await token(stack, "alice", ["phi-readers"])
        assert (await post_jsonrpc(stack, INITIALIZE, bearer)).status_code == 200
        await stack.stop_child("ext_authz")
        before = len(upstream_requests(stack))
        response = await post_jsonrpc(stack, INITIALIZE, bearer)
        assert response.status_code == 503
        assert len(upstream_requests(stack)) == before


async def test_a_credential_in_the_query_string_is_refused_and_kept_nowhere(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    before = len(upstream_requests(stack))
    targets = [f"?access_token={bearer}&page=2", f"?q={bearer}", "?Client-Secret=s3cr3t-v4lue"]
    async with httpx.AsyncClient() as client:
        for target, header in itertools.product(targets, (True, False)):
            sent = {**MCP_HEADERS, **SECRET_HEADERS}
            if header:
                sent["authorization"] = f"Bearer {bearer}"
            response = await client.post(
                stack.mcp_url + target, content=json.dumps(INITIALIZE), headers=sent
            )
            assert response.status_code == 400, target
            assert response.json()["error"]["code"] == -32600
            assert bearer not in response.text and "s3cr3t" not in response.text
    assert len(upstream_requests(stack)) == before  # nothing forwarded
    decision_id = response.json()["error"]["data"]["decision_id"]
    entry = await access_log_entry(stack, decision_id)
    assert entry["path"] == "/mcp" and entry["query"] == "Client-Secret=[REDACTED]"
    assert entry["decision_code"] == "credential_in_query"
    spool = await assert_kept_nowhere(stack, bearer, "s3cr3t")
    assert b"/mcp?access_token=[REDACTED]&page=[REDACTED]" in spool


# Headers the policy does not need, sent along: no log or record may hold them either.
SECRET_HEADERS = {"cookie": "sid=c00kie-v4lue", "proxy-authorization": "Basic cHJveHk6cHc="}


async def assert_kept_nowhere(stack: LocalStack, *secrets: str, upstream: bool = True) -> bytes:
    """Neither these nor the secret headers' values are in any process's output (Envoy's
    access log among them; the MCP server's too, unless `upstream` is False: a query it
    was sent is its own to log) or in the audit spool, which is returned."""
    await asyncio.sleep(1.2)  # Envoy's access log flush interval
    output = "\n".join(line for line in stack.output if upstream or not line.startswith("mcp "))
    spool = b"".join(p.read_bytes() for p in stack.spool_dir.rglob("*") if p.is_file())
    for secret in (*secrets, "c00kie", "cHJveHk6cHc"):
        assert secret not in output and secret.encode() not in spool
    return spool


async def test_a_query_reaches_the_server_but_its_values_not_the_record(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    sent = {**MCP_HEADERS, **SECRET_HEADERS, "authorization": f"Bearer {bearer}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            stack.mcp_url + "?page=2&patient=pt-0042", content=json.dumps(INITIALIZE), headers=sent
        )
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    records = await spooled(stack, lambda r: r.request_id == request_id)
    assert [r.http_path for r in records] == ["/mcp?page=[REDACTED]&patient=[REDACTED]"]
    await assert_kept_nowhere(stack, bearer, "pt-0042", upstream=False)


async def client_seen(stack: LocalStack, claimed: str) -> tuple[dict[str, object], str]:
    """An allowed call claiming to come from `claimed` (X-Forwarded-For): what the MCP
    server saw of it, and the client its audit record names."""
    bearer = await token(stack, "alice", ["phi-readers"])
    sent = {"x-forwarded-for": claimed, "x-real-ip": "192.0.2.99"}
    response = await post_jsonrpc(stack, INITIALIZE, bearer, headers=sent)
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    (seen,) = [r for r in upstream_requests(stack) if r["headers"]["x-request-id"] == request_id]
    recorded = await spooled(stack, lambda r: r.request_id == request_id)
    assert recorded, "no record of the call"
    return seen, recorded[0].source_address


async def test_the_client_is_the_peer_whatever_it_claims(stack: LocalStack) -> None:
    seen, recorded = await client_seen(stack, "192.0.2.2")
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"  # one address: the peer
    assert "x-real-ip" not in seen["headers"]
    assert seen["client"] == "127.0.0.1"  # as the MCP server (uvicorn) reads it
    assert recorded == "127.0.0.1"


async def test_behind_a_load_balancer_the_client_is_read_from_its_hops(tmp_path: Path) -> None:
    # A GKE external Application Load Balancer appends the client's address and its own.
    async with running_stack(tmp_path, xff_num_trusted_hops=2) as stack:
        seen, recorded = await client_seen(stack, "192.0.2.2, 198.51.100.7, 203.0.113.9")
        assert seen["headers"]["x-forwarded-for"] == "198.51.100.7"
        assert seen["client"] == "198.51.100.7"
        assert recorded == "198.51.100.7"
        # The policy reads the same client (`request.source_address`): the access log too.
        bearer = await token(stack, "alice", ["phi-readers"])
        sent = {"x-forwarded-for": "198.51.100.7, 203.0.113.9"}
        denied = await post_jsonrpc(
            stack, tool_call("delete_patient", {"patient_id": "x"}), bearer, headers=sent
        )
        entry = await access_log_entry(stack, denied.json()["error"]["data"]["decision_id"])
        assert entry["client"] == "198.51.100.7"


async def test_a_stream_the_server_keeps_open_ends_at_its_maximum_age(tmp_path: Path) -> None:
    async with running_stack(tmp_path, max_stream_duration_s=2) as stack:
        bearer = await token(stack, "alice", ["phi-readers"])
        opened = await post_jsonrpc(stack, INITIALIZE, bearer)
        session = {
            "authorization": f"Bearer {bearer}",
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": INITIALIZE["params"]["protocolVersion"],
            "accept": "text/event-stream",
        }
        started = time.monotonic()
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", stack.mcp_url, headers=session) as stream,
        ):
            assert stream.status_code == 200  # the server's own event stream, open
            with contextlib.suppress(httpx.HTTPError):  # Envoy resets it: no clean end
                async for _ in stream.aiter_raw():
                    pass
        # Without the bound, only the 5-minute idle timeout would end it.
        assert time.monotonic() - started < 20


async def test_a_client_on_loopback_names_neither_its_address_nor_its_request_id(
    stack: LocalStack,
) -> None:
    # Loopback and private ranges are "internal" to Envoy by default, and an internal
    # client's x-envoy-* headers and request id would be kept.
    bearer = await token(stack, "alice", ["phi-readers"])
    forged = {"x-envoy-external-address": "6.6.6.6", "x-request-id": "forged-request-id"}
    response = await post_jsonrpc(stack, INITIALIZE, bearer, headers=forged)
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert request_id != "forged-request-id"
    (seen,) = [r for r in upstream_requests(stack) if r["headers"]["x-request-id"] == request_id]
    assert seen["headers"]["x-envoy-external-address"] == "127.0.0.1"
    recorded = await spooled(stack, lambda r: r.request_id == request_id)
    assert [r.source_address for r in recorded] == ["127.0.0.1"]
