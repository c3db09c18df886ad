"""Field rules: which JSON keys or paths hold PHI whatever their value looks like."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

# A JSON path as the walk builds it: object keys and list indices from the root.
Path = tuple[str | int, ...]

_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]")


@dataclass(frozen=True, slots=True)
class _Anchored:
    segments: tuple[str | int, ...]  # "*" any key, -1 any index
    entity: str

    def matches(self, path: Path) -> bool:
        if len(path) != len(self.segments):
            return False
        for want, got in zip(self.segments, path, strict=True):
            if want == "*" and isinstance(got, str):
                continue
            if want == -1 and isinstance(got, int):
                continue
            if want != got:
                return False
        return True


class FieldRules:
    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        """Rules as (path, entity) pairs, paths as the configuration writes them."""
        self._by_key: dict[str, str] = {}
        self._anchored: list[_Anchored] = []
        for path, entity in rules:
            if path.startswith("$"):
                self._anchored.append(_Anchored(parse_path(path), entity))
            else:
                self._by_key[path.removeprefix("*.")] = entity

    @property
    def anchored(self) -> bool:
        """Whether any rule is anchored at the message (`$.…`), so depends on the full path."""
        return bool(self._anchored)

    def entity_at(self, path: Path) -> str | None:
        """The entity of the value at `path`, when a rule names it."""
        if path and isinstance(path[-1], str) and (entity := self._by_key.get(path[-1])):
            return entity
        for rule in self._anchored:
            if rule.matches(path):
                return rule.entity
        return None


def parse_path(path: str) -> tuple[str | int, ...]:
    rest = path[1:]
    segments: list[str | int] = []
    position = 0
    for match in _SEGMENT.finditer(rest):
        if match.start() != position:
            raise ValueError(f"field path {path!r} is not of the form $.key[*].key")
        key, index = match.groups()
        if key is not None:
            segments.append(key)
        else:
            segments.append(-1 if index == "*" else int(index))
        position = match.end()
    if position != len(rest) or not segments:
        raise ValueError(f"field path {path!r} is not of the form $.key[*].key")
    return tuple(segments)


@functools.lru_cache(maxsize=4096)  # answers of one shape repeat the same paths
def render(path: Path) -> str:
    """`$.result.content[0].text`: how a path appears in reports and audit records. A key
    that has not a key's shape ("Wuvtor, Zyxqa", a record keyed by a patient's name that no
    detector knew) is written `*`: the record is kept six years, the path is metadata."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{_shown(p)}" for p in path)


# A key's shape: a word of letters, digits and `_.-`, or a masked key ("[DATE] #2").
_KEY_SHAPE = re.compile(
    r"[A-Za-z_$@][A-Za-z0-9_.$@-]{0,63}|\[[A-Z_]+(?::[0-9a-f]+)?\](?: #[0-9]+)?"
)


def _shown(key: str) -> str:
    return key if _KEY_SHAPE.fullmatch(key) else "*"
