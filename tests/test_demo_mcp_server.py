"""The demo MCP server, driven over real HTTP by the real MCP SDK client.

The server runs as a subprocess, as it will behind the sidecar, so these tests also prove
the command line, the ready line, stderr-only logging and the header log file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "demo_mcp_server.py"
TOOL_NAMES = {"search_patients", "get_patient_record", "delete_patient"}
NEVER_ISSUED_SSN = re.compile(r"^9\d\d-\d\d-\d{4}$")
STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DemoServer:
    url: str
    header_log: Path
    stdout: Path
    stderr: Path

    def logged_requests(self, bearer: str) -> list[dict[str, Any]]:
        """Logged requests that carried `bearer`; each test uses its own token to find its lines."""
        lines = self.header_log.read_text(encoding="utf-8").splitlines()
        requests = [json.loads(line) for line in lines]
        return [r for r in requests if r["headers"].get("authorization") == f"Bearer {bearer}"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, stderr: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo server exited early:\n{stderr.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"demo server did not listen within {STARTUP_TIMEOUT_S}s:\n{stderr.read_text()}")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    workdir = tmp_path_factory.mktemp("demo_mcp")
    port = _free_port()
    server = DemoServer(
        url=f"http://127.0.0.1:{port}/mcp",
        header_log=workdir / "headers.jsonl",
        stdout=workdir / "stdout.txt",
        stderr=workdir / "stderr.txt",
    )
    env = {**os.environ, "DEMO_MCP_HEADER_LOG": str(server.header_log)}
    command = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    # Files, not pipes: nobody drains a pipe while tests run, and a full one would hang the server.
    with server.stdout.open("wb") as out, server.stderr.open("wb") as err:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err)
    try:
        _wait_until_listening(proc, port, server.stderr)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(url: str, http: httpx2.AsyncClient, mode: str) -> Client:
    # The SDK client takes headers (Authorization included) only via the httpx2 client it is given.
    return Client(streamable_http_client(url, http_client=http), mode=mode, read_timeout_seconds=5)


async def test_legacy_session_lists_and_calls_tools(demo_server: DemoServer) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": "Bearer legacy"}) as http,
        _client(demo_server.url, http, mode="legacy") as client,
    ):
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None
        assert client.server_info.name == "custos-demo-ehr"

        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == TOOL_NAMES

        search = await client.call_tool("search_patients", {"query": "ALICE"})
        assert not search.is_error
        assert search.structured_content is not None
        assert search.structured_content["count"] == 1
        alice = search.structured_content["patients"][0]
        assert alice["name"] == "Alice Fakenham"
        assert set(alice) == {"patient_id", "mrn", "name", "date_of_birth"}

        result = await client.call_tool("get_patient_record", {"patient_id": alice["patient_id"]})
        assert not result.is_error
        record = result.structured_content
        assert record is not None
        assert NEVER_ISSUED_SSN.match(record["ssn"])
        assert record["mrn"] == alice["mrn"]
        for phi in (record["name"], record["date_of_birth"], record["phone"]):
            assert phi in record["clinical_note"]
        # The text content carries the same PHI, so masking must cover both representations.
        assert record["ssn"] in result.content[0].text

    requests = demo_server.logged_requests("legacy")
    methods = [r["method"] for r in requests]
    assert methods[0] == "POST"  # initialize, before any session exists
    assert "mcp-session-id" not in requests[0]["headers"]
    session_ids = {r["headers"].get("mcp-session-id") for r in requests[1:]}
    assert len(session_ids) == 1 and None not in session_ids
    assert methods.count("DELETE") == 1  # the client ends its session on close
    assert all(r["path"] == "/mcp" for r in requests)


async def test_unknown_patient_is_a_tool_error(demo_server: DemoServer) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": "Bearer unknown"}) as http,
        _client(demo_server.url, http, mode="legacy") as client,
    ):
        result = await client.call_tool("get_patient_record", {"patient_id": "pt-9999"})
    assert result.is_error
    assert "pt-9999" in result.content[0].text


async def test_default_client_mode_speaks_2026_without_sessions(demo_server: DemoServer) -> None:
    # The 2.x client's default probes server/discover and, against a 2.x server, adopts the
    # stateless 2026-07-28 protocol: no initialize, no session id, routing headers instead.
    async with (
        httpx2.AsyncClient(headers={"Authorization": "Bearer modern"}) as http,
        _client(demo_server.url, http, mode="auto") as client,
    ):
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("search_patients", {"query": "o", "limit": 2})
        assert result.structured_content is not None
        assert result.structured_content["count"] == 2

    requests = demo_server.logged_requests("modern")
    assert all(r["method"] == "POST" for r in requests)
    assert all("mcp-session-id" not in r["headers"] for r in requests)
    # The client follows a call to a tool it has not listed yet with a tools/list, to fetch
    # the output schema it validates structuredContent against.
    assert [r["headers"].get("mcp-method") for r in requests] == [
        "server/discover",
        "tools/call",
        "tools/list",
    ]
    call = requests[1]["headers"]
    assert call["mcp-name"] == "search_patients"
    assert call["mcp-protocol-version"] == "2026-07-28"


def test_logs_only_to_stderr(demo_server: DemoServer) -> None:
    assert f"demo MCP server listening on {demo_server.url}" in demo_server.stderr.read_text()
    assert demo_server.stdout.read_text() == ""


def _load_demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_mcp_server", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running so pydantic can resolve the module's postponed annotations.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_delete_patient_in_process() -> None:
    # In-process, on a server of its own, so the deletion cannot leak into the HTTP tests.
    demo = _load_demo_module()
    async with Client(demo.build_server()) as client:
        deleted = await client.call_tool("delete_patient", {"patient_id": "pt-0001"})
        assert deleted.structured_content == {
            "patient_id": "pt-0001",
            "deleted": True,
            "remaining": len(demo.fake_patients()) - 1,
        }
        gone = await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
        assert gone.is_error
        again = await client.call_tool("delete_patient", {"patient_id": "pt-0001"})
        assert again.is_error
