"""Keeping the masking rules current: the `--masking` file is re-read when it changes; a
new file that does not load is refused, logged, and the last good rules keep masking."""

from __future__ import annotations

import logging
from pathlib import Path

from custos.errors import ConfigError
from custos.reloading import FileReloader, ReloadListener
from extproc.masking.config import load_masking_config
from extproc.masking.engine import Masker

log = logging.getLogger(__name__)


class MaskingReloader(FileReloader[Masker]):
    def __init__(self, path: str | Path, on_reload: ReloadListener | None = None) -> None:
        # No version: a touched file with the same rules is reloaded anyway, which also
        # picks up a pseudonym key file changed meanwhile.
        super().__init__(path, load_masker, what="masking rules", log=log, on_reload=on_reload)

    @property
    def masker(self) -> Masker:
        return self.current


def load_masker(path: Path) -> Masker:
    config = load_masking_config(path)
    try:
        return Masker(config)
    except ConfigError as exc:  # the pseudonym key, read here: its error names the rules
        raise ConfigError(f"{path}: {exc}") from exc
