"""The small subset of the Logging query language that Custos reads and writes.

Comparisons on `logName`, `insertId` and `timestamp`, joined by `AND` (or by whitespace,
which the language also reads as AND). Anything else (OR, NOT, parentheses, other fields,
the `:` operator) is refused with a FilterError rather than guessed at: the emulator must
never return entries a real query would not, and `custos logging check` must never
believe a sink routes the audit log when it cannot tell."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

STRING_FIELDS = {"logName": "log_name", "insertId": "insert_id"}
TIME_FIELDS = {"timestamp"}

_COMPARISON = re.compile(
    r"""\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)
        \s*(?P<op><=|>=|!=|=|<|>)
        \s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"()]+)""",
    re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+|\s+")
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


class FilterError(ValueError):
    """The filter is outside the supported subset, or malformed."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: str


def parse(text: str) -> tuple[Comparison, ...]:
    """The comparisons of `text`, all of which must hold; () for an empty filter."""
    terms: list[Comparison] = []
    position, end = 0, len(text.rstrip())
    while position < end:
        if terms:
            joint = _AND.match(text, position)
            if not joint:
                raise FilterError(f"unsupported filter syntax at {text[position:]!r}")
            position = joint.end()
        match = _COMPARISON.match(text, position)
        if not match or match.group("field") in ("AND", "OR", "NOT"):
            raise FilterError(f"unsupported filter syntax at {text[position:].strip()!r}")
        terms.append(_comparison(match["field"], match["op"], _unquote(match["value"])))
        position = match.end()
    return tuple(terms)


def matches(terms: Sequence[Comparison], entry: Any) -> bool:
    """Whether a LogEntry protobuf message satisfies every comparison."""
    return all(_holds(term, entry) for term in terms)


def parse_timestamp(value: str) -> tuple[int, int]:
    """(seconds, nanos) since the epoch of an RFC 3339 time; FilterError if it is not one."""
    match = _RFC3339.fullmatch(value)
    if not match:
        raise FilterError(f"{value!r} is not an RFC 3339 timestamp")
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError as exc:
        raise FilterError(f"{value!r} is not an RFC 3339 timestamp") from exc
    return int(moment.timestamp()), int((fraction or "0").ljust(9, "0"))


def _comparison(field: str, op: str, value: str) -> Comparison:
    if field in STRING_FIELDS:
        if op not in ("=", "!="):
            raise FilterError(f"only = and != are supported on {field}")
    elif field in TIME_FIELDS:
        parse_timestamp(value)  # refuse a bad time when the filter is read, not per entry
    else:
        supported = ", ".join([*STRING_FIELDS, *TIME_FIELDS])
        raise FilterError(f"unsupported filter field {field!r} (supported: {supported})")
    return Comparison(field, op, value)


def _holds(term: Comparison, entry: Any) -> bool:
    if term.field in STRING_FIELDS:
        equal = getattr(entry, STRING_FIELDS[term.field]) == term.value
        return equal if term.op == "=" else not equal
    have = (entry.timestamp.seconds, entry.timestamp.nanos)
    want = parse_timestamp(term.value)
    return {
        "=": have == want,
        "!=": have != want,
        "<": have < want,
        "<=": have <= want,
        ">": have > want,
        ">=": have >= want,
    }[term.op]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
