"""vCards in text (RFC 6350: a contact exported from a directory or a phone): the
structured name, the formatted name, the birthday and the address's street, city and
postal code, by property and position. Numbers and e-mail addresses are left to the
pattern detectors, which know their shapes."""

from __future__ import annotations

import re
from collections.abc import Callable

from extproc.masking.findings import Finding, trimmed

# A content line: the property's name, its parameters, a colon, the value.
_LINE = re.compile(r"(?im)^[ \t]*(?:item[0-9]+\.)?(N|FN|NICKNAME|BDAY|ADR)(?:;[^:\r\n]*)?:(.*)$")
# ADR's components: PO box, extended address, street, locality, region, postal code, country.
_ADDRESS = {2: "street_address", 3: "city", 5: "zip"}


def looks_like_vcard(text: str) -> bool:
    return "BEGIN:VCARD" in text.upper()


def find(text: str) -> list[Finding]:
    """Findings in the vCards of `text`, sorted."""
    found: list[Finding] = []
    for line in _LINE.finditer(text):
        name, value, at = line.group(1).upper(), line.group(2), line.start(2)
        if name == "ADR":
            found += _parts(value, at, lambda n: _ADDRESS.get(n))
        elif name == "N":  # family; given; additional; prefixes; suffixes
            found += _parts(value, at, lambda n: "name" if n in (0, 1, 2) else None)
        elif name in ("FN", "NICKNAME"):
            found += _parts(value, at, lambda n: "name", separator=None)
        else:
            found += _parts(value, at, lambda n: "date", separator=None)
    return found


def _parts(
    value: str, at: int, entity_of: Callable[[int], str | None], separator: str | None = ";"
) -> list[Finding]:
    """The value's components (split at `separator`, or whole) that `entity_of` names."""
    found = []
    pieces = value.split(separator) if separator else [value]
    for number, piece in enumerate(pieces):
        entity = entity_of(number)
        if entity is not None and (finding := trimmed(entity, piece, at)) is not None:
            found.append(finding)
        at += len(piece) + 1
    return found
