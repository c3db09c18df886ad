"""The ext_authz pipeline end to end, bodies the policy never sees: oversized batches,
duplicate keys, JSON nested past the limit and bodies on methods MCP gives none, all
refused with a 400 before the policy; and the bodies just inside the limits, judged."""

from __future__ import annotations

import json

from extauthz.mcp_request import DEFAULT_LIMITS
from tests.issuer_server import IssuerServer
from tests.pipeline.support import (
    Pipeline,
    assert_allowed,
    assert_denied,
    http,
    nested_tools_call,
    tools_call,
)

# --- bodies the policy never sees ---------------------------------------------------------


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
