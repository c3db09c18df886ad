"""The masking walk's JSON codec, as its user cares about it: the document written back is
exactly the one read. Integers of any size, NaN and the infinities, lone surrogate escapes
and non-ASCII text all come back out; indented output is laid out as the stdlib lays it
out (`json.dumps(indent=2)`), which is what MCP servers written in Python send."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc.masking.json_codec import dumps, loads

# orjson writes integers in [-2**63, 2**64); beyond, json_codec falls back to the stdlib.
_ORJSON_INTS = range(-(2**63), 2**64)

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)  # well beyond 64 bits, often
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet='aZ é€ß𝄞\x00\x1f\x7f\u2028"\\\n\t/', max_size=12)
)
JSON_VALUES = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def identical(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types all the way down: `True` is not `1`, `1` is not
    `1.0`, `-0.0` is not `0.0`, and an object's keys are in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(a[k], b[k]) for k in a)
    return bool(a == b)


def leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    return [value]


def has_floats(value: Any) -> bool:
    return any(isinstance(leaf, float) for leaf in leaves(value))


def ints_fit_64_bits(value: Any) -> bool:
    return all(
        leaf in _ORJSON_INTS
        for leaf in leaves(value)
        if isinstance(leaf, int) and not isinstance(leaf, bool)
    )


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_what_is_written_reads_back_as_the_same_document(value: Any) -> None:
    for text in (dumps(value), dumps(value, indent=True)):
        text.encode("utf-8")  # always sendable as a UTF-8 body
        assert identical(json.loads(text), value)
        assert identical(loads(text), value)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_indented_output_is_laid_out_as_the_stdlib_lays_it_out(value: Any) -> None:
    written = dumps(value, indent=True)
    stdlib = json.dumps(value, ensure_ascii=False, indent=2)
    if ints_fit_64_bits(value) and not has_floats(value):
        # orjson and the stdlib write strings (escapes included), integers, null, booleans,
        # and the indented layout (empty containers as `[]` / `{}`) identically.
        assert written == stdlib
        assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        # Floats: both write the shortest repr that reads back exactly, but not always as the
        # same text (orjson `1e-7` and `0.00001`, the stdlib `1e-07` and `1e-05`). Integers
        # beyond 64 bits: the stdlib writes the whole document, with ASCII `\u` escapes. So
        # the same document, and the same layout line for line, not the same characters.
        assert identical(json.loads(written), json.loads(stdlib))
        assert written.count("\n") == stdlib.count("\n")


def test_a_document_read_from_the_stdlib_indented_form_is_written_back_byte_for_byte() -> None:
    document = {
        "patient": {"name": "Zoë Ñúñez", "visits": [], "flags": {}, "ids": [1, -2, 2**64 - 1]},
        "ok": True,
        "note": None,
        "quote": 'he said "hi"\n\tthen left \u2028 \x00',
    }
    text = json.dumps(document, ensure_ascii=False, indent=2)
    assert dumps(loads(text), indent=True) == text
    compact = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    assert dumps(loads(compact)) == compact


@pytest.mark.parametrize(
    ("text", "compact"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "Infinity"),
        ("-1e400", "-Infinity"),
        (
            '{"a": NaN, "b": [Infinity, -Infinity, 1e400], "c": "é", "d": 1.5}',
            '{"a":NaN,"b":[Infinity,-Infinity,Infinity],"c":"\\u00e9","d":1.5}',
        ),
    ],
)
def test_nan_and_the_infinities_come_back_as_the_stdlib_writes_them_not_null(
    text: str, compact: str
) -> None:
    value = loads(text)
    assert dumps(value) == compact == json.dumps(json.loads(text), separators=(",", ":"))
    assert dumps(value, indent=True) == json.dumps(json.loads(text), indent=2)
    assert "null" not in dumps(value) and "null" not in dumps(value, indent=True)


def test_numbers_too_big_for_a_float_are_read_as_infinite_floats() -> None:
    value = loads("[1e400, -1e400, 1.5]")
    assert value == [math.inf, -math.inf, 1.5]


@pytest.mark.parametrize(
    "number", ["123456789012345678901234567890", "-123456789012345678901234567890"]
)
def test_an_integer_of_thirty_digits_survives_exactly(number: str) -> None:
    value = loads(number)
    assert value == int(number) and type(value) is int
    assert dumps(value) == number
    document = loads(f'{{"mrn": {number}, "name": "Zoë"}}')
    assert json.loads(dumps(document))["mrn"] == int(number)
    assert json.loads(dumps(document, indent=True)) == {"mrn": int(number), "name": "Zoë"}


@pytest.mark.parametrize(
    "text",
    [r'"\ud800"', r'"\udfff"', r'"x\ud83dy"', r'{"note": "Zoë \ud800 end", "n": [1]}'],
)
def test_a_lone_surrogate_escape_is_written_back_as_utf8_sendable_json(text: str) -> None:
    value = loads(text)
    for written in (dumps(value), dumps(value, indent=True)):
        body = written.encode("utf-8")  # no lone surrogate in the output's characters
        assert json.loads(body.decode("utf-8")) == value == json.loads(text)


def test_a_surrogate_pair_escape_reads_as_one_character_and_is_written_as_it() -> None:
    value = loads(r'"\ud83d\ude00"')
    assert value == "\U0001f600"
    assert json.loads(dumps(value).encode("utf-8")) == "\U0001f600"


def test_a_document_nested_deeper_than_orjson_writes_still_comes_back() -> None:
    text = "[" * 300 + "1" + "]" * 300
    assert dumps(loads(text)) == text
    assert json.loads(dumps(loads(text), indent=True)) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", '{"a": 1,}', "[1,]", "{'a': 1}", "nan", "1 2", '"unterminated', "01"],
)
def test_loads_raises_value_error_on_what_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)
