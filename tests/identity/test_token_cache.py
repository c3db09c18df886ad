"""Identity phase, the cache of verified tokens.

Nothing of ours is mocked: the IdP is the development issuer over real HTTP on loopback,
and every refusal is asserted by exception class and stable `code`."""

import time

import httpx

from custos.dev_issuer import DevIssuer
from custos.policy import Identity
from extauthz.identity import TokenCache
from tests.identity.support import (
    JWKS_TTL_S,
    LEEWAY_S,
    FakeClock,
    make_verifier,
)
from tests.issuer_server import IssuerServer

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
