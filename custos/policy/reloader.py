"""Keeping the active policy current: the file is re-read when it changes; a new file
that does not load is refused, logged, and the last good policy keeps deciding."""

from __future__ import annotations

import logging
from pathlib import Path

from custos.policy.document import Policy, load_policy
from custos.reloading import FileReloader, ReloadListener

__all__ = ["PolicyReloader", "ReloadListener"]

log = logging.getLogger(__name__)


class PolicyReloader(FileReloader[Policy]):
    def __init__(self, path: str | Path, on_reload: ReloadListener | None = None) -> None:
        super().__init__(
            path, load_policy, what="policy", log=log, version=_digest, on_reload=on_reload
        )

    @property
    def policy(self) -> Policy:
        return self.current


def _digest(policy: Policy) -> str:
    return policy.digest
