"""Keeping the active policy current: the file is re-read when it changes; a new file
that does not load is refused, logged, and the last good policy keeps deciding."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from custos.errors import PolicyError
from custos.policy.document import Policy, load_policy

log = logging.getLogger(__name__)

ReloadListener = Callable[[bool], None]  # called with True on success, False on refusal


class PolicyReloader:
    def __init__(self, path: str | Path, on_reload: ReloadListener | None = None) -> None:
        self.path = Path(path)
        self._on_reload = on_reload
        self._stamp = self._stat()
        self.policy: Policy = load_policy(self.path)  # the first load must succeed

    def _stat(self) -> tuple[int, int, int] | None:
        # Kubernetes swaps ConfigMap files through a symlink, so the inode changes even
        # when mtime resolution hides an edit.
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check(self) -> bool:
        """Reload if the file changed; True when a new policy became active."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            log.error("policy reload refused, keeping %s: %s", self.policy.digest[:12], exc)
            self._notify(False)
            return False
        except Exception as exc:  # whatever else a file can provoke, the watcher lives on
            log.error(
                "policy reload refused, keeping %s: unexpected %s",
                self.policy.digest[:12],
                type(exc).__name__,
            )
            self._notify(False)
            return False
        if policy.digest == self.policy.digest:
            return False
        self.policy = policy
        log.info("policy reloaded from %s (%s)", self.path, policy.digest[:12])
        self._notify(True)
        return True

    def _notify(self, ok: bool) -> None:
        if self._on_reload is not None:
            self._on_reload(ok)

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()
