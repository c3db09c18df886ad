"""A newcomer's first steps, as the README gives them, on a copy of the checkout's tracked
files: `custos run` (what `make run` runs) with its default run directory, every command
the ready banner prints, one tools/call with the real MCP SDK client, Ctrl-C, and then
every command of the README. Tests elsewhere use absolute temporary paths; a newcomer uses
the relative ones these commands show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mcp.types import CallToolResult

from custos.cli import _parser
from custos.cloud_logging.emulator import Emulator
from custos.run_command import LAST_LINE, READY, banner
from custos.stack import LocalStack, Ports
from tests.extproc.demo_data import PATIENTS
from tests.readme import PROJECT_ROOT, README, program, shell_commands, words
from tests.stack_fixture import mcp_session

# Run elsewhere: `make run` and `make test` are what CI runs; these need a cluster, an image
# builder or a Google account, none of which a test has.
THE_TWO_COMMANDS = {"make run", "make test"}
OFF_THIS_MACHINE = {"helm", "kubectl", "gcloud", "docker"}
# What no output may show: the demo patients' identifiers, as the MCP server holds them.
PHI = [
    value
    for patient in PATIENTS.values()
    for value in (patient.name, patient.ssn, patient.mrn, patient.phone, patient.email)
]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The tracked files, as a fresh clone has them, and the environment `make` would have
    installed (this one; PYTHONPATH makes the copy's code the code that runs)."""
    missing = [tool for tool in ("git", "bash", "curl", "openssl") if shutil.which(tool) is None]
    assert not missing, f"the newcomer's path needs {', '.join(missing)} on PATH"
    assert sys.prefix != sys.base_prefix, "run the suite in its virtual environment (make test)"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout
    copy = tmp_path / "custos"
    for name in filter(None, listed.decode().split("\0")):
        source = PROJECT_ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy / name, follow_symlinks=False)
    (copy / ".venv").symlink_to(sys.prefix)
    return copy


def environment(checkout: Path, *, activated: bool) -> dict[str, str]:
    """A terminal's environment: `. .venv/bin/activate` run in it, as the README asks
    before its commands, or not, as for `make run` (no `custos` on PATH at all)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1"}
    env.pop("CUSTOS_PSEUDONYM_KEY", None)
    env.pop("VIRTUAL_ENV", None)
    path = [p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "custos").exists()]
    if activated:
        path.insert(0, str(checkout / ".venv" / "bin"))
    env["PATH"] = os.pathsep.join(path)
    return env


class Lines:
    """A process's output, read by a thread so that waiting for a line has a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        stdout = process.stdout
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, last: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if line == last:
                return "\n".join(self.seen)
        raise AssertionError(f"no {last!r} in:\n" + "\n".join(self.seen))


class CustosRun:
    """`.venv/bin/custos run` started as a terminal starts it (its own process group, which
    Ctrl-C signals), and the processes it started."""

    def __init__(self, checkout: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [".venv/bin/custos", "run", "--free-ports"],  # the Makefile's run, on free ports
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output = Lines(self.process)
        self.children: list[psutil.Process] = []

    def banner(self) -> str:
        shown = self.output.until(LAST_LINE, seconds=90)
        self.children = psutil.Process(self.process.pid).children(recursive=True)
        return shown[shown.index(READY) :]

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)

    def end(self) -> None:
        """Whatever a failed test left running is killed, so that no later test meets it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for child in self.children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def banner_scripts(text: str) -> list[str]:
    """The banner's commands: the indented lines under each line that ends with a colon."""
    scripts: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith(" "):
            current = [] if line.endswith(":") else None
            if current is not None:
                scripts.append(current)
        elif current is not None:
            current.append(line.strip())
    return ["\n".join(script) for script in scripts if script]


def shell(script: str, checkout: Path, env: dict[str, str]) -> str:
    """The script run by bash as a user would run it; its output, which must show no PHI."""
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{script}\nexited {done.returncode}:\n{done.stdout}{done.stderr}"
    shown = done.stdout + done.stderr
    assert [value for value in PHI if value in shown] == [], script
    return done.stdout


# About thirty commands, each a Python start or two, and the stack's start and stop.
@pytest.mark.timeout(300)
def test_a_newcomer_runs_the_stack_and_every_command_the_banner_and_readme_show(
    checkout: Path,
) -> None:
    started = environment(checkout, activated=False)
    run = CustosRun(checkout, started)
    try:
        said = run.banner()
        login, audit_trail = banner_scripts(said)
        url = re.search(r"^  MCP endpoint\s+(\S+)$", said, re.MULTILINE)
        assert url, said
        # It names itself as `make run` started it, and writes below where it started.
        assert "  TOKEN=$(.venv/bin/custos token --sub alice --groups phi-readers" in said
        assert f"Audit spool       {Path('run/spool')}" in said
        assert (checkout / "run" / "audit.yaml").is_file()

        answered = shell(login, checkout, started)
        assert re.match(r"HTTP/1.1 200 ", answered), answered
        assert '"protocolVersion"' in answered and '"error"' not in answered, answered

        ask_token = re.search(r"^TOKEN=\$\((.*)\)$", login, re.MULTILINE)
        assert ask_token, login
        token = shell(ask_token.group(1), checkout, started).strip()
        record = asyncio.run(patient_record(url.group(1), token, "pt-0001"))
        assert record.structured_content is not None
        assert record.structured_content["patient_id"] == "pt-0001"
        assert [value for value in PHI if value in str(record.structured_content)] == []

        trail = shell(audit_trail, checkout, started)
        assert "get_patient_record" in trail
        assert trail.count("verified: no findings") == 2, trail

        # The issuer, the demo MCP server, the Logging API emulator, the shipper,
        # ext_authz, ext_proc and Envoy.
        assert len(run.children) >= 7, run.children
        # The code that runs is the copy's (its examples, its configuration).
        served = [part for c in run.children for part in c.cmdline() if "demo_mcp" in part]
        assert served == [str(checkout / "examples" / "demo_mcp_server.py")]

        assert run.ctrl_c() == 0, "\n".join(run.output.seen)
        run.output.until("stopped every process of the stack", seconds=10)
        assert [child for child in run.children if child.is_running()] == []
    finally:
        run.end()
    for name in ("issuer   |", "mcp      |", "ext_authz|", "ext_proc |", "envoy    |"):
        assert any(line.startswith(name) for line in run.output.seen), name
    logged = "\n".join(run.output.seen)
    assert [value for value in PHI if value in logged] == []
    # What reached the MCP server (its credential, who called) is not written down.
    assert not (checkout / "run" / "upstream-headers.jsonl").exists()

    readme(checkout)


async def patient_record(url: str, token: str, patient_id: str) -> CallToolResult:
    async with mcp_session(url, token) as client:
        return await client.call_tool("get_patient_record", {"patient_id": patient_id})


def readme(checkout: Path) -> None:
    """Every command in the README's shell blocks, in order, in the copy the stack ran in
    (its spool is there to verify): run as written; those that call Google's Logging API
    run against the emulator, or, for audit records there are none of, are read by the
    `custos` parser; what needs a cluster, an image builder or gcloud is named as such."""
    env = environment(checkout, activated=True)
    run_here = 0
    with Emulator() as google:
        for command in shell_commands():
            run_here += _check(command, checkout, env, google)
    assert run_here >= 10, "the README's runnable commands went missing"


def _check(command: str, checkout: Path, env: dict[str, str], google: Emulator) -> int:
    """1 if the command ran here."""
    name, argv = program(command), words(command)
    if name == "make":
        assert " ".join(argv) in THE_TWO_COMMANDS, command
        return 0
    if name in OFF_THIS_MACHINE:
        return 0
    if name == "custos" and "--project" in argv and "--endpoint" not in argv:
        if argv[1] != "logging":
            _parser().parse_args(argv[1:])  # the arguments are valid
            return 0
        command = f"{shlex.join(argv)} --endpoint {google.endpoint}"
    if name == "custos":
        # Each of them prints what it found, made or masked: a replay of nothing, or a
        # mask that left the answer as it was, would show here.
        assert shell(command, checkout, env).strip(), command
        return 1
    raise AssertionError(f"the README shows a command no test checks: {command}")


def test_make_run_runs_what_the_newcomer_test_runs() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "\nrun: $(STAMP)\n\t$(BIN)/custos run\n" in makefile
    assert "\nBIN := $(VENV)/bin\n" in makefile and "\nVENV := .venv\n" in makefile


def test_the_readme_shows_the_banner_make_run_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    printed = banner(LocalStack(Path("run"), Ports()), ".venv/bin/custos")
    assert printed in README.read_text()
