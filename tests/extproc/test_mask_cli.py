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


def custos_mask(
    *args: str, stdin: bytes | None = None, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "custos", "mask", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env=env,
    )


def test_masks_a_json_response_and_reports_what_without_values(tmp_path: Path) -> None:
    saved = tmp_path / "response.json"
    saved.write_bytes(record_response("pt-0005"))
    result = custos_mask("--config", str(CONFIG), "--report", str(saved))
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
    result = custos_mask("--config", str(CONFIG), "-", stdin=stream)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert out.startswith("event: message\r\nid: 7\r\ndata: ")
    assert out.endswith("\r\n\r\n")
    assert PATIENTS["pt-0006"].ssn not in out
    payload = json.loads(out.split("data: ", 1)[1].strip())
    assert payload["result"]["structuredContent"]["ssn"] == "[SSN]"


def test_a_body_that_is_not_json_is_an_error_not_a_pass_through() -> None:
    result = custos_mask("--config", str(CONFIG), "-", stdin=b"data: {not json}\n\n")
    assert result.returncode == 1
    assert b"not JSON" in result.stderr
    assert result.stdout == b""


WITHOUT_KEY = {name: value for name, value in ENV.items() if name != "CUSTOS_PSEUDONYM_KEY"}


def test_with_no_setup_it_uses_the_example_rules_and_a_throwaway_key_and_says_so(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "response.json"
    saved.write_bytes(record_response("pt-0005"))
    runs = [custos_mask("--report", str(saved), env=WITHOUT_KEY) for _ in range(2)]
    for result in runs:
        assert result.returncode == 0, result.stderr.decode()
        (notice,) = [line for line in result.stderr.decode().splitlines() if "--config" in line]
        assert "the example rules (masking.yaml)" in notice
        assert "a throwaway pseudonym key (CUSTOS_PSEUDONYM_KEY is not set)" in notice
        report = result.stderr.decode().split(notice, 1)[1]
        assert json.loads(report)["name"]["count"] >= 1
        assert PATIENTS["pt-0005"].name not in result.stdout.decode()
    # The example pseudonymises names: with a key of each run's own, the pseudonyms differ.
    assert runs[0].stdout != runs[1].stdout


def test_with_the_key_set_it_masks_as_the_example_rules_do_under_that_key(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "response.json"
    saved.write_bytes(record_response("pt-0005"))
    default = custos_mask(str(saved))
    assert default.returncode == 0, default.stderr.decode()
    assert "throwaway" not in default.stderr.decode()
    assert default.stdout == custos_mask("--config", str(CONFIG), str(saved)).stdout
    assert b"[NAME:" in default.stdout


def test_rules_that_need_a_key_it_lacks_name_the_variable_to_set() -> None:
    result = custos_mask("--config", str(CONFIG), "-", stdin=b"{}", env=WITHOUT_KEY)
    assert result.returncode == 1
    assert (
        f"error: {CONFIG}: the pseudonym key: environment variable CUSTOS_PSEUDONYM_KEY is "
        "not set" in result.stderr.decode()
    )
    assert result.stdout == b""


def test_its_help_names_the_key_variable() -> None:
    result = custos_mask("--help")
    assert result.returncode == 0
    assert b"CUSTOS_PSEUDONYM_KEY" in result.stdout


def test_a_file_it_cannot_read_is_an_error() -> None:
    result = custos_mask("no-such-answer.json")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: no-such-answer.json: No such file")


def test_the_example_answer_is_what_the_demo_server_sends() -> None:
    example = json.loads((PROJECT_ROOT / "examples" / "patient_record.json").read_text())
    assert example == json.loads(record_response("pt-0001"))


def test_a_stream_is_masked_as_ext_proc_masks_it_values_carried_to_later_events() -> None:
    notice = {"jsonrpc": "2.0", "method": "notify", "params": {"name": "Zed Quux"}}
    later = {"jsonrpc": "2.0", "id": 1, "result": {"note": "the Quux file"}}
    stream = f"data: {json.dumps(notice)}\n\n: about Quux\ndata: {json.dumps(later)}\n\n"
    result = custos_mask("--config", str(CONFIG), "--report", "-", stdin=stream.encode())
    assert result.returncode == 0, result.stderr.decode()
    assert "Quux" not in result.stdout.decode()
    assert json.loads(result.stderr)["name"]["count"] == 3
