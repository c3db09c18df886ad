"""The local stack's ports and the configuration files it writes. (`custos run` as a
newcomer runs it: tests/test_newcomer.py.)"""

from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

import pytest

from custos.audit.config import load_audit_config
from custos.errors import StackError
from custos.net import free_ports
from custos.stack import EXAMPLE_POLICY, LocalStack, Ports
from extauthz.config import load_config


def test_the_stack_gets_a_different_port_for_every_service() -> None:
    # The kernel may hand a port it just took back out at once: two services on one port
    # would make the stack start with one of them silently dead.
    for _ in range(20):
        ports = dataclasses.astuple(Ports.free())
        assert len(set(ports)) == len(ports)
    assert len(set(free_ports(200))) == 200


def test_the_configurations_it_writes_hold_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started with relative paths, as `custos run --run-dir run --policy mine.yaml` is...
    started = tmp_path / "started-here"
    started.mkdir()
    shutil.copy(EXAMPLE_POLICY, started / "mine.yaml")
    monkeypatch.chdir(started)
    stack = LocalStack(Path("run"), Ports.free(), Path("mine.yaml"))
    stack.run_dir.mkdir()
    stack.write_audit_config()
    authz = stack.write_authz_config()
    # ...the files it wrote are read by services whose working directory is another.
    monkeypatch.chdir(tmp_path)
    audit = load_audit_config(started / "run" / "audit.yaml")
    assert audit.signing_key == started / "run" / "audit-signing.pem"
    assert audit.signing_key.is_file()
    assert audit.spool_dir == started / "run" / "spool"
    assert load_config(authz).policy == started / "mine.yaml"
    command = stack.extproc_command()
    for flag in ("--masking", "--policy", "--audit"):
        assert Path(command[command.index(flag) + 1]).is_file(), flag


async def test_a_port_another_process_holds_is_named_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = dataclasses.replace(Ports.free(), issuer=taken)
        stack = LocalStack(tmp_path / "run", ports)
        with pytest.raises(StackError, match=rf"port {taken} is in use on 127.0.0.1"):
            await stack.start()
    assert stack.supervisor.children == {}
    assert not stack.run_dir.exists()
