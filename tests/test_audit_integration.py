"""Audit records end to end: real Envoy, ext_authz, ext_proc, the shipper and the local
Cloud Logging API emulator, driven by the real MCP SDK client. Every HTTP exchange the
client makes leaves exactly one record, the records reach Cloud Logging, and `verify`
passes on them, from the spool and read back with the real client library."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx2
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from mcp.shared.exceptions import MCPError

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.entries import from_entries
from custos.audit.signing import load_public_keys
from custos.audit.sources import from_spool
from custos.audit.spool import scan, segment_path, segments
from custos.audit.verify import Found, verify
from custos.cli import main
from custos.cloud_logging.emulator import Emulator
from custos.cloud_logging.resource_names import log_path
from custos.stack import LOCAL_PROJECT, LocalStack
from tests.audit.support import framed, rewrite
from tests.stack_fixture import (
    mcp_client,
    post_jsonrpc,
    running_stack,
    shipped,
    stop_services,
    token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOG_NAME = log_path(LOCAL_PROJECT, "custos-audit")


def exchanges(records: list[AuditRecord]) -> dict[str, list[AuditRecord]]:
    by_request: dict[str, list[AuditRecord]] = {}
    for record in records:
        if record.HasField("exchange"):
            by_request.setdefault(record.exchange.request_id, []).append(record)
    return by_request


@dataclass(frozen=True)
class Run:
    """One run of the stack, kept for the tests that read its records."""

    stack: LocalStack
    seen: dict[str, int]  # x-request-id -> status, of every HTTP exchange the client made
    shipped: list[Found]  # read back from the Logging API with the real client library
    keys: dict[str, Ed25519PublicKey]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    seen: dict[str, int] = {}

    async def remember(response: httpx2.Response) -> None:
        seen[response.headers["x-request-id"]] = response.status_code

    async with running_stack(tmp_path_factory.mktemp("audit")) as stack:
        alice = await token(stack, "alice", ["phi-readers"], email="alice@clinic.example")
        hooks = {"response": [remember]}
        async with mcp_client(stack, alice, event_hooks=hooks) as client:
            record = await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
            assert not record.is_error
            with pytest.raises(MCPError, match="Forbidden"):
                await client.call_tool("delete_patient", {"patient_id": "pt-0003"})
        with pytest.raises(Exception) as raised:  # the SDK surfaces the 401 its own way
            async with mcp_client(stack, None, event_hooks=hooks) as anonymous:
                await anonymous.list_tools()
        assert "401" in repr(raised.value) or "Unauthorized" in repr(raised.value)
        await stop_services(stack)
        found = shipped(stack)
    return Run(stack, seen, found, load_public_keys([stack.audit_public_key]))


async def test_every_exchange_leaves_one_verified_record(run: Run) -> None:
    cloud_report = verify(run.shipped, run.keys)
    assert cloud_report.ok, cloud_report.findings
    spool_report = verify(from_spool(run.stack.spool_dir), run.keys)
    assert spool_report.ok, spool_report.findings

    recorded = exchanges([f.record for f in run.shipped if f.record is not None])
    assert set(recorded) == set(run.seen)
    assert all(len(r) == 1 for r in recorded.values()), "a request recorded twice"
    statuses = {rid: r[0].exchange.status for rid, r in recorded.items()}
    assert statuses == run.seen

    allowed = [r[0].exchange for r in recorded.values() if _called(r[0], "get_patient_record")]
    assert len(allowed) == 1
    call = allowed[0]
    assert (call.principal.subject, call.principal.email) == ("alice", "alice@clinic.example")
    assert (call.decision.effect, call.decision.rule) == ("allow", "readers-read-patients")
    assert call.masking.counts and sum(call.masking.counts.values()) > 0
    assert call.response.sha256 != call.unmasked_response_sha256  # the client saw it masked
    assert "pt-0001" in call.request.text

    denied = [r[0].exchange for r in recorded.values() if _called(r[0], "delete_patient")]
    assert [(d.status, d.decision.effect, d.principal.subject) for d in denied] == [
        (403, "deny", "alice")
    ]
    unauthenticated = [r[0].exchange for r in recorded.values() if r[0].exchange.status == 401]
    assert unauthenticated and all(not u.principal.subject for u in unauthenticated)
    assert {u.decision.code for u in unauthenticated} == {"token_missing"}


def tampered_spool(run: Run, tmp_path: Path, change: str) -> Path:
    """A copy of the run's spool with the ext_proc writer's records changed as `change`
    says; returns the copy and leaves the run's spool as it was."""
    copy = tmp_path / "spool"
    shutil.copytree(run.stack.spool_dir, copy)
    (directory,) = [d for d in copy.iterdir() if d.name.startswith("extproc-")]
    (number,) = segments(directory)
    segment = segment_path(directory, number)
    if change == "byte":
        data = segment.read_bytes()
        at = scan(data).frames[2][0] + 40
        segment.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
        return copy
    payloads = framed(segment)
    if change == "delete":
        del payloads[2]
    elif change == "swap":
        payloads[2], payloads[3] = payloads[3], payloads[2]
    elif change == "cut":
        payloads = payloads[:-2]
    rewrite(segment, payloads)
    return copy


@pytest.mark.parametrize(
    ("change", "kind", "place"),
    [
        ("byte", "unreadable", "@"),  # the segment and the offset of the changed frame
        ("delete", "deleted", "#4"),  # the record after the gap
        ("swap", "reordered", "#3"),  # the record that comes too late
        ("cut", "truncated", "ends at sequence"),
    ],
)
async def test_tampering_with_the_stacks_records_is_found_and_placed(
    run: Run, tmp_path: Path, change: str, kind: str, place: str
) -> None:
    report = verify(from_spool(tampered_spool(run, tmp_path, change)), run.keys)
    assert report.findings, f"{change}: not found"
    assert kind in {f.kind for f in report.findings}
    assert any(place in f"{f.where} {f.message}" for f in report.findings if f.kind == kind)


async def test_a_changed_record_in_cloud_logging_is_found(run: Run) -> None:
    found = [Found(f.where, _copy(f.record)) for f in run.shipped]
    changed = next(f for f in found if f.record is not None and f.record.HasField("exchange"))
    assert changed.record is not None
    changed.record.exchange.principal.subject = "mallory"
    report = verify(found, run.keys)
    assert [f.kind for f in report.findings] == ["modified"]
    assert changed.where in report.findings[0].where
    without = [f for f in found if f is not changed]
    assert {f.kind for f in verify(without, run.keys).findings} == {"deleted"}


async def test_replay_shows_the_exchanges_as_the_client_saw_them(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = ["--spool", str(run.stack.spool_dir)]
    keys = ["--public-key", str(run.stack.audit_public_key)]
    assert main(["audit", "replay", *spool, *keys, "--principal", "alice", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all(line["verified"] for line in lines)
    assert {line["exchange"]["principal"]["subject"] for line in lines} == {"alice"}
    times = [line["time"] for line in lines]
    assert times == sorted(times)
    denied = [line for line in lines if line["exchange"]["status"] == 403]
    (request_id,) = [line["exchange"]["request_id"] for line in denied]
    assert main(["audit", "replay", *spool, *keys, "--request-id", request_id]) == 0
    text = capsys.readouterr().out
    assert "delete_patient" in text and "decision deny" in text and "Forbidden" in text
    assert main(["audit", "replay", *spool, *keys, "--principal", "nobody"]) == 0
    assert capsys.readouterr().out == ""


def _copy(record: AuditRecord | None) -> AuditRecord | None:
    if record is None:
        return None
    copy = AuditRecord()
    copy.CopyFrom(record)
    return copy


def _called(record: AuditRecord, tool: str) -> bool:
    return any(call.tool == tool for call in record.exchange.calls)


async def test_records_wait_out_a_logging_outage_and_all_arrive(tmp_path: Path) -> None:
    with Emulator() as logging_api:
        async with running_stack(tmp_path, logging_endpoint=logging_api.endpoint) as stack:
            bearer = await token(stack, "alice", ["phi-readers"])
            await asyncio.sleep(0.3)  # the chains' first records are shipped
            before = len(logging_api.entries(LOG_NAME))
            logging_api.fail_writes(grpc.StatusCode.UNAVAILABLE, times=None)
            statuses = [
                (await post_jsonrpc(stack, tool_call(n), bearer)).status_code for n in range(40)
            ]
            assert set(statuses) == {403}  # served while Cloud Logging is down
            await asyncio.sleep(0.5)
            assert len(logging_api.entries(LOG_NAME)) == before
            assert logging_api.write_stats().failed > 0  # the shipper kept trying
            logging_api.clear_faults()
            await stop_services(stack)
        found = list(from_entries(iter(logging_api.entries(LOG_NAME))))

    report = verify(found, load_public_keys([stack.audit_public_key]))
    assert report.ok, report.findings
    assert sum(s.exchanges for s in report.chains.values()) == 40
    # Everything shipped: the spool keeps only the segment each writer was filling.
    assert all(len(segments(d)) == 1 for d in stack.spool_dir.iterdir() if d.is_dir())


def tool_call(number: int) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {"name": "delete_patient", "arguments": {"patient_id": "pt-0001"}},
    }
