"""Security regression tests for the identity phase: bearer token in, verified principal out.

Each test is named after the attack or failure it pins down. Nothing of ours is mocked:
the IdP is the development issuer served over real HTTP on loopback, fetched by a real
`httpx.AsyncClient`, and every refusal is asserted by exception class AND stable `code`
(the code labels metrics and audit records, so changing it is a breaking change).

Time: JWT claims (`exp`, `nbf`) are checked by PyJWT against the wall clock, so those tests
use margins far larger than any scheduling jitter. The JWKS cache and the token cache take
injected clocks, so TTLs and refetch intervals are exercised without sleeping."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pydantic
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from custos.dev_issuer import DevIssuer
from custos.policy import Identity
from extauthz.config import IssuerConfig
from extauthz.errors import (
    AlgorithmNotAllowed,
    AudienceMismatch,
    ClaimInvalid,
    KeysUnavailable,
    SignatureInvalid,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    UnknownIssuer,
    UnknownKey,
)
from extauthz.identity import TokenCache, TokenVerifier, bearer_token
from extauthz.jwks import IssuerKeys
from tests.issuer_server import IssuerServer

AUDIENCE = "custos-test"
LEEWAY_S = 5
JWKS_TTL_S = 60
REFETCH_INTERVAL_S = 30
MAX_TOKEN_BYTES = 4096


class FakeClock:
    """A clock that moves only when told to, so TTLs and intervals need no sleeps."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[tuple[DevIssuer, IssuerServer]]:
    """One issuer shared by the tests that leave it as they found it (no rotation, no outage).

    Stopping uvicorn costs ~0.2 s, so a server per test would dominate the run time; tests
    sharing it assert on request-count deltas, never on absolute counts."""
    with IssuerServer(audience=AUDIENCE) as server:
        yield server.issuer, server


@pytest.fixture
def own_idp() -> Iterator[tuple[DevIssuer, IssuerServer]]:
    """A fresh issuer for a test that rotates keys, unpublishes them or stops the server."""
    with IssuerServer(audience=AUDIENCE) as server:
        yield server.issuer, server


@pytest.fixture
def requested() -> list[httpx.URL]:
    """Every URL the verifier's HTTP client asked for, whatever the host."""
    return []


@pytest.fixture
async def client(requested: list[httpx.URL]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        requested.append(request.url)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        yield http


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_verifier(
    issuer: DevIssuer,
    client: httpx.AsyncClient,
    clock: FakeClock,
    *,
    cache: TokenCache | None = None,
    **config: Any,
) -> TokenVerifier:
    settings: dict[str, Any] = {
        "issuer": issuer.issuer,
        "audience": AUDIENCE,
        "leeway_seconds": LEEWAY_S,
        "jwks_ttl_seconds": JWKS_TTL_S,
        "jwks_refetch_interval_seconds": REFETCH_INTERVAL_S,
        "http_timeout_seconds": 2,
    }
    settings.update(config)
    keys = IssuerKeys(IssuerConfig(**settings), client, clock=clock)
    return TokenVerifier({issuer.issuer: keys}, TokenCache(64) if cache is None else cache)


# --- token crafting, by hand where libraries (rightly) refuse ------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_for(issuer: DevIssuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "sub": "mallory",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "groups": ["phi-admins"],
    }
    claims.update(overrides)
    return claims


def without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


@functools.cache
def unrelated_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@functools.cache
def unrelated_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(claims: dict[str, Any], key: Any, algorithm: str, kid: str | None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def sign_by_hand(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    """RS256 without pyjwt's encoder, which refuses some claims an attacker may still send."""
    signing_input = (
        f"{b64url_json({'alg': 'RS256', 'typ': 'JWT', 'kid': kid})}.{b64url_json(claims)}"
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def assert_refused(exc_info: pytest.ExceptionInfo[TokenError], cls: type[TokenError]) -> None:
    # Exact class, not a subclass match: each cause has its own class and metric label.
    assert type(exc_info.value) is cls
    assert exc_info.value.code == cls.code


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


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


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


# --- key rotation and refetch rate limiting -----------------------------------------------


async def test_unknown_kid_refetches_once_per_interval(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    await verifier.verify(issuer.mint("alice"))
    assert server.jwks_requests == 1

    rotated = issuer.rotate()
    clock.advance(REFETCH_INTERVAL_S)
    identity = await verifier.verify(issuer.mint("alice", key=rotated))
    # The rotated key was unknown, so exactly one refetch found it.
    assert identity.subject == "alice"
    assert server.jwks_requests == 2

    # Forged kids within the interval: refused, and the IdP is not asked again.
    clock.advance(REFETCH_INTERVAL_S - 1)
    for n in range(3):
        forged = sign(claims_for(issuer), unrelated_rsa_key(), "RS256", kid=f"forged-{n}")
        with pytest.raises(UnknownKey) as exc_info:
            await verifier.verify(forged)
        assert_refused(exc_info, UnknownKey)
    assert server.jwks_requests == 2

    # Once the interval has passed, one more unknown kid buys exactly one more fetch.
    clock.advance(1)
    forged = sign(claims_for(issuer), unrelated_rsa_key(), "RS256", kid="forged-late")
    with pytest.raises(UnknownKey):
        await verifier.verify(forged)
    assert server.jwks_requests == 3


async def test_flood_of_forged_kids_fetches_at_most_once(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = idp
    verifier = make_verifier(issuer, client, clock)
    await verifier.verify(issuer.mint("alice"))
    fetched = server.jwks_requests
    clock.advance(REFETCH_INTERVAL_S)

    forged = [
        sign(claims_for(issuer), unrelated_rsa_key(), "RS256", kid=f"forged-{n}") for n in range(20)
    ]
    results = await asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True)

    assert all(type(r) is UnknownKey for r in results)
    assert server.jwks_requests == fetched + 1


async def test_rotated_kid_verifies_for_concurrent_requests(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Several requests carrying tokens from a freshly rotated key arrive together: the
    # one refetch must serve them all, not only the request that happened to start it.
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    await verifier.verify(issuer.mint("alice"))
    rotated = issuer.rotate()
    clock.advance(REFETCH_INTERVAL_S)

    tokens = [issuer.mint(f"user-{n}", key=rotated) for n in range(5)]
    identities = await asyncio.gather(*(verifier.verify(t) for t in tokens))

    assert [i.subject for i in identities] == [f"user-{n}" for n in range(5)]
    assert server.jwks_requests == 2


async def test_concurrent_first_requests_share_the_first_fetch(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Cold start (no warm() or warm() failed): requests arriving while the first fetch is in
    # flight must wait for it rather than be told no keys are available.
    issuer, server = idp
    verifier = make_verifier(issuer, client, clock)
    fetched = server.jwks_requests

    tokens = [issuer.mint(f"user-{n}") for n in range(5)]
    identities = await asyncio.gather(*(verifier.verify(t) for t in tokens))

    assert [i.subject for i in identities] == [f"user-{n}" for n in range(5)]
    assert server.jwks_requests == fetched + 1


# --- IdP outages --------------------------------------------------------------------------


async def eventually(condition: Callable[[], bool]) -> bool:
    """Wait, a bounded time, for work the code under test does in the background."""
    for _ in range(100):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def test_idp_down_cached_keys_keep_working(
    own_idp: tuple[DevIssuer, IssuerServer],
    client: httpx.AsyncClient,
    clock: FakeClock,
    requested: list[httpx.URL],
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    await verifier.verify(issuer.mint("alice"))

    server.stop()
    clock.advance(JWKS_TTL_S + REFETCH_INTERVAL_S)  # keys stale: a refresh will be tried
    attempts_before = len(requested)
    # Different subject: a new token, so this cannot be a token-cache hit.
    identity = await verifier.verify(issuer.mint("bob"))

    assert identity.subject == "bob"
    assert not server.running
    # The refresh runs beside the request (stale keys serve meanwhile); it was really tried.
    assert await eventually(lambda: len(requested) > attempts_before)


async def test_unresponsive_idp_does_not_stall_requests_while_keys_are_cached(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock, http_timeout_seconds=5)
    await verifier.verify(issuer.mint("alice"))
    server.stop()
    # The IdP's port now accepts connections and never answers: the worst kind of outage.
    with socket.socket() as blackhole:
        blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blackhole.bind(("127.0.0.1", server.port))
        blackhole.listen(16)
        clock.advance(JWKS_TTL_S + REFETCH_INTERVAL_S)
        async with asyncio.timeout(1):  # far below the 5 s the refresh may take
            identity = await verifier.verify(issuer.mint("bob"))
        await verifier.aclose()  # the refresh is still waiting on the silent IdP
    assert identity.subject == "bob"


async def test_a_request_envoy_gives_up_on_does_not_cancel_the_key_fetch(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Envoy's ext_authz timeout can be shorter than a slow IdP's answer. The abandoned
    # request must not take the fetch down with it, or the issuer would be refused for a
    # whole refetch interval.
    issuer, server = own_idp
    server.slow_down(0.3)
    verifier = make_verifier(issuer, client, clock)
    first = asyncio.create_task(verifier.verify(issuer.mint("alice")))
    await asyncio.sleep(0.1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await verifier.verify(issuer.mint("bob"))).subject == "bob"
    assert server.jwks_requests == 1


async def test_idp_down_and_never_reached_is_keys_unavailable(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    server.stop()

    for _ in range(2):  # the second is inside the refetch interval: no new attempt
        with pytest.raises(KeysUnavailable) as exc_info:
            await verifier.verify(issuer.mint("alice"))
        assert_refused(exc_info, KeysUnavailable)


async def test_jwks_outage_after_first_fetch_cached_keys_keep_working(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    await verifier.verify(issuer.mint("alice"))

    issuer.published = False  # /jwks answers 503
    clock.advance(JWKS_TTL_S + REFETCH_INTERVAL_S)
    assert (await verifier.verify(issuer.mint("bob"))).subject == "bob"
    # The background refresh was tried, failed, and did no harm.
    assert await eventually(lambda: server.jwks_requests == 2)

    # A key rotated during the outage cannot be had: unknown, not "no keys at all".
    rotated = issuer.rotate()
    clock.advance(REFETCH_INTERVAL_S)
    with pytest.raises(UnknownKey) as exc_info:
        await verifier.verify(issuer.mint("carol", key=rotated))
    assert_refused(exc_info, UnknownKey)

    # Recovery: the next permitted refetch picks the rotated key up.
    issuer.published = True
    clock.advance(REFETCH_INTERVAL_S)
    assert (await verifier.verify(issuer.mint("carol", key=rotated))).subject == "carol"


async def test_discovery_naming_another_issuer_is_not_trusted(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # A discovery URL that serves some other issuer's document must not lend us its keys.
    issuer, _ = idp
    with IssuerServer(audience=AUDIENCE, keys=issuer.keys) as impostor:
        verifier = make_verifier(
            issuer,
            client,
            clock,
            discovery_url=f"{impostor.url}/.well-known/openid-configuration",
        )
        with pytest.raises(KeysUnavailable) as exc_info:
            await verifier.verify(issuer.mint("alice"))

    assert_refused(exc_info, KeysUnavailable)
    assert impostor.discovery_requests == 1
    assert impostor.jwks_requests == 0


# --- the token cache ----------------------------------------------------------------------


async def test_verified_token_is_served_from_cache(
    own_idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, server = own_idp
    verifier = make_verifier(issuer, client, clock)
    token = issuer.mint("alice", ["phi-readers"])
    first = await verifier.verify(token)
    fetches = server.jwks_requests

    # Even with the keys stale and the IdP gone, a cached token needs no key at all.
    server.stop()
    clock.advance(JWKS_TTL_S * 10)
    second = await verifier.verify(token)

    assert second is first
    assert server.jwks_requests == fetches


async def test_token_cache_entries_expire(
    idp: tuple[DevIssuer, IssuerServer], client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuer, _ = idp
    cache_clock = FakeClock(time.time())
    verifier = make_verifier(issuer, client, clock, cache=TokenCache(8, clock=cache_clock))
    token = issuer.mint("alice", expires_in=60)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first

    # Past exp + leeway the entry is dropped; the token (still valid by the wall clock that
    # PyJWT uses) is verified afresh, which yields a new Identity object.
    cache_clock.advance(60 + LEEWAY_S + 1)
    assert await verifier.verify(token) is not first


def test_token_cache_expiry_is_exclusive_of_the_deadline() -> None:
    clock = FakeClock()
    cache = TokenCache(4, clock=clock)
    digest = TokenCache.digest("t")
    identity = Identity(issuer="i", subject="s")
    cache.put(digest, identity, expires=clock.now + 10)

    clock.advance(9.999)
    assert cache.get(digest) is identity
    clock.advance(0.001)
    assert cache.get(digest) is None


def test_token_cache_is_bounded_and_evicts_least_recently_used() -> None:
    clock = FakeClock()
    cache = TokenCache(2, clock=clock)
    a, b, c = (TokenCache.digest(t) for t in ("a", "b", "c"))
    ids = {d: Identity(issuer="i", subject=s) for d, s in ((a, "a"), (b, "b"), (c, "c"))}
    far = clock.now + 3600
    cache.put(a, ids[a], far)
    cache.put(b, ids[b], far)
    assert cache.get(a) is ids[a]  # a is now more recently used than b

    cache.put(c, ids[c], far)

    assert cache.get(b) is None
    assert cache.get(a) is ids[a]
    assert cache.get(c) is ids[c]


def test_token_cache_of_size_zero_caches_nothing() -> None:
    cache = TokenCache(0)
    digest = TokenCache.digest("t")
    cache.put(digest, Identity(issuer="i", subject="s"), time.time() + 3600)
    assert cache.get(digest) is None
