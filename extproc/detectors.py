"""Free-text detectors for the HIPAA Safe Harbor identifiers that have a recognisable shape.

Every detector is a regex branch; all of them, operators' patterns and word lists included,
are compiled into ONE alternation so the text is read in a single pass. A branch may name a
group `v`: the finding is that group (the value after "SSN:", not the label); otherwise it is
the whole match. A branch may carry a validator (`extproc.validators`) that rejects what only
looks right (a card number failing Luhn, an SSN in area 666, February 30).

Speed, with the stdlib engine: branches that can only start a word sit behind one `\\b`, so
the inside of a word costs one check; each branch opens with a character class or literal
(its `lead`), which the engine rejects without entering the branch, so fifty branches cost
little more than one; no branch nests quantifiers over overlapping classes, so nothing
backtracks catastrophically (and the few open-ended ones are bounded, so text such as
"a.a.a.a..." costs linear time).

Overlaps: where a branch matches, the later branches whose lead accepts the same character
are tried at that same position too; the scan then goes on after the accepted finding, since
whatever starts inside it would lose to it. The candidates are settled by `_resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from extproc import validators as v
from extproc.findings import Finding

__all__ = ["BUILTIN_ENTITIES", "PatternSpec", "Scanner", "ScannerSpec"]


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


# A branch's opening character class or literal, when it is not quantified.
_LEAD = re.compile(r"(?:\[(?:\\.|[^\]\\])+\]|\\.|[^\\\[\](){}|?*+.^$])(?![?*+{])")


@dataclass(frozen=True, slots=True)
class _Branch:
    entity: str
    regex: str
    rank: int  # on a tie (same span), the lower rank is the more specific entity and wins
    check: Callable[[str], bool] | None = None  # validates the finding's text
    word_start: bool = True  # can only match where a word starts: tried behind the `\b`
    known_lead: bool = True  # the regex opens with its lead (operators' regexes: unknown)

    @property
    def lead(self) -> str:
        found = _LEAD.match(self.regex) if self.known_lead else None
        return found.group() if found else ""


# --- literal words as regexes ------------------------------------------------------------


def _tries(words: Iterable[str], *, ignore_case: bool = True) -> list[str]:
    """Literal words as prefix tries, one per first letter, so each opens with its lead."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for ch in word.lower() if ignore_case else word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return [_char(ch, ignore_case) + _node(child, ignore_case) for ch, child in root.items()]


def _trie(words: Iterable[str], *, ignore_case: bool = True) -> str:
    (only,) = _tries(words, ignore_case=ignore_case)  # words sharing their first letter
    return only


def _node(node: dict[str, dict], ignore_case: bool) -> str:
    alternatives = [
        _char(ch, ignore_case) + _node(kid, ignore_case) for ch, kid in node.items() if ch
    ]
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
    return f"(?:{body})?" if "" in node else body  # a word ends here; longer ones go on


def _char(ch: str, ignore_case: bool) -> str:
    if ch == " ":
        return r"\s+"
    upper = ch.upper()
    if not ignore_case or upper == ch:
        return re.escape(ch)
    # [aA] rather than (?i:a): the engine skips a branch opening with a class without entering
    return f"[{re.escape(ch)}{re.escape(upper)}]" if len(upper) == 1 else f"(?i:{re.escape(ch)})"


# --- built-in branches -------------------------------------------------------------------

_D = "[0-9]"  # not \d: that also matches other scripts' digits, which no identifier uses
_END = r"(?![0-9A-Za-z_]|[-.][0-9])"  # a number ends here, not inside a longer one
_NUM_END = r"(?![0-9]|[-./][0-9])"  # looser: letters may follow ("x12" extension, "T10:00")
_SEP = "[-. ]"
_NANP = rf"(?:\({_D}{{3}}\)[-. ]?|{_D}{{3}}{_SEP}){_D}{{3}}{_SEP}{_D}{{4}}"
# after "+": 1 and a NANP number, or E.164's country code and up to 15 digits, grouped or not
_PLUS_TAIL = rf"(?:1{_SEP}?{_NANP}|[1-9]{_D}{{0,3}}(?:[-. ]{_D}{{2,5}}){{1,5}}|[1-9]{_D}{{6,14}})"
_PHONE = rf"(?:1{_SEP}?)?{_NANP}|\+{_PLUS_TAIL}"
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS = {name[:3]: number for number, name in enumerate(_MONTH_NAMES.split(), 1)}
_MONTH_TRIES = _tries([*_MONTH_NAMES.split(), *_MONTHS, "sept"])
_MONTH = f"(?:{'|'.join(_MONTH_TRIES)})"
_ORD = "(?:st|nd|rd|th)?"
_YEAR = f"[12]{_D}{{3}}"
_STATES = (  # US states, DC and territories, as USPS codes
    "(?:A[KLRSZ]|C[AOT]|D[CE]|F[LM]|G[AU]|HI|I[ADLN]|K[SY]|LA|M[ADEHINOPST]|N[CDEHJMVY]"
    "|O[HKR]|P[AR]|RI|S[CD]|T[NX]|UT|V[AIT]|W[AIVY])"
)
_ZIP = rf"{_D}{{5}}(?:-{_D}{{4}})?{_END}"
_SUFFIXES = "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Way Place Pl"
_SUFFIXES += " Plaza Plz Terrace Ter Circle Cir Parkway Pkwy Highway Hwy Square Sq Trail Trl Row"
_STREET_SUFFIX = f"(?:{'|'.join(_tries(_SUFFIXES.split(), ignore_case=False))})"
_UNIT = (
    r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Floor|Fl|#)\.?[ \t]*#?[0-9A-Za-z-]{1,8})"
)
_CITY_LINE = r"(?:,[ \t]*(?:[A-Z][A-Za-z'.-]*[ \t]+){0,3}[A-Z][A-Za-z'.-]*,?[ \t]+[A-Z]{2}"
_CITY_LINE += rf"(?:[ \t]+{_D}{{5}}(?:-{_D}{{4}})?)?(?!\w))"
# "Dr." but not "patient.": "...the patient. He reports" is no name.
_TITLES = [f"{t}." for t in ("Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Pt")]
_TITLES += ["Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof", "Patient", "patient", "PATIENT", "Pt"]
_NAME_WORD = r"(?:[A-Z][A-Za-z'\u2019-]*[a-z]|[A-Z]\.)"
_DATE_PARTS = re.compile("[-/]")
_NUMBERS = re.compile("[0-9]+")
_LETTERS = re.compile("[A-Za-z]{3}")


def _ymd_ok(year: str, month: str, day: str) -> bool:
    # A two-digit year is read as 20yy: 19yy and 20yy agree on leap years except 1900.
    return v.date_valid(int(year) + (2000 if len(year) == 2 else 0), int(month), int(day))


def _iso_date_ok(s: str) -> bool:
    year, month, day = _DATE_PARTS.split(s)
    return _ymd_ok(year, month, day)


def _us_date_ok(s: str) -> bool:
    month, day, year = _DATE_PARTS.split(s)
    return _ymd_ok(year, month, day)


def _named_date_ok(s: str) -> bool:
    month = _MONTHS[_LETTERS.search(s).group().lower()]  # type: ignore[union-attr]
    numbers = _NUMBERS.findall(s)  # [day, year], or [year] for "March 2024"
    return v.date_valid(int(numbers[-1]), month, int(numbers[0]) if len(numbers) > 1 else 1)


def _age_ok(s: str) -> bool:
    return int(_NUMBERS.match(s).group()) >= 90  # type: ignore[union-attr]


def _builtin_branches(ssn_test_areas: bool) -> list[_Branch]:
    def ssn_ok(s: str) -> bool:
        return v.ssn_possible(v.digits_of(s), test_areas=ssn_test_areas)

    def card_ok(s: str) -> bool:
        digits = v.digits_of(s)
        return 13 <= len(digits) <= 19 and v.luhn_valid(digits)

    def e164_ok(s: str) -> bool:
        return 7 <= len(v.digits_of(s)) <= 15

    def ipv6_ok(s: str) -> bool:
        return any(ch not in ":." for ch in s) and v.ipv6_valid(s)

    def vin_ok(s: str) -> bool:
        return not s.isdigit() and v.vin_check_digit_valid(s)

    def email_ok(s: str) -> bool:
        tld = s.rsplit(".", 1)[-1]
        return len(tld) >= 2 and tld.isalpha()

    def mrn_ok(s: str) -> bool:
        return len(s) <= 24 and _NUMBERS.search(s) is not None

    hexa = "[0-9A-Fa-f]"
    ipv4_tail = r"(?:(?:\.[0-9]{1,3}){3})?(?![\w:])"
    mrn_id = r"[A-Za-z0-9]{1,24}(?:-[A-Za-z0-9]{1,24}){0,4}(?![\w-])"  # bounded, as email
    mrn_words = ["mrn", "medical record", *(f"medical record {n}" for n in ("number", "num", "no"))]
    b = _Branch
    return [
        # rank 0-2: validated identifiers, the most specific
        b("ssn", rf"{_D}{_D}{{2}}-{_D}{{2}}-{_D}{{4}}{_END}", 0, ssn_ok),
        b("ssn", rf"{_D}{_D}{{2}} {_D}{{2}} {_D}{{4}}{_END}", 0, ssn_ok),
        b(  # 9 bare digits are an SSN only after the words that say so
            "ssn",
            rf"{_trie(['ssn', 'ss#', 'social security'])}[^0-9\n]{{0,20}}(?P<v>{_D}{{9}}){_END}",
            0,
            ssn_ok,
        ),
        b("npi", rf"[12]{_D}{{9}}{_END}", 1, v.npi_valid),
        b("card", rf"{_D}{_D}{{3}}(?:-{_D}{{3,6}}){{2,4}}{_END}", 2, card_ok),
        b("card", rf"{_D}{_D}{{3}}(?: {_D}{{3,6}}){{2,4}}{_END}", 2, card_ok),
        b("card", rf"{_D}{_D}{{12,18}}{_END}", 2, card_ok),
        b("vin", r"[A-HJ-NPR-Z0-9][A-HJ-NPR-Z0-9]{16}(?!\w)", 3, vin_ok),
        b(  # bounded (RFC 5321 sizes): "a.a.a.a..." without an "@" costs linear time, not squared
            "email",
            r"[A-Za-z0-9_][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}",
            4,
            email_ok,
        ),
        # A URL runs to whitespace or a quote; trailing punctuation belongs to the sentence.
        *(
            b("url", rf"{lead}[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}}]", 5)
            for lead in _tries(["http://", "https://", "www."])
        ),
        b("ip", rf"{_D}(?<![0-9]\.{_D}){_D}{{0,2}}(?:\.{_D}{{1,3}}){{3}}{_END}", 6, v.ipv4_valid),
        b("ip", rf"{hexa}{hexa}{{0,3}}(?::{hexa}{{0,4}}){{2,7}}{ipv4_tail}", 6, ipv6_ok),
        b(
            "ip",
            rf":(?<![\w:]:):(?:{hexa}{{1,4}}(?::{hexa}{{1,4}}){{0,6}})?{ipv4_tail}",
            6,
            ipv6_ok,
            word_start=False,
        ),
        b(
            "fax",
            rf"{_trie(['fax'])}(?:[ \t]*(?:{'|'.join(_tries(['no', 'no.', 'number', '#']))}))?"
            rf"[ \t]*(?:[:#.-][ \t]*)?(?P<v>{_PHONE}){_NUM_END}",
            7,
            e164_ok,
        ),
        b("phone", rf"{_D}{_D}{{2}}{_SEP}{_D}{{3}}{_SEP}{_D}{{4}}{_NUM_END}", 8),
        b("phone", rf"1{_SEP}?{_NANP}{_NUM_END}", 8),
        b("phone", rf"\({_D}{{3}}\)[-. ]?{_D}{{3}}{_SEP}{_D}{{4}}{_NUM_END}", 8, word_start=False),
        b("phone", rf"\+(?<![\w+]\+){_PLUS_TAIL}{_NUM_END}", 8, e164_ok, word_start=False),
        b(
            "date",
            rf"[12]{_D}{{3}}(?:-{_D}{{1,2}}-|/{_D}{{1,2}}/){_D}{{1,2}}{_NUM_END}",
            9,
            _iso_date_ok,
        ),
        b(
            "date",
            rf"{_D}{_D}?(?:/{_D}{{1,2}}/|-{_D}{{1,2}}-)(?:{_YEAR}|{_D}{{2}}){_NUM_END}",
            9,
            _us_date_ok,
        ),
        *(  # "March 5, 2024", "Mar. 5th 2024", "March 2024"
            b(
                "date",
                rf"{month}\.?(?:[ \t]+{_D}{{1,2}}{_ORD},?|,)?[ \t]+{_YEAR}{_NUM_END}",
                9,
                _named_date_ok,
            )
            for month in _MONTH_TRIES
        ),
        b(
            "date",
            rf"{_D}{_D}?{_ORD}[ \t]+(?:of[ \t]+)?{_MONTH}\.?,?[ \t]+{_YEAR}{_NUM_END}",
            9,
            _named_date_ok,
        ),
        b(
            "age_over_89",
            rf"{_trie(['age', 'aged'])}(?:[ \t]*[:=][ \t]*|[ \t]+(?:of[ \t]+)?)"
            rf"(?P<v>{_D}{{2,3}})(?![0-9])",
            10,
            _age_ok,
        ),
        b(  # the whole phrase: "92-year-old", "95 y/o", "101 years of age"
            "age_over_89",
            rf"{_D}{_D}{_D}?(?:[- ]?{_trie(['years', 'year', 'yrs', 'yr'])}[- ]?{_trie(['old'])}"
            rf"|[ ]?{_trie(['y/o', 'y.o.', 'yo'])}|[ ]{_trie(['years of age', 'year of age'])})"
            r"(?!\w)",
            10,
            _age_ok,
        ),
        b(
            "street_address",
            rf"{_D}{_D}{{0,5}}[A-Za-z]?[ \t]+(?:(?:[A-Z][A-Za-z'-]*\.?|{_D}{{1,3}}{_ORD})"
            rf"[ \t]+){{1,4}}{_STREET_SUFFIX}\.?(?!\w){_UNIT}?{_CITY_LINE}?",
            11,
        ),
        b("mrn", rf"[mM][rR][nN]-{mrn_id}", 12, mrn_ok),
        b(
            "mrn",
            _trie(mrn_words) + r"(?![A-Za-z])\.?[ \t]*(?:[:#=][ \t]*)?(?:[Ii][Ss][ \t]+)?"
            rf"(?P<v>{mrn_id})",
            12,
            mrn_ok,
        ),
        # rank 13 is operators' patterns, 15 their word lists
        *(
            b("zip", rf"{lead}[ \t]*(?:[:#][ \t]*)?(?P<v>{_ZIP})", 14)
            for lead in _tries(["zip", "zip code", "zipcode", "postal code"])
        ),
        b(  # after a state code, or any two capitals ending an address line: ", ZZ 00001"
            "zip",
            rf"[A-Z][A-Z](?:(?<={_STATES})|(?<=, [A-Z][A-Z]))[ \t]+(?P<v>{_ZIP})",
            14,
        ),
        *(  # a title or "Patient" followed by one to three capitalised words
            b(
                "name",
                rf"{title}(?:[ \t]*:[ \t]*|[ \t]+)"
                rf"(?P<v>{_NAME_WORD}(?:[ ]{_NAME_WORD}){{0,2}})(?!\w)",
                16,
            )
            for title in _tries(_TITLES, ignore_case=False)
        ),
    ]


BUILTIN_ENTITIES = frozenset(branch.entity for branch in _builtin_branches(False))
_CUSTOM_RANK, _WORDS_RANK = 13, 15
_ENTITY = re.compile(r"[a-z][a-z0-9_]{0,31}")  # the config's Entity: a metric label
_BACKREF = re.compile(r"(?<!\\)(?:\\\\)*(?:\\[1-9]|\(\?P=)")
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


# --- operators' patterns and word lists --------------------------------------------------


def _custom_branch(spec: PatternSpec) -> _Branch:
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
        raise ValueError(f"{where}: backreferences are not supported")
    if compiled.match(""):
        raise ValueError(f"{where}: matches the empty string")
    # Tried at every position, not only word starts: the operator's regex says where it
    # may begin. Its lead is unknown (it may be an alternation), so it follows any match.
    return _Branch(spec.entity, regex, _CUSTOM_RANK, word_start=False, known_lead=False)


def _words_branches(entity: str, words: Sequence[str]) -> list[_Branch]:
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
    for trie in _tries(phrases):
        lead = _LEAD.match(trie)
        if lead is None:  # a first letter with no one-character case pair, such as "ß"
            regex, word_start = rf"(?<!\w){trie}", False
        elif re.match(r"\[?\w", trie):
            regex, word_start = trie, True
        else:  # "#tag" cannot sit behind the `\b`: no word character may come before it
            regex, word_start = rf"{lead.group()}(?<!\w.){trie[lead.end() :]}", False
        branches.append(_Branch(entity, rf"{regex}(?!\w)", _WORDS_RANK, word_start=word_start))
    return branches


# --- the scanner -------------------------------------------------------------------------


class Scanner:
    """Finds identifiers in text; built once from a spec, then `scan` is thread-safe."""

    def __init__(self, spec: ScannerSpec | None = None) -> None:
        spec = spec or ScannerSpec()
        enabled = BUILTIN_ENTITIES if spec.builtin is None else frozenset(spec.builtin)
        if unknown := enabled - BUILTIN_ENTITIES:
            raise ValueError(f"unknown built-in detectors: {', '.join(sorted(unknown))}")
        branches = [b for b in _builtin_branches(spec.ssn_test_areas) if b.entity in enabled]
        for entity, words in spec.words.items():
            branches += _words_branches(entity, words)
        branches += [_custom_branch(p) for p in spec.custom]
        # The order the engine tries them: those behind the `\b` first, then the others;
        # branches with the same lead side by side, so the lead is checked once for them all.
        self._branches = sorted(branches, key=lambda b: (not b.word_start, b.lead))
        self._leads = [re.compile(b.lead) if b.lead else None for b in self._branches]
        self._value = [f"_v{i}" if "(?P<v>" in b.regex else 0 for i, b in enumerate(self._branches)]
        self._index = {f"_b{i}": i for i in range(len(self._branches))}
        self._patterns: dict[tuple[int, ...], re.Pattern[str]] = {}
        self._follow: dict[tuple[int, str], re.Pattern[str] | None] = {}
        try:
            self._scan = self._pattern(tuple(range(len(self._branches))))
        except re.error as exc:  # each custom regex compiled alone; together they clash
            names = ", ".join(repr(p.entity) for p in spec.custom)
            raise ValueError(f"custom patterns for entities {names} conflict: {exc}") from exc

    def _pattern(self, indices: tuple[int, ...]) -> re.Pattern[str]:
        """The alternation of these branches: branch i ends with an empty group `_b{i}`,
        which is the match's `lastgroup` (the last to close) and leaves the lead first."""
        if (pattern := self._patterns.get(indices)) is None:
            inside: dict[str, list[str]] = {}  # lead -> the rest of each branch opening with it
            outside: list[str] = []
            for i in indices:
                branch = self._branches[i]
                regex = branch.regex.replace("(?P<v>", f"(?P<_v{i}>") + f"(?P<_b{i}>)"
                if branch.word_start:
                    inside.setdefault(branch.lead, []).append(regex[len(branch.lead) :])
                else:
                    outside.append(regex)
            leads = "|".join(f"{lead}(?:{'|'.join(rests)})" for lead, rests in inside.items())
            alternation = [rf"\b(?:{leads})"] if inside else []
            # "(?!)" never matches: no detector at all is a valid, if useless, configuration
            regex = "|".join(alternation + outside) or "(?!)"
            pattern = self._patterns[indices] = re.compile(regex)
        return pattern

    def _following(self, index: int, ch: str) -> re.Pattern[str] | None:
        """The branches after `index` that can open with `ch`, or None if there are none."""
        key = (index, ch)
        if key not in self._follow:  # bounded: one entry per branch and character it opens
            later = tuple(
                j
                for j in range(index + 1, len(self._branches))
                if (lead := self._leads[j]) is None or lead.fullmatch(ch)
            )
            self._follow[key] = self._pattern(later) if later else None
        return self._follow[key]

    def scan(self, text: str) -> list[Finding]:
        """Findings sorted by position, none overlapping (see `_resolve`)."""
        candidates: list[tuple[int, int, int, str]] = []
        search, branches, index_of, value = (
            self._scan.search,
            self._branches,
            self._index,
            self._value,
        )
        pos = 0
        follow, following = self._follow, self._following
        while (match := search(text, pos)) is not None:
            at = match.start()
            pos = at + 1
            while True:
                i = index_of[match.lastgroup]  # type: ignore[index]
                branch = branches[i]
                start, end = match.span(value[i])
                if start < 0:  # the value group sits in a part that did not take part
                    start, end = match.span()
                if start < end and (branch.check is None or branch.check(text[start:end])):
                    candidates.append((start, end, branch.rank, branch.entity))
                    # On after it: what starts inside would lose to it anyway. After a label
                    # ("Fax:", "ZIP"), on from the value, where a tie with it may start.
                    pos = max(pos, end if start == at else start)
                key = (i, text[at])
                then = follow[key] if key in follow else following(*key)
                if then is None or (match := then.match(text, at)) is None:
                    break
        return _resolve(candidates)


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
    return [Finding(entity, start, end) for start, end, _rank, entity in sorted(chosen)]
