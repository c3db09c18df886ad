"""The Hyperscan prefilter must never change what the scanner finds, only how fast: the
accelerated scanner and the plain `re` one are compared on texts built to probe the
places where Hyperscan and Python could disagree (Unicode classes, case folding, line
ends, offsets after multi-byte characters)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc import prefilter
from extproc.detectors import PatternSpec, Scanner, ScannerSpec

CUSTOM = (
    PatternSpec("plan_id", r"(?i)plan\s+id:\s*(?P<v>\w{4,12})"),
    PatternSpec("licence", r"LIC-[A-Z]{2}\d{5,}"),  # unbounded: \d{5,}
    PatternSpec("account", r"acct\.(?P<v>.{3,6})#"),
)
WORDS = {"name": ("Okafor", "Ḿüller", "straße", "O'Neil")}
SPEC = ScannerSpec(custom=CUSTOM, words=WORDS, ssn_test_areas=True)

# Pieces that detectors look for, and characters on which engines may read classes,
# case or offsets differently: Unicode spaces and digits, the Kelvin sign and long s
# (which fold to k and s), dotted I, combining marks, fullwidth digits, astral letters.
PIECES = [
    "123-45-6789",
    "900 12 3456",
    "SSN",
    "ssn:",
    "(555) 010-0101",
    "+1 555 010 0101",
    "fax",
    "2024-03-05",
    "3/5/2024",
    "March",
    "5th",
    "of",
    "Dr.",
    "Patient",
    "Ada",
    "Okafor",
    "OKAFOR",
    "MÜLLER",
    "ḿüller",
    "STRASSE",
    "straße",
    "O'Neil",
    "plan",
    "PLAN",
    "id:",
    "\u0131d:",
    "K",
    "\u017f",
    "İ",
    "\u0307",
    "acct.",
    "#",
    "LIC-",
    "AB",
    "12345",
    "a@b.org",
    "http://x.org/a",
    "www.",
    "10.0.0.1",
    "::1",
    "fe80::1",
    "MRN",
    "MRN-123456",
    "ZIP",
    "62704",
    "IL",
    "age",
    "92",
    "year",
    "old",
    "Street",
    "Cedar",
    "Apt",
    "4",
    "1HGCM82633A004352",
    "4111 1111 1111 1111",
    "1234567893",
]
SEPARATORS = [" ", "  ", "\t", "\n", "\r\n", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000",
              "-", ".", ",", ":", "/", "", "é", "٣", "\uff11", "\U0001d400", "_"]  # fmt: skip

texts = st.lists(st.sampled_from(PIECES) | st.sampled_from(SEPARATORS), max_size=60).map("".join)


@pytest.fixture(scope="module")
def scanners() -> tuple[Scanner, Scanner]:
    accelerated = Scanner(SPEC)
    if not accelerated.accelerated:
        pytest.fail("the prefilter did not build for the built-in and custom detectors")
    return accelerated, Scanner(SPEC, prefilter=False)


@settings(max_examples=600, deadline=None)
@given(texts)
def test_the_prefilter_never_changes_the_findings(
    scanners: tuple[Scanner, Scanner], text: str
) -> None:
    accelerated, plain = scanners
    assert accelerated.scan(text) == plain.scan(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_on_any_text_the_findings_are_the_same(
    scanners: tuple[Scanner, Scanner], text: str
) -> None:
    accelerated, plain = scanners
    assert accelerated.scan(text) == plain.scan(text)


def test_a_text_with_a_lone_surrogate_is_scanned_without_the_prefilter(
    scanners: tuple[Scanner, Scanner],
) -> None:
    accelerated, plain = scanners
    text = "SSN 123-45-6789 \ud800 call (555) 010-0101"
    assert accelerated.scan(text) == plain.scan(text)
    assert [f.entity for f in accelerated.scan(text)] == ["ssn", "phone"]


def test_offsets_after_multibyte_characters_are_characters_not_bytes(
    scanners: tuple[Scanner, Scanner],
) -> None:
    accelerated, _ = scanners
    text = "ḾÜLLER \U0001d400\U0001d400 é 123-45-6789"
    [name, ssn] = accelerated.scan(text)
    assert text[name.start : name.end] == "ḾÜLLER"
    assert text[ssn.start : ssn.end] == "123-45-6789"


@pytest.mark.parametrize(("name", "regex"), [("digit", r"\d"), ("space", r"\s"), ("word", r"\w")])
def test_classes_are_what_python_means_by_them(name: str, regex: str) -> None:
    pattern = re.compile(regex)
    ranges = prefilter._category_ranges(name, False)
    inside = {cp for low, high in ranges for cp in range(low, high + 1)}
    expected = {cp for cp in range(0x110000) if pattern.match(chr(cp))}
    assert inside == expected


def test_case_variants_cover_what_python_ignores_case_for() -> None:
    for letter in "kKsSiIß":
        pattern = re.compile(re.escape(letter), re.IGNORECASE)
        expected = {cp for cp in range(0x110000) if pattern.fullmatch(chr(cp))}
        assert expected <= prefilter._case_variants(ord(letter)), letter


def test_without_hyperscan_the_scanner_is_exact_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prefilter, "hyperscan", None)
    prefilter._built.cache_clear()
    try:
        scanner = Scanner(ScannerSpec(words={"name": ("Zed",)}))
        assert not scanner.accelerated
        assert [f.entity for f in scanner.scan("Zed, SSN 123-45-6789")] == ["name", "ssn"]
    finally:
        prefilter._built.cache_clear()
