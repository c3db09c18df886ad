"""The ext_authz pipeline end to end, deny: what the client receives. The HTTP status,
the `WWW-Authenticate` challenge only where a new token would help, and a JSON-RPC
error body that names no rule."""

from __future__ import annotations

import httpx

from tests.issuer_server import IssuerServer
from tests.pipeline.support import (
    AUDIENCE,
    RESOURCE_METADATA_URL,
    Pipeline,
    assert_denied,
    denied_headers,
    http,
    issuer_config,
    make_pipeline,
    metadata,
    tools_call,
)

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
