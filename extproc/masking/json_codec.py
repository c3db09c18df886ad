"""JSON in and out of the masking walk: written back with the values it was read with
(as the stdlib would write them: `1e5` comes back `100000.0`; of duplicate keys, the
last one stays).

The stdlib reads (as fast as orjson on string-heavy answers, and exactly: integers of any
size, NaN, lone surrogate escapes); orjson writes, several times faster, above all when
indenting. What orjson would write differently is left to the stdlib: it refuses
integers beyond 64 bits, lone surrogates and `_Constant`, the float subclass that NaN,
the infinities and numbers too big for a float are read as, which it would otherwise
write as `null`."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


class _Constant(float):
    """NaN, Infinity, -Infinity, or a number too big for a float, as the stdlib reads it."""


def _float(text: str) -> float:
    number = float(text)
    return number if math.isfinite(number) else _Constant(number)


class TooBigError(ValueError):
    """JSON that is valid but beyond what can be read: an integer of more digits than
    Python converts. Unlike text that is not JSON at all, it must not be taken for text."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:  # sys.get_int_max_str_digits()
        raise TooBigError("an integer too long to read") from exc


# Before a document: JSON's whitespace, and a byte order mark that a reader would skip.
_LEADING = " \t\n\r\ufeff"


def loads(text: str) -> Any:
    """Raises ValueError (or RecursionError) when `text` is not JSON, TooBigError when it
    is JSON that cannot be read. A leading byte order mark is skipped, as readers do."""
    return json.loads(
        text.lstrip(_LEADING), parse_constant=_Constant, parse_float=_float, parse_int=_int
    )


def opens_document(text: str) -> bool:
    """Whether `text` could be a JSON object or array, by its first character."""
    return text.lstrip(_LEADING)[:1] in ("{", "[")


def dumps(value: Any, *, indent: bool = False) -> str:
    """Compact, or indented by two spaces as `json.dumps(indent=2)` writes it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    except orjson.JSONEncodeError:
        # ASCII, with \u escapes: a lone surrogate (JSON "\ud800") has no UTF-8 form.
        if indent:
            return json.dumps(value, indent=2)
        return json.dumps(value, separators=(",", ":"))
