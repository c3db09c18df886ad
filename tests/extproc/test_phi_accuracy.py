"""The masking engine's accuracy on a fixed slice of the labelled PHI corpus
(bench/phi_corpus.py, scored by bench/phi_accuracy.py), default configuration: recall
must not fall below its floors, nor the share of altered words that are not PHI rise
above its ceilings, overall, per entity type and per document shape.

The floors and ceilings are what the engine reached when they were last raised, less a
margin of 2 points or 2 spans (recall), plus 0.5 point or 3 words (alteration), whichever
is more. Raise them as the engine improves: `bench/phi_accuracy.py --n 120 --seed 7`
prints the current figures. An entity with fewer than 15 spans in the slice is not held to
its floor. The figures depend on the corpus: a change to bench/phi_corpus.py moves them
too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench_modules import bench_module

SEED, DOCUMENTS = 7, 120


phi_corpus = bench_module("phi_corpus")
phi_accuracy = bench_module("phi_accuracy")

RECALL_FLOORS = {
    "overall": 0.979,
    "holdout names": 0.975,
    # per entity
    "account": 0.962,
    "age_over_89": 0.928,
    "city": 0.96,
    "clinician_name": 0.98,
    "date": 0.98,
    "device": 0.882,
    "email": 0.962,
    "fax": 0.894,
    "health_plan": 0.973,
    "ip": 0.882,
    "license": 0.967,
    "mrn": 0.98,
    "name": 0.977,
    "phone": 0.98,
    "ssn": 0.937,
    "street_address": 0.96,
    "url": 0.894,
    "username": 0.941,
    "zip": 0.98,
    # per shape
    "cda": 0.98,
    "chat": 0.971,
    "csv": 0.98,
    "dicom": 0.964,
    "fhir": 0.98,
    "hl7": 0.98,
    "json": 0.98,
    "markdown": 0.98,
    "note_discharge": 0.98,
    "note_hp": 0.98,
    "note_radiology": 0.979,
    "note_referral": 0.98,
    "note_soap": 0.977,
    "sentence": 0.933,
    "x12": 0.971,
}
ALTERED_CEILINGS = {
    "overall": 0.009,
    "cda": 0.005,
    "chat": 0.011,
    "csv": 0.015,
    "dicom": 0.053,
    "fhir": 0.006,
    "hl7": 0.005,
    "json": 0.008,
    "markdown": 0.019,
    "note_discharge": 0.013,
    "note_hp": 0.005,
    "note_radiology": 0.007,
    "note_referral": 0.005,
    "note_soap": 0.005,
    "sentence": 0.042,
    "x12": 0.025,
}


@pytest.fixture(scope="module")
def docs() -> list[Any]:
    return phi_corpus.generate(DOCUMENTS, SEED)


@pytest.fixture(scope="module")
def results(docs: list[Any]) -> Any:
    measured, _scored = phi_accuracy.measure(docs, phi_accuracy.MaskingConfig())
    return measured


def _recall(results: Any) -> dict[str, Any]:
    return {
        "overall": results.overall,
        "holdout names": results.names["holdout"],
        **results.entity,
        **results.shape,
    }


def test_the_corpus_is_reproducible(docs: list[Any]) -> None:
    again = phi_corpus.generate(DOCUMENTS, SEED)
    assert [(d.shape, d.body, d.spans) for d in again] == [(d.shape, d.body, d.spans) for d in docs]
    other = phi_corpus.generate(DOCUMENTS, SEED + 1)
    assert [d.body for d in other] != [d.body for d in docs]


def test_every_span_lies_in_its_text(docs: list[Any]) -> None:
    for doc in docs:
        end = 0
        for span in sorted(doc.spans, key=lambda s: s.start):
            assert 0 <= span.start < span.end <= len(doc.text), (doc.shape, span)
            assert doc.text[span.start : span.end].strip(), (doc.shape, span)
            assert span.start >= end, f"spans overlap in a {doc.shape}: {span}"
            end = span.end


def test_the_slice_has_every_shape_and_every_entity(docs: list[Any]) -> None:
    assert {d.shape for d in docs} == set(phi_corpus.SHAPES)
    entities = {s.entity for d in docs for s in d.spans}
    assert entities == set(phi_corpus.ENTITIES)
    names = [s for d in docs for s in d.spans if s.entity in ("name", "clinician_name")]
    assert 0.15 <= sum(s.holdout for s in names) / len(names) <= 0.35


def test_holdout_names_are_in_no_faker_list(docs: list[Any]) -> None:
    known = phi_corpus.faker_names()
    for doc in docs:
        for span in doc.spans:
            if span.holdout and span.entity in ("name", "clinician_name"):
                words = doc.text[span.start : span.end].replace("^", " ").replace(",", " ")
                # Invented names have at least 4 letters; initials ("XGT") are not checked.
                invented = [w for w in words.split() if len(w) >= 4]
                assert not any(w.casefold() in known for w in invented), words


def test_the_body_carries_the_text(docs: list[Any]) -> None:
    import json

    for doc in docs:
        message = json.loads(doc.body)
        assert message["jsonrpc"] == "2.0"
        assert message["result"]["content"][0]["text"] == doc.text


def test_recall_does_not_fall_below_its_floors(results: Any) -> None:
    recall = _recall(results)
    low = {
        key: f"{recall[key].hit}/{recall[key].total} < {floor:.0%}"
        for key, floor in RECALL_FLOORS.items()
        if recall[key].total >= 15 and recall[key].share() < floor
    }
    assert not low, f"recall fell below its floor: {low}"


def test_non_phi_alteration_does_not_rise_above_its_ceilings(results: Any) -> None:
    altered = {"overall": results.altered, **results.altered_shape}
    high = {
        key: f"{altered[key].hit}/{altered[key].total} > {ceiling:.1%}"
        for key, ceiling in ALTERED_CEILINGS.items()
        if altered[key].share() > ceiling
    }
    assert not high, f"non-PHI words altered beyond the ceiling: {high}"
    assert results.refused == 0


def test_scoring_reads_placeholders_as_no_word() -> None:
    """A redaction is no surviving word, even where the original had that word."""
    original = "NAME: Ada Okafor, MRN 12345678, seen 03/04/1950"
    masked = "NAME: [NAME], MRN [MRN:7f3a2c], seen [DATE]"
    found, kept = phi_accuracy.survival(original, masked)
    assert dict(zip((t.text for t in found), kept, strict=True)) == {
        **{"NAME": True, "MRN": True, "seen": True},
        **{"Ada": False, "Okafor": False, "12345678": False},
        **{"03": False, "04": False, "1950": False},
    }


def test_scoring_pairs_a_word_with_its_own_place() -> None:
    """Greedy alignment would pair the address's "W" (West) with the marital status "W"
    further on and count "NC" and "USA" as altered; the longest common subsequence does
    not."""
    original = "2131-1|17725 W OAK DRIVE^^SARAHPORT^NC^25201^USA||724-701-5790|||W||595-810043"
    masked = "2131-1|[STREET_ADDRESS]^^[CITY]^NC^[ZIP]^USA||[PHONE]|||W||[ACCOUNT]"
    found, kept = phi_accuracy.survival(original, masked)
    survived = [t.text for t, k in zip(found, kept, strict=True) if k]
    assert survived == ["2131", "1", "NC", "USA", "W"]


def test_a_date_may_keep_its_year() -> None:
    doc = phi_corpus.Document(
        "sentence",
        b"",
        "Seen on March 4, 2024 by Dr. Ada Okafor.",
        [
            phi_corpus.Span("date", 8, 21),
            phi_corpus.Span("clinician_name", 29, 39),
        ],
    )
    scored = phi_accuracy.score(doc, "Seen on [DATE], 2024 by Dr. Ada [NAME].")
    assert scored.caught == [True, False]
    assert not any(scored.altered)
    refused = phi_accuracy.score(doc, None)
    assert refused.caught == [True, True] and all(refused.altered)
