"""Crafted answers: long runs of what the detectors read (spaces, capitals, initials,
particles, commas, labels) are masked in time linear in their length, or refused; never a
hang, never a crash. A quadratic regex here would not end within the suite's timeout."""

from __future__ import annotations

import json

import pytest

from extproc.masking import Masker, MaskingConfig, MaskingError, MaskReport

SIZE = 200_000

CRAFTED = {
    "spaces after a label": "Name: a" + " " * SIZE + "b",
    "capitals": "A " * (SIZE // 2),
    "initials": "A. " * (SIZE // 3),
    "particles": "de " * (SIZE // 3) + "Cruz",
    "a table cell": "| Patient Name |\n|---|\n| " + "x" * SIZE + " |\n",
    "spaces in a cell": "| Patient Name |\n|---|\n| a" + " " * SIZE + "b |\n",
    "a key-value line": "Name: " + "Ada " * (SIZE // 4),
    "last, first": "Okafor, " * (SIZE // 8),
    "digits": "1" * SIZE,
    "one word": "A" + "a" * SIZE + "1",
    "pipes": "a|" * (SIZE // 2),
    "csv rows": "Name,Age\n" + "Ada,99\n" * (SIZE // 7),
    "logfmt": "user=" + "a" * SIZE,
    "colons": "a: " * (SIZE // 3),
    "hl7 fields": "MSH|^~\\&|A\rPID|" + "|" * SIZE,
    "capitals in a face sheet": "NAME " + "A" * SIZE + "   SEX F",
    "json lines": "\n".join(['{"mrn": "1"}'] * (SIZE // 13)),
    # found by a review read as an attacker
    "a name value with spaces": ("Name | A" + " " * 250 + "x\n") * 400,
    "a pair inside spaces": "a" + " " * SIZE + "b\n",
    "a markdown rule of spaces": "x|y\n" + " " * SIZE + "x",
    "a label then spaces": "user" + " " * SIZE + "!",
    "an employer then spaces": "employer" + " " * SIZE + "!\n",
    "hyphenated capitals": "A-" * (SIZE // 2),
    "apostrophes": "A'" * (SIZE // 2),
    "standards' urls": "http://hl7.org/" * (SIZE // 15),
    "overlapping candidates": "Lives In " * (SIZE // 9),
    "many keys and names": "".join(f"k{i}: v\n" for i in range(5000)) + "Name: x\n" * 5000,
}


@pytest.mark.parametrize("text", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_crafted_answer_is_masked_or_refused(text: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    masker = Masker(MaskingConfig(mask_timeout_ms=60_000))
    try:
        out = masker.mask_body(json.dumps(body).encode(), MaskReport())
    except MaskingError:
        return  # refused: the client gets an error, never the bytes
    assert json.loads(out)["jsonrpc"] == "2.0"


ODD = [
    {"identifier": [{"value": "1", "type": {"coding": [{"code": ["MR"]}]}}]},
    {"resourceType": ["Patient"], "name": "Ada"},
    {"telecom": [{"system": None, "value": "0100101"}]},
]


@pytest.mark.parametrize("record", ODD)
def test_odd_fhir_shapes_are_masked_not_crashed_on(record: dict[str, object]) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": record}}
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    assert "0100101" not in out.decode()
