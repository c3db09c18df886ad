"""The ext_authz pipeline end to end, allow: what the MCP server receives. Identity
headers set (overwriting, never appended), the client's token removed or replaced by
the upstream credential, and an allow turned into a 500 when that credential is gone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from custos.errors import ConfigError
from extauthz.config import UpstreamCredential
from extauthz.upstream_credential import CredentialSource
from tests.issuer_server import IssuerServer
from tests.pipeline.support import (
    CREDENTIAL_ENV,
    EXAMPLE_POLICY,
    Pipeline,
    assert_allowed,
    assert_denied,
    http,
    issuer_config,
    make_pipeline,
    metadata,
    mint_without_email,
    removed,
    set_headers,
    tools_call,
)

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
            "reason": "rule readers-read-patients",  # for ext_proc's audit record
            "rule": "readers-read-patients",
            "policy": hashlib.sha256(EXAMPLE_POLICY.read_bytes()).hexdigest()[:12],
            "issuer": idp.url,
            "subject": "alice",
            "source_address": "127.0.0.1",
            "query": "",
            "mcp_methods": ["tools/call"],  # tells ext_proc what the answer will be
            "mcp_calls": [  # and, for masking exceptions, which tool was called
                {"method": "tools/call", "tool": "search_patients", "name": "search_patients"}
            ],
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


def file_credential_pipeline(
    client: httpx.AsyncClient, idp: IssuerServer, secret: Path, content: str
) -> Pipeline:
    """A pipeline whose upstream credential is read from `secret` (holding `content`) and
    sent on its own header, `x-upstream-token`."""
    secret.write_text(content)
    credential = CredentialSource(UpstreamCredential(file=secret, header="x-upstream-token"))
    return make_pipeline(client, issuer_config(idp.url), credential=credential)


async def test_file_credential_on_its_own_header_still_removes_the_client_token(
    idp: IssuerServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "upstream-token"
    pipeline = file_credential_pipeline(client, idp, secret, "file-s3cret\n")
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
    pipeline = file_credential_pipeline(client, idp, secret, "first-secret")
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
    pipeline = file_credential_pipeline(client, idp, secret, "first-secret")
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
