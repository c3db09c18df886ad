"""A crash at any moment loses no audit record: each of ext_authz, ext_proc and the
shipper is killed with SIGKILL in the middle of a run of 1,200 calls through real Envoy,
then started again. Every call that was answered has exactly one record in the Logging
API, no record is there twice, and `verify` passes on what was shipped.

Calls that fail while a service is down (Envoy answers 5xx itself, or breaks off an answer
ext_proc was streaming) are tried again, as a client would. Such an attempt may have a
record or not: with ext_proc down, nothing in the sidecar sees it to the end."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from custos.audit.signing import load_public_keys
from custos.audit.verify import verify
from custos.stack import LocalStack
from tests.stack_fixture import (
    INITIALIZE,
    MCP_HEADERS,
    running_stack,
    shipped,
    stop_services,
    token,
)

CALLS = 1200
WORKERS = 8
KILL_AFTER = 400  # answered calls before the kill
DOWN_SECONDS = 0.5


@dataclass
class Tally:
    answered: dict[str, int] = field(default_factory=dict)  # request id -> status
    failed: dict[str, int] = field(default_factory=dict)  # attempts Envoy refused meanwhile
    reached: asyncio.Event = field(default_factory=asyncio.Event)


async def session(client: httpx.AsyncClient, url: str, bearer: str, tally: Tally) -> dict[str, str]:
    """A session of the demo server's, whose two calls count like the others."""
    headers = {**MCP_HEADERS, "authorization": f"Bearer {bearer}"}
    opened = await client.post(url, json=INITIALIZE, headers=headers)
    opened.raise_for_status()
    headers["mcp-session-id"] = opened.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    initialized = await client.post(url, json=done, headers=headers)
    initialized.raise_for_status()
    for response in (opened, initialized):
        tally.answered[response.headers["x-request-id"]] = response.status_code
    return headers


def call(number: int) -> tuple[dict[str, object], bool]:
    """Mostly allowed reads (masked by ext_proc), some refusals (recorded by ext_authz)
    and some calls without a token; the flag says whether the token goes along."""
    tool = "delete_patient" if number % 5 == 0 else "get_patient_record"
    body = {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"patient_id": f"pt-{number % 20 + 1:04d}"}},
    }
    return body, number % 7 != 0


async def worker(
    stack: LocalStack, bearer: str, numbers: itertools.count[int], tally: Tally
) -> None:
    async with httpx.AsyncClient(timeout=20) as client:
        headers = await session(client, stack.mcp_url, bearer, tally)
        anonymous = {k: v for k, v in headers.items() if k != "authorization"}
        while (number := next(numbers)) < CALLS:
            body, with_token = call(number)
            while True:  # until the stack answers it
                sent = headers if with_token else anonymous
                async with client.stream("POST", stack.mcp_url, json=body, headers=sent) as reply:
                    request_id = reply.headers["x-request-id"]
                    try:
                        await reply.aread()
                    except httpx.RemoteProtocolError:  # ext_proc died while it streamed
                        tally.failed[request_id] = 0
                        continue
                if reply.status_code < 500:
                    tally.answered[request_id] = reply.status_code
                    break
                tally.failed[request_id] = reply.status_code
                await asyncio.sleep(0.05)
            if len(tally.answered) >= KILL_AFTER:
                tally.reached.set()


async def kill_and_restart(
    stack: LocalStack, name: str, restart: Callable[[], Awaitable[None]], tally: Tally
) -> None:
    await tally.reached.wait()
    child = stack.supervisor.children[name]
    child.process.send_signal(signal.SIGKILL)
    await child.process.wait()
    await asyncio.sleep(DOWN_SECONDS)
    await restart()


@pytest.mark.parametrize("victim", ["ext_authz", "ext_proc", "shipper"])
async def test_a_killed_process_loses_no_record(tmp_path: Path, victim: str) -> None:
    tally = Tally()
    async with running_stack(tmp_path) as stack:
        restarts = {
            "ext_authz": stack.start_authz,
            "ext_proc": stack.start_extproc,
            "shipper": stack.start_shipper,
        }
        bearer = await token(stack, "alice", ["phi-readers"])
        numbers = itertools.count()
        await asyncio.gather(
            *(worker(stack, bearer, numbers, tally) for _ in range(WORKERS)),
            kill_and_restart(stack, victim, restarts[victim], tally),
        )
        await stop_services(stack)
        found = shipped(stack)

    report = verify(found, load_public_keys([stack.audit_public_key]))
    assert report.ok, report.findings
    records = Counter(
        f.record.exchange.request_id
        for f in found
        if f.record is not None and f.record.HasField("exchange")
    )
    calls = len(tally.answered)
    assert calls == CALLS + 2 * WORKERS  # every call was answered in the end
    twice: dict[str, list[tuple[str, str]]] = {}
    for f in found:
        if f.record is not None and records[f.record.exchange.request_id] > 1:
            role = f.record.writer.split("-")[0]
            pair = twice.setdefault(f.record.exchange.request_id, [])
            pair.append((role, f.record.exchange.decision.code))
    # The one window for two records of a request: ext_authz recorded its refusal and
    # died before answering, and Envoy's own 503 was recorded by ext_proc as such.
    for request_id, pair in twice.items():
        assert victim == "ext_authz" and request_id in tally.failed, pair
        assert sorted(pair)[1] == ("extproc", "no_decision"), pair
    missing = set(tally.answered) - set(records)
    assert not missing, f"{len(missing)} answered calls have no record"
    extra = set(records) - set(tally.answered)
    assert extra <= set(tally.failed), "a record of a request no one made"
    assert len(records) == calls + len(extra)  # each request id counted once
    print(
        f"{victim}: {calls} calls answered, {len(tally.failed)} attempts refused while it was "
        f"down ({len(extra)} of them recorded), {len(records)} exchange records, "
        f"{len(twice)} refusals recorded by ext_authz and again as Envoy's 503"
    )
