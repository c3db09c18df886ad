"""X12 EDI in text (an eligibility answer, 271; a claim, 837; a remittance, 835): the
elements of NM1, N3, N4, DMG, DTP, REF, PER, CLM and TRN that hold PHI, by position, as
HL7's are read ("DOE" is a name only because it is NM1-03 of a person).

An identifier is named by its qualifier: NM1-09 after "MI" is a member id, after "34" an
SSN, after "XX" an NPI. Codes (qualifiers, states, diagnosis and procedure codes, amounts)
stay."""

from __future__ import annotations

import re

from extproc.masking.findings import Finding, trimmed

# A segment this module reads, at the start of the text, a line, or after a "~".
_SEGMENT = re.compile(r"(?:^|(?<=[~\r\n]))[ \t]*(?:ISA|NM1|N3|N4|DMG|DTP|REF|PER|CLM|TRN)\*")
_ID_BY_QUALIFIER = {
    **dict.fromkeys(("MI", "IL", "1W", "0F", "N6", "NQ", "6P"), "health_plan"),
    **dict.fromkeys(("34", "SY"), "ssn"),
    **dict.fromkeys(("XX", "HPI", "0B", "1G", "FI", "EI", "24"), "license"),
    **dict.fromkeys(("EA", "MR", "II"), "mrn"),
}
_COMMUNICATION = {"TE": "phone", "FX": "fax", "EM": "email", "EX": "phone", "CP": "phone"}


def looks_like_x12(text: str) -> bool:
    return "*" in text and bool(_SEGMENT.search(text))


def find(text: str) -> list[Finding]:
    """Findings in the X12 segments of `text`, sorted."""
    found: list[Finding] = []
    separator = "*"
    if (isa := text.find("ISA")) >= 0 and len(text) > isa + 3:
        separator = text[isa + 3]  # ISA's fourth character is the element separator
    for segment in re.finditer(r"[^~\r\n]+", text):
        elements = _elements(segment.group(), segment.start(), separator)
        if not elements:
            continue
        name = elements[0][0].strip()
        found += _phi(name, elements)
    return found


def _elements(segment: str, at: int, separator: str) -> list[tuple[str, int]]:
    """The segment's elements with where each starts in the text; its name first."""
    lead = len(segment) - len(segment.lstrip())
    elements = []
    position = at + lead
    for value in segment[lead:].split(separator):
        elements.append((value, position))
        position += len(value) + 1
    return elements


def _phi(name: str, elements: list[tuple[str, int]]) -> list[Finding]:
    def element(number: int) -> tuple[str, int]:
        return elements[number] if number < len(elements) else ("", 0)

    def at(number: int, entity: str) -> list[Finding]:
        finding = trimmed(entity, *element(number))
        return [] if finding is None else [finding]

    if name == "NM1":
        if element(2)[0] == "1":  # a person: the name's parts, the identifier
            names = [f for n in (3, 4, 5) for f in at(n, "name")]
            return names + at(9, _ID_BY_QUALIFIER.get(element(8)[0].strip(), "account"))
        # An organisation (a payer, a clinic): its name and its own ids are no one's PHI.
        entity = _ID_BY_QUALIFIER.get(element(8)[0].strip())
        return at(9, entity) if entity in ("health_plan", "ssn", "mrn") else []
    if name == "N3":
        return at(1, "street_address") + at(2, "street_address")
    if name == "N4":
        return at(1, "city") + at(3, "zip")
    if name == "DMG":
        return at(2, "date")
    if name == "DTP":
        return at(3, "date")
    if name == "REF":
        return at(2, _ID_BY_QUALIFIER.get(element(1)[0].strip(), "account"))
    if name == "PER":
        found = at(2, "name")
        for qualifier in (3, 5, 7):
            kind = _COMMUNICATION.get(element(qualifier)[0].strip())
            if kind is not None:
                found += at(qualifier + 1, kind)
        return found
    if name in ("CLM", "TRN"):
        return at(1 if name == "CLM" else 2, "account")
    return []
