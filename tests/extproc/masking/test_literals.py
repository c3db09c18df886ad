"""Finding, in free text, the values field rules marked elsewhere in the same answer: whole
words in any case, a name's parts on their own, the longest value at a place, and the
same findings whichever of the two matching paths (folded text, or word by word for text
whose case folding changes its length) a text takes."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from extproc.masking.findings import Finding
from extproc.masking.literals import _find_by_tokens, literal_finder
from extproc.masking.names import CREDENTIALS, TITLES

KNOWN: dict[str, list[str]] = {
    "name": ["Ada Okafor"],
    "phone": ["(555) 010-0101"],
    # Starts with the name's last word, and holds a word whose folding is longer ("ß").
    "street_address": ["Okafor Straße 12"],
}


def spans(known: Mapping[str, Iterable[str]], text: str) -> list[tuple[str, str]]:
    finder = literal_finder(known)
    assert finder is not None
    return [(f.entity, text[f.start : f.end]) for f in finder(text)]


# --- what is found, and what is not -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ada Okafor was seen today.", [("name", "Ada Okafor")]),
        ("Seen with ada  okafor.", [("name", "ada  okafor")]),
        ("Ada called back.", [("name", "Ada")]),
        ("Dr. OKAFOR reviewed.", [("name", "OKAFOR")]),
        ("okafor, ada", [("name", "okafor"), ("name", "ada")]),
        ("Adam lives in Okaforville.", []),
        ("AdaOkafor and Ada1", []),
        ("records/Okafor_Ada/visit.pdf", [("name", "Okafor"), ("name", "Ada")]),
        ("Ada's chart; (Okafor)", [("name", "Ada"), ("name", "Okafor")]),
    ],
)
def test_a_marked_name_is_found_whole_by_its_parts_in_any_case_never_inside_words(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert spans({"name": ["Ada Okafor"]}, text) == expected


def test_a_name_marked_as_last_comma_first_is_found_by_its_parts() -> None:
    assert spans({"name": ["OKAFOR,ADA"]}, "Ada called; Okafor too.") == [
        ("name", "Ada"),
        ("name", "Okafor"),
    ]


@pytest.mark.parametrize(
    "text", ["Call 555 010 0101.", "Call 555-010-0101.", "Call (555) 010-0101.", "555.010.0101"]
)
def test_a_marked_phone_is_found_however_its_separators_are_written(text: str) -> None:
    (found,) = spans({"phone": ["(555) 010-0101"]}, text)
    assert found[0] == "phone"
    assert re.sub(r"\D", "", found[1]) == "5550100101"


def test_a_phone_split_differently_into_words_is_not_found() -> None:
    assert spans({"phone": ["(555) 010-0101"]}, "5550100101 or 555 0100101") == []


def test_the_longest_value_starting_at_a_word_wins() -> None:
    # "Okafor" alone (a part of the name) and "Okafor Straße 12" both start here.
    assert spans(KNOWN, "Lives at OKAFOR STRASSE 12 now") == [
        ("street_address", "OKAFOR STRASSE 12")
    ]
    assert spans(KNOWN, "Okafor Straße 1") == [("name", "Okafor")]


def test_a_value_overlapping_an_earlier_one_is_not_reported_again() -> None:
    # "Okafor Straße 12" starts inside "Ada Okafor": the earlier value wins, once.
    text = "Ada Okafor Straße 12, Ada"
    assert spans(KNOWN, text) == [("name", "Ada Okafor"), ("name", "Ada")]
    finder = literal_finder(KNOWN)
    assert finder is not None
    found = finder(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


def test_values_shorter_than_three_characters_are_not_terms() -> None:
    assert literal_finder({"name": ["Al"], "ssn": ["12", " 12 "], "mrn": [""]}) is None
    # Two-letter name parts are not terms of their own; three-letter ones are.
    assert spans({"name": ["Al Smith", "Ada Li"]}, "Al met Smith, Ada and Li") == [
        ("name", "Smith"),
        ("name", "Ada"),
    ]


def test_only_capitalised_parts_of_a_name_are_terms_and_only_for_names() -> None:
    # "van" is a lower-case particle: "van" alone would mask ordinary words.
    assert spans({"name": ["Ada van Okafor"]}, "the van; Ada") == [("name", "Ada")]
    # The parts of other entities are not terms: "Main Street" alone is not the address.
    assert spans({"street_address": ["12 Main Street"]}, "Main Street, 12 Main Street") == [
        ("street_address", "12 Main Street")
    ]


def test_a_marked_names_title_and_credentials_are_no_parts_of_it() -> None:
    # Else every "Dr." and "MD" of the answer would be masked as this person's name.
    text = "Dr. Smith, MD and Dr Jones, M.D. saw Okafor"
    assert spans({"name": ["Dr. Ada Okafor, MD", "Mrs Ada Okafor M.D."]}, text) == [
        ("name", "Okafor")
    ]


def test_there_is_no_finder_when_nothing_is_marked() -> None:
    assert literal_finder({}) is None
    assert literal_finder({"name": []}) is None
    assert literal_finder({"phone": ["---", "()"]}) is None  # no words at all


def test_folding_that_changes_the_texts_length_keeps_offsets_in_the_text() -> None:
    # "ß" folds to "ss" and "İ" to "i" + a combining dot: offsets must be the text's own.
    text = "Straße İ, then ADA OKAFOR at 555 010 0101"
    assert spans(KNOWN, text) == [("name", "ADA OKAFOR"), ("phone", "555 010 0101")]


# --- the two paths agree, and agree with an obviously correct reference --------------------


def reference_terms(known: Mapping[str, Iterable[str]]) -> dict[tuple[str, ...], str]:
    """Each value, and each part (3+ characters, split at spaces and dashes) of a name that
    does not start lowercase and is no title or credential, unless the whole name is
    lowercase and spaced (a lowercase name without a space is a slug, whole), as its words
    (runs of letters and digits), each casefolded on its own, as the text's words are."""
    terms: dict[tuple[str, ...], str] = {}

    def words(value: str) -> tuple[str, ...]:
        return tuple(m.group().casefold() for m in re.finditer(r"[^\W_]+", value))

    for entity, values in known.items():
        for value in values:
            if len(value.strip()) >= 3:
                terms.setdefault(words(value), entity)
            if entity == "name":
                lower = value.islower()
                spaced = len(value.split()) > 1
                if lower and not spaced:  # a slug ("lab-results", "ada-ada"): whole only
                    continue
                for piece in re.split(r"[\s,]+", value):
                    if re.fullmatch(rf"(?i:{TITLES})\.?|{CREDENTIALS}", piece):
                        continue
                    for part in re.split(r"[\u2010-\u2014\u2212-]+", piece):
                        if len(part) >= 3 and (lower or not part[0].islower()):
                            terms.setdefault(words(part), entity)
    terms.pop((), None)
    return terms


def reference(known: Mapping[str, Iterable[str]], text: str) -> list[Finding]:
    """Left to right, word by word: the longest term starting at a word, then past it."""
    terms = reference_terms(known)
    tokens = list(re.finditer(r"[^\W_]+", text))
    words = [t.group().casefold() for t in tokens]
    found: list[Finding] = []
    i = 0
    while i < len(words):
        matches = [t for t in terms if tuple(words[i : i + len(t)]) == t]
        if not matches:
            i += 1
            continue
        term = max(matches, key=len)
        found.append(Finding(terms[term], tokens[i].start(), tokens[i + len(term) - 1].end()))
        i += len(term)
    return found


def sizes_of(terms: Iterable[tuple[str, ...]]) -> dict[str, list[int]]:
    sizes: dict[str, set[int]] = defaultdict(set)
    for term in terms:
        sizes[term[0]].add(len(term))
    return {first: sorted(lengths, reverse=True) for first, lengths in sizes.items()}


_PIECES = [
    *["Ada", "ADA", "ada", "aDa", "Okafor", "OKAFOR", "okafor", "Adam", "Okaforville"],
    *["Straße", "STRASSE", "strasse", "Strasse", "12", "555", "010", "0101", "5550100101"],
    *["ß", "İ", "İnan", "é", "Zoë", "Ω", "x", "0", "_"],
    *[" ", " ", " ", "  ", "\n", ",", ".", "-", "(", ")", "'", "/"],
]
TEXTS = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=1000, deadline=None)
@given(TEXTS)
@example("Ada Okafor Straße 12")
@example("İ Ada Okafor Straße 12 Ada")
@example("Okafor Straße 12 (555) 010 0101 Ada")
@example("okafor STRASSE 1 Ada")
def test_the_fast_path_and_the_token_path_find_the_same(text: str) -> None:
    finder = literal_finder(KNOWN)
    assert finder is not None
    terms = {term: (entity, None) for term, entity in reference_terms(KNOWN).items()}
    found = where(finder(text))
    assert found == where(reference(KNOWN, text))
    assert found == where(_find_by_tokens(text, terms, sizes_of(terms)))
    # The same text again, sent down the token path by a folding that changes its length.
    assert where(finder(text + " ß")) == found


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "phone", "city"]), st.lists(TEXTS, max_size=4), max_size=3
    ),
    TEXTS,
)
@example(known={"name": ["x  "]}, text="x")  # a part's length is its letters', not its spaces'
def test_any_marked_values_are_found_as_the_reference_finds_them(
    known: dict[str, list[str]], text: str
) -> None:
    finder = literal_finder(known)
    expected = where(reference(known, text))
    assert (where(finder(text)) if finder is not None else []) == expected


def where(findings: list[Finding]) -> list[tuple[str, int, int]]:
    return [(f.entity, f.start, f.end) for f in findings]


@pytest.mark.parametrize(
    ("name", "text", "part"),
    [
        ("ada okafor", "okafor called", "okafor"),
        ("ada okafor-smith", "then smith called", "smith"),
        ("ada\u00a0okafor", "okafor called", "okafor"),
        ("דוד כהן", "כהן called", "כהן"),
    ],
    ids=["written lowercase", "lowercase and hyphenated", "a no-break space", "no case"],
)
def test_a_part_of_a_name_without_capitals_is_found_too(name: str, text: str, part: str) -> None:
    assert spans({"name": [name]}, text) == [("name", part)]


def test_a_lowercase_slug_under_a_name_key_lends_no_part_to_the_text() -> None:
    for slug in ("lab-results", "lab-results "):
        assert spans({"name": [slug]}, "3 results from the lab; lab-results ready") == [
            ("name", "lab-results")
        ]


def test_a_marked_name_with_a_dotted_capital_i_is_found_in_the_text() -> None:
    text = "İbrahim Demir was seen; İbrahim called back."
    assert spans({"name": ["İbrahim Demir"]}, text) == [
        ("name", "İbrahim Demir"),
        ("name", "İbrahim"),
    ]
