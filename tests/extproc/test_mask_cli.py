"""`custos mask`: an operator masks a saved response offline to tune the rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from custos.stack import PROJECT_ROOT
from tests.extproc.demo_data import PATIENTS, record_response

CONFIG = PROJECT_ROOT / "examples" / "masking.yaml"
ENV = {**os.environ, "CUSTOS_PSEUDONYM_KEY": "an-operator-test-key-123"}


def custos_mask(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "custos", "mask", "--config", str(CONFIG), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env=ENV,
    )


def test_masks_a_json_response_and_reports_what_without_values(tmp_path: Path) -> None:
    saved = tmp_path / "response.json"
    saved.write_bytes(record_response("pt-0005"))
    result = custos_mask("--report", str(saved))
    assert result.returncode == 0, result.stderr.decode()
    record = PATIENTS["pt-0005"]
    masked = result.stdout.decode()
    for value in (record.name, record.ssn, record.phone, record.email, record.date_of_birth):
        assert value not in masked
    report = json.loads(result.stderr)
    assert report["ssn"]["count"] == 2
    for value in (record.name, record.ssn, record.phone, record.email):
        assert value not in result.stderr.decode()


def test_masks_an_sse_stream_from_stdin_keeping_its_framing() -> None:
    event = record_response("pt-0006").decode()
    stream = f"event: message\r\nid: 7\r\ndata: {event}\r\n\r\n".encode()
    result = custos_mask("-", stdin=stream)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert out.startswith("event: message\r\nid: 7\r\ndata: ")
    assert out.endswith("\r\n\r\n")
    assert PATIENTS["pt-0006"].ssn not in out
    payload = json.loads(out.split("data: ", 1)[1].strip())
    assert payload["result"]["structuredContent"]["ssn"] == "***-**-8901"


def test_a_body_that_is_not_json_is_an_error_not_a_pass_through() -> None:
    result = custos_mask("-", stdin=b"data: {not json}\n\n")
    assert result.returncode == 1
    assert b"not JSON" in result.stderr
    assert result.stdout == b""
