"""Tables and key-value lists in text, as tools print records: a markdown or CSV column
whose header the key lexicon knows ("Patient Name", "MRN", "Zip Code", "Member ID", "Age")
has PHI in every row, and so has a line's value after such a key ("PAT_DOB | 19450411",
"city: Muskogee", "DL_NUM = M914-9455"), whatever it looks like, as a JSON key's would."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from extproc.masking.findings import Finding
from extproc.masking.lexicon import BuiltinKeys, normal_key
from extproc.masking.names import CREDENTIALS, TITLES

# Possessive: a rule is read once, never re-read from every space of a long line.
_MARKDOWN_RULE = re.compile(r"\s*+\|?\s*+:?-{2,}+:?\s*+(?:\|\s*+:?-{2,}+:?\s*+)*+\|?\s*+")
# A name's cell without the title before it and the credentials after it ("Dr. Campbell",
# "Okeke, Uche PhD"): those are no one's name, and the reader needs them.
_TITLE_PREFIX = re.compile(rf"(?:{TITLES})\.?[ \t]+")
_CREDENTIAL_SUFFIX = re.compile(rf",?[ \t]*(?:{CREDENTIALS})(?![\w-])[ \t]*$")
# "KEY | value" (a two-column dump), and "Key: value" or "key=value" at a line's start or
# after a tab or a gap of two spaces; the value runs to the next such gap.
_KEY = r"[A-Za-z][A-Za-z0-9_./#'() -]{0,38}?[A-Za-z0-9#)]"
# (or "KEY|value" and "KEY<tab>value", as EHR exports write their records)
_PIPE_PAIR = re.compile(
    rf"[ \t]*+(?P<key>{_KEY})(?:[ \t]*+\|[ \t]*+|\t[ \t]*+)(?P<value>[^|\t]*+)\|?"
)
# A pair starts once per line or gap (never inside a run of spaces, which would make the
# search quadratic), and its value is bounded.
_PAIR = re.compile(
    rf"(?:^[ \t]*|(?<=\t)(?=\S)|(?<=  )(?=\S))(?:[-*\u2022][ \t]+)?(?P<key>{_KEY})"
    r"[ \t]{0,8}[:=][ \t]{0,8}(?P<value>[^\t]{1,256}?)(?=\t|  |[ \t]*$)"
)
# The part of a key-value line's value that is the value: a name up to what follows it
# (a relation in brackets, a phone, credentials), a place up to a comma, an address or an
# employer up to a dash or a bracket, anything else its first token (digit groups joined).
_FIRST_TOKEN = re.compile(r"(?P<v>[^\s,;]+(?:[ ][0-9][^\s,;]*)*)")
_VALUE_SHAPES = {
    "name": re.compile(
        rf"(?:(?:{TITLES})\.?[ \t]+)?(?P<v>[^\W\d_][^\d(\[<;|/+]*?)"
        rf"(?=[ \t]*(?:[(\[<;:|/+0-9]|,?[ \t]*(?:{CREDENTIALS})(?![\w-])|-[ \t]|$)"
        # a sentence's end, not an initial's ("Ada B. Okafor"); a comma before prose
        r"|(?<=[a-z]{2})\.(?:[ \t]|$)|,[ \t]*[a-z])"
    ),
    "city": re.compile(r"(?P<v>[^\W\d_][^\d,;(\[]*?)(?=[ \t]*(?:[,;(\[0-9]|-[ \t]|$))"),
    "street_address": re.compile(r"(?P<v>[^;(\[]+?)(?=[ \t]*(?:[;(\[]|[ \t]-[ \t]|$))"),
    "employer": re.compile(r"(?P<v>[^;(\[]+?)(?=[ \t]*(?:[;(\[]|[ \t]-[ \t]|$))"),
}
# logfmt, as audit logs write it: key=value or key="a value", anywhere on a line.
_LOGFMT = re.compile(
    r"(?<![^ \t])(?P<key>[A-Za-z][A-Za-z0-9_.-]{0,40})=(?P<value>\"[^\"\n]*\"|[^\s\"]+)"
)
# A line in capitals whose fields are parted by gaps: a key of one or two words, a value.
_CAPS_PAIR = re.compile(
    r"(?:^[ \t]*|(?<=  )(?=\S))(?P<key>[A-Z][A-Z#]*(?: [A-Z][A-Z#]*)??) "
    r"(?P<value>\S(?:(?! {2}).){0,255})"
)
# A "key": value pair of JSON that could not be read as JSON (cut short, as servers cut a
# long output): its value is masked by its key, as in a document that could. A string may
# end unclosed where the text was cut.
_JSON_PAIR = re.compile(
    r'"(?P<key>[A-Za-z_$@][\w.$@ -]{0,63})"[ \t\r\n]*:[ \t\r\n]*'
    r'(?:"(?P<string>(?:[^"\\\r\n]|\\.){1,512})|(?P<number>-?[0-9][0-9.eE+-]{0,31}))'
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LONGEST_VALUE = 256  # characters of a value read for its shape
_LONGEST_NAME = 80  # a name's value or cell longer than this is masked whole
_LONGEST_LINE = 2048  # characters of a line read as key-value pairs
# Entities whose values are numbers, whatever else they hold.
_NUMBERS = frozenset(
    {"mrn", "account", "health_plan", "license", "device", "vehicle", "ssn", "phone", "fax"}
    | {"zip", "npi", "ip", "date", "age_over_89"}
)
# A grid (`grids`): rows cut by the first of these a line holds, at least this many of them.
_GRID_SEPARATORS = ("\t", "|", ",")
_MIN_GRID_ROWS = 3
# A short line alone, after its bullet or number if it has one ("- Ada Okafor", "2) Ada"),
# but not the label that heads the list ("Attendees:").
_LIST_ITEM = re.compile(
    r"[ \t]*(?:(?:[-*\u2022]|[0-9]{1,3}[.)])[ \t]+)?(?P<item>\S.{0,78}?)(?<!:)[ \t]*"
)
_LONGEST_ITEM = 96
_HEADER_CELL = re.compile(r"[^\W\d_][\w #/.()'-]{0,40}")  # words, not values


def find(text: str, keys: BuiltinKeys) -> list[Finding]:
    """The cells of PHI columns in the tables of `text`, and the values of PHI keys in its
    key-value lines, sorted."""
    found: list[Finding] = []
    lines = _lines(text)
    # Each line's "Key: value" pairs, read once: their keys together say whether the text's
    # "Name" is a person's, and each line's are then masked.
    pairs = [_colon_pairs(line) for _, line in lines]
    around = keys.person_context(m.group("key") for line in pairs for m in line)
    i = 0
    while i < len(lines):
        taken = _markdown(lines, i, keys, found) or _delimited(lines, i, keys, found)
        if not taken:
            found.extend(_pairs(lines[i], pairs[i], keys, around))
        i += max(taken, 1)
    return sorted(found, key=lambda f: f.start)


def _markdown(lines: list[tuple[int, str]], i: int, keys: BuiltinKeys, found: list[Finding]) -> int:
    """A markdown table starting at line i: its header, its rule, its rows. Returns the
    lines it took (0 if none starts there)."""
    if (
        i + 1 >= len(lines)
        or "|" not in lines[i][1]
        or not _MARKDOWN_RULE.fullmatch(lines[i + 1][1])
    ):
        return 0
    header = [text for _, _, text in _pipe_cells(*lines[i])]
    entities = _columns(header, keys)
    j = i + 2
    while j < len(lines) and "|" in lines[j][1]:
        for column, (start, end, _) in enumerate(_pipe_cells(*lines[j])):
            if column < len(entities) and (entity := entities[column]) is not None:
                found.extend(_cell(entity, start, end, lines[j], keys))
        j += 1
    return j - i


def _delimited(
    lines: list[tuple[int, str]], i: int, keys: BuiltinKeys, found: list[Finding]
) -> int:
    """CSV or tab-separated rows under a header of words, at least one row as wide."""
    line = lines[i][1]
    separator = "\t" if "\t" in line else ","
    # A header is a few short words: most lines of prose fail this without being parsed.
    if separator not in line or len(line) > 1024 or i + 1 >= len(lines):
        return 0
    if any(len(cell) > 48 for cell in line.split(separator)):
        return 0
    header = [text for _, _, text in _delimited_cells(lines[i][0], line, separator)]
    if len(header) < 2 or not all(_HEADER_CELL.fullmatch(h.strip('" ')) for h in header if h):
        return 0
    entities = _columns(header, keys)
    j = i + 1
    while j < len(lines) and lines[j][1].strip():
        cells = list(_delimited_cells(*lines[j], separator))
        if len(cells) != len(header):
            break
        for column, (start, end, _) in enumerate(cells):
            if (entity := entities[column]) is not None:
                found.extend(_cell(entity, start, end, lines[j], keys))
        j += 1
    return j - i if j > i + 1 else 0


def _pairs(
    line: tuple[int, str],
    colon_pairs: list[re.Match[str]],
    keys: BuiltinKeys,
    around: Mapping[str, Any],
) -> Iterator[Finding]:
    """The PHI values of a key-value line: "KEY | value", or "Key: value" and "key=value"
    pairs, several to a line when tabs or wide gaps part them."""
    at, text = line
    if len(text) > _LONGEST_LINE:  # no record's line; its labelled values are the detectors'
        return
    if (pair := _PIPE_PAIR.fullmatch(text)) is not None:
        matches = [pair]
    elif ":" in text or "=" in text:
        matches = [*colon_pairs, *(_LOGFMT.finditer(text) if "=" in text else ())]
    elif text.isupper() and "  " in text.strip():  # a face sheet: "NAME ADA OKAFOR   SEX F"
        pairs = list(_CAPS_PAIR.finditer(text))
        around = around or keys.person_context(m["key"] for m in pairs)
        # "PATIENT REGISTRATION": a heading's first word is no key of a value
        matches = [
            m
            for m in pairs
            if keys.entity_at((m["key"],), around) and normal_key(m["key"]) != "patient"
        ]
    else:
        return
    for match in matches:
        entity = keys.entity_at((match.group("key"),), around)
        if entity is None:
            continue
        # Bounded: a value's shape regexes look ahead at every step, and a line is the
        # server's to make as long as it likes.
        value = match.group("value").rstrip(" \t").strip('"')[:_LONGEST_VALUE]
        if "  " in value:  # a gap ends a value: no shape reads on through a run of spaces
            value = value[: value.index("  ")]
        # A line's value may run on into prose ("Fax: 555-0100 - records sent"): only the
        # value's own shape is taken.
        span = _VALUE_SHAPES.get(entity, _FIRST_TOKEN).match(value)
        if span is None or not span.group("v") or not keys.applies(entity, span.group("v")):
            continue
        if entity in _NUMBERS and not any(c.isdigit() for c in span.group("v").split()[0]):
            continue  # a number with no digit ("TELEPHONE ENCOUNTER") is a heading
        quote = 1 if match.group("value").startswith('"') else 0
        start = at + match.start("value") + quote + span.start("v")
        yield Finding(entity, start, start + len(span.group("v")))


def json_pairs(
    text: str, keys: BuiltinKeys | None, field_rule: Callable[[str], str | None]
) -> list[Finding]:
    """The values of PHI keys in JSON text that is not JSON (see `_JSON_PAIR`): by the
    operator's field rule for the key (whatever the value), else by the built-in lexicon."""
    if '":' not in text and '" :' not in text:
        return []
    pairs = list(_JSON_PAIR.finditer(text))
    around = keys.person_context(m["key"] for m in pairs) if keys is not None else {}
    found = []
    for pair in pairs:
        group = "string" if pair["string"] is not None else "number"
        entity = field_rule(pair["key"])
        if entity is None and keys is not None:
            entity = keys.entity_at((pair["key"],), around)
            entity = entity if entity and keys.applies(entity, pair[group]) else None
        if entity is not None:
            found.append(Finding(entity, pair.start(group), pair.end(group)))
    return found


def grids(text: str) -> list[list[list[tuple[int, int]]]]:
    """The grids in `text`, each as its columns, each column as its cells' spans (without
    spaces and quotes): three or more lines in a row cut by one separator (a tab, a pipe, a
    comma) into the same number of cells, two or more; or three or more short lines in a
    row with none, a list. CSV with no header row is one; so is a table whose header the
    lexicon does not know, and a list of attendees. What a column holds is for the reader
    to judge (`grids.grid_findings`)."""
    found: list[list[list[tuple[int, int]]]] = []
    run: list[list[tuple[int, int]]] = []  # the rows of the grid being read
    shape: tuple[str, int] | None = None  # its separator and width
    for at, line in [*_lines(text), (len(text), "")]:
        separator, cells = _grid_row(at, line)
        this = (separator, len(cells)) if cells else None
        if this is not None and this == shape:
            run.append(cells)
            continue
        if len(run) >= _MIN_GRID_ROWS:
            found.append([list(column) for column in zip(*run, strict=True)])
        run, shape = ([cells] if cells else []), this
    return found


def _grid_row(at: int, line: str) -> tuple[str, list[tuple[int, int]]]:
    """A line's separator and its cells, if it can be a grid's row."""
    separator = next((s for s in _GRID_SEPARATORS if s in line), "")
    if not separator:  # a list's item, one a line: a grid of one column
        item = _LIST_ITEM.fullmatch(line) if len(line) <= _LONGEST_ITEM else None
        return separator, [(at + item.start("item"), at + item.end("item"))] if item else []
    if len(line) > _LONGEST_LINE or _MARKDOWN_RULE.fullmatch(line):
        return separator, []
    split = _pipe_cells(at, line) if separator == "|" else _delimited_cells(at, line, separator)
    cells = []
    for start, end, _ in split:
        value = line[start - at : end - at]
        inner = value.strip().strip('"').strip()
        offset = start + value.index(inner) if inner else start
        cells.append((offset, offset + len(inner)))
    return separator, cells if len(cells) >= 2 else []


def _colon_pairs(line: str) -> list[re.Match[str]]:
    """A line's "Key: value" and "key=value" pairs (none in a line longer than a record's)."""
    if len(line) > _LONGEST_LINE or not (":" in line or "=" in line):
        return []
    if "\t" not in line and "  " not in line:  # a pair can only open the line
        return [pair] if (pair := _PAIR.match(line)) is not None else []
    return list(_PAIR.finditer(line))


def _columns(header: list[str], keys: BuiltinKeys) -> list[str | None]:
    """Each column's entity, read from its header as a key (the headers together are the
    object that says whether "Name" is a person's)."""
    names = [h.strip(' "*`') for h in header]
    person = keys.person_context(names)
    return [keys.entity_at((name,), person) if name else None for name in names]


def _cell(
    entity: str, start: int, end: int, line: tuple[int, str], keys: BuiltinKeys
) -> Iterator[Finding]:
    at, text = line
    value = text[start - at : end - at]
    inner = value.strip().strip('"').strip()
    if not inner or inner in ("-", "—", "N/A", "n/a") or not keys.applies(entity, inner):
        return
    offset = start + value.index(inner)
    if entity == "name" and (span := name_span(inner)) is not None:
        offset, inner = offset + span[0], inner[span[0] : span[1]]
    yield Finding(entity, offset, offset + len(inner))


def name_span(value: str) -> tuple[int, int] | None:
    """Where the name is in a value that holds one with its title and credentials ("Dr.
    Ada Okafor, MD"): those stay readable, they are nobody's. A value longer than any
    name is masked whole (and its regex, quadratic in length, never runs on it)."""
    if len(value) > _LONGEST_NAME:
        return None
    start = title.end() if (title := _TITLE_PREFIX.match(value)) else 0
    end = len(value)
    while (credential := _CREDENTIAL_SUFFIX.search(value, start, end)) is not None:
        end = credential.start()
    return (start, end) if start < end else None


def _pipe_cells(at: int, line: str) -> Iterator[tuple[int, int, str]]:
    """A markdown row's cells as (start, end, text), outer pipes dropped."""
    body_start = line.index("|") + 1 if line.lstrip().startswith("|") else 0
    body_end = line.rstrip().rindex("|") if line.rstrip().endswith("|") else len(line)
    position = body_start
    for piece in line[body_start:body_end].split("|"):
        yield at + position, at + position + len(piece), piece.strip()
        position += len(piece) + 1


def _delimited_cells(at: int, line: str, separator: str) -> Iterator[tuple[int, int, str]]:
    """A CSV row's cells as (start, end, text); a quoted cell may hold the separator."""
    if '"' not in line:  # most rows: split in C, not read character by character
        position = 0
        for piece in line.split(separator):
            yield at + position, at + position + len(piece), piece.strip()
            position += len(piece) + 1
        return
    start, quoted = 0, False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield at + start, at + index, line[start:index].strip()
            start = index + 1
    yield at + start, at + len(line), line[start:].strip()


def _lines(text: str) -> list[tuple[int, str]]:
    """Each line with its offset, without its line break ("\r\n", "\n", or "\r" alone, as
    old exports and HL7 end them)."""
    lines, at = [], 0
    for brk in _LINE_BREAK.finditer(text):
        lines.append((at, text[at : brk.start()]))
        at = brk.end()
    lines.append((at, text[at:]))
    return lines
