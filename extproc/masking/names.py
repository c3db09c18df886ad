"""People's names in free text, by dictionary and by where they stand.

A capitalised word (or one in capitals) is a name when:
- it is a given name or a surname of the dictionaries (Faker's person providers, every
  locale: names of many cultures, from a maintained package) and not a common English word;
- or it stands where names stand, whatever it is: after a title or a label ("Dr.",
  "Patient:", "seen by", "Dear", "Electronically signed by"), before a credential
  ("M.D.", "RN", "PA-C") or what people do in notes ("reports", "was admitted", "'s
  mother"), in "Last, First" or "LAST,FIRST", or beside a word that is a name.
A word of the English vocabulary (pyspellchecker's) that no dictionary holds as a name
breaks a run: "Impression", "Exam", "Record" stand alone. An eponym ("Parkinson's
disease", "Foley catheter") is no one's name.

Names found here are also looked for again everywhere in the answer (the engine adds them
to the values it marks), so a name that stands once after "Patient:" is masked where it
stands alone later."""

from __future__ import annotations

import calendar
import functools
import gzip
import importlib
import importlib.resources
import json
import pkgutil
import re
from dataclasses import dataclass
from typing import NamedTuple

from faker.providers.address.en_US import Provider as UsAddress

from extproc.masking.findings import Finding, joined

# English words at least this frequent (pyspellchecker's counts) are words first, even when
# somebody is called so ("Will", "Hope", "Grant"): names only where names stand.
_COMMON = 20_000
# Rarer words of the vocabulary, capitalised, are names where names stand: its counts come
# from subtitles, where "Tolkien" or "Orozco" occur as words.
_RARE = 100
_LONGEST_RUN = 32  # words of a run judged together
# A name is at most this many words ("Maria del Carmen Lopez Garcia"); a longer run of
# name words is a list of names.
_MAX_RUN = 5
_MONTHS = frozenset(
    month.casefold() for month in (*calendar.month_name[1:], *calendar.month_abbr[1:], "Sept")
)
# Words of the grammar, never names even where a dictionary has them ("She" is a surname).
_GRAMMAR = frozenset(
    """i me my we us our you your he him his she her they them their it its this that these
    those the a an and or but if of in on at by to for with from as is was are were be been
    has have had do does did not no yes who whom whose which what when where why how all
    any some each both either neither then than so also very just only per via re""".split()  # noqa: SIM905
)
# A US state's name is a place ("North Carolina"); a name only beside a name ("Virginia
# Woolf"). The address provider of the package the name lists come from lists them.
_STATE_WORDS = frozenset(word.casefold() for state in UsAddress.states for word in state.split())
_STATE_CODES = frozenset(UsAddress.states_abbr)
# Letters after a name that are a degree or a licence, not part of the name.
CREDENTIALS = (
    r"M\.?D\.?|D\.?O\.?|R\.?N\.?|N\.?P\.?|P\.?A\.?(?:-?C\.?)?|Ph\.?D\.?|FACP|FACS|MBBS"
    r"|DDS|DMD|PharmD|LCSW|CNM|APRN|FNP(?:-[A-Z]{1,2})?|DNP|MSN|BSN|LPN|CRNA|MPH|RPh|DPT"
    r"|CNA|PsyD|LMFT|NP-C|ANP|AGNP|MDPhD|MBA|MS|FAAP|FACC|CCRN|OTR|PT|OT|RD|MA"
)
# As written, in capitals: "Ma" and "Do" are also surnames.
_CREDENTIAL_WORD = re.compile(rf"(?:{CREDENTIALS})")
# The words after a name that make it an institution's ("St. Luke's Medical Center").
_PLACES = (
    "hospital|medical center|center|clinic|institute|foundation|university|college|school"
    "|memorial|health|healthcare|regional|society|pharmacy|laboratory|labs?|house|hall"
)
# The words after an eponym that make it a disease, a sign or a device, not a person.
_EPONYM_HEADS = (
    "disease|syndrome|palsy|lymphoma|sarcoma|catheter|scale|score|sign|test|maneuver"
    "|manoeuvre|reflex|fracture|procedure|operation|tube|monitor|classification|criteria"
    "|phenomenon|tumou?r|ulcer|node|law|equation|formula|position|stain|block|anastomosis"
    "|repair|fundoplication|coma|disorder|anomaly|deformity|phenomenon|triad|pouch|technique"
    "|method|approach|incision|bag|mask|needle|drain|forceps|retractor|clamp|cell|cells"
    "|shunt|smear|ultrasound|pattern|fall|diverticulum|flap|splint|stockings?|collar|valve"
    "|line|pump|hernia|contracture|aneurysm|nodes|bodies|body|criterion|rule|view|graft"
    "|grade|stage|class|type|removed|inserted|placed|discontinued|exchanged|draining|flushed"
    "|protocol|cyst|regimen|exercises?|virus|fever|vaccine|strain|spots?|matter|murmur"
)
_EPONYM = re.compile(
    rf"(?:['\u2019]s?)?[ \t]*(?:[a-z]+[ \t]+)?(?:{_EPONYM_HEADS}|{_PLACES})\b"
    # a score after its eponym: "Gleason 3+4=7", "Apgar 8/9"
    r"|[ \t]+[0-9]{1,2}[ \t]*[+/][ \t]*[0-9]"
    # a possessive before a disease's name: "Hashimoto's thyroiditis", "Barrett's esophagus"
    r"|['\u2019]s[ \t]+[a-z]*(?:itis|osis|oma|pathy|emia|algia|ectomy|plasty|scopy|gram|phagus"
    r"|ism|trophy|plasia|cele|rrhea|uria|sis|ease|ulcer|palsy|sign|syndrome)\b",
    re.IGNORECASE,
)
TITLES = r"Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Pt|Sr|Sra|Srta|Mme|Mlle|Herr|Frau"
_TITLE_WORDS = frozenset(TITLES.casefold().split("|"))
# Labels after which a name stands; those that are ordinary words elsewhere need a colon.
# Labels after which a name stands; those that are ordinary words elsewhere need a colon.
# Read as the last words before a name, looked up in sets: a regex alternation searched at
# every position of the text before each name cost more than all the rest of the finder.
_LABELS_FREE = frozenset(
    label.strip()
    for label in """seen by|examined by|evaluated by|signed by|electronically signed by
    |dictated by|transcribed by|reviewed by|interpreted by|verified by|ordered by|referred by
    |authored by|approved by|discussed with|accompanied by|consulted|dear|sincerely
    |regards|respectfully|thank you|cc|attn|attention|name of patient|patient name
    |pt name|spoke with|called|patient|pt|prescriber|prescribed by|provider|attending
    |husband|wife|son|daughter|dtr|mother|mom|father|dad|sister|brother|partner|spouse
    |friend|neighbor|neighbour|aunt|uncle|niece|nephew|grandson|granddaughter|grandmother
    |grandfather|fiance|fiancee|fiancé|fiancée|spoke w/|spoke to|given to|handoff to
    |handed off to|discussed w/|signed out to|relieved by|left vm for|left voicemail for
    |nok|left message for|left a message for|vm for|message for|appointment for
    |appt for|this is|my name is|the resident|the fellow|the intern|the attending
    |flagged by|registered to|assigned to|results for|records for|covering for|on behalf of
    |the nurse|the patient""".split("|")  # noqa: SIM905
)
_LABELS_COLON = frozenset(
    label.strip()
    for label in """patient|pt|name|attending|attending physician|physician|provider|pcp
    |primary care|primary care physician|referring physician|referring provider|nurse|rn|np|pa
    |resident|fellow|surgeon|assistant|anesthesiologist|radiologist|anaesthetist|anesthetist
    |pathologist|consultant|guardian|emergency contact|contact|next of kin|nok|mother
    |father|spouse|wife|husband|son|daughter|brother|sister|caregiver|guarantor
    |subscriber|insured|from|to|author|signed|signature|clinician|doctor|therapist|re
    |pharmacist|technologist|informant|historian|interpreter|witness|member
    |insured name|progress note""".split("|")  # noqa: SIM905
)
_LABEL_WORDS = 4  # the longest label, in words
_LABEL_MARKS = ":,-\u2013#"


def _labelled(before: str) -> bool:
    """Whether `before` ends with a label after which a name stands ("Dear ", "Patient:",
    "electronically signed by")."""
    tail = before.rstrip(" \t")
    mark = tail[-1:] if tail[-1:] in _LABEL_MARKS else ""
    words = [w.strip("()[]\"'*") for w in tail.rstrip(_LABEL_MARKS + " \t").casefold().split()][
        -_LABEL_WORDS:
    ]
    for size in range(1, len(words) + 1):
        phrase = " ".join(words[-size:])
        if (phrase in _LABELS_FREE and mark in ("", ":", ",", "-", "\u2013")) or (
            phrase in _LABELS_COLON and mark in (":", "-", "\u2013", "#")
        ):
            return True
    return False


def _after_greetings(text: str) -> list[re.Match[str]]:
    """`_LOWER_AFTER`'s matches, tried only where a greeting stands (found by one pass of
    their alternation): the regex, tried at every word, cost as much as the rest of the
    finder. Each greeting is tried, those inside another's match too ("hi dr
    vyxmembwylt")."""
    # ASCII lowercased keeps its offsets, and a regex without case folding runs faster.
    greetings = _GREETING.finditer(text.lower()) if text.isascii() else _ANY_CASE.finditer(text)
    starts = (m.start() for m in greetings)
    return [m for at in starts if (m := _LOWER_AFTER.match(text, at)) is not None]


def title_or_credential(word: str) -> bool:
    """Whether `word` is a person's title ("Dr.", "mrs") or a credential as written ("MD",
    "PA-C"; "Ma" and "Do" are surnames): nobody's name."""
    return (
        word.removesuffix(".").casefold() in _TITLE_WORDS
        or _CREDENTIAL_WORD.fullmatch(word) is not None
    )


def _condition_at(text: str, end: int) -> bool:
    """Whether the word before `end` names a disease by its possessive alone, as notes do
    ("PMH: Parkinson's, HTN", "Graves'"), with no word after it to say so."""
    if text[end : end + 1] not in ("'", "\u2019"):
        return False
    word = _LAST_WORD.search(text, max(0, end - 24), end)
    return word is not None and word.group().casefold() in _CONDITIONS


def _titled(before: str) -> bool:
    """Whether `before` ends with a person's title ("Dr. ", "Mrs ")."""
    words = before.rstrip(" \t").split()
    return bool(words) and words[-1].rstrip(".").casefold() in _TITLE_WORDS


_CREDENTIAL = re.compile(rf",?[ \t]*(?:{CREDENTIALS})(?![\w-])")
# What people do in notes, and drugs and findings do not: the words before it are a name.
_PERSON_VERB = re.compile(
    r"(?:['\u2019]s[ \t]+(?:mother|father|wife|husband|son|daughter|sister|brother|family"
    r"|partner|spouse|caregiver|chart|record|account)\b|,?[ \t]+(?:reports|reported|presents"
    r"|presented|states|stated|denies|denied|complains|complained|endorses|endorsed|underwent"
    r"|arrived|returns|returned|says|said|agrees|agreed|declined|refused|feels|felt|came|lives"
    r"|lived|works|worked|called|phoned|texted|emailed|messaged|visited|visits|logged"
    r"|was[ \t]+(?:admitted|seen|discharged|born|transferred|evaluated"
    r"|examined|brought|referred|found)|is[ \t]+an?[ \t]+[0-9])\b"
    # a name before its record's numbers: "Ada Okafor (MRN 123, DOB 1/2/1950)", "Ada Okafor,
    # DOB 10 Nov 2001"
    r"|[ \t]*[(\[,|][ \t]*(?:MRN|DOB|D\.O\.B|SSN|age|born|ID|acct|[0-9]{1,3}[ \t]*(?:yo|y/o|M|F)\b"
    r"|(?:son|daughter|wife|husband|mother|father|sister|brother|spouse|partner|niece|nephew"
    r"|aunt|uncle|grandson|granddaughter|grandmother|grandfather|friend|caregiver|guardian"
    r"|proxy|HCP)\))"
    # a chat's or a roster's speaker and role: "Oyelaran, Funmilayo (Hospitalist)"
    r"|[ \t]*\((?:[A-Za-z]+(?:ist|ian)|RN|MD|DO|NP|PA-C|Attending|Resident|Fellow|Intern"
    r"|Charge[ \t]RN|Case[ \t]Manager|Social[ \t]Worker)\)"
    r")",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[ \t]*:?[ \t]*[0-9]")
# Everyday English words that are also names ("Ward", "Gross", "Bush"), at or above this
# frequency, and where a line or a sentence opens (a heading's marks, a bullet, a full stop).
_EVERYDAY = 2_000
_OPENING = re.compile(r"(?:^|[\n\r])[#*>\-\u2022 \t]*$|[.!?][ \t]+$")
# A word of a name as `could_be_name` reads it: letters, inner apostrophes or hyphens, an
# initial's dot.
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*\.?")
# Clinical scales and scores named after people, written before their number ("Morse 55",
# "Braden 16", "Wells 4"): words there, not the people.
_SCALES = frozenset(
    """morse braden norton waterlow glasgow apgar gleason wells bishop ranson killip
    mallampati karnofsky barthel rankin hunt hess fisher child pugh caprini padua geneva
    alvarado ottawa centor mcisaac aldrete ramsay richmond breslow clark charlson epworth
    beck hamilton tanner ballard dubowitz gail framingham blatchford rockall wexner bristol
    lachman mcmurray spurling finkelstein tinel phalen kernig brudzinski romberg""".split()  # noqa: SIM905
)
# Diseases named after people, and written by the possessive alone ("Parkinson's").
_CONDITIONS = frozenset(
    """parkinson alzheimer crohn huntington raynaud graves cushing addison hashimoto
    sjogren sjögren meniere ménière tourette asperger hodgkin wilson paget peyronie
    dupuytren kaposi wernicke korsakoff buerger behcet behçet still reiter bright conn
    barrett whipple hirschsprung kawasaki gaucher fabry pompe duchenne becker bell baker
    osgood dequervain quervain legg perthes guillain charcot marfan ménétrier menetrier
    bowen pott scheuermann sever kienbock kienböck lyme""".split()  # noqa: SIM905
)
_LAST_WORD = re.compile(r"[^\W\d_]+$")
# How clinical terms end, and names seldom do; and a longer word is seldom a name's.
_CLINICAL_ENDING = re.compile(
    r"(?:itis|osis|oma|pathy|emia|aemia|algia|ectomy|otomy|ostomy|plasty|scopy|gram|graphy"
    r"|ism|trophy|plasia|cele|rrhea|rrhoea|uria|iasis|esis|ysis|ase|ine|ide|ate|ol|pril"
    r"|sartan|statin|mab|nib|cillin|mycin|azole|ology|al|ic|ive|ous|ing|tion|ment)$",
    re.IGNORECASE,
)
_LONGEST_NAME_WORD = 12
# Letters of scripts without case, and their marks: Devanagari to Sinhala, Hebrew, Arabic,
# Thai, Hangul, kana, Han.
_CASELESS = (
    "\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u0900-\u0dff\u0e00-\u0e7f\u1100-\u11ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
)
_CASELESS_RUN = re.compile(rf"[{_CASELESS}]+(?:[ ][{_CASELESS}]+){{0,5}}")
# Words run together, each capitalised ("ViewPosition", "PatientName"): a program's keyword
# when each is a word of the vocabulary and none a name ("JohnSmith", "MacArthur" are).
_CAMEL = re.compile(r"(?:[A-Z][a-z]{2,}){2,4}")
_CAMEL_PART = re.compile(r"[A-Z][a-z]{2,}")
_JOINERS = re.compile(r"['\u2019\-]")
_KINDS = 65_536
# Lowercase names: after a greeting or a hand-over, before a relation in brackets.
_GREETINGS = (
    *("hi", "hey", "hello", "dear", "thanks", "thank you", "thx", "ty", "fyi", "cc"),
    *("given to", "handoff to", "spoke w/", "spoke with", "called", "paged", "texted"),
    *("ask", "tell", "per"),
    # a relative named in lowercase, as a hurried note does: "husband john updated"
    *("husband", "wife", "son", "daughter", "mother", "father", "brother", "sister"),
    *("spouse", "partner", "this is", "from", "also", "hey is", "how is", "where is"),
    # titles written in lowercase: "hi dr vyxmembwylt"
    *("dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."),
)
# After these, a word in no dictionary at all is a name too ("fyi haphgren thohand", "this
# is cliodhna's mum"): what follows a greeting or a title is someone, not a clinical word.
_OPEN_GREETINGS = frozenset(
    {"hi", "hey", "hello", "dear", "thanks", "thank you", "thx", "ty", "fyi", "cc", "this is"}
    | {"handoff to", "given to", "dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."}
)
# Longest first: "hey is ruth" is tried before "hey" takes "is" for the name.
_GREETING_ALTERNATION = "|".join(re.escape(g) for g in sorted(_GREETINGS, key=len, reverse=True))
_GREETING = re.compile(rf"\b(?:{_GREETING_ALTERNATION})")
_ANY_CASE = re.compile(rf"\b(?i:{_GREETING_ALTERNATION})")
# A lowercase word of a name: letters of any script, inner apostrophes or hyphens.
_LOWER_WORD = r"[^\W\d_](?:[^\W\d_]|['\u2019-](?=[^\W\d_])){1,30}"
_LOWER_AFTER = re.compile(
    rf"\b(?P<g>(?i:{_GREETING_ALTERNATION}))[ \t,:]+"
    rf"(?P<a>{_LOWER_WORD})(?:[ \t](?P<b>{_LOWER_WORD}))?(?![\w@])",
)
# A chat's someone before what they said or do: "yeah, pherrdruss said radiology ...",
# read back from the verb: the one or two words before it.
_SAYS = re.compile(
    r"\b(?:said|says|asked|texted|mentioned|is covering|will cover|is on call|called back)\b"
)
_WORDS_BEFORE = re.compile(
    rf"(?<![\w@'\u2019-])(?:(?P<a>{_LOWER_WORD})[ \t])?(?P<b>{_LOWER_WORD})[ \t]+$"
)
_POSSESSIVE = re.compile(r"['\u2019]s$")
_RELATION = (
    r"\((?:son|daughter|wife|husband|mother|mom|father|dad|sister|brother|partner|spouse"
    r"|friend|niece|nephew|aunt|uncle|caregiver|guardian)\)"
)
_LOWER_BEFORE = re.compile(rf"(?<![\w@.])(?P<a>[a-z][a-z'-]{{1,30}})[ \t]+{_RELATION}")
_A_RELATION = re.compile(_RELATION)  # a literal's search: a note without one costs nothing
# What stands before a word capitalised in mid-sentence: a lowercase word or a comma.
_MID_SENTENCE = re.compile(r"[a-z,][ \t]+$")
# A word of a name: letters with inner apostrophes or hyphens ("O'Neil", "Okafor-Smith");
# an initial is one capital and a dot.
_WORD = r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*"
_TOKEN = re.compile(rf"{_WORD}\.?")


def _capital_class() -> str:
    """A character class of the letters a name can start with: capitals, and letters of
    scripts without case (lowercase text is skipped by the regex engine, not by Python)."""
    starts = [c for c in range(0x10000) if chr(c).isalpha() and not chr(c).islower()]
    ranges, first = [], starts[0]
    for previous, current in zip(starts, [*starts[1:], -1], strict=True):
        if current != previous + 1:
            ranges.append(
                re.escape(chr(first)) + ("-" + re.escape(chr(previous)) if previous > first else "")
            )
            first = current
    return f"[{''.join(ranges)}]"


_CAPITAL = _capital_class()
# Whole words only ("PORTA" is no word of "PORTAL_USER"); "_" joins words in file names.
# Opening with the class, so the regex engine skips to a capital by its table instead of
# trying the whole pattern at every character; the letter before it is checked after.
_NOT_AFTER_WORD = r"(?<![^\W_].)(?<!['\u2019-].)"
_CAPITAL_WORD = rf"{_CAPITAL}{_NOT_AFTER_WORD}[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*(?![^\W_])"
_PARTICLES = frozenset(
    [
        "van",
        "von",
        "de",
        "del",
        "della",
        "der",
        "di",
        "da",
        "das",
        "dos",
        "du",
        "la",
        "le",
        "bin",
        "ibn",
        "al",
        "el",
        "ter",
        "ten",
        "st",
        "y",
        "e",
    ]
)
# A word beside a name that may be another part of it (`NameFinder.completed`): a
# capitalised word or an initial, parted from the name by a space or a comma.
_PART = rf"(?P<w>[A-Z]\.(?![^\W_])|{_CAPITAL_WORD}(?!\.[A-Za-z]))"  # not the M of M.D.
# (a comma with no space after it parts a CSV row's cells: "Dr Ada Okafor,Endocrinology")
_PART_BEFORE = re.compile(rf"{_PART}(?:,[ \t]|[ \t])$")
_PART_AFTER = re.compile(rf"(?:,[ \t]|[ \t]){_PART}")
_BESIDE, _LONGEST_PART = 2, 40  # words added on each side, characters of each
# "Last, First" and a middle initial, not the "M" of "M.D.".
_MIDDLE = r"(?:[ \t]+([A-Z])(?:\.(?![A-Z]\.?)|(?![\w.])))?"
# A run of capitalised words, with the particles inside it ("Maria del Carmen Lopez").
_PARTICLE = rf"(?:{'|'.join(_PARTICLES)})"
_LAST_FIRST = re.compile(rf"({_CAPITAL_WORD})[ \t]*,[ \t]*({_CAPITAL_WORD}){_MIDDLE}")
# Particles before "Last, First" open the surname, in any case: "DA MATA,CHRISTINA".
_PARTICLES_BEFORE = re.compile(
    rf"(?<![^\W_])(?i:{_PARTICLE})(?:[ \t](?i:{_PARTICLE})){{0,3}}[ \t]$"
)
# Particles inside a name or before it: "Alberto de la Garza", "Ms. da Luz".
# (At most four in a row: "de de de ..." must not make the search quadratic.)
_INNER_PARTICLE = rf"{_PARTICLE}(?:[ \t]{_PARTICLE}){{0,3}}(?=[ \t]{_CAPITAL})"
# The particles before a run, read back from where it starts ("Ms. da Luz").
_LEADING_PARTICLES = re.compile(rf"(?<![^\W_]){_PARTICLE}(?:[ \t]{_PARTICLE}){{0,3}}[ \t]$")
# A full stop ends a run ("Kingsport. She"), but an initial's ("Xzavian G. Tavares"). The
# run opens with the class (see _CAPITAL_WORD): a capital, then an initial's dot or a word.
# A credential written with dots is no initial: "Boone, Brittany M.D." ends at "Brittany".
_DOTTED_CREDENTIAL = r"(?:M\.D|D\.O|R\.N|N\.P|P\.A|D\.D\.S|D\.M\.D)\.?(?![^\W_])"
_RUN_WORD = rf"(?!{_DOTTED_CREDENTIAL})(?:[A-Z]{_NOT_AFTER_WORD}\.|{_CAPITAL_WORD})"
_RUN = re.compile(
    rf"(?!{_DOTTED_CREDENTIAL}){_CAPITAL}{_NOT_AFTER_WORD}"
    rf"(?:\.(?<=[A-Z]\.)|[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*"
    rf"(?![^\W_]))(?:[ \t](?:{_RUN_WORD}|{_INNER_PARTICLE}))*"
)


@dataclass(frozen=True)
class Dictionaries:
    names: frozenset[str]  # given names and surnames, casefolded
    words: dict[str, int]  # the English vocabulary: word -> frequency


@functools.cache
def dictionaries() -> Dictionaries:
    """Built once per process (about half a second): every locale of Faker's person
    provider, and pyspellchecker's English frequency list."""
    import faker.providers.person as person

    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(
            importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None
        )
        for attribute in dir(provider) if provider is not None else ():
            if attribute.startswith(("first_name", "last_name", "first_romanized", "last_roman")):
                values = getattr(provider, attribute, None)
                if isinstance(values, list | tuple | dict):  # some are weighted dicts
                    names.update(_parts(value) for value in values if isinstance(value, str))
    english = importlib.resources.files("spellchecker") / "resources" / "en.json.gz"
    words = json.loads(gzip.decompress(english.read_bytes()))
    names.discard("")
    return Dictionaries(frozenset(names) - _MONTHS, words)


def _parts(name: str) -> str:
    return name.casefold().strip()


class _Token(NamedTuple):
    text: str
    start: int
    end: int

    @property
    def initial(self) -> bool:
        return len(self.text.rstrip(".")) == 1 and self.text[0].isupper()


class NameFinder:
    def __init__(self, dictionaries: Dictionaries) -> None:
        self._names = dictionaries.names
        self._words = dictionaries.words
        self._kinds: dict[str, str] = {}  # each word's kind, once: notes repeat their words

    @staticmethod
    def eponym_at(text: str, end: int) -> bool:
        """Whether what follows `end` makes the name before it an eponym's ("Hashimoto's
        thyroiditis", "Parkinson's" alone): a name of the answer found there is a
        disease's, not the person's."""
        return _EPONYM.match(text, end) is not None or _condition_at(text, end)

    def common(self, word: str) -> bool:
        """Whether `word` is a common English word ("will", "rose", "mark"): written in
        lowercase, it is that word, even if a name of the answer is spelled so."""
        folded = word.casefold()
        return folded in _GRAMMAR or self._words.get(folded, 0) >= _COMMON

    def find(self, text: str) -> list[Finding]:
        """The names in `text`, sorted, not overlapping."""
        found: list[Finding] = []
        for run in self._runs(text):
            found += self._names_in(run, text)
        found += self._last_first(text)
        found += self._lowercase(text)
        if not text.isascii():
            found += self._caseless(text)
        return joined(found)

    def _caseless(self, text: str) -> list[Finding]:
        """Names in scripts without capitals (Devanagari, Arabic, Hebrew, Thai, Hangul,
        Han, kana), which the runs of capitalised words never see: a run of up to six
        such words (Arabic names run long) is a name when one of them is a dictionary's
        name (Faker's lists hold each locale's names in its own script), or, written
        without spaces as Korean and Chinese names are, when it opens with a family name
        the dictionaries hold and the rest is a given name they hold ("곽현주": 곽, 현주)."""
        found: list[Finding] = []
        for run in _CASELESS_RUN.finditer(text):
            words = run.group().split()
            if any(self._caseless_name(word) for word in words):
                found.append(Finding("name", run.start(), run.end()))
        return found

    def _caseless_name(self, word: str) -> bool:
        if word in self._names:
            return True
        return any(
            word[:cut] in self._names and word[cut:] in self._names
            for cut in (1, 2)
            if len(word) - cut >= 1 and len(word) <= 5
        )

    def _everyday(self, word: str) -> bool:
        return self._words.get(word.casefold(), 0) >= _EVERYDAY

    def could_be_name(self, text: str) -> bool:
        """Whether `text` could be a person's name alone: one to five capitalised words or
        initials, none a word of the vocabulary or the grammar, no digits."""
        tokens = text.split()
        if not 1 <= len(tokens) <= _MAX_RUN or any(c.isdigit() for c in text):
            return False
        for word in tokens:
            word = word.strip(",")
            if not _NAME_TOKEN.fullmatch(word) or not word[0].isupper():  # "Consultant:"
                return False
            kind = self._kind(_Token(word.rstrip("."), 0, len(word.rstrip("."))))
            if kind not in ("name", "unknown", "initial") and not (
                word.endswith(".") and len(word) == 2
            ):
                return False
        return True

    def completed(self, text: str, findings: list[Finding]) -> list[Finding]:
        """`findings` (sorted, disjoint), each name widened over the words that stand beside
        it as parts of it: capitalised words in no dictionary of common words, and initials
        ("Stavolle [NAME]" when only the surname was known, "[NAME], Bryntokon W."). A
        title, a common word, or anything but a space or a comma between them stops it."""
        if not any(f.entity == "name" for f in findings):
            return findings
        bounds = [0, *(f.end for f in findings)], [*(f.start for f in findings), len(text)]
        return [
            self._completed(text, f, bounds[0][i], bounds[1][i + 1]) if f.entity == "name" else f
            for i, f in enumerate(findings)
        ]

    def _completed(self, text: str, finding: Finding, low: int, high: int) -> Finding:
        """`finding` widened, within low..high (up to its neighbours: a word another
        finding holds is that finding's)."""
        start, end = finding.start, finding.end
        for _ in range(_BESIDE):
            before = _PART_BEFORE.search(text, max(low, start - _LONGEST_PART), start)
            if before is None or not self._part(before.group("w")):
                break
            start = before.start()
        for _ in range(_BESIDE):
            after = _PART_AFTER.match(text, end, high)
            if after is None or not self._part(after.group("w")):
                break
            end = after.end()
        if (start, end) == (finding.start, finding.end):
            return finding
        return Finding("name", start, end)

    def _part(self, word: str) -> bool:
        return self._kind(_Token(word, 0, len(word))) in ("name", "unknown", "initial")

    def _lowercase(self, text: str) -> list[Finding]:
        """Names written in lowercase, as chats and texts write them, where nothing but a
        name stands: after a greeting or a hand-over ("hi sylvia", "fyi isabelle", "given
        to sarah espinoza"), or before a relation ("nader (son)"). Only a dictionary's
        name, never a common word ("summer", "will")."""
        found: list[Finding] = []
        for match in _after_greetings(text):
            words = [(match.start(g), match.group(g)) for g in ("a", "b") if match.group(g)]
            found += self._lower_words(words, match.group("g").casefold() in _OPEN_GREETINGS)
        for says in _SAYS.finditer(text):  # read back from each verb, not at every word
            words = _WORDS_BEFORE.search(text, max(0, says.start() - 64), says.start())
            if words is not None:
                found += self._lower_words(
                    [(words.start(g), words.group(g)) for g in ("a", "b") if words.group(g)],
                    open_=True,
                ) or self._lower_words([(words.start("b"), words.group("b"))], open_=True)
        for match in _LOWER_BEFORE.finditer(text) if _A_RELATION.search(text) else ():
            if self._lower_name(match.group("a")):
                found.append(Finding("name", match.start("a"), match.end("a")))
        return found

    def _lower_words(self, words: list[tuple[int, str]], open_: bool) -> list[Finding]:
        """A lowercase name of one or two words (where each starts, and the word): the
        second a surname, possessives left out; after an open greeting, the first may be in
        no dictionary at all."""
        words = [(at, _POSSESSIVE.sub("", word)) for at, word in words]
        if not words[0][1].islower() or not self._lower_name(words[0][1], unknown=open_):
            return []
        if len(words) > 1 and not (
            words[1][1].islower() and self._lower_name(words[1][1], surname=True)
        ):
            words = words[:1]
        return [Finding("name", words[0][0], words[-1][0] + len(words[-1][1]))]

    def _lower_name(self, word: str, surname: bool = False, unknown: bool = False) -> bool:
        """Whether a lowercase word is a name: a dictionary's, never a common word; or, as a
        surname or after an open greeting, a word of no dictionary (and not a clinical
        term's shape)."""
        if self.common(word):
            return False
        folded = word.casefold()
        if folded in self._names:
            return True
        if not (surname or (unknown and len(folded) >= 4)) or self._words.get(folded, 0):
            return False
        return not _CLINICAL_ENDING.search(folded)

    def _kind(self, token: _Token) -> str:
        """ "name", "ambiguous" (a common word someone is called), "word", "initial" or
        "unknown" (in no dictionary: a name only where names stand)."""
        kind = self._kinds.get(token.text)
        if kind is None:
            if len(self._kinds) >= _KINDS:  # the words are the text's: bounded
                self._kinds.clear()
            kind = self._kinds[token.text] = self._kind_of(token)
        return kind

    def _kind_of(self, token: _Token) -> str:
        if token.initial:
            return "initial"
        word = token.text.rstrip(".").casefold()
        if word in _GRAMMAR or title_or_credential(token.text):
            return "word"
        if word in _MONTHS or word in _STATE_WORDS:  # "June Lee", "Virginia Woolf"
            return "ambiguous"
        parts = [p for p in _JOINERS.split(word) if p]
        frequency = self._words.get(word, 0)
        if word in self._names or (len(parts) > 1 and all(p in self._names for p in parts)):
            if frequency >= _COMMON:
                return "ambiguous"
            if token.text.isupper() and len(word) <= 3:  # "ED", "AL", "MA": abbreviations
                return "ambiguous"
            return "name"
        if frequency >= _RARE or not token.text[0].isupper():  # uncased: by dictionary only
            return "word"
        if token.text.isupper() and len(word) <= 4:  # "HPI", "CBC", "BMP"
            return "word"
        if _CAMEL.fullmatch(token.text) and all(  # "ViewPosition": a keyword, of words
            self._words.get(part, 0) >= _RARE and part not in self._names
            for part in (w.casefold() for w in _CAMEL_PART.findall(token.text))
        ):
            return "word"
        return "unknown"

    def _runs(self, text: str) -> list[list[_Token]]:
        """Runs of capitalised words (and initials, and particles inside them), each joined
        to the next by one space or tab."""
        runs: list[list[_Token]] = []
        for found in _RUN.finditer(text):
            run: list[_Token] = []
            start = found.start()
            if text[start - 1 : start] in (" ", "\t") and (
                lead := _LEADING_PARTICLES.search(text, max(0, start - 24), start)
            ):
                start = lead.start()
            for match in _TOKEN.finditer(text, start, found.end()):
                word = match.group()
                if word.endswith(".") and len(word) > 2:  # a full stop, not an initial
                    word = word[:-1]
                if word[-2:] in ("'s", "\u2019s") and len(word) > 3:  # the possessive
                    word = word[:-2]
                run.append(_Token(word, match.start(), match.start() + len(word)))
            # Judged in slices: a run far longer than any name is a list of them, and
            # judging one word against all before it would cost the square of its length.
            runs.extend(run[i : i + _LONGEST_RUN] for i in range(0, len(run), _LONGEST_RUN))
        return runs

    def _names_in(self, run: list[_Token], text: str) -> list[Finding]:
        """The names of one run: split where an English word stands, each part judged by
        its own words and by what stands before and after it."""
        found: list[Finding] = []
        part: list[tuple[_Token, str]] = []
        for token in [*run, None]:
            kind = self._kind(token) if token is not None else "word"
            if kind == "word" and token is not None and self._named_so(token, part, text):
                kind = "ambiguous"
            if kind == "word" and not (token is not None and token.text in _PARTICLES):
                if part:
                    found += self._judged(part, text)
                part = []
            else:
                part.append((token, kind))  # type: ignore[arg-type]
        return found

    @staticmethod
    def _named_so(token: _Token, part: list[tuple[_Token, str]], text: str) -> bool:
        """Whether a word of the grammar is a name's here: inside a name, or capitalised in
        mid-sentence ("Nguyen Van An", "and Do Thi Hoa"); "Do not" opens a sentence."""
        if token.text.casefold() not in _GRAMMAR or _CREDENTIAL_WORD.fullmatch(token.text):
            return False  # "DO" after a name is a degree
        if any(kind != "initial" for _, kind in part):  # after a name, not after "ng/L."
            return True
        return bool(_MID_SENTENCE.search(text[max(0, token.start - 20) : token.start]))

    def _judged(self, part: list[tuple[_Token, str]], text: str) -> list[Finding]:
        while part and (part[-1][0].text in _PARTICLES or part[-1][1] == "initial"):
            if part[-1][1] == "initial" and len(part) > 1 and part[-2][1] != "initial":
                break  # "Smith J." keeps its initial
            part = part[:-1]
        # A label that is a capitalised word of the run ("Dear", "Prescriber") stays: what
        # follows it is placed as a name.
        while part and _labelled(text[max(0, part[0][0].start - 40) : part[0][0].end]):
            part = part[1:]
        particles = 0  # leading particles: part of the name if the rest is one ("da Luz")
        while particles < len(part) and part[particles][0].text in _PARTICLES:
            particles += 1
        if particles == len(part):
            return []
        first = part[0][0].start
        part = part[particles:]
        end = part[-1][0].end
        if all(token.text.casefold() in _GRAMMAR for token, _ in part):  # "Provider No."
            return []
        kinds = {kind for _, kind in part}
        before = text[max(0, first - 40) : first]
        after = text[end : end + 40]
        placed = bool(
            _titled(before)
            or _labelled(before)
            or _CREDENTIAL.match(after)
            or _PERSON_VERB.match(after)
        )
        if (_EPONYM.match(after) or _condition_at(text, end)) and not placed:
            return []
        # "Na 134; K 3.2": a short word before a number is a lab's, and "Morse 55" a scale's
        # score, unless placed as a name.
        if len(part) == 1 and not placed and _NUMBER.match(after):
            word = part[0][0].text
            if len(word) <= 3 or word.casefold() in _SCALES:
                return []
        # A word that opens a line or a sentence has its capital from there, not from being a
        # name: a name of the dictionaries that is also an everyday word ("Ward handover",
        # "GROSS: Received") stands as a name there only where names stand.
        if (
            len(part) == 1
            and not placed
            and self._everyday(part[0][0].text)
            and _OPENING.search(text, max(0, first - 8), first) is not None
        ):
            return []
        named = "name" in kinds
        if named or (placed and kinds - {"initial"}):
            if len(part) > _MAX_RUN:  # longer than any name: a list of them, word by word
                return [
                    Finding("name", t.start, t.end) for t, _ in part if t.text not in _PARTICLES
                ]
            return [Finding("name", first, end)]
        # Two unknown words around an initial ("Xzavian G. Tavares") are a name too.
        if "initial" in kinds and "unknown" in kinds and len(part) >= 3:
            return [Finding("name", first, end)]
        return []

    @staticmethod
    def _caps_pair(last: str, first: str, kinds: set[str]) -> bool:
        """Whether "LAST,FIRST" in capitals, no space after the comma, is how a record
        system writes its patient: both words names if common words too ("KING,AMY"), or in
        no dictionary ("BROLVIARN,CHYLAELLE"), but neither a month nor, by its ending or its
        length, a clinical term ("CHOLECYSTITIS,CHOLANGITIS")."""
        if not kinds <= {"ambiguous", "unknown"} or {last.casefold(), first.casefold()} & _MONTHS:
            return False
        return kinds == {"ambiguous"} or not any(
            len(word) > _LONGEST_NAME_WORD or _CLINICAL_ENDING.search(word)
            for word in (last, first)
        )

    def _last_first(self, text: str) -> list[Finding]:
        """ "Villegas, Yosef", "OROZCO,KYLE", "Tavares, Xzavian G.": two capitalised words
        around a comma, one of them a name and neither an English word."""
        found = []
        for match in _LAST_FIRST.finditer(text):
            last, first = match.group(1), match.group(2)
            if not (last[0].isupper() and first[0].isupper()) or len(first) < 2:
                continue
            kinds = {
                self._kind(_Token(last, 0, len(last))),
                self._kind(_Token(first, 0, len(first))),
            }
            before = text[max(0, match.start() - 40) : match.start()]
            placed = (
                _labelled(before)
                or _CREDENTIAL.match(text, match.end())
                or _PERSON_VERB.match(text, match.end())
                # "KING,AMY": in capitals, no space after the comma, both parts names (if
                # common words too): how a record system writes its patient
                or (
                    last.isupper()
                    and first.isupper()
                    and match.group().find(", ") < 0
                    and self._caps_pair(last, first, kinds)
                )
            )
            if "word" in kinds or not ("name" in kinds or placed):
                continue
            if first.casefold() in _STATE_WORDS or first in _STATE_CODES:  # "Florence, AL"
                continue
            # With no space after the comma and not in capitals, the comma may part a CSV
            # row's cells ("Smith,Endocrinology"): both words must be names then.
            if ", " not in match.group() and not last.isupper() and "unknown" in kinds:
                continue
            start = match.start()
            if particles := _PARTICLES_BEFORE.search(text, max(0, start - 24), start):
                start = particles.start()
            found.append(Finding("name", start, match.end()))
        return found
