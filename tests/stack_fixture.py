"""Helpers shared by the tests that run the whole stack: real Envoy, ext_authz, the
development issuer and the demo MCP server, on loopback ports chosen per run."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from custos.audit.audit_pb2 import Exchange
from custos.audit.entries import from_cloud_logging
from custos.audit.sources import from_spool
from custos.audit.verify import Found
from custos.run_command import INITIALIZE as BANNER_INITIALIZE
from custos.stack import EXAMPLE_MASKING, EXAMPLE_POLICY, LOCAL_PROJECT, LocalStack, Ports

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@contextlib.asynccontextmanager
async def running_stack(
    run_dir: Path,
    policy: Path | None = None,
    masking: Path | None = None,
    demo_env: dict[str, str] | None = None,
    logging_endpoint: str | None = None,
    **envoy: Any,
) -> AsyncIterator[LocalStack]:
    """The local stack, with `envoy` changing Envoy's settings (custos.envoy_config)."""
    stack = LocalStack(
        run_dir,
        Ports.free(),
        policy or EXAMPLE_POLICY,
        quiet=True,
        masking=masking or EXAMPLE_MASKING,
        demo_env=demo_env or {},
        logging_endpoint=logging_endpoint,
        log_upstream_headers=True,
        envoy_overrides=envoy,
    )
    try:
        await stack.start()
        yield stack
    except BaseException:
        print("\n".join(stack.output))  # shown by pytest only when the test fails
        raise
    finally:
        await stack.stop()


SERVICES = ("envoy", "ext_proc", "ext_authz", "shipper")  # in the order the stack stops them


async def stop_services(stack: LocalStack) -> None:
    """Everything but the emulator, whose records the test then reads."""
    for name in SERVICES:
        await stack.stop_child(name)


async def spooled(stack: LocalStack, wanted: Callable[[Exchange], bool]) -> list[Exchange]:
    """The exchange records in the stack's spool that `wanted` picks, once there is one
    (a record is written as its answer goes out, an edge refusal's every 100 ms): waited
    for a bounded time, and empty if none came."""
    for _ in range(50):
        found = [
            f.record.exchange
            for f in from_spool(stack.spool_dir)
            if f.record is not None and f.record.HasField("exchange") and wanted(f.record.exchange)
        ]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


def shipped(stack: LocalStack) -> list[Found]:
    """The audit records in the stack's emulator, read with the real client library; all
    of them readable."""
    endpoint = f"127.0.0.1:{stack.ports.logging}"
    found = list(from_cloud_logging(LOCAL_PROJECT, "custos-audit", endpoint))
    assert all(f.record is not None for f in found), [f.problem for f in found]
    return found


async def token(stack: LocalStack, subject: str, groups: list[str], **extra: Any) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack.issuer_url}/token", json={"sub": subject, "groups": groups, **extra}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


@contextlib.asynccontextmanager
async def mcp_client(
    stack: LocalStack,
    bearer: str | None,
    mode: str = "legacy",
    event_hooks: dict[str, list[Any]] | None = None,
) -> AsyncIterator[Client]:
    """The real MCP SDK client, talking to the stack's Envoy with the given bearer token
    (or none)."""
    async with mcp_session(stack.mcp_url, bearer, mode, event_hooks) as client:
        yield client


@contextlib.asynccontextmanager
async def mcp_session(
    url: str,
    bearer: str | None,
    mode: str = "legacy",
    event_hooks: dict[str, list[Any]] | None = None,
) -> AsyncIterator[Client]:
    """The real MCP SDK client, talking to url with the given bearer token (or none)."""
    headers = {"authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, event_hooks=event_hooks) as http,
        Client(
            streamable_http_client(url, http_client=http),
            mode=mode,  # type: ignore[arg-type]
            read_timeout_seconds=10,
        ) as client,
    ):
        yield client


async def post_jsonrpc(
    stack: LocalStack, body: Any, bearer: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A raw POST, for what the SDK client hides: status codes, headers, error bodies."""
    sent = dict(MCP_HEADERS)
    if bearer is not None:
        sent["authorization"] = f"Bearer {bearer}"
    sent.update(headers or {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(stack.mcp_url, content=content, headers=sent, timeout=10)


def tool_call(name: str, arguments: dict[str, object], call_id: int = 1) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


# MCP's first request, as the ready banner's curl sends it: one body for both.
INITIALIZE = json.loads(BANNER_INITIALIZE)


def upstream_requests(stack: LocalStack) -> list[dict[str, Any]]:
    if not stack.header_log.exists():
        return []
    lines = stack.header_log.read_text().splitlines()
    return [json.loads(line) for line in lines]
