"""Running `custos` commands as their containers would: this interpreter, `-m custos`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def custos(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "custos", *map(str, args)]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """A `custos` command run to its end (at most a minute), its output captured."""
    return subprocess.run(custos(*args), capture_output=True, text=True, timeout=60)
