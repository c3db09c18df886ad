"""`custos logging provision|check|emulator` as an operator runs them: exit codes and what
they print. provision and check run in-process against the emulator; the emulator
command runs as a real process and is stopped by a signal."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client

from custos.cli import main
from custos.cloud_logging.clients import logging_client
from custos.cloud_logging.emulator import Emulator
from custos.net import free_port, wait_for_port
from tests.processes import custos as custos_command

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "projects/custos-test/locations/global/buckets/audit"
DEFAULT_BUCKET = "logging.googleapis.com/projects/custos-test/locations/global/buckets/_Default"
AUDIT_LOG = 'logName="projects/custos-test/logs/custos-audit"'


def custos(emulator: Emulator, verb: str, *extra: str) -> int:
    target = ["--project", "custos-test", "--location", "global", "--bucket", "audit"]
    return main(["logging", verb, "--endpoint", emulator.endpoint, *target, *extra])


def test_provision_then_check(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert custos(emulator, "provision", "--lock") == 0
    out = capsys.readouterr().out
    assert f"bucket {BUCKET}: created (retention 2190 days)" in out
    assert "lock: updated (locked now" in out
    assert "sink projects/custos-test/sinks/custos-audit: created" in out
    assert "writer identity: none; no IAM grant needed" in out
    assert out.splitlines()[-1] == (
        "default sink projects/custos-test/sinks/_Default: created (exclusion custos-audit "
        f"keeps {AUDIT_LOG} out of {DEFAULT_BUCKET})"
    )

    assert custos(emulator, "provision", "--lock") == 0
    assert capsys.readouterr().out.count("already there") == 4

    assert custos(emulator, "check") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK  bucket {BUCKET}: locked")
    assert out.rstrip().endswith(
        f"; exclusion custos-audit keeps the audit log out of {DEFAULT_BUCKET}"
    )


def test_keep_default_copy_warns_and_check_fails_unless_allowed(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision", "--lock", "--keep-default-copy") == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(
        "default sink projects/custos-test/sinks/_Default: not asked (WARNING: "
        "--keep-default-copy: every audit record"
    )

    assert custos(emulator, "check") == 1
    copied = (
        f"sink _Default copies {AUDIT_LOG} into {DEFAULT_BUCKET}, outside the locked bucket: "
        f"it has no exclusion with the filter {AUDIT_LOG!r}"
    )
    assert capsys.readouterr().out.splitlines() == [
        f"FAIL  {copied}; add an exclusion with that filter to it (`custos logging provision` "
        "does) or pass --allow-default-copy"
    ]

    assert custos(emulator, "check", "--allow-default-copy") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"WARN  {copied} (allowed by --allow-default-copy)"
    assert lines[1].startswith(f"OK  bucket {BUCKET}: locked")
    assert len(lines) == 2


def test_check_fails_with_each_reason(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision") == 0  # not locked
    capsys.readouterr()

    assert custos(emulator, "check", "--log-name", "other-log") == 1

    lines = capsys.readouterr().out.splitlines()
    unlocked = f"bucket {BUCKET} is not locked: its retention can be shortened and it can be"
    assert lines[0] == f"FAIL  {unlocked} deleted"
    assert lines[1].startswith('FAIL  no sink routes logName="projects/custos-test/logs/other-log"')
    assert lines[2].startswith("FAIL  sink custos-audit: its filter is")
    # The exclusion provisioned for custos-audit does not cover other-log.
    assert lines[3].startswith('FAIL  sink _Default copies logName="projects/custos-test/logs/ot')
    assert len(lines) == 4


def test_short_retention_is_refused_with_exit_1(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision", "--lock", "--retention-days", "30") == 1

    assert "--allow-short-retention" in capsys.readouterr().err
    assert custos(emulator, "check") == 1  # nothing was created


def test_a_locked_bucket_with_other_retention_exits_1(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision", "--lock", "--retention-days", "3000") == 0

    assert custos(emulator, "provision", "--lock") == 1

    err = capsys.readouterr().err
    assert "locked with retention 3000 days, not the 2190 asked" in err
    assert "--retention-days 3000" in err


def test_check_holds_the_retention_floor_unless_allowed(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    short = ("--retention-days", "30")
    assert custos(emulator, "provision", "--lock", *short, "--allow-short-retention") == 0
    capsys.readouterr()

    assert custos(emulator, "check", *short) == 1
    assert capsys.readouterr().out.splitlines() == [
        "FAIL  --retention-days 30 is under the 2190 days (six years) audit records need; "
        "pass --allow-short-retention if this is not for production",
        f"FAIL  bucket {BUCKET} keeps entries 30 days, under the required 2190",
    ]

    assert custos(emulator, "check", *short, "--allow-short-retention") == 0
    assert "keeps entries 30 days (required 30)" in capsys.readouterr().out


def test_check_fails_on_other_sinks_that_copy_the_log_unless_each_is_allowed(
    emulator: Emulator, config_api: ConfigServiceV2Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision", "--lock") == 0
    for name, log_filter in (("everything", ""), ("audit-copy", AUDIT_LOG)):
        config_api.create_sink(
            parent="projects/custos-test",
            sink={"name": name, "destination": "storage.googleapis.com/x", "filter": log_filter},
        )
    capsys.readouterr()

    assert custos(emulator, "check", "--allow-default-copy") == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" into ")[0] for line in lines] == [
        f"FAIL  sink audit-copy copies {AUDIT_LOG}",
        f"FAIL  sink everything copies {AUDIT_LOG}",
    ]
    assert lines[1].endswith("or pass --allow-sink everything if that copy is meant")

    allowed = ("--allow-sink", "everything", "--allow-sink", "audit-copy")
    assert custos(emulator, "check", *allowed) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("WARN  sink audit-copy copies")
    assert lines[0].endswith("(allowed by --allow-sink audit-copy)")
    assert lines[1].endswith("(allowed by --allow-sink everything)")
    assert lines[2].startswith(f"OK  bucket {BUCKET}: locked")

    assert custos(emulator, "check", "--allow-sink", "_Default") == 1
    assert "--allow-default-copy" in capsys.readouterr().err


def test_provision_elsewhere_does_not_move_the_sink_without_force_sink(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert custos(emulator, "provision", "--lock") == 0
    capsys.readouterr()
    europe = ("--location", "europe-west1")

    assert custos(emulator, "provision", "--lock", *europe) == 1
    err = capsys.readouterr().err
    assert f"routes into logging.googleapis.com/{BUCKET} now" in err
    assert "--force-sink" in err
    assert custos(emulator, "check") == 0

    assert custos(emulator, "provision", "--lock", *europe, "--force-sink") == 0
    assert f"(destination was logging.googleapis.com/{BUCKET})" in capsys.readouterr().out
    assert custos(emulator, "check", *europe) == 0


async def test_the_emulator_command_serves_until_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *custos_command("logging", "emulator", "--port", str(port)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(wait_for_port("127.0.0.1", port), 10)
        with logging_client(f"127.0.0.1:{port}") as client:
            client.write_log_entries(
                log_name="projects/custos-test/logs/custos-audit",
                resource={"type": "global"},
                entries=[{"text_payload": "hello"}],
            )
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "LOCAL EMULATOR, not Google Cloud Logging" in err.decode()
