"""DICOM attributes in text (a header dumped by dcmdump or pydicom, an imaging tool's
answer): the values of the attributes that DICOM's own de-identification profile (PS3.15,
Annex E) removes, by tag, whatever they look like ("E12-449021" is an MRN only because it
is (0010,0020)).

A person's name (the PN type, "DOE^JANE^Q^^DR") is masked part by part, its prefix and
suffix left, as HL7's are; an age ("092Y") only over 89."""

from __future__ import annotations

import re

from extproc.masking.findings import Finding, trimmed

# (group, element) -> entity, for the attributes of the basic profile that hold PHI.
_TAGS: dict[tuple[int, int], str] = {
    # the patient
    **{(0x0010, 0x0010): "name", (0x0010, 0x1001): "name", (0x0010, 0x1005): "name"},
    **{(0x0010, 0x1060): "name", (0x0010, 0x0020): "mrn", (0x0010, 0x1000): "mrn"},
    **{(0x0010, 0x1090): "mrn", (0x0010, 0x0030): "date", (0x0010, 0x0032): "date"},
    **{(0x0010, 0x1010): "age_over_89", (0x0010, 0x1040): "street_address"},
    **{(0x0010, 0x2154): "phone", (0x0010, 0x2152): "city", (0x0010, 0x0050): "health_plan"},
    (0x0010, 0x2297): "name",  # the responsible person (0010,2298 is only their role)
    # the people around the study
    **{(0x0008, 0x0090): "name", (0x0008, 0x1048): "name", (0x0008, 0x1050): "name"},
    **{(0x0008, 0x1060): "name", (0x0008, 0x1070): "name", (0x0032, 0x1032): "name"},
    **{(0x0040, 0x0006): "name", (0x0040, 0xA123): "name", (0x0070, 0x0084): "name"},
    **{(0x0008, 0x009C): "name", (0x0040, 0xA075): "name", (0x0040, 0x2008): "name"},
    **{(0x0040, 0x1010): "name", (0x4008, 0x0114): "name", (0x0040, 0x2010): "phone"},
    **{(0x0008, 0x0092): "street_address", (0x0008, 0x0094): "phone"},
    # the study's dates and numbers
    **{(0x0008, 0x0020): "date", (0x0008, 0x0021): "date", (0x0008, 0x0022): "date"},
    **{(0x0008, 0x0023): "date", (0x0008, 0x002A): "date", (0x0040, 0x0244): "date"},
    **{(0x0008, 0x0050): "account", (0x0020, 0x0010): "account", (0x0038, 0x0010): "account"},
    **{(0x0040, 0x2016): "account", (0x0040, 0x2017): "account", (0x0040, 0x0009): "account"},
    **{(0x0020, 0x000D): "account", (0x0020, 0x000E): "account", (0x0008, 0x0018): "account"},
    **{(0x0040, 0x0253): "account", (0x0040, 0x1001): "account"},
    # the device
    (0x0018, 0x1000): "device",
}
# A tag ("(0010,0010)", "0010,0010", "00100010"), then on the same line the value: in
# brackets (dcmdump), in double quotes, in single quotes after the type and a colon
# (pydicom: "Patient's Name  PN: 'DOE^JANE'"), or bare after the type (and a count).
_GROUP_ELEMENT = r"\(?([0-9A-Fa-f]{4}),?[ ]?([0-9A-Fa-f]{4})\)?"
# DICOM's value representations: a bare value follows one of them, not any capitals ("ID").
_VR = (
    "AE|AS|AT|CS|DA|DS|DT|FD|FL|IS|LO|LT|OB|OD|OF|OL|OV|OW|PN|SH|SL|SQ|SS|ST|SV|TM|UC|UI|UL|UN"
    "|UR|US|UT|UV"
)
_ATTRIBUTE = re.compile(
    rf"(?<![\w,]){_GROUP_ELEMENT}(?![\w,])[^\[\"\r\n]{{0,80}}?"
    r"(?:\[([^\]\r\n]{1,256})\]|\"([^\"\r\n]{1,256})\"|[A-Z]{2}:[ ]?'([^'\r\n]{1,256})'"
    rf"|(?<=[ \t])(?:{_VR}):?[ \t]+(?:[0-9]{{1,3}}[ \t]+)?"
    r"([^\s\[\"'#][^#\r\n]{0,255}))"  # greedy, trimmed after: a lazy run is retried
)
_BARE_VRS = (" PN ", " LO ", " DA ", " SH ", " AS ", " UI ", " CS ")
_TAG = re.compile(
    rf"\([0-9A-Fa-f]{{4}},[ ]?[0-9A-Fa-f]{{4}}\)|(?<![\w,])[0-9A-Fa-f]{{8}}[ \t]+(?:{_VR})[ \t]"
)
# A name's parts that say what someone is, not who: they stay readable.
_TITLES = frozenset(
    {"dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "prof", "md", "m.d.", "jr", "sr"}
)
_AGE = re.compile(r"0*([0-9]{1,3})[YMWD]?")


def entity_of(tag: str) -> str | None:
    """The entity of an attribute by its tag as DICOM JSON keys it ("00100010")."""
    if len(tag) != 8:
        return None
    try:
        return _TAGS.get((int(tag[:4], 16), int(tag[4:], 16)))
    except ValueError:
        return None


def looks_like_dicom(text: str) -> bool:
    # Substring searches first: the regex tried at every character costs more. Every tag
    # read here is in group 00xx or 40xx; a bare one stands before its type.
    maybe = "(00" in text or "(40" in text or any(vr in text for vr in _BARE_VRS)
    return maybe and bool(_TAG.search(text))


def find(text: str) -> list[Finding]:
    """Findings in the DICOM attributes of `text`, sorted."""
    found: list[Finding] = []
    for attribute in _ATTRIBUTE.finditer(text):
        entity = _TAGS.get((int(attribute.group(1), 16), int(attribute.group(2), 16)))
        if entity is None:
            continue
        group = next(g for g in (3, 4, 5, 6) if attribute.group(g) is not None)
        start, value = attribute.start(group), attribute.group(group)
        if entity == "name":
            found += _name_parts(value, start)
            continue
        if entity == "age_over_89":
            age = _AGE.fullmatch(value.strip())
            if age is None or int(age.group(1)) < 90 or value.strip()[-1:] not in "Y0123456789":
                continue
        if (finding := trimmed(entity, value, start)) is not None:
            found.append(finding)
    return found


def _name_parts(value: str, start: int) -> list[Finding]:
    """Each part of a person's name ("family^given^middle^prefix^suffix", its other
    writings after "="), but titles and degrees."""
    found = []
    at = start
    for piece in re.split(r"([\^=])", value):
        title = piece.strip().lower() in _TITLES
        if piece not in ("^", "=") and not title and (finding := trimmed("name", piece, at)):
            found.append(finding)
        at += len(piece)
    return found
