"""Fixtures shared by the Cloud Logging and audit tests: the emulator on a port of its own,
and the real client library pointed at it; and a supervisor for tests that run `custos`
commands as processes."""

from collections.abc import AsyncIterator, Iterator

import pytest
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

from custos.children import Supervisor
from custos.cloud_logging.clients import config_client, logging_client
from custos.cloud_logging.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test (starting one costs a few milliseconds), so no test sees
    another's entries, buckets or faults."""
    with Emulator() as server:
        yield server


@pytest.fixture
def entries_api(emulator: Emulator) -> Iterator[LoggingServiceV2Client]:
    with logging_client(emulator.endpoint) as client:  # closes its channel on the way out
        yield client


@pytest.fixture
def config_api(emulator: Emulator) -> Iterator[ConfigServiceV2Client]:
    with config_client(emulator.endpoint) as client:
        yield client


@pytest.fixture
def child_output() -> list[str]:
    """The lines the supervisor's children wrote, as "name: line"."""
    return []


@pytest.fixture
async def supervisor(child_output: list[str]) -> AsyncIterator[Supervisor]:
    """Children stopped (SIGTERM, then SIGKILL) after the test, whatever happens in it."""
    children = Supervisor(on_line=lambda name, line: child_output.append(f"{name}: {line}"))
    try:
        yield children
    finally:
        await children.stop_all()
        print("\n".join(child_output))  # shown by pytest only when the test fails
