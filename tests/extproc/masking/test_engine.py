"""The masking engine on what the demo MCP server really sends: a JSON-RPC result whose
record appears twice (as JSON text in `content[0].text` and as `structuredContent`), with
PHI in labelled fields and again inside a free-text clinical note."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custos.stack import PROJECT_ROOT
from extproc.masking.config import MaskingConfig, load_masking_config
from extproc.masking.engine import Masker, MaskingError, MaskReport
from tests.extproc.demo_data import PATIENTS, record_response

KEY_ENV = "CUSTOS_PSEUDONYM_KEY"


@pytest.fixture
def masker(monkeypatch: pytest.MonkeyPatch) -> Masker:
    monkeypatch.setenv(KEY_ENV, "a-test-key-of-enough-length")
    return Masker(load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml"))


def phi_forms(patient_id: str) -> list[str]:
    """Every form in which the record's PHI could leak: whole values, name parts, the
    SSN's digits, the phone's digits."""
    record = PATIENTS[patient_id]
    first, last = record.name.split()
    return [
        record.name,
        first,
        last,
        record.ssn,
        record.ssn.replace("-", ""),
        record.ssn[:6],
        record.ssn[-4:],  # removed whole: not even the last four
        record.mrn,
        record.date_of_birth,
        record.phone,
        re.sub(r"\D", "", record.phone),
        record.email,
        record.address,
    ]


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_no_phi_of_the_record_survives_in_any_form(masker: Masker, patient_id: str) -> None:
    masked = masker.mask_body(record_response(patient_id), MaskReport())
    text = masked.decode()
    # Also look inside the JSON-in-JSON text, unescaped, and without any separators.
    inner = json.loads(text)["result"]["content"][0]["text"]
    digits_only = re.sub(r"\D", "", text)
    for form in phi_forms(patient_id):
        assert form not in text, form
        assert form not in inner, form
    assert re.sub(r"\D", "", PATIENTS[patient_id].ssn) not in digits_only


def test_the_result_stays_a_usable_mcp_result(masker: Masker) -> None:
    masked = json.loads(masker.mask_body(record_response("pt-0001", call_id=7), MaskReport()))
    assert masked["jsonrpc"] == "2.0" and masked["id"] == 7
    result = masked["result"]
    assert result["isError"] is False
    structured = result["structuredContent"]
    assert structured["patient_id"] == "pt-0001"  # an internal key, not PHI: tools need it
    assert structured["ssn"] == "[SSN]"
    assert structured["name"].startswith("[NAME:")
    assert structured["email"] == "[EMAIL]"
    # The text block is still JSON, and says what structuredContent says.
    assert json.loads(result["content"][0]["text"]) == structured
    assert "seasonal allergic rhinitis" in structured["clinical_note"]  # not PHI: kept


def test_the_report_lists_entities_counts_and_paths_never_values(masker: Masker) -> None:
    report = MaskReport()
    masker.mask_body(record_response("pt-0002"), report)
    summary = report.as_dict()
    assert {"name", "ssn", "mrn", "date", "phone", "email", "street_address"} <= set(summary)
    assert "$.result.structuredContent.ssn" in summary["ssn"]["paths"]
    assert "$.result.content[0].text.ssn" in summary["ssn"]["paths"]
    assert summary["name"]["count"] >= 4  # two name fields, and the name inside two notes
    dumped = json.dumps(summary)
    for form in phi_forms("pt-0002"):
        assert form not in dumped


def test_pseudonyms_are_stable_under_one_key_and_differ_under_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml")

    def name_under(key: str) -> str:
        monkeypatch.setenv(KEY_ENV, key)
        masked = Masker(config).mask_body(record_response("pt-0003"), MaskReport())
        return str(json.loads(masked)["result"]["structuredContent"]["name"])

    first = name_under("key-number-one-0123456789")
    assert first == name_under("key-number-one-0123456789")
    assert first != name_under("key-number-two-0123456789")


def test_drop_removes_the_field_and_anchored_paths_apply_only_there() -> None:
    config = MaskingConfig.model_validate(
        {
            "actions": {"secret": "drop"},
            "builtin_keys": False,  # the lexicon would mask every `dob`
            "fields": [
                {"path": "ssn", "entity": "secret"},
                {"path": "$.result.patients[*].dob", "entity": "date"},
            ],
        }
    )
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "patients": [{"dob": "not-a-date-at-all", "ssn": 1}],
            "dob": "kept: not under the anchored path",
        },
    }
    masked = json.loads(Masker(config).mask_body(json.dumps(body).encode(), MaskReport()))
    assert masked["result"]["patients"] == [{"dob": "[DATE]"}]
    assert masked["result"]["dob"] == "kept: not under the anchored path"


def test_batches_are_masked_message_by_message(masker: Masker) -> None:
    batch = [json.loads(record_response("pt-0001", 1)), json.loads(record_response("pt-0004", 2))]
    masked = json.loads(masker.mask_body(json.dumps(batch).encode(), MaskReport()))
    assert [m["id"] for m in masked] == [1, 2]
    text = json.dumps(masked)
    for form in phi_forms("pt-0001") + phi_forms("pt-0004"):
        assert form not in text


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b'{"jsonrpc": "2.0", "result": ', b"[" * 5000 + b"]" * 5000],
)
def test_what_cannot_be_parsed_is_refused_not_passed(masker: Masker, body: bytes) -> None:
    with pytest.raises(MaskingError):
        masker.mask_body(body, MaskReport())


def test_bodies_over_the_bound_are_refused() -> None:
    masker = Masker(MaskingConfig(max_body_bytes=1024))
    with pytest.raises(MaskingError, match="exceeds"):
        masker.mask_body(b'{"a": "' + b"x" * 2000 + b'"}', MaskReport())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_masked_or_refused_never_crash(body: bytes) -> None:
    with contextlib.suppress(MaskingError):
        ENGINE.mask_body(body, MaskReport())


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_comes_back_as_json(document: Any) -> None:
    masked = ENGINE.mask_body(json.dumps(document).encode(), MaskReport())
    json.loads(masked)


ENGINE = Masker(MaskingConfig(fields=({"path": "ssn", "entity": "ssn"},)))  # type: ignore[arg-type]


def test_a_bad_exception_condition_is_refused_when_the_rules_load() -> None:
    with pytest.raises(ValueError, match="undefined field 'grups'"):
        MaskingConfig.model_validate(
            {"exceptions": [{"name": "x", "when": "'a' in identity.grups", "entities": ["ssn"]}]}
        )


def test_a_first_name_ending_the_text_is_found_though_longer_names_start_with_it() -> None:
    config = MaskingConfig.model_validate({"fields": [{"path": "name", "entity": "name"}]})
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"patients": [{"name": "John Smith"}], "note": "Seen today with John"},
    }
    masked = json.loads(Masker(config).mask_body(json.dumps(body).encode(), MaskReport()))
    assert masked["result"]["note"] == "Seen today with [NAME]"


def test_many_names_sharing_a_first_word_do_not_make_masking_quadratic() -> None:
    # Attacker-shaped tool output: thousands of "John ..." names and a note of "John"s.
    config = MaskingConfig.model_validate({"fields": [{"path": "name", "entity": "name"}]})
    patients = [{"name": f"John Doe{i}"} for i in range(3000)]
    body = {"jsonrpc": "2.0", "id": 1, "result": {"patients": patients, "note": "John " * 20000}}
    report = MaskReport()
    Masker(config).mask_body(json.dumps(body).encode(), report)
    assert report.counts["name"] == 3000 + 20000


def test_a_long_marked_value_repeated_in_a_note_is_found_each_time() -> None:
    # Attacker-shaped too: a "name" of 2,000 words and a note of 14,000 of that word. Each
    # word is looked at once, not once per term that starts with it.
    config = MaskingConfig.model_validate({"fields": [{"path": "name", "entity": "name"}]})
    body = {"jsonrpc": "2.0", "id": 1, "result": {"name": "Abc " * 2000, "note": "abc " * 14000}}
    report = MaskReport()
    Masker(config).mask_body(json.dumps(body).encode(), report)
    assert report.counts["name"] == 1 + 14000 // 2000


def test_a_first_name_alone_gets_the_pseudonym_of_the_whole_name(masker: Masker) -> None:
    # One person, one pseudonym: an agent can tell the note speaks of the same patient.
    def masked(patients: list[dict[str, str]]) -> list[dict[str, str]]:
        result = {"structuredContent": {"patients": patients}}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
        return json.loads(masker.mask_body(body, MaskReport()))["result"]["structuredContent"][
            "patients"
        ]

    [alone] = masked([{"name": "Ada Okafor", "clinical_note": "Ada called back."}])
    assert alone["name"].startswith("[NAME:")
    assert alone["clinical_note"] == f"{alone['name']} called back."
    # Two patients called Ada: "Ada" alone could be either, so it is neither.
    first, second = masked(
        [
            {"name": "Ada Okafor", "clinical_note": "Ada called back."},
            {"name": "Ada Lindqvist", "clinical_note": "no change"},
        ]
    )
    note_pseudonym = first["clinical_note"].removesuffix(" called back.")
    assert note_pseudonym.startswith("[NAME:")
    assert note_pseudonym not in (first["name"], second["name"])


def test_partial_is_an_explicit_opt_in_that_keeps_the_last_four() -> None:
    config = MaskingConfig.model_validate({"actions": {"ssn": "partial"}})
    body = {"jsonrpc": "2.0", "id": 1, "result": {"note": "SSN 123-45-6789 on file"}}
    masked = json.loads(Masker(config).mask_body(json.dumps(body).encode(), MaskReport()))
    assert masked["result"]["note"] == "SSN ***-**-6789 on file"
