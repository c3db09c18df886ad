"""The ext_authz pipeline end to end, recording: exactly one verdict per check through
`on_verdict`, whatever its outcome, including a check cancelled while it waits on
the IdP."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from custos.dev_issuer import DevIssuer
from tests.issuer_server import IssuerServer
from tests.pipeline.support import (
    AUDIENCE,
    Pipeline,
    http,
    issuer_config,
    make_pipeline,
    tools_call,
)

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
