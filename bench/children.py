"""Child processes of the benchmark: started, waited for, measured and always stopped.

Unlike custos.stack, which relays child output through Python with a prefix, output goes
straight to a file: at thousands of requests per second Envoy's access log would
otherwise make this process burn CPU that the measured processes need on two cores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from custos.net import wait_for_port

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0  # ext_authz drains gRPC for up to 5 s; a profiler then writes its file
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of every thread of the process so far."""
        return _cpu_seconds(Path(f"/proc/{self.process.pid}/stat"))

    def main_thread_cpu_seconds(self) -> float:
        """The main thread alone: for a Python service, the one that holds the GIL."""
        pid = self.process.pid
        return _cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _cpu_seconds(stat: Path) -> float:
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Children:
    log_dir: Path
    started: dict[str, Child] = field(default_factory=dict)

    async def spawn(
        self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None
    ) -> Child:
        """Start argv and return once it accepts connections on port; fail if it exits
        first or takes longer than START_TIMEOUT."""
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                # Ctrl-C reaches only this script, which then stops each child in order.
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.started[name] = child
        ready = asyncio.create_task(
            asyncio.wait_for(wait_for_port("127.0.0.1", port), START_TIMEOUT)
        )
        exited = asyncio.create_task(process.wait())
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            ready.cancel()
            raise RuntimeError(
                f"{name} exited with {process.returncode} before it was ready:\n{child.tail()}"
            )
        exited.cancel()
        ready.result()  # raises TimeoutError when it never listened
        return child

    def cpu_seconds(self) -> dict[str, float]:
        return {name: child.cpu_seconds() for name, child in self.started.items()}

    async def stop(self, name: str) -> int | None:
        """SIGTERM (every child here exits cleanly on it, and a profiler then writes its
        output), SIGKILL if it does not stop in time. Returns the exit code."""
        process = self.started[name].process
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        del self.started[name]
        return process.returncode

    async def stop_all(self) -> None:
        """Last started, first stopped: the front Envoys go before ext_authz, so it sees
        its gRPC clients leave rather than vanish. Whatever an interruption leaves running
        is killed."""
        try:
            for name in reversed(list(self.started)):
                await self.stop(name)
        finally:
            self.kill_remaining()

    def kill_remaining(self) -> None:
        for child in self.started.values():
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
        self.started.clear()

    def tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {name} ({child.log}) ---\n{child.tail(lines)}"
            for name, child in self.started.items()
        )
