"""A Hyperscan prefilter for the scanner: in one fast pass, where in a text a detector
could possibly match, so that the `re` scan jumps over the rest.

The scanner's results do not change, only its speed. Each detector's regex is translated,
from Python's own parse of it, into a Hyperscan pattern that matches at least every span
Python would match: characters and classes become explicit code points (so `\\w`, `\\s`
and case-insensitivity mean exactly what they mean to Python), and what Hyperscan cannot
do (lookarounds, word boundaries, anchors) is dropped, which only loosens it. Hyperscan
reports, for every offset where a pattern's match ends, the leftmost start of such a
match; no match Python finds can start before it. The scanner then begins each `re`
search at the earliest such start at or after where it stands, and stops when none is
left.

Where that argument does not hold, there is no prefilter and the scanner reads every
position, as without Hyperscan: the package not installed, a detector using a construct
not translated here, a text that is not valid UTF-8 (a lone surrogate from a JSON
escape)."""

from __future__ import annotations

import bisect
import functools
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from re import _casefix  # type: ignore[attr-defined]
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

try:
    import hyperscan
except ImportError:  # an optional speed-up: the scanner is exact without it
    hyperscan = None

_MAX = sys.maxunicode
_SURROGATES = (0xD800, 0xDFFF)  # never in valid UTF-8, so never in a scanned text
_CONTINUATION = bytes(range(0x80, 0xC0))
_MAX_BOUNDED_REPEAT = 4
_MAX_CLASS_RANGES = 8

Ranges = list[tuple[int, int]]  # sorted, disjoint, inclusive code point ranges
Skip = Callable[[int], int]  # position -> first position a match may start at; -1: none


class Untranslatable(Exception):
    """A regex construct with no safe Hyperscan counterpart here."""


class Prefilter:
    def __init__(self, database: Any) -> None:
        self._database = database
        self._local = threading.local()  # Hyperscan scratch space is per thread

    @classmethod
    def build(cls, regexes: Sequence[str]) -> Prefilter | None:
        """A prefilter for these regexes, or None. Compiling takes a fraction of a second,
        so scanners with the same detectors (each reload of the same rules) share one."""
        return _built(tuple(regexes))

    @classmethod
    def _compile(cls, regexes: tuple[str, ...]) -> Prefilter | None:
        if hyperscan is None or not regexes:
            return None
        try:
            patterns = [_translate(regex) for regex in regexes]
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SOM_LEFTMOST
            database.compile(
                expressions=[p.encode() for p in patterns],
                ids=list(range(len(patterns))),
                elements=len(patterns),
                flags=[flags] * len(patterns),
            )
        except (Untranslatable, hyperscan.error):
            return None
        return cls(database)

    def skipper(self, text: str) -> Skip | None:
        """For this text, where the next match may start; None: read every position."""
        try:
            data = text.encode()
        except UnicodeEncodeError:
            return None
        hits: list[tuple[int, int]] = []  # (end, leftmost start), in bytes

        def on_match(_detector: int, start: int, end: int, _flags: int, _ctx: object) -> None:
            hits.append((end, start))

        self._database.scan(data, match_event_handler=on_match, scratch=self._scratch())
        hits.sort()
        if len(data) == len(text):  # ASCII: bytes are characters
            ends = [end for end, _ in hits]
            starts = [start for _, start in hits]
        else:
            ends, starts = _in_characters(data, hits)
        for i in range(len(starts) - 2, -1, -1):  # each: the least of it and all later
            starts[i] = min(starts[i], starts[i + 1])

        def skip(position: int) -> int:
            # Hits ending after `position` are those of matches that may start there.
            k = bisect.bisect_right(ends, position)
            return -1 if k == len(ends) else max(position, starts[k])

        return skip

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch


@functools.lru_cache(maxsize=8)
def _built(regexes: tuple[str, ...]) -> Prefilter | None:
    return Prefilter._compile(regexes)


def _in_characters(data: bytes, hits: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """UTF-8 offsets as character offsets: a character is a byte that does not continue one."""
    offsets = sorted({offset for hit in hits for offset in hit})
    chars: dict[int, int] = {}
    done_bytes = done_chars = 0
    for offset in offsets:
        done_chars += len(data[done_bytes:offset].translate(None, _CONTINUATION))
        done_bytes = offset
        chars[offset] = done_chars
    return [chars[end] for end, _ in hits], [chars[start] for _, start in hits]


# --- translation -------------------------------------------------------------------------


def _translate(regex: str) -> str:
    parsed = sre_parse.parse(regex)
    return _sequence(parsed, parsed.state.flags)


def _sequence(items: Iterable[tuple[Any, Any]], flags: int) -> str:
    return "".join(_item(op, av, flags) for op, av in items)


def _item(op: Any, av: Any, flags: int) -> str:
    if op is sre.LITERAL:
        return _class(_literal(av, flags))
    if op is sre.NOT_LITERAL:
        return _class(_complement(_literal(av, flags)))
    if op is sre.ANY:
        return _class(_all() if flags & re.DOTALL else _complement([(10, 10)]))
    if op is sre.IN:
        return _class(_set(av, flags))
    if op is sre.BRANCH:
        return "(?:" + "|".join(_sequence(alt, flags) for alt in av[1]) + ")"
    if op is sre.SUBPATTERN:
        _group, add, remove, inner = av
        return "(?:" + _sequence(inner, (flags | add) & ~remove) + ")"
    if op is sre.ATOMIC_GROUP:  # matches a subset of what the plain group matches
        return "(?:" + _sequence(av, flags) + ")"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, inner = av
        # Long bounded repeats make start-of-match tracking too large for Hyperscan;
        # unbounded, they only match more.
        loose = high >= sre.MAXREPEAT or high > _MAX_BOUNDED_REPEAT
        bound = f"{{{low},}}" if loose else f"{{{low},{high}}}"
        return "(?:" + _sequence(inner, flags) + ")" + bound
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return ""  # zero-width: dropping it can only let more spans match
    raise Untranslatable(str(op))


def _literal(code: int, flags: int) -> Ranges:
    if not flags & re.IGNORECASE:
        return [(code, code)]
    return _ranges(_case_variants(code))


def _set(items: list[tuple[Any, Any]], flags: int) -> Ranges:
    negate = False
    ranges: Ranges = []
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            ranges.append((av, av))
        elif op is sre.RANGE:
            ranges.append(av)
        elif op is sre.CATEGORY:
            ranges += _category(av, flags)
        else:
            raise Untranslatable(str(op))
    ranges = _merge(ranges)
    if flags & re.IGNORECASE:
        ranges = _merge(ranges + _ranges(_variants_of(ranges)))
    return _complement(ranges) if negate else ranges


def _category(category: Any, flags: int) -> Ranges:
    ascii_only = bool(flags & re.ASCII)
    names = {
        sre.CATEGORY_DIGIT: ("digit", False),
        sre.CATEGORY_NOT_DIGIT: ("digit", True),
        sre.CATEGORY_SPACE: ("space", False),
        sre.CATEGORY_NOT_SPACE: ("space", True),
        sre.CATEGORY_WORD: ("word", False),
        sre.CATEGORY_NOT_WORD: ("word", True),
    }
    if category not in names:
        raise Untranslatable(str(category))
    name, negated = names[category]
    ranges = _category_ranges(name, ascii_only)
    return _complement(ranges) if negated else ranges


@functools.cache
def _category_ranges(name: str, ascii_only: bool) -> Ranges:
    """What `\\d`, `\\s` or `\\w` match for Python's `re` on str patterns."""
    tests: dict[str, Callable[[str], bool]] = {
        "digit": str.isdecimal,
        "space": str.isspace,
        "word": lambda ch: ch.isalnum() or ch == "_",
    }
    test = tests[name]
    top = 0x7F if ascii_only else _MAX
    return _ranges(cp for cp in range(top + 1) if test(chr(cp)))


@functools.cache
def _case_index() -> dict[int, tuple[int, ...]]:
    """Code points by the lower case `re` folds them to (the same fold `re` uses), for
    the letters that have other cases."""
    import _sre  # the fold `re` applies under IGNORECASE

    groups: dict[int, list[int]] = {}
    for cp in range(_MAX + 1):
        lower = _sre.unicode_tolower(cp)
        if lower != cp:
            groups.setdefault(lower, [lower]).append(cp)
    return {lower: tuple(members) for lower, members in groups.items()}


def _case_variants(code: int) -> set[int]:
    import _sre

    lower = _sre.unicode_tolower(code)
    variants = {code, *_case_index().get(lower, (lower,))}
    # The few letters `re` also equates beyond their lower case (the long s with "s").
    for fix in _casefix._EXTRA_CASES.get(lower, ()):
        variants |= {fix, *_case_index().get(fix, ())}
    return variants


def _variants_of(ranges: Ranges) -> set[int]:
    found: set[int] = set()
    for low, high in ranges:
        for code in range(low, high + 1):
            found |= _case_variants(code)
    return found


# --- code point ranges -------------------------------------------------------------------


def _ranges(codes: Iterable[int]) -> Ranges:
    out: Ranges = []
    for code in sorted(set(codes)):
        if out and code == out[-1][1] + 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


def _merge(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _all() -> Ranges:
    return _complement([])


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    next_code = 0
    for low, high in _merge([*ranges, _SURROGATES]):
        if low > next_code:
            out.append((next_code, low - 1))
        next_code = max(next_code, high + 1)
    if next_code <= _MAX:
        out.append((next_code, _MAX))
    return out


def _class(ranges: Ranges) -> str:
    """The ranges as a Hyperscan class of explicit code points, surrogates left out. A
    class with many ranges beyond ASCII (Python's `\\w` has hundreds) takes in all of
    them: exact where texts mostly are, and small enough for Hyperscan."""
    ranges = _complement(_complement(ranges))  # the same, less the surrogates
    beyond = [r for r in ranges if r[1] > 0x7F]
    if len(beyond) > _MAX_CLASS_RANGES:
        ascii_part = [(low, min(high, 0x7F)) for low, high in ranges if low <= 0x7F]
        ranges = _complement(_complement([*ascii_part, (0x80, _MAX)]))
    if not ranges:
        raise Untranslatable("an empty character class")
    parts = (
        f"\\x{{{low:x}}}" if low == high else f"\\x{{{low:x}}}-\\x{{{high:x}}}"
        for low, high in ranges
    )
    return "[" + "".join(parts) + "]"
