"""XML in text (a C-CDA document, an NCPDP message, an XML API's answer): an element's
value is PHI by the element's name, read with the key lexicon as a JSON key is
(`<family>`, `<city>`, `<postalCode>`, `<birthTime value="19470312"/>`), and a `<name>` is a
person's by the element around it (`<patient>`, `<assignedPerson>`, not
`<representedOrganization>`). An `<id extension="…">` of a person is a record number.
Markup escaped as text (`&lt;family&gt;Okafor&lt;/family&gt;`) is read the same way.

Read tolerantly, tag by tag: an answer holds fragments, cut documents and text around them,
which an XML parser would refuse whole. Nothing here expands entities or follows
references; a value is masked where it stands."""

from __future__ import annotations

import re
from collections.abc import Callable

from extproc.masking.findings import Finding, trimmed
from extproc.masking.lexicon import BuiltinKeys

_NAME = r"[A-Za-z_][\w.-]{0,63}"
# A tag: closing or not, its prefix dropped, its attributes, self-closing or not.
_TAG = re.compile(rf"<(/?)(?:{_NAME}:)?({_NAME})((?:\s[^<>]{{0,1024}})?)>")
# The same tag written as text, its markup escaped ("&lt;family&gt;Okafor&lt;/family&gt;"):
# XML quoted in an HTML page, a log line or a JSON string that escaped it.
_ESCAPED_TAG = re.compile(
    rf"&lt;(/?)(?:{_NAME}:)?({_NAME})((?:\s(?:[^<>&]|&(?!gt;)){{0,1024}})?)&gt;"
)
_ATTRIBUTE = re.compile(
    r"""(?<![\w.:-])(value|extension)\s*=\s*"""
    r"""(?:"([^"<>]{1,256})"|'([^'<>]{1,256})'|&quot;([^"<>&]{1,256})&quot;)"""
)
_MAX_DEPTH = 64
# Elements whose `extension` numbers a person: C-CDA's patientRole, assignedEntity, …
_PERSON_ID_PARENTS = ("patient", "person", "guardian", "role", "entity", "subject", "member")


def looks_like_markup(text: str) -> bool:
    return "</" in text or "/>" in text or "&lt;/" in text or "/&gt;" in text


def find(
    text: str, builtin: BuiltinKeys | None, field_rule: Callable[[str], str | None]
) -> list[Finding]:
    """The values of elements and attributes that their names say are PHI, in order."""
    found: list[Finding] = []
    stack: list[str] = []  # the open elements' names, innermost last
    opened: tuple[str, int] | None = None  # the last element opened, where its text starts
    tags = list(_TAG.finditer(text))
    if "&lt;" in text:
        tags = sorted([*tags, *_ESCAPED_TAG.finditer(text)], key=lambda tag: tag.start())
    for tag in tags:
        closing, name, rest = tag.group(1), tag.group(2), tag.group(3)
        if closing:
            if opened is not None and opened[0] == name:  # a leaf: its text is its value
                entity = _entity(stack[:-1], name, builtin, field_rule)
                if entity is not None:
                    _add(found, text, opened[1], tag.start(), entity, builtin)
            while stack and stack.pop() != name:  # tolerant: unclosed elements end too
                pass
            opened = None
            continue
        parent = stack[-1] if stack else ""
        entity = _entity(stack, name, builtin, field_rule)
        for attribute in _ATTRIBUTE.finditer(rest):
            kind = attribute.group(1)
            if kind == "value" and entity is not None:
                _add(found, text, *_span(tag, rest, attribute), entity, builtin)
            elif kind == "extension" and name == "id" and _numbers_person(parent):
                _add(found, text, *_span(tag, rest, attribute), "mrn", builtin)
        if rest.endswith("/"):  # self-closing: no text, nothing opened
            opened = None
            continue
        if len(stack) < _MAX_DEPTH:
            stack.append(name)
        opened = (name, tag.end())
    return found


def _entity(
    stack: list[str],
    name: str,
    builtin: BuiltinKeys | None,
    field_rule: Callable[[str], str | None],
) -> str | None:
    if (entity := field_rule(name)) is not None:
        return entity
    if builtin is None:
        return None
    # The element around it stands for the object holding the key: a `<name>` in a
    # `<patient>` is a person's.
    return builtin.entity_at((*stack[-1:], name), {})


def _numbers_person(parent: str) -> bool:
    lowered = parent.lower()
    return any(word in lowered for word in _PERSON_ID_PARENTS)


def _span(tag: re.Match[str], rest: str, attribute: re.Match[str]) -> tuple[int, int]:
    # in double quotes, in single ones, or in escaped ones
    quoted = next(group for group in (2, 3, 4) if attribute.group(group) is not None)
    start = tag.start(3) + attribute.start(quoted)
    return start, start + len(attribute.group(quoted))


def _add(
    found: list[Finding],
    text: str,
    start: int,
    end: int,
    entity: str,
    builtin: BuiltinKeys | None,
) -> None:
    finding = trimmed(entity, text[start:end], start)
    if finding is None:
        return
    if builtin is None or builtin.applies(entity, text[finding.start : finding.end]):
        found.append(finding)
