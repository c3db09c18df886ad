"""What the README shows, read the way a newcomer reads it: its shell commands and the
files it asks them to write, so that tests run them and the README cannot rot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from custos.stack import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of one language, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)


def shell_commands() -> list[str]:
    """Every command of the README's `sh` blocks, a line continued by `\\` joined to the
    next, as bash would run it (comments and all)."""
    commands: list[str] = []
    for block in blocks("sh"):
        pending = ""
        for line in block.splitlines():
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            command = (pending + line).strip()
            pending = ""
            if words(command):
                commands.append(command)
    return commands


def words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def program(command: str) -> str:
    """The program a command runs, past any `NAME=value` it sets for it."""
    for word in words(command):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            return Path(word).name
    raise AssertionError(f"no program in {command!r}")


def yaml_block(name: str) -> str:
    """The YAML block whose first line is `# <name>` (a file the README asks you to write)."""
    for block in blocks("yaml"):
        if block.startswith(f"# {name}\n"):
            return block
    raise AssertionError(f"the README shows no file {name}")


def yaml_file(name: str) -> Any:
    return yaml.safe_load(yaml_block(name))
