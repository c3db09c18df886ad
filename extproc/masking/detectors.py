"""Free-text detectors for the HIPAA Safe Harbor identifiers that have a recognisable shape.

Every detector is a regex branch; all of them, operators' patterns and word lists included,
are compiled into ONE alternation so the text is read in a single pass. A branch may name a
group `v`: the finding is that group (the value after "SSN:", not the label); otherwise it is
the whole match. A branch may carry a validator (`extproc.masking.validators`) that rejects
what only looks right (a card number failing Luhn, an SSN in area 666, February 30).

Speed, with the stdlib engine: branches that can only start a word sit behind one `\\b`, so
the inside of a word costs one check; each branch opens with a character class or literal
(its `lead`), which the engine rejects without entering the branch, so fifty branches cost
little more than one; no branch nests quantifiers over overlapping classes, so nothing
backtracks catastrophically (and the few open-ended ones are bounded, so text such as
"a.a.a.a..." costs linear time).

Before that pass, a native one (`extproc.masking.prefilter`, Hyperscan) reads the text once
for every built-in branch and says which of them can match in it at all; the alternation
then holds those alone (for a clinical note, a handful of some 170; for a short value,
often none). What is found does not change: a test holds the scanner with the native pass
to what it finds without it.

Overlaps: where a branch matches, the later branches whose lead accepts the same character
are tried at that same position too; the scan then goes on after the accepted finding, since
whatever starts inside it would lose to it. The candidates are settled by `_resolve`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from extproc.masking.branches import (
    BUILTIN_ENTITIES,
    CUSTOM_RANK,
    LEAD,
    WORDS_RANK,
    Branch,
    builtin_branches,
    tries,
)
from extproc.masking.findings import Finding
from extproc.masking.prefilter import Prefilter

__all__ = ["BUILTIN_ENTITIES", "PatternSpec", "Scanner", "ScannerSpec", "native_ready"]


@dataclass(frozen=True)
class PatternSpec:
    """An operator's detector from the masking config (MRN formats, plan or licence numbers).

    A group named `v` in the regex marks the part to mask, e.g. `Plan ID:\\s*(?P<v>\\w+)`."""

    entity: str
    regex: str


@dataclass(frozen=True)
class ScannerSpec:
    custom: tuple[PatternSpec, ...] = ()
    # entity -> words or phrases, matched whole-word and case-insensitively
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    builtin: frozenset[str] | None = None  # built-in detectors to enable; None = all
    # Accept SSNs in the 900-999 areas. The SSA never issues them, so real data has none,
    # but fake and test data (the demo server's) use them for exactly that reason.
    ssn_test_areas: bool = False
    # Hyperscan first says which branches may match in a text; off, every branch is tried,
    # which finds the same: the reference the native pass is tested against.
    prefilter: bool = True


_CHARS = 4096  # characters whose opening branches are remembered
_PLANS = 1024  # alternations of the branches a text may hold, remembered
_CLUSTER = 64  # overlapping candidates settled one by one (the settling is quadratic)
_ENTITY = re.compile(r"[a-z][a-z0-9_]{0,31}")  # the config's Entity: a metric label
_BACKREF = re.compile(r"(?<!\\)(?:\\\\)*(?:\\[1-9]|\(\?P=|\(\?\()")
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


# --- operators' patterns and word lists --------------------------------------------------


def _custom_branch(spec: PatternSpec) -> Branch:
    """An operator's regex as a branch, refused with a message naming its entity."""
    where = f"custom pattern for entity {spec.entity!r}"
    if not _ENTITY.fullmatch(spec.entity):
        raise ValueError(f"{where}: entity must match {_ENTITY.pattern}")
    regex = spec.regex
    # A leading (?i) applies to the whole pattern; inside the alternation it must be scoped.
    if flags := _GLOBAL_FLAGS.match(regex):
        regex = f"(?{flags.group(1)}:{regex[flags.end() :]})"
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"{where}: not a regular expression: {exc}") from exc
    if _BACKREF.search(regex):  # group numbers shift inside the combined regex
        raise ValueError(f"{where}: backreferences and conditional groups are not supported")
    if compiled.match(""):
        raise ValueError(f"{where}: matches the empty string")
    # Tried at every position, not only word starts: the operator's regex says where it
    # may begin. Its lead is unknown (it may be an alternation), so it follows any match.
    return Branch(spec.entity, regex, CUSTOM_RANK, word_start=False, known_lead=False)


def _words_branches(entity: str, words: Sequence[str]) -> list[Branch]:
    """One entity's word list as branches: a trie per first letter, so thousands of words
    cost one class check at a word start."""
    where = f"word list for entity {entity!r}"
    if not _ENTITY.fullmatch(entity):
        raise ValueError(f"{where}: entity must match {_ENTITY.pattern}")
    if isinstance(words, str):  # a bare string would silently become a list of letters
        raise ValueError(f"{where}: give a list of words, not a string")
    phrases = {" ".join(str(w).split()) for w in words}
    if "" in phrases or not phrases:
        raise ValueError(f"{where}: empty word")
    branches = []
    for trie in tries(phrases):
        lead = LEAD.match(trie)
        if lead is None:  # a first letter with no one-character case pair, such as "ß"
            regex, word_start = rf"(?<!\w){trie}", False
        elif re.match(r"\[?\w", trie):
            regex, word_start = trie, True
        else:  # "#tag" cannot sit behind the `\b`: no word character may come before it
            regex, word_start = rf"{lead.group()}(?<!\w.){trie[lead.end() :]}", False
        branches.append(Branch(entity, rf"{regex}(?!\w)", WORDS_RANK, word_start=word_start))
    return branches


# --- the scanner -------------------------------------------------------------------------


class Scanner:
    """Finds identifiers in text; built once from a spec, then `scan` is thread-safe."""

    def __init__(self, spec: ScannerSpec | None = None) -> None:
        spec = spec or ScannerSpec()
        enabled = BUILTIN_ENTITIES if spec.builtin is None else frozenset(spec.builtin)
        if unknown := enabled - BUILTIN_ENTITIES:
            raise ValueError(f"unknown built-in detectors: {', '.join(sorted(unknown))}")
        branches = [b for b in builtin_branches(spec.ssn_test_areas) if b.entity in enabled]
        for entity, words in spec.words.items():
            branches += _words_branches(entity, words)
        branches += [_custom_branch(p) for p in spec.custom]
        # The order the engine tries them: those behind the `\b` first, then the others;
        # branches with the same lead side by side, so the lead is checked once for them all.
        self._branches = sorted(branches, key=lambda b: (not b.word_start, b.lead))
        self._leads = [re.compile(b.lead) if b.lead else None for b in self._branches]
        # Each branch alone, to read what matched where the alternation found something: the
        # alternation itself holds no group to save and restore at every branch it tries,
        # which in the stdlib engine costs in proportion to the number of groups.
        self._single = [re.compile(_single_regex(b)) for b in self._branches]
        self._value = ["v" if "(?P<v>" in b.regex else 0 for b in self._branches]
        self._by_char: dict[str, tuple[int, ...]] = {}
        try:
            self._scan = self._alternation(range(len(self._branches)))
        except re.error as exc:  # each custom regex compiled alone; together they clash
            names = ", ".join(repr(p.entity) for p in spec.custom)
            raise ValueError(f"custom patterns for entities {names} conflict: {exc}") from exc
        # Which branches a text may hold, natively: the built-in ones by their place in the
        # process's one prefilter; operators' patterns and words are always tried.
        universe = _builtin_universe()
        self._prefilter = _builtin_prefilter() if spec.prefilter else None
        self._universal = {
            universe[s.pattern]: i for i, s in enumerate(self._single) if s.pattern in universe
        }
        self._own = frozenset(range(len(self._single))) - frozenset(self._universal.values())
        self._plans: dict[frozenset[int], re.Pattern[str]] = {}

    def _alternation(self, indexes: Iterable[int]) -> re.Pattern[str]:
        """These branches in one alternation, which finds where any of them matches."""
        inside: dict[str, list[str]] = {}  # lead -> the rest of each branch opening with it
        outside: list[str] = []
        for branch in (self._branches[i] for i in indexes):
            regex = branch.regex.replace("(?P<v>", "(?:")
            if branch.word_start:
                inside.setdefault(branch.lead, []).append(regex[len(branch.lead) :])
            else:
                outside.append(regex)
        leads = "|".join(f"{lead}(?:{'|'.join(rests)})" for lead, rests in inside.items())
        alternation = [rf"\b(?:{leads})"] if inside else []
        # "(?!)" never matches: no detector at all is a valid, if useless, configuration
        return re.compile("|".join(alternation + outside) or "(?!)")

    def _opening_with(self, ch: str) -> tuple[int, ...]:
        """The branches, in order, that can open with `ch`."""
        found = self._by_char.get(ch)
        if found is None:
            found = tuple(
                i for i, lead in enumerate(self._leads) if lead is None or lead.fullmatch(ch)
            )
            if len(self._by_char) < _CHARS:  # bounded: text chooses the characters
                self._by_char[ch] = found
        return found

    def scan(self, text: str) -> list[Finding]:
        """Findings sorted by position, none overlapping (see `_resolve`)."""
        found = self._prefilter.active(text) if self._prefilter is not None else None
        if found is None:
            return self._scanned(text, self._scan, None)
        universal = self._universal
        active = self._own.union(universal[u] for u in found if u in universal)
        if not active:
            return []
        return self._scanned(text, self._plan(active), active)

    def _plan(self, active: frozenset[int]) -> re.Pattern[str]:
        """The alternation of the branches that may match in a text."""
        plan = self._plans.get(active)
        if plan is None:
            plan = self._alternation(sorted(active))
            if len(self._plans) < _PLANS:  # bounded: text chooses the sets
                self._plans[active] = plan
        return plan

    def _scanned(
        self, text: str, alternation: re.Pattern[str], active: frozenset[int] | None
    ) -> list[Finding]:
        """What `alternation`'s branches (`active`, or all) find in `text`."""
        candidates: list[tuple[int, int, int, str]] = []
        search, branches, single, value = (
            alternation.search,
            self._branches,
            self._single,
            self._value,
        )
        pos = 0
        while (found := search(text, pos)) is not None:
            at = found.start()
            pos = at + 1
            for i in self._opening_with(text[at]):
                if active is not None and i not in active:
                    continue
                match = single[i].match(text, at)
                if match is None:
                    continue
                branch = branches[i]
                start, end = match.span(value[i])
                if start < 0:  # the value group sits in a part that did not take part
                    start, end = match.span()
                if start < end and (branch.check is None or _passes(branch.check, text[start:end])):
                    candidates.append((start, end, branch.rank, branch.entity))
                    # On after it: what starts inside would lose to it anyway. After a label
                    # ("Fax:", "ZIP"), on from the value, where a tie with it may start.
                    pos = max(pos, end if start == at else start)
        return _resolve(candidates)


def _single_regex(branch: Branch) -> str:
    return (r"\b" if branch.word_start else "") + f"(?:{branch.regex})"


@functools.cache
def _builtin_universe() -> dict[str, int]:
    """Every built-in branch's regex, as the scanner runs it, and its place."""
    regexes = [_single_regex(b) for areas in (False, True) for b in builtin_branches(areas)]
    return {regex: i for i, regex in enumerate(dict.fromkeys(regexes))}


def native_ready(timeout: float | None = None) -> bool:
    """Wait until the native prefilter is compiled (a benchmark times the engine with it;
    before, the scanner finds the same, without it)."""
    return _builtin_prefilter().ready.wait(timeout)


@functools.cache
def _builtin_prefilter() -> Prefilter:
    """One native prefilter for the built-in branches, shared by every scanner."""
    return Prefilter(list(_builtin_universe()))


def _passes(check: Any, value: str) -> bool:
    """A validator's verdict; one that fails on odd input finds the value, as a masker that
    must fail closed would: masked in doubt, never passed."""
    try:
        return bool(check(value))
    except Exception:
        return True


def _resolve(candidates: list[tuple[int, int, int, str]]) -> list[Finding]:
    """The longest candidate wins an overlap; between equal lengths, the earliest; on the
    same span, the most specific entity (lowest rank: ssn, npi, card before phone before
    operators' patterns and zip). Settled per cluster of overlapping candidates, which gives
    the same result as settling them all at once, in linear time for the usual case."""
    kept: list[Finding] = []
    candidates.sort()
    candidates.append((-1, -1, 0, ""))  # a sentinel that closes the last cluster
    first, reach = 0, -1
    for n, (start, end, _rank, _entity) in enumerate(candidates):
        if start >= reach or start < 0:  # candidates[first:n] overlap only one another
            if n - first == 1:  # the common case: nothing overlaps it
                _, _, _, entity = last = candidates[first]
                kept.append(Finding(entity, last[0], last[1]))
            elif n - first > _CLUSTER:  # a crafted chain of overlaps: masked as one span
                cluster = candidates[first:n]
                reach_of = max(c[1] for c in cluster)
                kept.append(Finding(cluster[0][3], cluster[0][0], reach_of))
            elif n - first > 1:
                kept += _settle(candidates[first:n])
            first = n
        reach = max(reach, end)
    return kept


def _settle(cluster: list[tuple[int, int, int, str]]) -> list[Finding]:
    chosen: list[tuple[int, int, int, str]] = []
    for c in sorted(cluster, key=lambda c: (c[0] - c[1], c[0], c[2])):
        if all(c[1] <= k[0] or k[1] <= c[0] for k in chosen):
            chosen.append(c)
    # A loser reaching past the winner it overlaps ("Dr. Robert March" under "March 5,
    # 2024") widens it: half of it left in the clear would be half a name.
    spans = [[start, end, entity] for start, end, _rank, entity in sorted(chosen)]
    for start, end, _rank, _entity in cluster:
        for span in spans:
            if start < span[1] and span[0] < end:
                span[0], span[1] = min(span[0], start), max(span[1], end)
    settled: list[list[Any]] = []
    for span in spans:  # widened spans may now overlap: the earlier names the entity
        if settled and span[0] < settled[-1][1]:
            settled[-1][1] = max(settled[-1][1], span[1])
        else:
            settled.append(span)
    return [Finding(entity, start, end) for start, end, entity in settled]
