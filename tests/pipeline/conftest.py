"""Fixtures of the pipeline tests: the development issuer served over real HTTP, the
HTTP client the verifier fetches its keys with, and the pipeline built on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.issuer_server import IssuerServer
from tests.pipeline.support import AUDIENCE, Pipeline, issuer_config, make_pipeline


@pytest.fixture(scope="module")
def idp() -> Iterator[IssuerServer]:
    """One issuer for the tests that leave it running and unchanged; starting and stopping
    uvicorn costs more than everything else these tests do."""
    with IssuerServer(audience=AUDIENCE) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # As in extauthz.server: a redirect from an IdP is not followed to wherever it points.
    async with httpx.AsyncClient(follow_redirects=False) as http:
        yield http


@pytest.fixture
async def pipeline(idp: IssuerServer, client: httpx.AsyncClient) -> AsyncIterator[Pipeline]:
    """The pipeline without an upstream credential (the configuration's default)."""
    built = make_pipeline(client, issuer_config(idp.url))
    yield built
    await built.verifier.aclose()
