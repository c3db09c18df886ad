"""Shared pieces of the identity tests: a fake clock, verifiers wired to a real local
IdP, and tokens crafted by hand where libraries (rightly) refuse to make them."""

import asyncio
import base64
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from custos.dev_issuer import DevIssuer
from extauthz.config import IssuerConfig
from extauthz.errors import TokenError
from extauthz.identity import TokenCache, TokenVerifier
from extauthz.jwks import IssuerKeys

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


async def eventually(condition: Callable[[], bool]) -> bool:
    """Wait, a bounded time, for work the code under test does in the background."""
    for _ in range(100):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value
