"""Keeping a configuration loaded from a file current: the file is re-read when it
changes; a new file that does not load is refused with one log line, and the last good
configuration stays active."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter

from custos.errors import CustosError

T = TypeVar("T")
ReloadListener = Callable[[bool], None]  # called with True on success, False on refusal
Stamp = tuple[int, int, int]


class FileReloader(Generic[T]):
    """`current` is what `load(path)` last returned without raising. The first load must
    succeed: with no last good configuration to fall back on, nothing should start.

    `version`, when given, names a loaded value (a digest) in the log; a new file whose
    version is the active one's is not a reload."""

    def __init__(
        self,
        path: str | Path,
        load: Callable[[Path], T],
        *,
        what: str,
        log: logging.Logger,
        version: Callable[[T], str] | None = None,
        on_reload: ReloadListener | None = None,
    ) -> None:
        self.path = Path(path)
        self._load = load
        self._what = what
        self._log = log
        self._version = version
        self._on_reload = on_reload
        # Taken before the load: a change between the two is seen at the next check.
        self._stamp = self._stat()
        self.current: T = load(self.path)

    def _stat(self) -> Stamp | None:
        # os.stat follows symlinks: a Kubernetes ConfigMap update repoints `..data` at a
        # new directory, so the file reached through it has a new inode even when mtime
        # resolution (or an identical size) would hide the edit.
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check(self) -> bool:
        """Reload if the file changed; True when a new value became active."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            loaded = self._load(self.path)
        except Exception as exc:  # whatever a file can provoke, the watcher lives on
            self._log.error(
                "%s reload refused, keeping %s: %s", self._what, self._kept(), self._problem(exc)
            )
            self._notify(False)
            return False
        if self._version is not None:
            new = self._version(loaded)
            if new == self._version(self.current):
                return False
            self._log.info("%s reloaded from %s (%s)", self._what, self.path, new[:12])
        else:
            self._log.info("%s reloaded from %s", self._what, self.path)
        self.current = loaded
        self._notify(True)
        return True

    def _kept(self) -> str:
        if self._version is None:
            return "the last good one"
        return self._version(self.current)[:12]

    def _problem(self, exc: Exception) -> str:
        # Our own errors say what is wrong without file content; anything else is named by
        # its type only (its message might quote the file).
        text = str(exc) if isinstance(exc, CustosError) else f"unexpected {type(exc).__name__}"
        return text if text.startswith(str(self.path)) else f"{self.path}: {text}"

    def _notify(self, ok: bool) -> None:
        if self._on_reload is not None:
            self._on_reload(ok)

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            # Compiling rules (CEL, patterns) takes milliseconds that exchanges in flight
            # on this loop should not wait for; `current` is swapped in one assignment.
            await asyncio.to_thread(self.check)


class ReloadCounter:
    """`custos_<name>_reloads_total{result="ok"|"refused"}`, counted by a reloader's
    listener: the same metric, by the same name, in every service that reloads the file."""

    def __init__(self, name: str, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            f"custos_{name}_reloads",
            f"{name.capitalize()} file reloads by result (ok, refused).",
            ["result"],
            registry=registry,
        )

    def __call__(self, ok: bool) -> None:
        self._counter.labels("ok" if ok else "refused").inc()
