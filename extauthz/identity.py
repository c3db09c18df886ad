"""Identity phase: an OIDC bearer token in, a verified principal out.

The rules, in the order they are applied: the token comes only from
`Authorization: Bearer`; its issuer must be one configured (before any network call,
so a token cannot make us fetch from a host of its choosing); its algorithm must be on
that issuer's allowlist and fit the key it names; then signature, `iss` (exact), `aud`
(must contain ours), `exp`, `nbf` and `iat` with a small leeway. A verified token is
cached by its digest until it expires."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from custos.policy import Identity
from custos.policy.environment import MAX_INPUT_DEPTH, too_deep
from extauthz.config import IssuerConfig
from extauthz.errors import (
    AlgorithmNotAllowed,
    AudienceMismatch,
    ClaimInvalid,
    SignatureInvalid,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    UnknownIssuer,
)
from extauthz.jwks import IssuerKeys

_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


def bearer_token(headers: Mapping[str, str], max_bytes: int) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if not value or scheme.lower() != "bearer":
        raise TokenMissing("no bearer token")
    token = token.strip()
    if not token or len(token) > max_bytes or token.count(".") != 2:
        raise TokenMalformed("bearer token is not a compact JWS")
    return token


class TokenCache:
    """Verified identities by token digest, bounded, least recently used goes first."""

    def __init__(self, size: int, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()

    @staticmethod
    def digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, digest: bytes) -> Identity | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        identity, expires = entry
        if self._clock() >= expires:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return identity

    def put(self, digest: bytes, identity: Identity, expires: float) -> None:
        if self._size == 0:
            return
        self._entries[digest] = (identity, expires)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class TokenVerifier:
    def __init__(self, issuers: Mapping[str, IssuerKeys], cache: TokenCache) -> None:
        self._issuers = dict(issuers)
        self._cache = cache

    async def aclose(self) -> None:
        for keys in self._issuers.values():
            await keys.aclose()

    async def verify(self, token: str) -> Identity:
        digest = self._cache.digest(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenMalformed("bearer token does not decode") from exc
        issuer = unverified.get("iss")
        # A list or object `iss` is unhashable: refuse it here, not with a TypeError.
        keys = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if keys is None:
            raise UnknownIssuer("token issuer is not configured")
        config = keys.config
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise AlgorithmNotAllowed(f"algorithm {algorithm!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenMalformed("token header has no kid")
        key = await keys.key(kid, algorithm)
        claims = _decode(token, key.key, algorithm, config)
        identity = _identity(claims, config)
        self._cache.put(digest, identity, float(claims["exp"]) + config.leeway_seconds)
        return identity


def _decode(token: str, key: Any, algorithm: str, config: IssuerConfig) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway_seconds,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenNotYetValid("token is not valid yet") from exc
    except jwt.InvalidAudienceError as exc:
        raise AudienceMismatch("token audience does not include this resource") from exc
    except jwt.InvalidSignatureError as exc:
        raise SignatureInvalid("token signature does not verify") from exc
    except jwt.DecodeError as exc:
        raise TokenMalformed("bearer token does not decode") from exc
    except jwt.PyJWTError as exc:  # missing or ill-typed claims, wrong issuer
        raise ClaimInvalid(f"token claims are invalid ({type(exc).__name__})") from exc


def _identity(claims: Mapping[str, Any], config: IssuerConfig) -> Identity:
    # Claims sit two levels down in the policy's `identity` variable.
    if too_deep(claims, MAX_INPUT_DEPTH - 2):
        raise ClaimInvalid("token claims are nested too deeply")
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise ClaimInvalid("token subject is not a string")
    email = _claim(claims, config.email_claim)
    return Identity(
        issuer=config.issuer,
        subject=subject,
        email=email if isinstance(email, str) else "",
        groups=_groups(_claim(claims, config.groups_claim)),
        claims=claims,
    )


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(g for g in value if isinstance(g, str))
    return ()
