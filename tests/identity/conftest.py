"""Fixtures of the identity tests: the development issuer served over real HTTP."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from custos.dev_issuer import DevIssuer
from tests.identity.support import AUDIENCE, FakeClock
from tests.issuer_server import IssuerServer


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
