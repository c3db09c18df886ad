"""Identity phase, signing keys: rotation, refetch rate limiting, IdP outages.

Nothing of ours is mocked: the IdP is the development issuer over real HTTP on loopback,
and every refusal is asserted by exception class and stable `code`."""

import asyncio
import socket

import httpx
import pytest

from custos.dev_issuer import DevIssuer
from extauthz.errors import (
    KeysUnavailable,
    UnknownKey,
)
from tests.identity.support import (
    AUDIENCE,
    JWKS_TTL_S,
    REFETCH_INTERVAL_S,
    FakeClock,
    assert_refused,
    claims_for,
    eventually,
    make_verifier,
    sign,
    unrelated_rsa_key,
)
from tests.issuer_server import IssuerServer

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
