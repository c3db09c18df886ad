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
        self._inflight: asyncio.Task[None] | None = None

    async def warm(self) -> None:
        """Fetch the keys now; failures are logged and counted, never raised."""
        await asyncio.shield(self._start_fetch())

    async def aclose(self) -> None:
        """Stop a fetch still waiting on the IdP."""
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def key(self, kid: str, algorithm: str) -> SigningKey:
        if not self._keys:
            if self._fetching() or self._may_refetch():
                await self._await_fetch()
        elif self._stale():
            # Stale keys keep serving while fresh ones are fetched: a slow IdP must not
            # stall every request behind its timeout.
            self._start_fetch()
        found = self._keys.get(kid)
        if found is None and (self._fetching() or self._may_refetch()):
            await self._await_fetch()  # the IdP may have rotated its keys
            found = self._keys.get(kid)
        if found is None:
            if self._fetched_at is None:
                raise KeysUnavailable(f"no signing keys for issuer {self.config.issuer}")
            raise UnknownKey(f"no key {kid!r} at issuer {self.config.issuer}")
        if not found.fits(algorithm):
            raise UnknownKey(f"key {kid!r} is not a {algorithm} key")
        return found

    def _stale(self) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        return age >= self.config.jwks_ttl_seconds and self._may_refetch()

    def _may_refetch(self) -> bool:
        if self._attempted_at is None:
            return True
        return self._clock() - self._attempted_at >= self.config.jwks_refetch_interval_seconds

    def _fetching(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def _start_fetch(self) -> asyncio.Task[None]:
        """One fetch at a time, in a task of its own: every request that needs it waits
        for the same one, and a request Envoy gives up on does not cancel it."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._refresh())
        return self._inflight

    async def _await_fetch(self) -> None:
        await asyncio.shield(self._start_fetch())

    async def _refresh(self) -> None:
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
