"""Finding, in free text, the values a field rule marked elsewhere in the same answer.

A clinical note repeats the patient's name (or just the first name), the birth date, the
phone number: no pattern could know them, but the answer's own `name` field does. Values
are matched as runs of whole words in any case, so `555 010 0101` is found for
`(555) 010-0101` and `ADA` for `Ada`. Matching word by word, rather than compiling one
regex per answer, keeps the cost of an answer with thousands of marked values linear."""

from __future__ import annotations

import bisect
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from extproc.masking.findings import Finding
from extproc.masking.names import title_or_credential

LiteralFinder = Callable[[str], list[Finding]]
Term = tuple[str, str | None]  # entity, and the whole name a part stands for

# Words as runs of letters and digits: "_" joins words in file names and keys
# ("Okafor_Ada"), it does not make one.
_WORD = re.compile(r"[^\W_]+")
_NAME_PARTS = re.compile(r"[\s,\u2010-\u2014\u2212-]+")  # and the Unicode dashes; "LAST,FIRST"
_MIN_LITERAL = 3  # shorter marked values ("Al", "12") would mask ordinary words
_NAME_ENTITIES = frozenset({"name"})
_LOCAL_WORDS = 8  # terms up to this long are checked against the words read at the spot


def literal_finder(known: Mapping[str, Iterable[str]]) -> LiteralFinder | None:
    """A finder for these marked values (entity -> values), or None when there are none.
    Each part of a name is a term too: a note may say just "Alice"."""
    terms: dict[tuple[str, ...], Term] = {}
    parts: dict[tuple[str, ...], set[str]] = defaultdict(set)  # part -> whole names
    for entity, values in known.items():
        for value in values:
            if len(value.strip()) >= _MIN_LITERAL:
                terms.setdefault(_words(value), (entity, None))
            if entity in _NAME_ENTITIES:
                # A part that starts lowercase is a particle ("van", "de"), unless the whole
                # name is written so; scripts without case have none to tell.
                lower = value.islower()
                # Written lowercase, a name has parts only if it has spaces: "lab-results"
                # is a slug, "ada okafor-smith" a name.
                spaced = len(value.split()) > 1  # any whitespace inside, not at the ends
                pieces = _NAME_PARTS.split(value) if not lower or spaced else [value]
                for part in pieces:
                    # A marked name's title or credential ("Dr. Ada Okafor, MD"): as a part,
                    # it would mask every "Dr." of the answer.
                    if title_or_credential(part):
                        continue
                    if len(part.strip()) >= _MIN_LITERAL and (lower or not part[0].islower()):
                        parts[_words(part)].add(value)
                        terms.setdefault(_words(part), (entity, None))
    for part, named in parts.items():
        entity = terms[part][0]
        # "Ada" found alone (after "Patient:") is not a second person beside "Ada Okafor".
        wholes = {whole for whole in named if _words(whole) != part}
        whole = next(iter(wholes), "")
        if entity in _NAME_ENTITIES and len(wholes) == 1:
            # One person in this answer has that first (or last) name: the same pseudonym.
            terms[part] = (entity, whole)
    terms.pop((), None)
    if not terms:
        return None
    # The sizes (in words) of the terms each word starts, longest first: most words start
    # none, and a word that starts thousands of names ("John ...") costs one lookup per size.
    sizes: dict[str, list[int]] = defaultdict(list)
    for term in terms:
        if len(term) not in sizes[term[0]]:
            sizes[term[0]].append(len(term))
    for lengths in sizes.values():
        lengths.sort(reverse=True)
    firsts = frozenset(sizes)

    def find(text: str) -> list[Finding]:
        if not text.isascii():
            # Folding may change a text's length ("ß" -> "ss") or where its words end
            # ("İ" gains a combining dot): word by word, each folded on its own.
            return _find_by_tokens(text, terms, sizes)
        folded = text.lower()  # for ASCII, the same as casefold, character for character
        # Most texts hold none of the first words: one pass in C says so.
        present = firsts.intersection(_WORD.findall(folded))
        return _find_in_folded(folded, present, terms, sizes) if present else []

    return find


def _find_in_folded(
    folded: str,
    present: Iterable[str],
    terms: Mapping[tuple[str, ...], Term],
    sizes: Mapping[str, list[int]],
) -> list[Finding]:
    """Only where the first words occur (found with `str.find`), left to right, the longest
    term at each, then on past it. The words after an occurrence are read from it when the
    terms are short; for long ones, from the whole text tokenised once, so that a long term
    costs C-speed slicing at each occurrence, not a fresh tokenisation."""
    starts = sorted((at, first) for first in present for at in _occurrences(folded, first))
    whole: _Tokens | None = None
    found: list[Finding] = []
    reach = 0
    for at, first in starts:
        if at < reach:  # inside a value already found
            continue
        lengths = sizes[first]
        if lengths[0] <= _LOCAL_WORDS:
            tokens, i = _Tokens(folded, at, lengths[0]), 0
        else:
            whole = whole or _Tokens(folded)
            tokens, i = whole, bisect.bisect_left(whole.starts, at)
        for size in lengths:
            if i + size > len(tokens.words):  # a shorter slice could equal a shorter term
                continue
            term = terms.get(tuple(tokens.words[i : i + size]))
            if term is not None:
                reach = tokens.ends[i + size - 1]
                found.append(Finding(term[0], at, reach, term[1]))
                break
    return found


class _Tokens:
    """A text's words (from `start`, at most `limit`), with where each starts and ends."""

    def __init__(self, text: str, start: int = 0, limit: int | None = None) -> None:
        matches = list(itertools.islice(_WORD.finditer(text, start), limit))
        self.words = [m.group() for m in matches]
        self.starts = [m.start() for m in matches]
        self.ends = [m.end() for m in matches]


def _occurrences(folded: str, word: str) -> Iterator[int]:
    """Where `word` stands as a whole word."""
    at = folded.find(word)
    while at >= 0:
        if _whole_word(folded, at, at + len(word)):
            yield at
        at = folded.find(word, at + len(word))


def _whole_word(text: str, start: int, end: int) -> bool:
    """Not part of a longer word (as `_WORD` reads words: letters and digits)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum())


def _find_by_tokens(
    text: str, terms: Mapping[tuple[str, ...], Term], sizes: Mapping[str, list[int]]
) -> list[Finding]:
    """Word by word, each folded on its own."""
    tokens = [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
    words = [t[0] for t in tokens]
    found: list[Finding] = []
    i = 0
    while i < len(tokens):
        for size in sizes.get(words[i], ()):
            if i + size > len(words):  # a shorter slice could equal a shorter term
                continue
            term = terms.get(tuple(words[i : i + size]))
            if term is not None:
                found.append(Finding(term[0], tokens[i][1], tokens[i + size - 1][2], term[1]))
                i += size
                break
        else:
            i += 1
    return found


def _words(value: str) -> tuple[str, ...]:
    """Split, then folded: as `_find_by_tokens` reads the text."""
    return tuple(word.casefold() for word in _WORD.findall(value))
