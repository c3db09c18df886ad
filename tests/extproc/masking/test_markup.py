"""XML in text, read by its elements' names: C-CDA, NCPDP and XML APIs' answers."""

from __future__ import annotations

from extproc.masking.lexicon import BuiltinKeys
from extproc.masking.markup import find, looks_like_markup

CDA = (
    '<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="2.16.840.1" extension="DOC-7781"/>'
    "<recordTarget><patientRole>"
    '<id extension="998991" root="2.16.840.1.113883.19.5"/>'
    "<addr><streetAddressLine>1357 Amber Drive</streetAddressLine><city>Beaverton</city>"
    "<state>OR</state><postalCode>97867</postalCode></addr>"
    '<patient><name use="L"><given>Eve</given><family>Everywoman</family></name>'
    '<administrativeGenderCode code="F"/><birthTime value="19470512"/></patient>'
    "<providerOrganization><name>Good Health Clinic</name></providerOrganization>"
    "</patientRole></recordTarget>"
    "<component><section><title>Allergies</title><text>Penicillin - Hives</text></section>"
    "</component></ClinicalDocument>"
)


def masked(text: str) -> dict[str, str]:
    return {text[f.start : f.end]: f.entity for f in find(text, BuiltinKeys(), lambda _: None)}


def test_a_cda_header_s_values_are_found_by_their_elements() -> None:
    assert looks_like_markup(CDA)
    assert masked(CDA) == {
        "998991": "mrn",
        "1357 Amber Drive": "street_address",
        "Beaverton": "city",
        "97867": "zip",
        "Eve": "name",
        "Everywoman": "name",
        "19470512": "date",
    }


def test_what_names_no_person_stays() -> None:
    found = masked(CDA)
    # A document's id, a state, an organisation's name, a section's title and text.
    for kept in ("DOC-7781", "OR", "Good Health Clinic", "Allergies", "Penicillin - Hives"):
        assert kept not in found


def test_an_operators_field_rule_names_an_element_too() -> None:
    text = "<row><chart_no>M0044812</chart_no></row>"
    rules = {"chart_no": "mrn"}
    found = find(text, BuiltinKeys(), rules.get)
    assert [(text[f.start : f.end], f.entity) for f in found] == [("M0044812", "mrn")]


def test_broken_and_prefixed_markup_is_read_as_far_as_it_goes() -> None:
    text = "cut: <v3:patient><v3:name><v3:family>Okafor</v3:family><v3:given>Ada"
    assert masked(text) == {"Okafor": "name"}
    assert masked("<a><b>never closed <city>Tulsa</city>") == {"Tulsa": "city"}


def test_attribute_values_in_either_quotes() -> None:
    text = """<family value="O'Brien"/><birthTime value='19470312'/>"""
    assert masked(text) == {"O'Brien": "name", "19470312": "date"}


def test_a_place_s_name_is_no_one_s_unless_a_person_s_details_stand_beside_it() -> None:
    assert masked("<providerOrganization><name>Good Health</name></providerOrganization>") == {}
    assert masked("<organizationContact><name>Ada Okafor</name></organizationContact>") == {
        "Ada Okafor": "name"
    }


def test_an_age_element_is_phi_only_over_89() -> None:
    assert masked("<age>42</age><age>93</age>") == {"93": "age_over_89"}


def test_markup_escaped_as_text_is_read_as_markup() -> None:
    # XML quoted in a page, a log line or a JSON string that escaped it.
    escaped = CDA.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&quot;")
    assert looks_like_markup(escaped)
    assert masked(escaped) == masked(CDA)


def test_escaped_comparisons_are_no_markup() -> None:
    text = "Dose &lt; 5 mg, then &gt; 10 mg &lt;b&gt;daily&lt;/b&gt;"
    assert masked(text) == {}
