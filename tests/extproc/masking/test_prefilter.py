"""The native prefilter (Hyperscan) changes nothing the scanner finds, only how soon: each
branch's rewritten pattern matches wherever the branch does, and the scanner with it finds
exactly what the stdlib scanner alone finds, Unicode text included."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc.masking.detectors import (
    PatternSpec,
    Scanner,
    ScannerSpec,
    _builtin_universe,
    native_ready,
)
from extproc.masking.prefilter import Prefilter, hs_pattern
from tests.bench_modules import bench_module
from tests.extproc.masking.test_detectors import DENSE, POSITIVE, WORDY

CUSTOM = ScannerSpec(
    custom=(PatternSpec("mrn", r"MRN-[0-9]{6}"), PatternSpec("plan", r"(?i)plan\s*\d+")),
    words={"name": ("Dr", "ann", "#x")},
)
# Pairs of the same scanner with the native pass and without: the reference.
PAIRS = [
    (Scanner(spec), Scanner(ScannerSpec(**{**vars(spec), "prefilter": False})))
    for spec in (ScannerSpec(), ScannerSpec(ssn_test_areas=True), CUSTOM)
]
# What Python and Hyperscan read differently: letters, digits and spaces beyond ASCII, the
# separators Python counts as spaces, the stand-in bytes themselves.
ODD = ["é", "Ø", "\u00a0", "\u2009", "\u2019", "\u2013", "٣", "\x1c", "\x1f", "_", "\x7f", "ß"]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    assert native_ready(60), "the native prefilter did not compile"


def test_every_built_in_branch_has_a_native_pattern_but_those_with_backreferences() -> None:
    without = [regex for regex in _builtin_universe() if hs_pattern(regex) is None]
    assert all(re.search(r"\(\?P=", regex) for regex in without)
    assert len(without) <= 2


@pytest.mark.parametrize(
    ("regex", "text"),
    [
        (r"(?<![0-9])[0-9]{3}(?![0-9])", "a 123 b"),
        (r"\bJos[eé]\b", "José and Jose"),
        (r"[^ ]+@x", "é\u00a0b@x"),  # NBSP is not a space to [^ ]: read as one, kept
        (r"[^_]{2}", "éa"),
        (r"[^a-z]", "é"),
        (r"\s+\d", "\u2009 5"),
        (r"(?P<v>[A-Z]{2})(?=\s)", "ZZ\x1c"),
        (r"a{0,200}b", "a" * 150 + "b"),
        (r"(?s)x.y", "x\ny"),
        (r"a\x1cb", "a\x1cb"),  # the separators Python counts as spaces, read as spaces
        (r"[\x00-\x1f]", "\x1c"),
        (r"[\x1c-\x1f]+x", "\x1dx"),
        (r"x(?s:.)y", "x\ny"),
    ],
)
def test_a_rewritten_pattern_matches_wherever_its_regex_does(regex: str, text: str) -> None:
    assert re.search(regex, text)
    prefilter = Prefilter([regex])
    assert prefilter.ready.wait(10)
    assert prefilter.active(text) in (None, frozenset({0}))


def test_a_regex_it_cannot_rewrite_is_always_tried() -> None:
    prefilter = Prefilter([r"(a)\1", r"(?i)k", "x"])
    assert prefilter.ready.wait(10)
    assert prefilter.active("nothing here") == frozenset({0, 1})
    assert prefilter.active("x") == frozenset({0, 1, 2})


def test_a_text_with_digits_of_another_script_is_scanned_whole() -> None:
    prefilter = Prefilter(["x"])
    assert prefilter.ready.wait(10)
    assert prefilter.active("SSN ٣ 123") is None


@pytest.mark.parametrize(("entity", "text", "value"), POSITIVE)
def test_each_positive_example_is_found_alike(entity: str, text: str, value: str) -> None:
    for native, reference in PAIRS:
        assert native.scan(text) == reference.scan(text)


def test_the_accuracy_corpus_is_found_alike() -> None:
    texts = [doc.text for doc in bench_module("phi_corpus").generate(150, 3)]
    for native, reference in PAIRS[:1]:
        for text in texts:
            assert native.scan(text) == reference.scan(text), text[:200]


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(
        DENSE,
        WORDY,
        st.sampled_from([t for _, t, _ in POSITIVE]),
        st.text(max_size=120),
    ),
    odd=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(ODD)), max_size=4),
    which=st.integers(0, len(PAIRS) - 1),
)
def test_the_native_pass_finds_what_the_stdlib_alone_finds(
    text: str, odd: list[tuple[int, str]], which: int
) -> None:
    for at, ch in odd:  # odd characters dropped in anywhere
        at = min(at, len(text))
        text = text[:at] + ch + text[at:]
    native, reference = PAIRS[which]
    assert native.scan(text) == reference.scan(text)
