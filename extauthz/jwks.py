"""An issuer's signing keys: OIDC discovery, the JWKS behind it, and a cache.

Keys are cached for a TTL. An unknown `kid` (the IdP rotated keys) refetches at most
once per interval, so a flood of forged kids cannot hammer the IdP. When the IdP is
unreachable the keys already cached keep working."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from extauthz.config import IssuerConfig, is_trusted_url
from extauthz.errors import KeysUnavailable, UnknownKey

log = logging.getLogger(__name__)

# The key type (and curve) each algorithm needs; a key is never used across families.
_KEY_SHAPES = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own `alg`, when it pins one
    key: Any  # a `cryptography` public key

    def fits(self, algorithm: str) -> bool:
        if self.alg is not None and self.alg != algorithm:
            return False
        return (self.kty, self.crv) == _KEY_SHAPES.get(algorithm)


FetchListener = Callable[[str, bool], None]  # (issuer, ok)


class IssuerKeys:
    def __init__(
        self,
        config: IssuerConfig,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        on_fetch: FetchListener | None = None,
    ) -> None:
        self.config = config
        self._client = client
        self._clock = clock
        self._on_fetch = on_fetch
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def warm(self) -> None:
        """Fetch the keys now; failures are logged and counted, never raised."""
        await self._refresh(force=True)

    async def key(self, kid: str, algorithm: str) -> SigningKey:
        if self._stale():
            if self._keys:
                # Stale keys keep serving while fresh ones are fetched: a slow IdP must not
                # stall every request behind its timeout.
                self._refresh_in_background()
            else:
                await self._refresh(force=False)
        found = self._keys.get(kid)
        if found is None and self._may_refetch():
            await self._refresh(force=True)
            found = self._keys.get(kid)
        elif found is None and self._lock.locked():
            # Another request's fetch is in flight (first fetch, or a refetch for a rotated
            # kid): wait for its keys rather than refuse a token they may well verify.
            async with self._lock:
                pass
            found = self._keys.get(kid)
        if found is None:
            if not self._keys and self._fetched_at is None:
                raise KeysUnavailable(f"no signing keys for issuer {self.config.issuer}")
            raise UnknownKey(f"no key {kid!r} at issuer {self.config.issuer}")
        if not found.fits(algorithm):
            raise UnknownKey(f"key {kid!r} is not a {algorithm} key")
        return found

    async def aclose(self) -> None:
        """Stop a background refresh still waiting on the IdP."""
        if self._background is not None and not self._background.done():
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._refresh(force=False))

    def _stale(self) -> bool:
        if self._fetched_at is None:
            return self._may_refetch()
        return self._clock() - self._fetched_at >= self.config.jwks_ttl_seconds and (
            self._may_refetch()
        )

    def _may_refetch(self) -> bool:
        if self._attempted_at is None:
            return True
        return self._clock() - self._attempted_at >= self.config.jwks_refetch_interval_seconds

    async def _refresh(self, force: bool) -> None:
        started = self._clock()
        async with self._lock:
            # Another task refreshed while we waited for the lock.
            if self._attempted_at is not None and self._attempted_at >= started:
                return
            if not force and not self._stale():
                return
            self._attempted_at = self._clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "JWKS fetch for %s failed (%s); %d cached keys stay in use",
                    self.config.issuer,
                    type(exc).__name__,
                    len(self._keys),
                )
                self._notify(False)
                return
            self._keys = keys
            self._fetched_at = self._clock()
            self._notify(True)

    async def _fetch(self) -> dict[str, SigningKey]:
        discovery = await self._get_json(self.config.discovery)
        if discovery.get("issuer") != self.config.issuer:
            raise ValueError("discovery document names another issuer")
        jwks_uri = str(discovery["jwks_uri"])
        if not is_trusted_url(jwks_uri):
            raise ValueError("discovery names a jwks_uri that is not https")
        jwks = await self._get_json(jwks_uri)
        keys: dict[str, SigningKey] = {}
        for entry in jwks["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str):
                continue
            try:
                parsed = jwt.PyJWK(entry)
                keys[kid] = SigningKey(
                    kid, entry.get("kty", ""), entry.get("crv"), entry.get("alg"), parsed.key
                )
            except jwt.PyJWTError:
                log.warning("issuer %s publishes an unusable key %r", self.config.issuer, kid)
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._client.get(url, timeout=self.config.http_timeout_seconds)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return data

    def _notify(self, ok: bool) -> None:
        if self._on_fetch is not None:
            self._on_fetch(self.config.issuer, ok)
