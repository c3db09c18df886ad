"""An MCP tool with structured output returns its record twice: as `structuredContent` and
as the JSON text of it in `content[0].text`. The engine masks such a document once and
reuses the result, so both copies must come out masked identically and be reported at
both places; and it must not share when the copies differ, or when a field rule anchored
at the message could treat the two places differently."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custos.stack import PROJECT_ROOT
from extproc.masking.config import MaskingConfig, load_masking_config
from extproc.masking.engine import Masker, MaskReport
from tests.extproc.demo_data import PATIENTS, record_response

KEY_ENV = "CUSTOS_PSEUDONYM_KEY"
TEXT = "$.result.content[0].text"
STRUCTURED = "$.result.structuredContent"


@pytest.fixture
def masker(monkeypatch: pytest.MonkeyPatch) -> Masker:
    monkeypatch.setenv(KEY_ENV, "a-test-key-of-enough-length")
    return Masker(load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml"))


def with_rules(monkeypatch: pytest.MonkeyPatch, *rules: dict[str, str]) -> Masker:
    """The example configuration, with these field rules added."""
    monkeypatch.setenv(KEY_ENV, "a-test-key-of-enough-length")
    base = load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml")
    document = base.model_dump(mode="json")
    document["fields"] = [*document["fields"], *rules]
    return Masker(MaskingConfig.model_validate(document))


def response(result: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 2, "result": result}).encode()


def mask(masker: Masker, body: bytes) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    report = MaskReport()
    masked = json.loads(masker.mask_body(body, report))
    return masked["result"], report.as_dict()


def suffixes(summary: dict[str, Any], prefix: str) -> set[str]:
    paths = summary["paths"]
    assert all(p.startswith(prefix) for p in paths), paths
    return {p.removeprefix(prefix) for p in paths}


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_both_copies_come_out_masked_identically(masker: Masker, patient_id: str) -> None:
    result, _ = mask(masker, record_response(patient_id))
    structured = result["structuredContent"]
    text = result["content"][0]["text"]
    assert json.loads(text) == structured
    assert "\n" in text  # written back indented, as the tool wrote it
    assert structured["patient_id"] == patient_id
    record = PATIENTS[patient_id]
    for value in (record.name, record.ssn, record.phone, record.email, record.date_of_birth):
        assert value not in text and value not in json.dumps(structured)


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_the_report_counts_each_copy_at_its_own_paths(masker: Masker, patient_id: str) -> None:
    both = json.loads(record_response(patient_id))["result"]
    # Each copy alone: the same record, so the same values marked, the same findings.
    _, structured_only = mask(masker, response({"structuredContent": both["structuredContent"]}))
    _, text_only = mask(masker, response({"content": both["content"]}))
    _, report = mask(masker, record_response(patient_id))

    assert set(report) == set(structured_only) == set(text_only)
    for entity, summary in report.items():
        single = structured_only[entity]
        assert text_only[entity]["count"] == single["count"] > 0
        assert summary["count"] == 2 * single["count"], entity
        relative = suffixes(single, STRUCTURED)
        assert suffixes(text_only[entity], TEXT) == relative
        assert set(summary["paths"]) == {p + s for p in (TEXT, STRUCTURED) for s in relative}


def test_an_anchored_rule_applies_to_structured_content_the_text_is_masked_by_detectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masker = with_rules(monkeypatch, {"path": f"{STRUCTURED}.age", "entity": "age"})
    record = {
        "patient_id": "pt-0009",
        "age": 41,
        "note": "Reach her at jane.roe@example.org or 900-55-1234 before Friday.",
    }
    body = response(
        {"content": [{"type": "text", "text": json.dumps(record)}], "structuredContent": record}
    )
    result, report = mask(masker, body)
    structured = result["structuredContent"]
    copy = json.loads(result["content"][0]["text"])

    assert structured["age"] == "[AGE]"  # the anchored rule, at its path
    assert copy["age"] == 41  # not its path: the text copy keeps the number
    note = "Reach her at [EMAIL] or [SSN] before Friday."
    assert structured["note"] == copy["note"] == note  # the detectors, in both copies
    assert report["age"] == {"count": 1, "paths": [f"{STRUCTURED}.age"]}
    for entity in ("email", "ssn"):
        assert report[entity] == {"count": 2, "paths": [f"{TEXT}.note", f"{STRUCTURED}.note"]}


def test_an_anchored_rule_on_the_demo_record_masks_both_copies_of_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masker = with_rules(
        monkeypatch, {"path": f"{STRUCTURED}.clinical_note", "entity": "clinical_note"}
    )
    result, report = mask(masker, record_response("pt-0001"))
    structured = result["structuredContent"]
    copy = json.loads(result["content"][0]["text"])

    # The rule replaces the whole value; in the text copy the value it marked is found
    # as words in free text, so the note's words go and its last full stop stays.
    assert structured["clinical_note"] == "[CLINICAL_NOTE]"
    assert copy["clinical_note"] == "[CLINICAL_NOTE]."
    assert report["clinical_note"]["paths"] == [
        f"{TEXT}.clinical_note",
        f"{STRUCTURED}.clinical_note",
    ]
    # Everything else is masked as without the rule, the same in both copies.
    del structured["clinical_note"], copy["clinical_note"]
    assert copy == structured
    assert structured["ssn"] == "[SSN]" and structured["name"].startswith("[NAME:")


def test_a_structured_content_that_differs_from_the_text_is_masked_on_its_own(
    masker: Masker,
) -> None:
    first, second = PATIENTS["pt-0001"].model_dump(), PATIENTS["pt-0002"].model_dump()
    body = response(
        {"content": [{"type": "text", "text": json.dumps(first)}], "structuredContent": second}
    )
    result, report = mask(masker, body)
    copy = json.loads(result["content"][0]["text"])
    structured = result["structuredContent"]

    assert copy["patient_id"] == "pt-0001" and structured["patient_id"] == "pt-0002"
    assert copy["ssn"] == structured["ssn"] == "[SSN]"
    assert copy["name"] != structured["name"]  # pseudonyms: two people, each masked apart
    assert report["ssn"] == {"count": 2, "paths": [f"{TEXT}.ssn", f"{STRUCTURED}.ssn"]}


def test_a_near_copy_is_not_taken_for_the_text(masker: Masker) -> None:
    record = PATIENTS["pt-0001"].model_dump()
    changed = {**record, "clinical_note": "Called PATIENT at 555-010-0199."}
    body = response(
        {"content": [{"type": "text", "text": json.dumps(record)}], "structuredContent": changed}
    )
    result, report = mask(masker, body)
    copy = json.loads(result["content"][0]["text"])
    structured = result["structuredContent"]

    assert structured["clinical_note"] == "Called PATIENT at [PHONE]."
    assert copy["clinical_note"].startswith("[NAME:")
    del structured["clinical_note"], copy["clinical_note"]
    assert copy == structured
    # The note's phone is found once in the changed copy, the record's twice in the other.
    assert report["phone"]["count"] == 2 + 1 + 1


def structured_as_written(masker: Masker, text: str, structured: dict[str, Any]) -> str:
    """The characters written for `structuredContent`, next to a text block `text`."""
    body = response({"content": [{"type": "text", "text": text}], "structuredContent": structured})
    masked = masker.mask_body(body, MaskReport()).decode()
    start = masked.index('"structuredContent":') + len('"structuredContent":')
    assert masked.endswith("}}")  # structuredContent is the result's last member
    return masked[start:-2]


def test_a_structured_content_identical_to_the_text_is_written_back_as_read(
    masker: Masker,
) -> None:
    structured = {"active": True, "visits": 0, "weight": 70.5, "tags": ["a", "b"]}
    written = structured_as_written(masker, json.dumps(structured), structured)
    assert written == json.dumps(structured, separators=(",", ":"))


@pytest.mark.parametrize(
    ("text", "structured"),
    [
        ('{"active": 1, "visits": 0}', {"active": True, "visits": False}),
        ('{"weight": 70}', {"weight": 70.0}),
        ('{"a": "x", "b": "y"}', {"b": "y", "a": "x"}),
    ],
)
def test_a_structured_content_equal_to_the_text_only_in_python_is_written_back_as_read(
    masker: Masker, text: str, structured: dict[str, Any]
) -> None:
    written = structured_as_written(masker, text, structured)
    assert written == json.dumps(structured, separators=(",", ":"))
