"""Which of the scanner's branches can match in a text at all, found in one native pass.

Each branch's regex is rewritten as a Hyperscan pattern that matches wherever the branch
does, and perhaps elsewhere: lookarounds, anchors and possessive quantifiers are dropped
(each only narrows what matches). Hyperscan then reads a text once for all of them and says
which branches match somewhere; the stdlib scanner tries only those. What a branch finds is
still decided by its own stdlib regex, so the native pass can change nothing but the time.

Hyperscan reads bytes, with ASCII classes; Python reads characters, with Unicode ones. A text
is handed over one byte per character: ASCII as it is, any other character as a stand-in of
its kind ("_" for a word character, a space for a space, DEL for the rest), which keeps `\\b`,
`\\w` and `\\s` as Python sees them, and widens what the rewritten branch may match. A
branch this cannot hold for (case folding beyond ASCII, a backreference, the stdlib's ASCII
flag) has no pattern and is always tried; a text with digits of another script, which no
stand-in can keep both `\\d` and `[^0-9]` true of, is scanned with every branch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any

import hyperscan

__all__ = ["Prefilter", "hs_pattern"]

_WORD, _SPACE, _OTHER = "_", " ", "\x7f"  # the stand-ins of characters beyond ASCII
_STAND_INS = (_WORD, _SPACE, _OTHER)
_BIG = 16  # a bounded repeat beyond this is read as unbounded: the pattern stays small
_SPACES = re.compile(r"\s")
_WORDS = re.compile(r"\w")
_SEPARATORS = (0x1C, 0x1F)  # ASCII that Python's \s holds and Hyperscan's not: read as spaces
_ASCII_ONLY = re.compile(f"[{chr(_SEPARATORS[0])}-{chr(_SEPARATORS[1])}]")
_UNSAFE_FLAGS = sre.SRE_FLAG_IGNORECASE | sre.SRE_FLAG_ASCII | sre.SRE_FLAG_LOCALE


class _Unsafe(Exception):
    """A construct the rewritten pattern could not match a superset of."""


def hs_pattern(regex: str) -> str | None:
    """A Hyperscan pattern matching a superset of what `regex` matches (with `re`, on text
    standing in as `_stand_ins` writes it), or None where none can be written."""
    try:
        parsed = sre_parse.parse(regex)
        if parsed.state.flags & _UNSAFE_FLAGS:
            return None
        pattern = _sequence(parsed)
        return f"(?s:{pattern})" if parsed.state.flags & sre.SRE_FLAG_DOTALL else pattern
    except (_Unsafe, re.error, RecursionError):
        return None


def _sequence(items: Any) -> str:
    return "".join(_item(op, av) for op, av in items)


def _item(op: Any, av: Any) -> str:
    if op is sre.LITERAL:
        return _escaped(_read_as(av))
    if op is sre.NOT_LITERAL:  # not a stand-in: other characters read as it
        return "[\\x00-\\xff]" if chr(av) in _STAND_INS or av >= 128 else f"[^{_escaped(chr(av))}]"
    if op is sre.ANY:
        return "."
    if op is sre.IN:
        return _class(av)
    if op is sre.BRANCH:
        return "(?:" + "|".join(_sequence(b) for b in av[1]) + ")"
    if op is sre.SUBPATTERN:
        _group, add, _remove, body = av
        if add & _UNSAFE_FLAGS:
            raise _Unsafe
        inner = _sequence(body)
        return f"(?s:{inner})" if add & sre.SRE_FLAG_DOTALL else f"(?:{inner})"
    if op is sre.ATOMIC_GROUP:
        return f"(?:{_sequence(av)})"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, body = av
        inner = f"(?:{_sequence(body)})"
        if high is sre.MAXREPEAT or high > _BIG:
            return f"{inner}{{{low},}}" if low else f"{inner}*"
        return f"{inner}{{{low},{high}}}"
    if op is sre.AT:
        if av in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            return "\\b" if av is sre.AT_BOUNDARY else "\\B"
        return ""  # ^, $, \A, \Z: the texts are read one by one, but widen anyway
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return ""  # a lookaround only narrows
    raise _Unsafe  # backreferences, conditionals


def _escaped(ch: str) -> str:
    return f"\\x{ord(ch):02x}"


def _class(items: list[tuple[Any, Any]]) -> str:
    """A character class. Negated, it leaves out no stand-in byte (other characters read as
    it) and nothing beyond ASCII: what it excludes, it may then match, never the reverse."""
    negated = bool(items) and items[0][0] is sre.NEGATE
    members: list[str] = []
    for op, av in items[1:] if negated else items:
        if op is sre.LITERAL:
            members += _range(av, av, negated)
        elif op is sre.RANGE:
            members += _range(*av, negated)
        elif op is sre.CATEGORY and av in _CATEGORIES:
            members.append(_CATEGORIES[av])
        else:
            raise _Unsafe
    if negated:
        return f"[^{''.join(members)}]" if members else "[\\x00-\\xff]"
    return f"[{''.join(members)}]" if members else "[^\\x00-\\xff]"


def _range(low: int, high: int, negated: bool) -> list[str]:
    """A class's members for the characters low..high."""
    ascii_high = min(high, 127)
    if not negated:
        members = [_span(low, ascii_high)] if low < 128 else []
        if low <= _SEPARATORS[1] and high >= _SEPARATORS[0]:  # read as spaces
            members.append(_escaped(_SPACE))
        if high >= 128:  # the stand-ins of whatever lies beyond ASCII
            members += [_escaped(c) for c in _STAND_INS]
        return members
    # Negated: the ASCII part, split around the stand-ins.
    members, start = [], low
    for code in range(low, ascii_high + 1):
        if chr(code) in _STAND_INS:
            if start < code:
                members.append(_span(start, code - 1))
            start = code + 1
    if start <= ascii_high:
        members.append(_span(start, ascii_high))
    return members


def _span(low: int, high: int) -> str:
    return _escaped(chr(low)) if low == high else f"{_escaped(chr(low))}-{_escaped(chr(high))}"


_CATEGORIES = {
    sre.CATEGORY_DIGIT: "\\d",
    sre.CATEGORY_NOT_DIGIT: "\\D",
    sre.CATEGORY_SPACE: "\\s",
    sre.CATEGORY_NOT_SPACE: "\\S",
    sre.CATEGORY_WORD: "\\w",
    sre.CATEGORY_NOT_WORD: "\\W",
}


def _read_as(code: int) -> str:
    """The byte Hyperscan reads where the text holds this character: one mapping for the
    text (`_StandIns`) and the regexes rewritten for it, which must agree."""
    if code >= 128:
        return _stand_in(chr(code))
    return _SPACE if _SEPARATORS[0] <= code <= _SEPARATORS[1] else chr(code)


def _stand_in(ch: str) -> str:
    """The byte a character beyond ASCII (or an ASCII separator Python counts as a space)
    is read as: one of its kind for `\\w`, `\\s` and `\\b`."""
    if _SPACES.match(ch):
        return _SPACE
    if _WORDS.match(ch):
        return _WORD
    return _OTHER


class _StandIns(dict[int, str | None]):
    """str.translate's table, filled as characters are met: ASCII as it is (but the
    separators Python counts as spaces), any other character as its stand-in, and None (the
    character dropped) for a digit of another script: `\\d` holds it, `[0-9]` does not, and
    no one byte stands in for both."""

    def __missing__(self, code: int) -> str | None:
        value = None if code >= 128 and chr(code).isdecimal() else _read_as(code)
        if len(self) < 65_536:  # bounded: text chooses the characters
            self[code] = value
        return value


_TABLE = _StandIns()


def _stand_ins(text: str) -> bytes | None:
    """`text` as Hyperscan reads it (one byte per character), or None when it cannot be."""
    if text.isascii() and not _ASCII_ONLY.search(text):
        return text.encode("ascii")
    translated = text.translate(_TABLE)
    if len(translated) != len(text):  # a character read as None was dropped
        return None
    return translated.encode("ascii")


class Prefilter:
    """For a list of regexes: which of them can match in a text. Compiled in the background
    (about a second for the built-in detectors): until then, and for a regex it has no
    pattern for, it answers "may match". Thread-safe: a scratch space per thread."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self._regexes = tuple(regexes)
        self._db: Any = None
        self._always: frozenset[int] = frozenset()
        self._local = threading.local()
        self.ready = threading.Event()
        threading.Thread(target=self._compile, name="prefilter", daemon=True).start()

    def _compile(self) -> None:
        try:
            patterns = {i: p for i, r in enumerate(self._regexes) if (p := hs_pattern(r))}
            try:
                db = _database(patterns)
            except hyperscan.error:  # one of them refused (too large): found alone, left out
                patterns = {i: p for i, p in patterns.items() if _compiles(p)}
                db = _database(patterns) if patterns else None
            self._always = frozenset(range(len(self._regexes))) - patterns.keys()
            self._db = db
        finally:  # whatever failed, the scanner goes on trying every branch
            self.ready.set()

    def active(self, text: str) -> frozenset[int] | None:
        """The indexes of the regexes that may match in `text`; None: every one may."""
        db = self._db
        if db is None:
            return None
        data = _stand_ins(text)
        if data is None:
            return None
        found: set[int] = set(self._always)
        db.scan(data, match_event_handler=_adder(found), scratch=self._scratch(db))
        return frozenset(found)

    def _scratch(self, db: Any) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(db)
        return scratch


def _database(patterns: dict[int, str]) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[p.encode() for p in patterns.values()],
        ids=list(patterns),
        elements=len(patterns),
        flags=_FLAGS,
    )
    return db


_FLAGS = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY


def _adder(found: set[int]) -> Any:
    def add(pattern: int, _start: int, _end: int, _flags: int, _context: Any) -> None:
        found.add(pattern)

    return add


def _compiles(pattern: str) -> bool:
    """Whether Hyperscan takes the pattern (it refuses some as too large)."""
    try:
        _database({0: pattern})
    except hyperscan.error:
        return False
    return True
