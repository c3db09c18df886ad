"""Child processes: started, awaited until they listen, stopped last-first, never left
behind. The local stack relays their output line by line; the benchmark sends it to
files (relaying Envoy's access log at thousands of requests a second costs CPU)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from custos.errors import StackError
from custos.net import wait_for_port

LineSink = Callable[[str, str], None]  # (child name, line)


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path | None = None  # where its output went, when not relayed
    pump: asyncio.Task[None] | None = None  # relays its output, when not to a file


@dataclass
class Supervisor:
    on_line: LineSink | None = None  # relay output here...
    log_dir: Path | None = None  # ...or write it to <log_dir>/<name>.log
    start_timeout: float = 30.0
    stop_timeout: float = 10.0
    children: dict[str, Child] = field(default_factory=dict)

    async def spawn(
        self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None
    ) -> Child:
        """Start argv; return once it accepts connections on port. A child that exits
        first, or does not listen in time, is a StackError."""
        log = self.log_dir / f"{name}.log" if self.log_dir is not None else None
        with contextlib.ExitStack() as files:
            # The child keeps its own copy of the file descriptor; ours closes after spawn.
            output = files.enter_context(log.open("wb")) if log else asyncio.subprocess.PIPE
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                # Ctrl-C reaches only the parent, which then stops each child in order.
                start_new_session=True,
            )
        child = Child(name, process, log)
        if process.stdout is not None:
            child.pump = asyncio.create_task(self._relay(name, process.stdout))
        self.children[name] = child
        await self._until_listening(child, port)
        return child

    async def _until_listening(self, child: Child, port: int) -> None:
        listening = asyncio.create_task(
            asyncio.wait_for(wait_for_port("127.0.0.1", port), self.start_timeout)
        )
        exited = asyncio.create_task(child.process.wait())
        done, _ = await asyncio.wait({listening, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            listening.cancel()
            code = child.process.returncode
            raise StackError(f"{child.name} exited with {code} before it was ready")
        exited.cancel()
        try:
            listening.result()
        except TimeoutError as exc:
            raise StackError(
                f"{child.name} did not listen on port {port} in {self.start_timeout}s"
            ) from exc

    async def _relay(self, name: str, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            if self.on_line is not None:
                self.on_line(name, raw.decode(errors="replace").rstrip())

    async def stop(self, name: str) -> int | None:
        """SIGTERM (every child here shuts down cleanly on it), SIGKILL if it does not
        stop in time. Returns the exit code."""
        child = self.children.pop(name)
        if child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), self.stop_timeout)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
        if child.pump is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(child.pump, 5)
        return child.process.returncode

    def exited(self) -> list[str]:
        """The children that have exited: one that lost its port to another process after
        the port check passed dies soon after it."""
        return [
            name for name, child in self.children.items() if child.process.returncode is not None
        ]

    async def stop_all(self) -> None:
        """Last started, first stopped; whatever an interruption leaves running is killed."""
        try:
            for name in reversed(list(self.children)):
                await self.stop(name)
        finally:
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
            self.children.clear()

    async def wait_any_exit(self) -> str:
        """The name of the first child that exits on its own."""
        waits = {asyncio.create_task(c.process.wait()): name for name, c in self.children.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]
