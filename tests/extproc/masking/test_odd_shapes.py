"""PHI where a careless or hostile MCP server may put it, outside the usual string values:
object keys, numbers, names given as objects, JSON text too deep to read, the JSON-RPC
envelope, findings that overlap, batches that mix calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custos.policy import HttpRequest, Identity, McpCall, PolicyInput
from custos.stack import PROJECT_ROOT
from extproc.masking.config import load_masking_config
from extproc.masking.engine import Masker, MaskingError, MaskReport
from tests.extproc.configs import masker_with_exception


@pytest.fixture
def masker(monkeypatch: pytest.MonkeyPatch) -> Masker:
    monkeypatch.setenv("CUSTOS_PSEUDONYM_KEY", "a-test-key-of-enough-length")
    return Masker(load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml"))


def masked(masker: Masker, document: Any, report: MaskReport | None = None) -> str:
    return masker.mask_json_text(json.dumps(document), report or MaskReport())


def structured(content: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": content}}


def test_records_keyed_by_ssn_or_email_have_their_keys_masked(masker: Masker) -> None:
    report = MaskReport()
    document = structured({"900-12-3456": {"visits": 2}, "zed.qux@example.com": {"visits": 1}})
    out = masked(masker, document, report)
    assert "900-12-3456" not in out and "zed.qux@example.com" not in out
    content = json.loads(out)["result"]["structuredContent"]
    assert content == {"[SSN]": {"visits": 2}, "[EMAIL]": {"visits": 1}}
    assert report.counts == {"ssn": 1, "email": 1}
    assert "900-12-3456" not in json.dumps(report.as_dict())  # the paths hold no PHI either


def test_keys_that_mask_alike_are_numbered_not_merged(masker: Masker) -> None:
    vitals = {"2024-01-05": {"hr": 72}, "2024-01-06": {"hr": 75}, "2024-01-07": {"hr": 71}}
    content = json.loads(masked(masker, structured({"vitals": vitals})))
    by_day = content["result"]["structuredContent"]["vitals"]
    assert by_day == {"[DATE]": {"hr": 72}, "[DATE] #2": {"hr": 75}, "[DATE] #3": {"hr": 71}}


def test_a_key_that_spells_a_marked_name_is_masked(masker: Masker) -> None:
    # Notes keyed by the patient, written as names are: surname first, or the first name.
    notes = {"Okafor, Ada": {"phone": "555-867-5309"}, "Ada": {"seen": "2024-03-15"}}
    report = MaskReport()
    out = masked(masker, structured({"name": "Ada Okafor", "notes": notes}), report)
    assert "Ada" not in out and "Okafor" not in out
    assert "Okafor" not in json.dumps(report.as_dict())


@pytest.mark.parametrize("name", ["van Dijk", "山田太郎", "Ada Okafor"])
def test_a_key_that_is_a_marked_name_is_masked_however_it_is_written(
    masker: Masker, name: str
) -> None:
    for key in (name, name.lower()):
        content = {"name": name, "byPatient": {key: {"ward": "4B"}}}
        out = masked(masker, structured(content))
        assert name not in out and name.lower() not in out, key


def test_many_keys_masking_alike_are_numbered_in_order(masker: Masker) -> None:
    emails = {f"user{i}@example.com": i for i in range(200)}
    out = json.loads(masked(masker, structured({"by_email": emails})))
    by_email = out["result"]["structuredContent"]["by_email"]
    assert list(by_email) == ["[EMAIL]", *(f"[EMAIL] #{n}" for n in range(2, 201))]
    assert list(by_email.values()) == list(range(200))


def test_a_masked_key_never_lands_on_a_key_the_server_wrote(masker: Masker) -> None:
    content = {"1984-03-15": "a", "[DATE]": "b", "1990-04-01": "c", "[DATE] #2": "d"}
    out = json.loads(masked(masker, structured(content)))["result"]["structuredContent"]
    assert out["[DATE]"] == "b" and out["[DATE] #2"] == "d"  # the server's own, kept
    assert sorted(out.values()) == ["a", "b", "c", "d"]  # nothing replaced


def test_keys_are_not_read_for_names_after_a_title_nor_for_parts_of_names(
    masker: Masker,
) -> None:
    # "Patient Name" is a column, not a patient; "max" and "page" are not Max Page.
    record = {"Patient Name": "Max Page", "range": {"min": 4, "max": 5.6}, "page": 2}
    content = json.loads(masked(masker, structured({"name": "Max Page", "rows": [record]})))
    row = content["result"]["structuredContent"]["rows"][0]
    assert set(row) == {"Patient Name", "range", "page"} and set(row["range"]) == {"min", "max"}
    assert "Max" not in json.dumps(row)  # the value is masked: it is the marked name


def test_a_key_masked_keeps_the_field_rule_of_the_key_as_written(monkeypatch: Any) -> None:
    monkeypatch.setenv("CUSTOS_PSEUDONYM_KEY", "a-test-key-of-enough-length")
    config = load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml")
    # A rule on a key that a detector would also mask (it holds an e-mail address).
    rule = type(config.fields[0])(path="notify zed@example.com", entity="mrn")
    masker = Masker(config.model_copy(update={"fields": (*config.fields, rule)}))
    # "X1" is too short to be looked for as a marked value: only the rule can mask it.
    content = json.loads(masked(masker, structured({"notify zed@example.com": "X1"})))
    ((key, value),) = content["result"]["structuredContent"].items()
    assert key == "notify [EMAIL]" and value.startswith("[MRN:")


def test_numbers_are_phi_only_when_a_rule_says_so(masker: Masker) -> None:
    # Luhn alone would take one timestamp in ten for a card or an NPI.
    stamps = {"updated_at": 1712345671, "updated_ms": 1712345678105, "visits": 3}
    content = json.loads(masked(masker, structured(stamps)))["result"]["structuredContent"]
    assert content == stamps
    # An operator's pattern (examples/masking.yaml: MRN-\d{6}) has no say over bare digits,
    # but a number that is a marked value elsewhere in the answer is masked.
    marked = {"phone": "5550100101", "callback": 5550100101}
    content = json.loads(masked(masker, structured(marked)))["result"]["structuredContent"]
    assert content["callback"] == "[PHONE]"


def test_a_marked_list_or_number_is_found_again_in_the_notes(masker: Masker) -> None:
    # Name parts as a list, and a phone written as a number: both marked by field rules.
    document = structured(
        {
            "name": ["Zed", "Qux"],
            "phone": 5550100101,
            "note": "Zed Qux asked to be called at 5550100101.",
        }
    )
    out = masked(masker, document)
    assert "Zed" not in out and "Qux" not in out and "5550100101" not in out


def test_an_object_under_a_marked_key_lends_its_words_to_no_note(masker: Masker) -> None:
    # A JSON Schema property called "name" is masked whole, but "Name" and "string" are
    # nobody's name: the keys and notes that spell them stay as they are.
    schema = {"name": {"type": "string", "title": "Name"}, "note": "Name a string field"}
    content = json.loads(masked(masker, structured({"schema": schema})))
    masked_schema = content["result"]["structuredContent"]["schema"]
    assert masked_schema["note"] == "Name a string field"
    assert set(masked_schema) == {"name", "note"}


@pytest.mark.parametrize("dash", ["-", "\u2011", "\u2013"])
def test_a_hyphenated_first_name_is_found_by_either_half(masker: Masker, dash: str) -> None:
    name = f"Mary{dash}Jane Watson"
    out = masked(masker, structured({"name": name, "note": "Mary seen, Jane ok"}))
    note = json.loads(out)["result"]["structuredContent"]["note"]
    assert "Mary" not in note and "Jane" not in note


@pytest.mark.parametrize(
    "text",
    [
        "[" * 995 + json.dumps({"name": "Zed Qux"}) + "]" * 995,
        '{"name": "Zed Qux", "n": ' + "1" * 4301 + "}",
    ],
    ids=["nested too deep", "integer too long"],
)
def test_json_text_too_deep_or_big_to_read_is_refused_not_taken_for_text(
    masker: Masker, text: str
) -> None:
    document = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    with pytest.raises(MaskingError):
        masked(masker, document)


def test_json_text_behind_a_byte_order_mark_is_walked_as_json(masker: Masker) -> None:
    text = "\ufeff" + json.dumps({"name": "Zed Qux", "note": "Zed Qux seen"})
    document = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = json.loads(masked(masker, document))["result"]["content"][0]["text"]
    assert "Zed" not in out and "Qux" not in out
    assert json.loads(out)["name"].startswith("[NAME:")


def test_text_that_only_looks_like_json_is_still_text(masker: Masker) -> None:
    note = "[draft] Zed Qux, SSN 900-12-3456 {see chart}"
    out = masked(masker, {"jsonrpc": "2.0", "id": 1, "result": {"note": note}})
    assert "900-12-3456" not in out and "[draft]" in out


def test_the_envelope_passes_only_when_it_is_protocol_shaped(masker: Masker) -> None:
    document = {"jsonrpc": {"ssn": "900-12-3456"}, "id": {"name": "Zed Qux"}, "result": {}}
    out = json.loads(masked(masker, document))
    assert out["jsonrpc"] == {"ssn": "[SSN]"}
    assert "Zed Qux" not in json.dumps(out["id"])
    kept = json.loads(masked(masker, {"jsonrpc": "2.0", "id": "req-2024-03-12", "result": {}}))
    assert kept["id"] == "req-2024-03-12"  # the client's own id, echoed: never rewritten


def test_overlapping_findings_are_masked_together_not_half(masker: Masker) -> None:
    # "Dr. Zed Qux Alice" (a title and three words) overlaps the marked "Alice Fakenham".
    document = structured({"name": "Alice Fakenham", "note": "Dr. Zed Qux Alice Fakenham"})
    note = json.loads(masked(masker, document))["result"]["structuredContent"]["note"]
    assert "Fakenham" not in note and "Alice" not in note and "Zed" not in note


def test_an_exception_for_one_call_of_a_batch_unmasks_nothing_for_the_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    when = "mcp.method == 'resources/read' && 'phi-unmasked' in identity.groups"
    masker = masker_with_exception(monkeypatch, tmp_path, when, "[ssn]")
    identity = Identity(issuer="https://idp", subject="u1", groups=("phi-unmasked",))
    request = HttpRequest("POST", "/mcp")

    def granted(*methods: str) -> frozenset[str]:
        calls = tuple(McpCall(method=m) for m in methods)
        return masker.unmasked_for(PolicyInput(identity, request, calls, len(calls) > 1))

    assert granted("resources/read") == {"ssn"}
    assert granted("resources/read", "tools/call") == frozenset()


def test_an_identifier_the_caller_may_see_does_not_carry_a_name_inside_it_along(
    masker: Masker,
) -> None:
    document = structured({"name": "Ada Okafor", "note": "MRN: OKAFOR-4411"})
    note = json.loads(masker.mask_json_text(json.dumps(document), MaskReport(), frozenset({"mrn"})))
    assert "OKAFOR" not in note["result"]["structuredContent"]["note"]
