"""Identity phase, tokens: algorithms, signatures, issuer, audience, time, claims, malformed input.

Nothing of ours is mocked: the IdP is the development issuer over real HTTP on loopback,
and every refusal is asserted by exception class and stable `code`."""

import hashlib
import hmac
from typing import Any

import httpx
import pydantic
import pytest
from cryptography.hazmat.primitives import serialization

from custos.dev_issuer import DevIssuer
from custos.policy import Identity
from extauthz.config import IssuerConfig
from extauthz.errors import (
    AlgorithmNotAllowed,
    AudienceMismatch,
    ClaimInvalid,
    SignatureInvalid,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    UnknownIssuer,
    UnknownKey,
)
from extauthz.identity import bearer_token
from tests.identity.support import (
    AUDIENCE,
    LEEWAY_S,
    MAX_TOKEN_BYTES,
    FakeClock,
    assert_refused,
    b64url,
    b64url_json,
    claims_for,
    make_verifier,
    nested,
    sign,
    sign_by_hand,
    unrelated_ec_key,
    unrelated_rsa_key,
    without,
)
from tests.issuer_server import IssuerServer

# --- the happy path -----------------------------------------------------------------------


async def test_valid_token_yields_identity(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    token = issuer.mint("alice", ["phi-readers", "staff"], email="alice@clinic.example")

    identity = await verifier.verify(token)

    assert isinstance(identity, Identity)
    assert identity.issuer == issuer.issuer
    assert identity.subject == "alice"
    assert identity.groups == ("phi-readers", "staff")
    assert identity.email == "alice@clinic.example"
    assert identity.claims["aud"] == AUDIENCE


async def test_nested_groups_claim_path_is_followed(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock, groups_claim="realm_access.roles")
    token = issuer.mint(
        "bob", ["ignored-flat-group"], extra={"realm_access": {"roles": ["phi-admins", 7]}}
    )

    identity = await verifier.verify(token)

    # Non-string entries are dropped rather than stringified into a group name.
    assert identity.groups == ("phi-admins",)
    assert identity.subject == "bob"
    assert identity.email == "bob@example.com"


# --- algorithm attacks --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    requested: list[httpx.URL],
    alg: str,
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    header = {"alg": alg, "typ": "JWT", "kid": issuer.current.kid}
    token = f"{b64url_json(header)}.{b64url_json(claims_for(issuer))}."

    with pytest.raises(AlgorithmNotAllowed) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, AlgorithmNotAllowed)
    assert requested == []  # refused before any key lookup


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)],
)
async def test_hmac_signed_with_rsa_public_key_is_refused(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    alg: str,
    digest: Any,
) -> None:
    # Key confusion: the attacker knows the public key (it is published) and uses its PEM
    # as an HMAC secret; a verifier that lets the token choose the algorithm would accept.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    public_pem = issuer.current.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": alg, "typ": "JWT", "kid": issuer.current.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims_for(issuer))}"
    mac = hmac.new(public_pem, signing_input.encode(), digest).digest()
    token = f"{signing_input}.{b64url(mac)}"

    with pytest.raises(AlgorithmNotAllowed) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, AlgorithmNotAllowed)


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), ("RS256", "HS256")])
def test_config_cannot_allow_none_or_hmac(algorithms: tuple[str, ...]) -> None:
    # The allowlist is the last line of defence above, so it must not be configurable away.
    with pytest.raises(pydantic.ValidationError):
        IssuerConfig(issuer="https://idp.example", audience=AUDIENCE, algorithms=algorithms)


async def test_es256_token_naming_rsa_kid_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock, algorithms=("RS256", "ES256"))
    token = sign(claims_for(issuer), unrelated_ec_key(), "ES256", kid=issuer.current.kid)

    with pytest.raises(UnknownKey) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, UnknownKey)
    assert "not a ES256 key" in str(exc_info.value)


async def test_other_algorithm_than_the_jwk_pins_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Same key family (RSA) and a genuine signature, but the JWK says `alg: RS256`.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock, algorithms=("RS256", "PS256"))
    token = sign(claims_for(issuer), issuer.current.private, "PS256", kid=issuer.current.kid)

    with pytest.raises(UnknownKey) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, UnknownKey)


# --- signature attacks --------------------------------------------------------------------


async def test_signature_by_unrelated_key_with_published_kid_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    token = sign(claims_for(issuer), unrelated_rsa_key(), "RS256", kid=issuer.current.kid)

    with pytest.raises(SignatureInvalid) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, SignatureInvalid)


async def test_tampered_payload_with_genuine_signature_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Privilege escalation by editing the payload of a real token and keeping its signature.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    header, _, signature = issuer.mint("eve", ["phi-readers"]).split(".")
    payload = b64url_json(claims_for(issuer, sub="eve", groups=["phi-admins"]))

    with pytest.raises(SignatureInvalid) as exc_info:
        await verifier.verify(f"{header}.{payload}.{signature}")

    assert_refused(exc_info, SignatureInvalid)


async def test_token_without_kid_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    token = sign(claims_for(issuer), issuer.current.private, "RS256", kid=None)

    with pytest.raises(TokenMalformed) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, TokenMalformed)


# --- issuer and audience ------------------------------------------------------------------


@pytest.mark.parametrize(
    "foreign",
    [
        "http://127.0.0.1:9/",  # another host the attacker controls
        "{issuer}/",  # ours with a trailing slash: `iss` must match exactly
        "{issuer}/evil",
        "https://{host}",  # other scheme
    ],
)
async def test_unconfigured_issuer_is_refused_without_any_fetch(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    requested: list[httpx.URL],
    foreign: str,
) -> None:
    issuer, server = idp
    verifier = make_verifier(issuer, client, clock)
    seen_before = server.total_requests
    iss = foreign.format(issuer=issuer.issuer, host=issuer.issuer.removeprefix("http://"))
    # Properly signed with the real key: only the claimed issuer is wrong.
    token = issuer.mint("mallory", extra={"iss": iss})

    with pytest.raises(UnknownIssuer) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, UnknownIssuer)
    # A token must never make us fetch from a host of its choosing, nor from ours.
    assert requested == []
    assert server.total_requests == seen_before


async def test_token_from_attacker_run_issuer_is_refused_without_contacting_it(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    requested: list[httpx.URL],
) -> None:
    # The attacker runs a real, working IdP of their own and signs with its key: if we
    # followed the token's `iss` to discovery, the signature would check out.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    with IssuerServer(audience=AUDIENCE) as attacker:
        token = attacker.issuer.mint("mallory", ["phi-admins"])
        with pytest.raises(UnknownIssuer) as exc_info:
            await verifier.verify(token)
        contacted = attacker.total_requests

    assert_refused(exc_info, UnknownIssuer)
    assert contacted == 0
    assert requested == []


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda url: {"iss": [url]}, id="list"),
        pytest.param(lambda url: {"iss": {"url": url}}, id="object"),
        pytest.param(lambda url: {"iss": 42}, id="number"),
        pytest.param(lambda url: {}, id="missing"),
    ],
)
async def test_issuer_claim_that_is_not_a_string_is_unknown_issuer(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    shape: Any,
) -> None:
    # A list or object `iss` must be a clean 401, not an unhandled TypeError (a 500 or a
    # dropped gRPC call) from using an unhashable value as a lookup key. Signed by hand:
    # pyjwt will not encode a non-string `iss`, but nothing stops an attacker sending one.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    claims = {**without(claims_for(issuer), "iss"), **shape(issuer.issuer)}
    token = sign_by_hand(claims, issuer.current.private, issuer.current.kid)

    with pytest.raises(UnknownIssuer) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, UnknownIssuer)


async def test_wrong_audience_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # A token the same IdP issued for another resource must not be replayable here.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    for audience in ["other-service", ["other-service", "another"], AUDIENCE + "x"]:
        with pytest.raises(AudienceMismatch) as exc_info:
            await verifier.verify(issuer.mint("alice", audience=audience))
        assert_refused(exc_info, AudienceMismatch)


async def test_audience_list_containing_ours_is_accepted(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    identity = await verifier.verify(issuer.mint("alice", audience=["other-service", AUDIENCE]))

    assert identity.subject == "alice"


# --- time ---------------------------------------------------------------------------------


async def test_expired_beyond_leeway_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    with pytest.raises(TokenExpired) as exc_info:
        await verifier.verify(issuer.mint("alice", expires_in=-(LEEWAY_S + 60)))

    assert_refused(exc_info, TokenExpired)


async def test_expired_within_leeway_is_accepted(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Clock skew between IdP and sidecar must not turn fresh tokens away.
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    identity = await verifier.verify(issuer.mint("alice", expires_in=-2))

    assert identity.subject == "alice"


async def test_not_yet_valid_beyond_leeway_is_refused(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    with pytest.raises(TokenNotYetValid) as exc_info:
        await verifier.verify(issuer.mint("alice", not_before=LEEWAY_S + 60))

    assert_refused(exc_info, TokenNotYetValid)
    # Within the leeway the same skew is tolerated.
    assert (await verifier.verify(issuer.mint("alice", not_before=2))).subject == "alice"


# --- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: without(c, "exp"), id="missing-exp"),
        pytest.param(lambda c: without(c, "sub"), id="missing-sub"),
        pytest.param(lambda c: without(c, "aud"), id="missing-aud"),
        pytest.param(lambda c: {**c, "sub": ""}, id="empty-sub"),
        pytest.param(lambda c: {**c, "sub": 1234}, id="numeric-sub"),
        # Deeper than CEL can bind: every rule would fail for this user, unexplained.
        pytest.param(lambda c: {**c, "deep": nested(40)}, id="claims-nested-too-deeply"),
    ],
)
async def test_missing_or_invalid_required_claim_is_refused(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    change: Any,
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)
    token = sign(change(claims_for(issuer)), issuer.current.private, "RS256", issuer.current.kid)

    with pytest.raises(ClaimInvalid) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, ClaimInvalid)


# --- malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("abc", id="one-segment"),
        pytest.param("a.b.c", id="garbage-segments"),
        pytest.param("%%%%.$$$$.!!!!", id="non-base64"),
        pytest.param(f"{b64url(b'not json')}.{b64url_json({'sub': 'x'})}.", id="header-not-json"),
        pytest.param(f"{b64url_json(['RS256'])}.{b64url_json({'sub': 'x'})}.", id="header-list"),
        pytest.param(
            f"{b64url_json({'alg': 'RS256', 'kid': 'k'})}.{b64url_json([1, 2])}.",
            id="payload-list",
        ),
        pytest.param("..", id="empty-segments"),
    ],
)
async def test_malformed_token_is_refused(
    idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    requested: list[httpx.URL],
    token: str,
) -> None:
    issuer, _ = idp
    verifier = make_verifier(issuer, client, clock)

    with pytest.raises(TokenMalformed) as exc_info:
        await verifier.verify(token)

    assert_refused(exc_info, TokenMalformed)
    assert requested == []


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({}, TokenMissing, id="no-header"),
        pytest.param({"authorization": ""}, TokenMissing, id="empty-header"),
        pytest.param({"authorization": "Basic YWxpY2U6c2VjcmV0"}, TokenMissing, id="basic"),
        pytest.param({"authorization": "Token a.b.c"}, TokenMissing, id="other-scheme"),
        pytest.param({"authorization": "Bearer"}, TokenMalformed, id="bearer-no-token"),
        pytest.param({"authorization": "Bearer   "}, TokenMalformed, id="bearer-blank"),
        pytest.param({"authorization": "Bearer abc"}, TokenMalformed, id="not-compact-jws"),
        pytest.param({"authorization": "Bearer a.b.c.d.e"}, TokenMalformed, id="jwe-shaped"),
        pytest.param(
            {"authorization": "Bearer " + "a" * MAX_TOKEN_BYTES + ".b.c"},
            TokenMalformed,
            id="over-long",
        ),
    ],
)
def test_bearer_token_refuses_missing_or_malformed_header(
    headers: dict[str, str], error: type[TokenError]
) -> None:
    with pytest.raises(error) as exc_info:
        bearer_token(headers, MAX_TOKEN_BYTES)

    assert_refused(exc_info, error)


def test_bearer_token_accepts_compact_jws_any_scheme_case() -> None:
    token = "a" * (MAX_TOKEN_BYTES - 4) + ".b.c"  # exactly at the limit
    assert bearer_token({"authorization": f"Bearer {token}"}, MAX_TOKEN_BYTES) == token
    assert bearer_token({"authorization": f"bearer  {token} "}, MAX_TOKEN_BYTES) == token
