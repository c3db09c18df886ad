"""`custos audit replay` on a real spool, as an auditor runs it: every matching exchange
is printed, and one that no valid checkpoint signature covers (forged, or not signed yet)
is marked so, in text and in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custos.audit.audit_pb2 import AuditRecord
from custos.cli import main
from tests.audit.support import audit_config, framed, only_segment, rewrite, sealed, write


def forge_before_the_third(tmp_path: Path) -> None:
    """A copy of the third record (the second exchange), rehashed with another subject and
    request id, put just before it: the forger has no key, so nothing signs it."""
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    forged = AuditRecord.FromString(payloads[2])
    forged.exchange.request_id = "forged-1"
    forged.exchange.principal.subject = "mallory"
    payloads.insert(2, sealed(forged).SerializeToString(deterministic=True))
    rewrite(segment, payloads)


def replay(tmp_path: Path, *options: str, keys: bool = True) -> None:
    command = ["audit", "replay", "--spool", str(tmp_path / "spool"), *options]
    if keys:
        command += ["--public-key", str(tmp_path / "audit.pub")]
    assert main(command) == 0


def headers(out: str) -> dict[str, str]:
    """Each printed exchange's first line, by request id (on its second line)."""
    lines = out.splitlines()
    return {
        lines[i + 1].split()[1]: lines[i]
        for i in range(len(lines) - 1)
        if "  request " in lines[i + 1]
    }


async def test_a_forged_record_is_printed_marked_not_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await write(audit_config(tmp_path), 3)
    forge_before_the_third(tmp_path)

    replay(tmp_path)
    out, err = capsys.readouterr()
    shown = headers(out)
    assert sorted(shown) == ["forged-1", "req-0", "req-1", "req-2"]
    assert shown["forged-1"].startswith("NOT VERIFIED  ")
    assert "mallory" in shown["forged-1"]
    assert not any(shown[r].startswith("NOT VERIFIED") for r in ("req-0", "req-1", "req-2"))
    assert err.splitlines() == [
        "warning: 1 of the 4 records shown are NOT VERIFIED: no valid checkpoint signature "
        "covers them (forged, altered, or not signed yet); `custos audit verify` says what "
        "is wrong"
    ]

    replay(tmp_path, "--json")
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    verified = {r["exchange"]["request_id"]: r["verified"] for r in records}
    assert verified == {"req-0": True, "req-1": True, "req-2": True, "forged-1": False}
    assert len(err.splitlines()) == 1


async def test_without_keys_replay_says_once_that_nothing_is_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await write(audit_config(tmp_path), 2)
    forge_before_the_third(tmp_path)

    replay(tmp_path, keys=False)
    out, err = capsys.readouterr()
    assert len(headers(out)) == 3
    assert "NOT VERIFIED" not in out  # not per record: the warning says it of them all
    assert err.splitlines() == [
        "warning: no --public-key given: these records are not verified; they may be forged "
        "or altered"
    ]
    replay(tmp_path, "--json", keys=False)
    assert {json.loads(line)["verified"] for line in capsys.readouterr().out.splitlines()} == {
        False
    }


async def test_records_not_signed_yet_are_marked_until_a_checkpoint_covers_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = await write(audit_config(tmp_path), 2, close=False)
    try:
        replay(tmp_path)
        out, err = capsys.readouterr()
        assert all(line.startswith("NOT VERIFIED") for line in headers(out).values())
        assert "2 of the 2 records shown are NOT VERIFIED" in err
    finally:
        await writer.close()  # the shutdown checkpoint signs them
    replay(tmp_path, "--request-id", "req-1")
    out, err = capsys.readouterr()
    assert list(headers(out)) == ["req-1"]
    assert "NOT VERIFIED" not in out + err
