"""Running `custos` commands as their containers would: this interpreter, `-m custos`."""

from __future__ import annotations

import sys
from pathlib import Path


def custos(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "custos", *map(str, args)]
