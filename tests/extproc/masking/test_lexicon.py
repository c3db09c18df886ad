"""PHI found by where it stands in JSON, with no configuration at all: the key lexicon and
FHIR R4's shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from extproc.masking import Masker, MaskingConfig, MaskReport
from extproc.masking.lexicon import normal_key


def masked(result: Any, config: MaskingConfig | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": result}}
    report = MaskReport()
    out = Masker(config or MaskingConfig()).mask_body(json.dumps(body).encode(), report)
    return json.loads(out)["result"]["structuredContent"]


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("firstName", "first_name"),
        ("FirstName", "first_name"),
        ("first-name", "first_name"),
        ("FIRST_NAME", "first_name"),
        ("addressLine1", "address_line_1"),
        ("DOB", "dob"),
        ("postalCode", "postal_code"),
        ("SSNLast4", "ssn_last_4"),
    ],
)
def test_keys_are_read_in_every_spelling(key: str, normal: str) -> None:
    assert normal_key(key) == normal


@pytest.mark.parametrize(
    ("key", "value", "entity"),
    [
        ("first_name", "Yosef", "NAME"),
        ("firstName", "Yosef", "NAME"),
        ("LastName", "Villegas", "NAME"),
        ("last-name", "Villegas", "NAME"),
        ("surname", "Okafor", "NAME"),
        ("addr_town", "Swindon", "CITY"),  # a key ending in a place's word
        ("hosp", "76192888", "MRN"),  # a hospital's number, as exports abbreviate it
        ("dob", "03/04/1950", "DATE"),
        ("birthDate", "1950-03-04", "DATE"),
        ("ssn", "123456789", "SSN"),
        ("socialSecurityNumber", "123-45-6789", "SSN"),
        ("mrn", 21804440, "MRN"),
        ("medicalRecordNumber", "560-40-78-5", "MRN"),
        ("phone", "555 010 0101", "PHONE"),
        ("mobile", "+1 555 010 0101", "PHONE"),
        ("emailAddress", "ada@example.org", "EMAIL"),
        ("addressLine1", "12 Elm Street", "STREET_ADDRESS"),
        ("city", "Springfield", "CITY"),
        ("postalCode", "02134", "ZIP"),
        ("zip", 2134, "ZIP"),
        ("memberId", "XKQ123456789", "HEALTH_PLAN"),
        ("drivers_license", "D1234567", "LICENSE"),
        ("vin", "1HGCM82633A004352", "VEHICLE"),
        ("ipAddress", "10.1.2.3", "IP"),
        ("username", "jdoe42", "USERNAME"),
    ],
)
def test_a_key_of_the_lexicon_masks_its_value_without_configuration(
    key: str, value: Any, entity: str
) -> None:
    assert masked({key: value, "note": "stays"}) == {key: f"[{entity}]", "note": "stays"}


def test_a_list_of_parts_keeps_its_shape() -> None:
    assert masked({"given": ["Ada", "B."]}) == {"given": ["[NAME]", "[NAME]"]}


def test_name_is_a_persons_only_beside_what_makes_a_person() -> None:
    drug = {"name": "Lisinopril", "dose": "10 mg", "route": "oral"}
    assert masked(drug) == drug
    person = masked({"name": "Ada Okafor", "gender": "female"})
    assert person == {"name": "[NAME]", "gender": "female"}
    listed = masked({"patients": [{"name": "Ada Okafor", "id": "pt-1"}]})
    assert listed == {"patients": [{"name": "[NAME]", "id": "pt-1"}]}
    site = {"resourceType": "Organization", "name": "Mercy Clinic"}
    assert masked(site) == site
    # A place's name is no one's; people under a place's key, or beside a person's
    # details, are people.
    clinic = {"providerOrganization": {"name": "Mercy Clinic", "type": "clinic"}}
    assert masked(clinic) == clinic
    ward = masked({"department_patients": [{"name": "Ada Okafor", "bed": "4"}]})
    assert ward == {"department_patients": [{"name": "[NAME]", "bed": "4"}]}
    contact = masked({"location": {"name": "Ada Okafor", "dob": "1950-01-02"}})
    assert contact["location"]["name"] == "[NAME]"


def test_an_age_is_phi_only_over_89() -> None:
    assert masked({"age": 92}) == {"age": "[AGE_OVER_89]"}
    assert masked({"age": "95 years"}) == {"age": "[AGE_OVER_89]"}
    assert masked({"age": 45}) == {"age": 45}


PATIENT = {
    "resourceType": "Patient",
    "identifier": [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"},
        {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203"}]},
            "system": "urn:oid:1.2.36.146.595.217.0.1",
            "value": "A7Q-20-991",
        },
        {
            "type": {"coding": [{"code": "DL"}]},
            "system": "urn:oid:2.16.840.1.113883.4.3.25",
            "value": "S99911111",
        },
    ],
    "name": [
        {"use": "official", "family": "Quorrin", "given": ["Tavelle", "J."], "prefix": ["Ms."]}
    ],
    "telecom": [
        {"system": "phone", "value": "555-010-0101", "use": "home"},
        {"system": "email", "value": "tq@example.org"},
        {"system": "fax", "value": "555-010-0199"},
    ],
    "gender": "female",
    "birthDate": "1931-02-17",
    "address": [
        {
            "use": "home",
            "line": ["77 Harbor Lane", "Apt 4"],
            "city": "Marblehead",
            "district": "Essex",
            "state": "MA",
            "postalCode": "01945",
            "country": "US",
        }
    ],
}


def test_a_fhir_patient_is_masked_field_by_field_and_keeps_its_shape() -> None:
    out = masked({"resourceType": "Bundle", "entry": [{"resource": PATIENT}]})
    patient = out["entry"][0]["resource"]
    assert [i["value"] for i in patient["identifier"]] == ["[SSN]", "[MRN]", "[LICENSE]"]
    assert patient["name"] == [
        {"use": "official", "family": "[NAME]", "given": ["[NAME]", "[NAME]"], "prefix": ["Ms."]}
    ]
    assert [t["value"] for t in patient["telecom"]] == ["[PHONE]", "[EMAIL]", "[FAX]"]
    assert patient["telecom"][0]["use"] == "home"
    assert patient["birthDate"] == "[DATE]"
    assert patient["gender"] == "female"
    assert patient["address"] == [
        {
            "use": "home",
            "line": ["[STREET_ADDRESS]", "[STREET_ADDRESS]"],
            "city": "[CITY]",
            "district": "[CITY]",
            "state": "MA",
            "postalCode": "[ZIP]",
            "country": "US",
        }
    ]


def test_a_name_found_in_a_resource_is_masked_in_any_narrative() -> None:
    narrative = {
        "resourceType": "Encounter",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Tavelle Quorrin, seen today;'
            " QUORRIN reports no pain.</div>",
        },
    }
    out = masked(
        {"resourceType": "Bundle", "entry": [{"resource": PATIENT}, {"resource": narrative}]}
    )
    div = out["entry"][1]["resource"]["text"]["div"]
    assert "Tavelle" not in div and "Quorrin" not in div and "QUORRIN" not in div
    assert "seen today" in div and "reports no pain" in div


def test_operators_turn_lexicon_entries_off() -> None:
    # Without the detectors, which know "Boston" as a surname as well.
    config = MaskingConfig.model_validate(
        {"builtin_keys_off": ["city", "postalCode"], "detectors": ["ssn"]}
    )
    assert masked({"city": "Boston", "zip": "02134"}, config) == {"city": "Boston", "zip": "[ZIP]"}
    unkeyed = MaskingConfig(builtin_keys=False, detectors=frozenset({"ssn"}))
    assert masked({"city": "Boston"}, unkeyed) == {"city": "Boston"}
    with pytest.raises(ValidationError, match="not in the key lexicon: favourite_colour"):
        MaskingConfig.model_validate({"builtin_keys_off": ["favouriteColour"]})


def test_an_operators_field_rule_comes_first() -> None:
    config = MaskingConfig.model_validate({"fields": [{"path": "city", "entity": "site"}]})
    assert masked({"city": "Boston"}, config) == {"city": "[SITE]"}


def test_the_report_names_lexicon_findings_by_path() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"firstName": "Ada"}}}
    report = MaskReport()
    Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), report)
    assert report.as_dict()["name"] == {
        "count": 1,
        "paths": ["$.result.structuredContent.firstName"],
    }


def test_a_name_keeps_its_title_and_credentials_readable() -> None:
    out = masked({"attendingPhysician": "Dr. Brixa Omundel, MD", "pcp": "Ada Okafor, FNP-C"})
    assert out == {"attendingPhysician": "Dr. [NAME], MD", "pcp": "[NAME], FNP-C"}


@pytest.mark.parametrize(
    ("key", "entity"),
    [
        ("ptIdNbr", "MRN"),
        ("memberNbr", "HEALTH_PLAN"),
        ("employerNm", "EMPLOYER"),
        ("acctNbr", "ACCOUNT"),
        ("ptFirstNm", "NAME"),
        ("GUAR_EMPLOYER", "EMPLOYER"),
        ("DL_NUM", "LICENSE"),
        ("implant_udi", "DEVICE"),
        ("guarantor_phone", "PHONE"),
    ],
)
def test_abbreviated_and_longer_keys_are_read(key: str, entity: str) -> None:
    assert masked({key: "X1234567"}) == {key: f"[{entity}]"}


def test_a_fhir_reference_to_a_person_is_masked_by_its_display() -> None:
    coverage = {
        "resourceType": "Coverage",
        "subscriber": {"display": "Kwapu Dadri"},
        "payor": [{"display": "Blue Shield"}],
        "performer": [{"reference": "Practitioner/7", "display": "Nadifo Gelle"}],
        "code": {"coding": [{"display": "Hemoglobin"}]},
    }
    out = masked(coverage)
    assert out["subscriber"] == {"display": "[NAME]"}
    assert out["performer"][0]["display"] == "[NAME]"
    assert out["payor"] == coverage["payor"] and out["code"] == coverage["code"]


def test_logfmt_and_face_sheet_lines_are_read_by_their_keys() -> None:
    text = (
        'ts=2006-12-05T07:01:00Z user=longi action=VIEW_CHART patient="Tayewek, Yebrerk"\n'
        "NAME YUSUN BREZIN   SEX F   AGE 91\n"
        "ADDRESS 7093 W JUNIPER PKWY\n"
    )
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    lines = json.loads(out)["result"]["content"][0]["text"].splitlines()
    assert lines == [
        'ts=[DATE]T07:01:00Z user=[USERNAME] action=VIEW_CHART patient="[NAME]"',
        "NAME [NAME]   SEX F   AGE [AGE_OVER_89]",
        "ADDRESS [STREET_ADDRESS]",
    ]


@pytest.mark.parametrize("key", ["soc_sec_no", "acct", "ipv4", "remote_addr"])
def test_every_lexicon_key_is_read_in_snake_camel_and_capitals(key: str) -> None:
    camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
    for spelling in (key, camel, key.upper()):
        assert masked({spelling: "ZX88812"})[spelling].startswith("["), spelling


def test_a_value_wrapped_in_an_object_under_a_phi_key_is_masked() -> None:
    record = {"mrn": {"value": 48213}, "ssn": {"value": "123456789", "system": "x"}}
    assert masked(record) == {
        "mrn": {"value": "[MRN]"},
        "ssn": {"value": "[SSN]", "system": "[SSN]"},
    }
    counts = {"by_email": {"a@example.org": 3}}  # a map keyed by PHI, not a wrapped value
    assert masked(counts) == {"by_email": {"[EMAIL]": 3}}


def test_a_report_path_never_holds_a_key_that_is_no_key() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"structuredContent": {"patients": {"Wuvtor, Zyxqa": {"ssn": "123-45-6789"}}}},
    }
    report = MaskReport()
    Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), report)
    assert report.as_dict()["ssn"]["paths"] == ["$.result.structuredContent.patients.*.ssn"]


def test_a_record_keyed_by_a_patients_name_has_its_key_masked() -> None:
    out = masked({"patients": {"Okafor, Kyle": {"note": "stable"}, "Last Visit": "x"}})
    assert out == {"patients": {"[NAME]": {"note": "stable"}, "Last Visit": "x"}}


def test_a_pair_s_label_names_its_value() -> None:
    pairs = [
        {"label": "Medicaid", "value": "GA448291003"},
        {"name": "Date of birth", "value": "1931-03-15"},
        {"key": "Phone", "val": "555 0101"},
        {"name": "Heart rate", "value": "92"},
        {"name": "Age", "value": "93"},
    ]
    assert masked({"identifiers": pairs}) == {
        "identifiers": [
            {"label": "Medicaid", "value": "[HEALTH_PLAN]"},
            {"name": "Date of birth", "value": "[DATE]"},
            {"key": "Phone", "val": "[PHONE]"},
            {"name": "Heart rate", "value": "92"},
            {"name": "Age", "value": "[AGE_OVER_89]"},
        ]
    }


def test_dicom_json_is_read_by_tag() -> None:
    study = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00100020": {"vr": "LO", "Value": ["E12-449021"]},
        "00101010": {"vr": "AS", "Value": ["092Y"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
    }
    assert masked(study) == {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "[NAME]"}]},
        "00100020": {"vr": "LO", "Value": ["[MRN]"]},
        "00101010": {"vr": "AS", "Value": ["[AGE_OVER_89]"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
    }


def test_a_column_of_names_masks_the_names_no_dictionary_knows() -> None:
    people = [("Ada Okafor", "asthma"), ("Quorrin Tavelle", "CHF"), ("Maria Lopez", "HTN")]
    rows = [{"who": who, "dx": dx} for who, dx in people]
    assert masked({"rows": rows}) == {"rows": [{"who": "[NAME]", "dx": dx} for _, dx in people]}
    # A column of diagnoses, one of them an eponym, is no column of names.
    diagnoses = [{"dx": dx} for dx in ("Crohn", "Asthma", "Gout", "Sciatica")]
    assert masked({"rows": diagnoses}) == {"rows": diagnoses}


def test_a_fhir_extensions_value_is_named_by_its_definitions_url() -> None:
    base = "http://hl7.org/fhir/StructureDefinition/"
    extensions = [
        {"url": "http://example.org/StructureDefinition/age", "valueInteger": 101},
        {"url": base + "patient-mothersMaidenName", "valueString": "Quevarro"},
        {"url": base + "patient-birthPlace", "valueAddress": {"city": "Tulsa", "state": "OK"}},
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
            "valueCode": "F",
        },
    ]
    out = masked({"resourceType": "Patient", "extension": extensions})["extension"]
    assert out[0]["valueInteger"] == "[AGE_OVER_89]"
    assert out[1]["valueString"] == "[NAME]"
    assert out[2]["valueAddress"] == {"city": "[CITY]", "state": "OK"}
    assert out[3]["valueCode"] == "F"
    age = {"url": "http://example.org/StructureDefinition/patient-age"}
    age["valueAge"] = {"value": 94, "unit": "a"}  # type: ignore[assignment]
    assert masked({"resourceType": "Patient", "extension": [age]})["extension"][0]["valueAge"] == {
        "value": "[AGE_OVER_89]",
        "unit": "a",
    }
