"""Grids in text: CSV with or without its header row, tab-separated rows, tables, lists of
one item a line (`tables.grids` finds them). A column holds one kind of value, so
what the detectors found in most of its cells says what the others are:

- where most cells are one entity, whole, the other cells of the same shape are that
  entity too: the name no dictionary knows stands where the others stand, the street no
  pattern reads where the other streets are;
- in a grid of people (one of its columns holds names), a column of numbers of five digits
  or more holds their identifiers (ZIP codes when they have a ZIP's length), and a column
  of words beside a street or a ZIP holds their cities.

A column that is not of names is never masked as names: "Asthma" in a column of diagnoses
stays, whatever the column beside it holds."""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable

from extproc.masking import tables
from extproc.masking import validators as v
from extproc.masking.findings import Finding

Span = tuple[int, int]
# A cell's shape: what the found cells of a column share with the others.
_SHAPES = (
    ("digits", re.compile(r"[0-9]+(?:[- ][0-9]+)*")),
    ("numbered", re.compile(r"[0-9]+[A-Za-z]?[ \t,]+[^\W\d_].*")),  # "125 chemin de la Paix"
    ("words", re.compile(r"[^\W\d_][^\d]*")),
)
_MAX_WORDS = 4  # a city's or a name's cell: a few words
_ZIP_LENGTHS = frozenset({5, 6, 9})  # US ZIP, ZIP+4, and six-digit postcodes (PIN, Nigeria)
_MIN_IDENTIFIER = 5  # digits: fewer are counts, ages, scores
# Where a finding stands as a cell does: alone between line breaks, separators, bullets.
_CELL_EDGES = frozenset({"", "\n", "\r", ",", "\t", "|"})


def grid_findings(
    text: str, findings: list[Finding], could_be_name: Callable[[str], bool]
) -> list[Finding]:
    """What the grids of `text` say about the cells the detectors left: `findings` are
    the detectors' (sorted, disjoint). Read only where two names stand as cells: most
    texts have none, and are not split into grids."""
    if sum(1 for f in findings if f.entity == "name" and _cell_like(text, f)) < 2:
        return []
    starts = [f.start for f in findings]
    found: list[Finding] = []
    for grid in tables.grids(text):
        kinds = [[_entity_of(start, end, findings, starts) for start, end in c] for c in grid]
        cells = [[text[start:end] for start, end in column] for column in grid]
        entities = [_majority(k) for k in kinds]
        inferred: list[str | None] = [None] * len(grid)
        if "name" in entities:  # a grid of people
            # (a column with a value found in part, "Vasquez, Shane MD", is left as it is)
            partial = [
                any(
                    kind is None and _touched(start, end, findings, starts)
                    for (start, end), kind in zip(column, column_kinds, strict=True)
                )
                for column, column_kinds in zip(grid, kinds, strict=True)
            ]
            inferred = _people_columns(cells, entities, partial)
        for i, column in enumerate(grid):
            if entities[i] == "name":
                named = [kind == "name" for kind in kinds[i]]
                added = column_names(cells[i], named, could_be_name)
            elif entities[i] is not None:
                added = _same_shape(cells[i], kinds[i], entities[i])
            else:
                added = [j for j, cell in enumerate(cells[i]) if cell] if inferred[i] else []
            entity = entities[i] or inferred[i]
            found += [Finding(entity, *column[j]) for j in added if entity is not None]
    return found


def column_names(
    cells: list[str], named: list[bool], could_be_name: Callable[[str], bool]
) -> list[int]:
    """Which cells of a column are names the detectors did not find: where most cells are
    names whole, the others that could be one are names too, but never a word of the
    vocabulary ("Asthma")."""
    count = sum(named)
    if count < 2 or 2 * count < len(cells):
        return []
    return [i for i, cell in enumerate(cells) if not named[i] and could_be_name(cell)]


def _entity_of(start: int, end: int, findings: list[Finding], starts: list[int]) -> str | None:
    """The entity of the findings that cover start..end whole (the first starts at or
    before it, the last ends at or after it, all of one entity), or None."""
    if start >= end:
        return None
    first = bisect.bisect_right(starts, start) - 1
    last = bisect.bisect_left(starts, end) - 1
    if first < 0 or last < first or findings[first].end <= start or findings[last].end < end:
        return None
    entities = {f.entity for f in findings[first : last + 1]}
    return entities.pop() if len(entities) == 1 else None


def _touched(start: int, end: int, findings: list[Finding], starts: list[int]) -> bool:
    """Whether any finding overlaps start..end."""
    last = bisect.bisect_left(starts, end) - 1
    return last >= 0 and findings[last].end > start


def _majority(kinds: list[str | None]) -> str | None:
    """The entity most cells of a column were found to be, if most were, and two at least."""
    counted = Counter(k for k in kinds if k is not None)
    if not counted:
        return None
    entity, count = counted.most_common(1)[0]
    return entity if count >= 2 and 2 * count >= len(kinds) else None


def _same_shape(cells: list[str], kinds: list[str | None], entity: str) -> list[int]:
    """The cells not found whose shape is the found cells' own."""
    shapes = Counter(
        _shape(cell) for cell, kind in zip(cells, kinds, strict=True) if kind == entity
    )
    shape = shapes.most_common(1)[0][0]
    if shape is None:
        return []
    return [i for i, cell in enumerate(cells) if kinds[i] is None and _shape(cell) == shape]


def _people_columns(
    cells: list[list[str]], entities: list[str | None], partial: list[bool]
) -> list[str | None]:
    """What the columns of a grid of people in which nothing was found hold, by their shape
    and their neighbours: numbers of five digits or more are their identifiers, or their
    ZIP codes when a ZIP's length; words beside a street or a ZIP their city; four digits
    after a city its postcode. None where a column says nothing."""
    shapes = [{_shape(cell) for cell in column if cell} for column in cells]
    open_ = [entity is None and not part for entity, part in zip(entities, partial, strict=True)]
    inferred: list[str | None] = [None] * len(cells)
    for i, column in enumerate(cells):
        if open_[i] and shapes[i] == {"digits"}:
            lengths = {len(v.digits_of(cell)) for cell in column if cell}
            if min(lengths) >= _MIN_IDENTIFIER:
                inferred[i] = "zip" if lengths <= _ZIP_LENGTHS else "mrn"
    known = [entity or guess for entity, guess in zip(entities, inferred, strict=True)]
    for i, column in enumerate(cells):
        before = known[i - 1] if i > 0 else None
        after = known[i + 1] if i + 1 < len(known) else None
        few_words = all(len(cell.split()) <= _MAX_WORDS for cell in column)
        beside = before == "street_address" or after == "zip"
        if open_[i] and shapes[i] == {"words"} and few_words and beside:
            inferred[i] = known[i] = "city"
    for i, column in enumerate(cells):
        after_city = i > 0 and known[i - 1] == "city"
        lengths = {len(v.digits_of(cell)) for cell in column if cell}
        if open_[i] and after_city and shapes[i] == {"digits"} and lengths <= {4, 5}:
            inferred[i] = "zip"
    return inferred


def _shape(cell: str) -> str | None:
    for name, pattern in _SHAPES:
        if pattern.fullmatch(cell):
            return name
    return None


def _cell_like(text: str, finding: Finding) -> bool:
    """Whether a finding stands as a grid's cell or a list's item does."""
    before = text[max(0, finding.start - 8) : finding.start].rstrip(' "*-\u2022.)0123456789')
    after = text[finding.end : finding.end + 4].lstrip(' "')
    return before[-1:] in _CELL_EDGES and after[:1] in _CELL_EDGES
