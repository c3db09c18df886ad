"""HL7 v2 messages in text: the fields of PID, NK1, PV1 and their kin that hold PHI, by
position, whatever they look like ("Okafor^Ada^B" is a name only because it is PID-5).

Each component of such a field is a finding of its own, so the message keeps its shape
("[NAME]^[NAME]^[NAME]") and each part of a name is looked for again elsewhere in the
answer; components that are codes (an identifier's assigning authority, an address's
state) stay. Free-text fields (OBX-5, NTE-3) are left to the other detectors."""

from __future__ import annotations

import re

from extproc.masking.findings import Finding

# Segment -> field number -> entity (field numbers as HL7 counts them: PID-5 is the name).
_FIELDS: dict[str, dict[int, str]] = {
    "MSH": {7: "date"},
    "EVN": {2: "date", 5: "name", 6: "date"},
    "PID": {
        **{2: "mrn", 3: "mrn", 4: "mrn", 5: "name", 6: "name", 7: "date", 9: "name"},
        **{11: "street_address", 12: "city", 13: "phone", 14: "phone", 18: "account"},
        **{19: "ssn", 20: "license", 21: "mrn", 23: "city", 29: "date"},
    },
    "PD1": {4: "name"},
    "MRG": {1: "mrn", 2: "mrn", 3: "account", 4: "mrn", 5: "account", 7: "name"},
    "NK1": {
        **{2: "name", 4: "street_address", 5: "phone", 6: "phone", 8: "date", 9: "date"},
        **{12: "mrn", 16: "date", 30: "name", 31: "phone", 32: "street_address", 33: "mrn"},
        37: "ssn",
    },
    "PV1": {
        **{7: "name", 8: "name", 9: "name", 17: "name", 19: "account", 44: "date"},
        **{45: "date", 50: "account", 52: "name"},
    },
    "PV2": {8: "date", 9: "date", 13: "name"},
    "GT1": {
        **{2: "account", 3: "name", 4: "name", 5: "street_address", 6: "phone", 7: "phone"},
        **{8: "date", 12: "ssn", 16: "name", 17: "street_address", 18: "phone", 19: "mrn"},
    },
    "IN1": {
        **{16: "name", 18: "date", 19: "street_address", 36: "health_plan", 49: "health_plan"},
        **{12: "date", 13: "date", 26: "date"},
    },
    "IN2": {1: "health_plan", 2: "ssn", 6: "health_plan", 8: "health_plan"},
    "ORC": {9: "date", 10: "name", 11: "name", 12: "name", 14: "phone", 15: "date"},
    "OBR": {
        **{6: "date", 7: "date", 8: "date", 14: "date", 16: "name", 17: "phone"},
        **{22: "date", 28: "name", 32: "name", 33: "name", 34: "name", 35: "name"},
    },
    "OBX": {14: "date", 16: "name", 19: "date"},
    "TXA": {4: "date", 5: "name", 9: "name", 10: "name", 11: "name", 22: "name"},
    "SCH": {12: "name", 16: "name", 20: "name"},
    "AIP": {3: "name"},
    "ROL": {4: "name", 11: "street_address", 12: "phone"},
}
# Which components of a field are PHI (HL7's numbers; the rest are codes): CX's first,
# XAD's street, other line, city, ZIP and county, XTN's number, e-mail and its parts.
_IDENTIFIER = frozenset({1})
_COMPONENTS: dict[str, frozenset[int]] = {
    **dict.fromkeys(("mrn", "account", "health_plan", "license", "ssn"), _IDENTIFIER),
    "street_address": frozenset({1, 2, 3, 5, 9}),
    "phone": frozenset({1, 4, 6, 7, 8, 12}),  # 12: the number unformatted
    # XPN and XCN: the identifier, family, given and middle names and the suffix; not the
    # prefix or the degree ("Dr", "MD"), which stay readable.
    "name": frozenset(range(1, 6)),
}
_ADDRESS_PARTS = {3: "city", 5: "zip", 9: "city"}
# A segment this module reads, at the start of a line (HL7 ends segments with "\r"), or an
# MSH header anywhere ("Message: MSH|^~\\&|...").
_SEGMENT = re.compile(rf"(?:^|(?<=[\r\n]))(?:{'|'.join(_FIELDS)})\||MSH[^\w\s]")
_LINE = re.compile(r"[^\r\n]+")


def looks_like_hl7(text: str) -> bool:
    # The regex tried at every character costs more than two substring searches.
    return ("|" in text or "MSH" in text) and bool(_SEGMENT.search(text))


def find(text: str) -> list[Finding]:
    """Findings in the HL7 v2 segments of `text`, sorted."""
    found: list[Finding] = []
    field_sep, inner = "|", "^~&"
    for line in _LINE.finditer(text):
        segment, at = line.group(), line.start()
        if (header := segment.find("MSH")) > 0 and not segment[header + 3 : header + 4].isalnum():
            segment, at = segment[header:], at + header  # "Message: MSH|^~\&|...": from MSH
        name = segment[:3]
        if (
            name == "MSH"
            and len(segment) >= 8
            and not (segment[3].isalnum() or segment[3].isspace())
        ):
            # MSH-1 is the field separator itself; MSH-2 the component, repetition,
            # escape and subcomponent separators.
            field_sep = segment[3]
            encoding = segment[4:8]
            inner = encoding[0] + encoding[1] + (encoding[3] if len(encoding) > 3 else "&")
        fields = _FIELDS.get(name)
        if fields is None or segment[3:4] != field_sep:
            continue
        # MSH's first field is its separator, so its numbers run one ahead of the splits.
        shift = 1 if name == "MSH" else 0
        position = at + 4
        for number, value in enumerate(segment[4:].split(field_sep), start=1 + shift):
            entity = fields.get(number)
            if entity is not None and value:
                found += _components(entity, value, position, inner)
            position += len(value) + 1
    return found


def _components(entity: str, value: str, at: int, separators: str) -> list[Finding]:
    """Each PHI component of a field, each repetition's: an identifier's number but not
    its assigning authority, an address's street, city and ZIP but not its state."""
    component, repetition = separators[0], separators[1]
    wanted = _COMPONENTS.get(entity)
    found = []
    for repeated in value.split(repetition):
        for number, piece in enumerate(repeated.split(component), start=1):
            if piece.strip() and (wanted is None or number in wanted):
                named = _ADDRESS_PARTS.get(number, entity) if entity == "street_address" else entity
                found.append(Finding(named, at, at + len(piece)))
            at += len(piece) + 1
    return found
