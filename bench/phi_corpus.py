"""A labelled corpus of synthetic PHI for measuring a masker's recall: clinical notes, JSON
rows, FHIR bundles, HL7 v2 messages, tables, chats and one-line sentences, each a complete
MCP `tools/call` answer, with the offsets of every identifier in its text.

    .venv/bin/python bench/phi_corpus.py [--n 400] [--seed 1] [--show 2]

Reproducible: the same seed, with the same Faker release, gives a byte-identical corpus.
Names come from many Faker locales, mostly in the Latin script a US EHR holds them in, a
few in their own script. About a quarter of the people have invented names (`holdout`),
absent from every Faker locale's name lists: only context can reveal them.

Labels follow HIPAA Safe Harbor, broadly: a state, a year alone, an age under 90, a
facility, a payer, a drug, a code (ICD, CPT, LOINC) or an eponym ("Crohn's disease",
"Foley catheter") is not PHI. Every phone and fax number is labelled, a clinic's too. FHIR
logical ids (random UUIDs) and HL7 message control ids are treated as not PHI.
Every identifier enters a text through `Builder.add`, which records its span, so none
goes unlabelled."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import json
import random
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faker import Faker
from faker.config import AVAILABLE_LOCALES

# --- the labelled document -----------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One identifier: `text[start:end]`. `holdout`: a name no Faker list holds."""

    entity: str
    start: int
    end: int
    holdout: bool = False


@dataclass(frozen=True)
class Document:
    shape: str
    body: bytes  # a JSON-RPC response to tools/call, as an MCP server sends it
    text: str  # its result.content[0].text
    spans: list[Span]


ENTITIES = (
    *("name", "clinician_name", "username", "date", "age_over_89", "phone", "fax", "email"),
    *("ssn", "mrn", "account", "health_plan", "license", "vehicle", "device", "url", "ip"),
    *("street_address", "city", "zip", "employer"),
)


@dataclass(frozen=True)
class Phi:
    """An identifier as it is written, and its label."""

    entity: str
    value: str
    holdout: bool = False
    number: bool = False  # written as a bare JSON number, not a string

    def __post_init__(self) -> None:
        if self.entity not in ENTITIES or not self.value.strip():
            raise ValueError(f"bad identifier {self!r}")


Piece = str | Phi


@dataclass(frozen=True)
class Txt:
    """A JSON string made of pieces: free text with identifiers inside."""

    pieces: tuple[Piece, ...]

    def plain(self) -> str:
        return "".join(p.value if isinstance(p, Phi) else p for p in self.pieces)


class Builder:
    """Text grown piece by piece; the identifiers' spans are recorded as they are added."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self.spans: list[Span] = []

    def add(self, *pieces: Piece | Sequence[Piece]) -> Builder:
        for piece in pieces:
            if isinstance(piece, str | Phi):
                self._one(piece)
            else:
                for inner in piece:
                    self._one(inner)
        return self

    def line(self, *pieces: Piece | Sequence[Piece]) -> Builder:
        return self.add(*pieces, "\n")

    def _one(self, piece: Piece) -> None:
        if isinstance(piece, Phi):
            end = self._size + len(piece.value)
            self.spans.append(Span(piece.entity, self._size, end, piece.holdout))
            piece = piece.value
        self._parts.append(piece)
        self._size += len(piece)

    def text(self) -> str:
        return "".join(self._parts)


_FORMATTER = string.Formatter()


def fill(template: str, **slots: Piece | Sequence[Piece]) -> list[Piece]:
    """`template` with `{slot}`s replaced by text, identifiers, or lists of both."""
    out: list[Piece] = []
    for literal, name, _spec, _conversion in _FORMATTER.parse(template):
        if literal:
            out.append(literal)
        if name is not None:
            value = slots[name]
            out.extend([value] if isinstance(value, str | Phi) else value)
    return out


# --- JSON with spans -----------------------------------------------------------------------


def _escaped(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _json_phi(b: Builder, phi: Phi) -> None:
    if phi.number:
        b.add(phi)
        return
    if _escaped(phi.value) != phi.value:  # the span must be the value as the JSON holds it
        raise ValueError(f"identifier needs JSON escaping: {phi.value!r}")
    b.add('"', phi, '"')


def emit_json(b: Builder, value: Any, indent: int | None, depth: int = 0) -> None:
    """`value` written as `json.dumps(value, ensure_ascii=False, indent=indent)` would,
    with the spans of the identifiers (`Phi`) in it."""
    if isinstance(value, Phi):
        _json_phi(b, value)
    elif isinstance(value, Txt):
        b.add('"', *(p if isinstance(p, Phi) else _escaped(p) for p in value.pieces), '"')
    elif isinstance(value, dict | list):
        _emit_container(b, value, indent, depth)
    else:
        b.add(json.dumps(value, ensure_ascii=False))


def _emit_container(b: Builder, value: dict | list, indent: int | None, depth: int) -> None:
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    if not value:
        b.add(opening + closing)
        return
    inner = "\n" + " " * (indent * (depth + 1)) if indent is not None else ""
    outer = "\n" + " " * (indent * depth) if indent is not None else ""
    comma = "," if indent is not None else ", "
    b.add(opening)
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for i, (key, item) in enumerate(items):
        b.add(comma if i else "", inner)
        if key is not None:
            b.add(json.dumps(key, ensure_ascii=False), ": ")
        emit_json(b, item, indent, depth + 1)
    b.add(outer, closing)


def plain(value: Any) -> Any:
    """The value as a server holds it: identifiers as strings (or numbers), no labels."""
    if isinstance(value, Phi):
        return int(value.value) if value.number else value.value
    if isinstance(value, Txt):
        return value.plain()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --- where names come from ------------------------------------------------------------------

# Locales whose names a US EHR holds in Latin script, weighted roughly as a US city's
# patients. zh_CN and ja_JP give their romanized names. (Faker has no person provider
# for fil_PH; Filipino patients' Spanish-derived names come from the es_ locales.)
LATIN_LOCALES: dict[str, int] = {
    **{"en_US": 30, "es_MX": 9, "es_ES": 2, "pt_BR": 3, "fr_FR": 2, "de_DE": 2, "it_IT": 2},
    **{"pl_PL": 2, "nl_NL": 1, "tr_TR": 1, "vi_VN": 3, "en_IN": 4, "zh_CN": 3, "ja_JP": 2},
    **{"yo_NG": 2, "ig_NG": 1, "ha_NG": 1, "en_NG": 1, "zu_ZA": 1, "tw_GH": 1, "en_KE": 1},
    **{"ga_IE": 1, "en_IE": 2, "id_ID": 1, "en_PK": 2},
}
# A few patients' names as their own script writes them (registration from a scanned
# document, a relative's name typed by a family member).
NATIVE_LOCALES = ("hi_IN", "zh_CN", "ja_JP", "ko_KR", "ar_AA", "he_IL", "fa_IR", "ru_RU")
NATIVE_SHARE = 0.05
HOLDOUT_SHARE = 0.25
_FAMILY_FIRST = ("zh_CN", "ja_JP", "ko_KR")  # written family name first, without comma


@functools.cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


@functools.cache
def faker_names() -> frozenset[str]:
    """Every first, middle and last name (and each word of one) of every Faker locale,
    casefolded: what an invented name must not be."""
    names: set[str] = set()
    for locale in AVAILABLE_LOCALES:
        try:
            module = importlib.import_module(f"faker.providers.person.{locale}")
        except ImportError:
            continue
        provider = module.Provider
        for attribute in dir(provider):
            if attribute.startswith("_") or not any(
                part in attribute
                for part in ("first_name", "last_name", "middle_name", "romanized")
            ):
                continue
            for entry in _strings(getattr(provider, attribute)):
                folded = entry.casefold()
                names.add(folded)
                names.update(folded.replace("-", " ").split())
    return frozenset(names)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


# A small syllable model for pronounceable names that no list holds: onset, vowel, then
# one or two (consonant, vowel) pairs, then an ending ("Xz-a-v-ia-n", "T-a-v-e-lle").
_ONSETS = (
    *("b", "br", "c", "d", "dr", "f", "g", "j", "k", "l", "m", "n", "p", "qu", "r", "s"),
    *("sh", "t", "th", "tr", "v", "w", "z", "ch", "st", "gr"),
)
_FIRST_ONSETS = (*_ONSETS, "xz", "xz", "x", "zh", "kh", "vr", "y")
_VOWELS = ("a", "a", "e", "e", "i", "o", "o", "u", "y")
_LAST_VOWELS = (*_VOWELS, "ia", "io", "ae")
_MEDIALS = (
    *("v", "l", "r", "rr", "n", "nd", "m", "th", "s", "z", "d", "t", "k", "ll", "nn"),
    *("br", "dr", "st", "rv", "lv", "sh", "x", "nt"),
)
_GIVEN_ENDS = ("n", "n", "r", "s", "x", "", "", "lle", "th", "nne", "l", "sh", "rn", "nd", "ck")
_FAMILY_ENDS = ("lle", "nne", "tte", "r", "n", "s", "x", "nd", "rn", "th", "ck", "ke", "ne", "ro")


def _syllables(rng: random.Random, family: bool) -> str:
    parts = [rng.choice(_ONSETS if family else _FIRST_ONSETS), rng.choice(_VOWELS)]
    for _ in range(rng.choice((1, 1, 1, 2))):
        parts += [rng.choice(_MEDIALS), rng.choice(_VOWELS)]
    parts[-1] = rng.choice(_LAST_VOWELS)
    parts.append(rng.choice(_FAMILY_ENDS if family else _GIVEN_ENDS))
    return "".join(parts)


def invented_name(rng: random.Random, family: bool) -> str:
    """A pronounceable name in no Faker locale's lists."""
    known = faker_names()
    while True:
        word = _syllables(rng, family)
        if 4 <= len(word) <= 11 and word.casefold() not in known:
            return word.capitalize()


# --- people -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    given: str  # may be several words ("José Mari")
    family: str  # may be several words ("da Cunha", "Mac Goill")
    middle: str  # "" if none
    sex: str  # "F" or "M"
    holdout: bool = False
    script: str = "latin"  # or "native": written as its own script writes it
    family_first: bool = False


@dataclass(frozen=True)
class Clinician:
    person: Person
    credential: str  # "MD", "M.D.", "NP", "PA-C", ...
    username: str
    npi: str
    specialty: str


CREDENTIALS = (
    *("MD", "MD", "M.D.", "M.D.", "DO", "D.O.", "MD, PhD", "NP", "FNP-C", "PA-C", "RN"),
    *("BSN, RN", "PhD", "PharmD", "CNM", "LCSW", "MD, FACC", "DO, MPH"),
)
DOCTORS = frozenset({"MD", "M.D.", "DO", "D.O.", "MD, PhD", "PhD", "MD, FACC", "DO, MPH"})


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in " -'"))


# --- the values of identifiers ------------------------------------------------------------

MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
STATES = {
    **{"AL": "Alabama", "AZ": "Arizona", "CA": "California", "CO": "Colorado", "FL": "Florida"},
    **{"GA": "Georgia", "IL": "Illinois", "IN": "Indiana", "KY": "Kentucky", "LA": "Louisiana"},
    **{"MA": "Massachusetts", "MD": "Maryland", "MI": "Michigan", "MN": "Minnesota"},
    **{"MO": "Missouri", "NC": "North Carolina", "NJ": "New Jersey", "NM": "New Mexico"},
    **{"NY": "New York", "OH": "Ohio", "OR": "Oregon", "PA": "Pennsylvania", "TN": "Tennessee"},
    **{"TX": "Texas", "UT": "Utah", "VA": "Virginia", "WA": "Washington", "WI": "Wisconsin"},
}
# The FIPS codes of the driver's licence OIDs (urn:oid:2.16.840.1.113883.4.3.NN).
STATE_FIPS = {
    **{"AL": "01", "AZ": "04", "CA": "06", "CO": "08", "FL": "12", "GA": "13", "IL": "17"},
    **{"IN": "18", "KY": "21", "LA": "22", "MA": "25", "MD": "24", "MI": "26", "MN": "27"},
    **{"MO": "29", "NC": "37", "NJ": "34", "NM": "35", "NY": "36", "OH": "39", "OR": "41"},
    **{"PA": "42", "TN": "47", "TX": "48", "UT": "49", "VA": "51", "WA": "53", "WI": "55"},
}
REAL_CITIES = (
    *("Springfield", "Columbus", "Franklin", "Greenville", "Bristol", "Clinton", "Salem"),
    *("Madison", "Georgetown", "Fairview", "Jackson", "Marion", "Lafayette", "El Paso"),
    *("San Antonio", "Santa Fe", "Baton Rouge", "St. Louis", "Fort Wayne", "Cedar Rapids"),
    *("Ann Arbor", "Boise", "Tucson", "Albuquerque", "Durham", "Lancaster", "Warren"),
)
STREET_BASES = (
    *("Oak", "Maple", "Cedar", "Orchard Ridge", "Willow Creek", "Lake Shore", "Mill", "Church"),
    *("Main", "Washington", "Lincoln", "Park", "Highland", "Sunset", "Meadowbrook", "Elm"),
    *("Pine Hollow", "River", "Spring", "Chestnut", "Hillcrest", "Prospect", "Forest Glen"),
)
STREET_SUFFIXES = (
    *("St", "St", "Street", "Ave", "Ave", "Avenue", "Rd", "Road", "Dr", "Drive", "Ln", "Lane"),
    *("Blvd", "Ct", "Court", "Way", "Pl", "Cir", "Ter", "Pkwy", "Loop", "Trail", "Hwy", "Run"),
    *("Pike", "Path", "Crossing"),
)
UNITS = ("Apt 4B", "Apt. 12", "Unit 3", "#204", "Suite 110", "Lot 17", "Apt 2R", "Fl 2", "Rm 5")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
PORTAL_HOSTS = (
    *("mychart.mercyhealth.example.org", "portal.stlukes.example.com"),
    *("patient.valleymed.example.net", "myhealth.riverside.example.org"),
)


@dataclass(frozen=True)
class Address:
    street: str  # number, name, suffix
    unit: str  # "" if none
    city: str
    state: str  # code
    zip5: str
    zip4: str  # "" if none


@dataclass(frozen=True)
class Phone:
    area: str
    exchange: str
    line: str


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _letters(rng: random.Random, count: int, alphabet: str = string.ascii_uppercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def npi(rng: random.Random) -> str:
    body = rng.choice("12") + _digits(rng, 8)
    return body + luhn_digit("80840" + body)  # the NPI check digit covers the 80840 prefix


def dea(rng: random.Random, family: str) -> str:
    letter = ascii_fold(family)[:1].upper() or "X"
    digits = _digits(rng, 6)
    d = [int(c) for c in digits]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return f"{rng.choice('ABFGM')}{letter}{digits}{check}"


_VIN_VALUES = {
    **{str(n): n for n in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    **{"P": 7, "R": 9},
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin(rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    chars = [rng.choice(alphabet) for _ in range(17)]
    chars[9] = rng.choice("KLMNPRS")  # model years 2019-2025
    total = sum(_VIN_VALUES[c] * w for c, w in zip(chars, _VIN_WEIGHTS, strict=True))
    chars[8] = "X" if total % 11 == 10 else str(total % 11)
    return "".join(chars)


def ssn_digits(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Date layouts; those marked in NO_YEAR leave the year out (a date within the stay).
DATE_STYLES: dict[str, Callable[[dt.date], str]] = {
    "us": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    "us_short": lambda d: f"{d.month}/{d.day}/{d.year}",
    "us_2y": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    "iso": lambda d: d.isoformat(),
    "dmy": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "long": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "long_ord": lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}, {d.year}",
    "abbr": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "dash": lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}",
    "dash_upper": lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3].upper()}-{d.year}",
    "dotted": lambda d: f"{d.month}.{d.day}.{d.year}",
    "hl7": lambda d: f"{d:%Y%m%d}",
    "of_month": lambda d: f"{ordinal(d.day)} of {MONTHS[d.month - 1]}",
    "mon_day": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}",
    "month_ord": lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}",
    "slash_md": lambda d: f"{d.month}/{d.day}",
}
FULL_DATES = ("us", "us", "us_short", "us_2y", "iso", "dmy", "long", "long_ord", "abbr", "dash")
FULL_DATES += ("dash_upper", "dotted")
NO_YEAR = ("of_month", "mon_day", "month_ord", "slash_md")


ROMANIZED = ("zh_CN", "ja_JP")  # their Fakers also give names in Latin script


def _latin_name(fake: Faker, locale: str, sex: str) -> tuple[str, str]:
    """A given and a family name in Latin script."""
    female = sex == "F"
    if locale == "zh_CN":
        return fake.first_romanized_name(), fake.last_romanized_name()
    if locale == "ja_JP":
        given = fake.first_romanized_name_female() if female else fake.first_romanized_name_male()
        return given, fake.last_romanized_name()
    return (fake.first_name_female() if female else fake.first_name_male()), fake.last_name()


class Gen:
    """A document's source of randomness and of identifiers in their many layouts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # randomness
    def pick(self, options: Sequence[Any]) -> Any:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def faker(self, locale: str) -> Faker:
        """The locale's Faker, reseeded from this document's stream at every use, so a
        document's values depend on its seed alone."""
        fake = _faker(locale)
        fake.seed_instance(self.rng.getrandbits(48))
        return fake

    # people
    def person(self, sex: str | None = None, family: str | None = None) -> Person:
        sex = sex or self.pick("FM")
        if family is None and self.chance(HOLDOUT_SHARE):
            return self._invented(sex)
        if family is None and self.chance(NATIVE_SHARE):
            return self._native(sex)
        locale = self.rng.choices(list(LATIN_LOCALES), weights=list(LATIN_LOCALES.values()))[0]
        fake = self.faker(locale)
        given, last = _latin_name(fake, locale, sex)
        middle = ""
        # Only a second given name or its initial: zh_CN's and ja_JP's are not romanized.
        if self.chance(0.45) and locale not in ROMANIZED:
            other = fake.first_name_female() if sex == "F" else fake.first_name_male()
            middle = other if self.chance(0.3) else other[0]
        return Person(given, family or last, middle, sex)

    def _invented(self, sex: str) -> Person:
        middle = invented_name(self.rng, family=False)[0] if self.chance(0.4) else ""
        given = invented_name(self.rng, family=False)
        return Person(given, invented_name(self.rng, family=True), middle, sex, True)

    def _native(self, sex: str) -> Person:
        locale = self.pick(NATIVE_LOCALES)
        fake = self.faker(locale)
        given = fake.first_name_female() if sex == "F" else fake.first_name_male()
        return Person(given, fake.last_name(), "", sex, False, "native", locale in _FAMILY_FIRST)

    def relative(self, patient: Person, sex: str | None = None) -> Person:
        """Half of them share the patient's family name (and an invented one with it)."""
        if self.chance(0.5) and patient.script == "latin":
            if patient.holdout:
                given = invented_name(self.rng, family=False)
                return Person(given, patient.family, "", sex or self.pick("FM"), True)
            return self.person(sex, family=patient.family)
        return self.person(sex)

    def clinician(self, specialty: str) -> Clinician:
        person = self.person()
        while person.script != "latin":  # staff names are on their badges in Latin script
            person = self.person()
        return Clinician(
            person, self.pick(CREDENTIALS), self.username(person), npi(self.rng), specialty
        )

    def username(self, person: Person) -> str:
        given = ascii_fold(person.given).lower().replace(" ", "").replace("'", "")
        family = ascii_fold(person.family).lower().replace(" ", "").replace("'", "")
        given, family = given or "user", family or "staff"
        return self.pick(
            (
                f"{given[0]}{family}",
                f"{given[0]}{family}{self.rng.randint(1, 99)}",
                f"{family}{given[0]}",
                f"{given}.{family[0]}",
                f"{family[:5]}{given[:2]}",
                f"{given[0].upper()}{family[0].upper()}{self.rng.randint(1000, 9999)}",
            )
        )

    # names as written
    def name(self, person: Person, entity: str = "name", form: str | None = None) -> Phi:
        return Phi(entity, self.name_text(person, form), person.holdout)

    def name_text(self, p: Person, form: str | None = None) -> str:
        if p.script == "native":
            sep = "" if p.family_first and p.given.isalpha() and len(p.given) < 4 else " "
            return f"{p.family}{sep}{p.given}" if p.family_first else f"{p.given} {p.family}"
        mid = f" {p.middle}." if len(p.middle) == 1 else f" {p.middle}" if p.middle else ""
        forms = {
            "full": f"{p.given} {p.family}",
            "full_mid": f"{p.given}{mid} {p.family}",
            "last_first": f"{p.family}, {p.given}",
            "last_first_mid": f"{p.family}, {p.given}{mid}",
            "upper_comma": f"{p.family.upper()},{p.given.upper()}",
            "upper_comma_space": f"{p.family.upper()}, {p.given.upper()}",
            "upper_full": f"{p.given.upper()} {p.family.upper()}",
            "initial_last": f"{p.given[0]}. {p.family}",
        }
        if form is None:
            form = self.pick(
                (
                    *("full", "full", "full", "full_mid", "full_mid", "last_first"),
                    *("last_first_mid", "upper_comma", "upper_comma_space", "upper_full"),
                    "initial_last",
                )
            )
        if form == "given":
            return p.given
        if form == "family":
            return p.family
        return forms[form]

    def casual(self, p: Person) -> Phi:
        """The patient again, later in a note: the first name, or a title and the family name."""
        if p.script == "native":
            return self.name(p)
        return self.name(p, form=self.pick(("given", "family", "full")))

    def titled(self, p: Person, entity: str = "name") -> list[Piece]:
        """ "Mr. Tavares", "Ms. Lopez": the title is no identifier."""
        if p.script == "native":
            return [self.name(p, entity)]
        title = self.pick(("Mrs.", "Ms.", "Ms")) if p.sex == "F" else self.pick(("Mr.", "Mr"))
        return [f"{title} ", Phi(entity, p.family, p.holdout)]

    def doctor(self, c: Clinician, form: str | None = None) -> list[Piece]:
        """A clinician as notes name them: "Dr. Okafor", "Ada N. Okafor, MD", "Okafor, Ada NP"."""
        p = c.person
        form = form or self.pick(
            ("dr_family", "dr_full", "full_cred", "full_cred", "last_first_cred", "plain")
        )
        if form == "dr_family" and c.credential in DOCTORS:
            return ["Dr. ", Phi("clinician_name", p.family, p.holdout)]
        if form == "dr_full" and c.credential in DOCTORS:
            return ["Dr. ", self.name(p, "clinician_name", self.pick(("full", "full_mid")))]
        if form == "last_first_cred":
            return [
                self.name(p, "clinician_name", "last_first"),
                f" {c.credential.replace(',', '')}",
            ]
        if form == "plain":
            return [self.name(p, "clinician_name", self.pick(("full", "full_mid", "initial_last")))]
        return [
            self.name(p, "clinician_name", self.pick(("full", "full_mid"))),
            f", {c.credential}",
        ]

    def initials(self, c: Clinician) -> Phi:
        p = c.person
        letters = p.given[0] + (p.middle[0] if p.middle else "") + p.family[0]
        return Phi("clinician_name", ascii_fold(letters).upper() or "XX", p.holdout)

    # dates
    def date(self, d: dt.date, style: str | None = None) -> Phi:
        return Phi("date", DATE_STYLES[style or self.pick(FULL_DATES)](d))

    def short_date(self, d: dt.date) -> Phi:
        """A date within the stay, its year left out ("Mar 4", "3/4", "March 4th")."""
        return Phi("date", DATE_STYLES[self.pick(NO_YEAR[1:])](d))

    def datetime(self, d: dt.date, style: str = "us") -> list[Piece]:
        """A date and a time of day; the time alone identifies no one, so it is left out
        of the span where it stands apart (HL7 writes both as one number)."""
        clock = f"{self.rng.randint(0, 23):02d}:{self.rng.choice((0, 5, 12, 15, 30, 42, 45)):02d}"
        if style == "iso":
            return [Phi("date", d.isoformat()), f"T{clock}:00-05:00"]
        if style == "hl7":
            return [Phi("date", f"{d:%Y%m%d}{clock.replace(':', '')}00")]
        return [Phi("date", DATE_STYLES["us"](d)), f" {clock}"]

    # contact
    def phone_number(self) -> Phone:
        area = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 9)}{self.rng.randint(1, 9)}"
        return Phone(area, f"{self.rng.randint(2, 9)}{_digits(self.rng, 2)}", _digits(self.rng, 4))

    def phone(self, n: Phone, entity: str = "phone", style: str | None = None) -> Phi:
        a, e, line = n.area, n.exchange, n.line
        layouts = {
            "paren": f"({a}) {e}-{line}",
            "paren_tight": f"({a}){e}-{line}",
            "dash": f"{a}-{e}-{line}",
            "dot": f"{a}.{e}.{line}",
            "space": f"{a} {e} {line}",
            "plus": f"+1 {a} {e} {line}",
            "plus_dash": f"+1-{a}-{e}-{line}",
            "one": f"1-{a}-{e}-{line}",
            "bare": f"{a}{e}{line}",
        }
        style = style or self.pick(
            (
                "paren",
                "paren",
                "dash",
                "dash",
                "dot",
                "space",
                "plus",
                "plus_dash",
                "one",
                "paren_tight",
            )
        )
        text = layouts[style]
        if entity == "phone" and style in ("paren", "dash") and self.chance(0.12):
            text += self.pick(
                (f" x{self.rng.randint(100, 9999)}", f" ext. {self.rng.randint(10, 999)}")
            )
        return Phi(entity, text)

    def email(self, p: Person) -> Phi:
        given = ascii_fold(p.given).lower().replace(" ", "").replace("'", "")
        family = ascii_fold(p.family).lower().replace(" ", "").replace("'", "")
        if not given or not family:  # a name in another script: a handle
            given, family = self.faker("en_US").user_name(), str(self.rng.randint(1, 99))
        local = self.pick(
            (
                f"{given}.{family}",
                f"{given[0]}{family}",
                f"{given}{self.rng.randint(1, 99)}",
                f"{family}.{given}{self.rng.randint(50, 99)}",
            )
        )
        return Phi("email", f"{local}@{self.pick(EMAIL_DOMAINS)}")

    def address(self) -> Address:
        rng = self.rng
        if self.chance(0.15):
            side = self.pick(("N", "S", "E", "W", "NE", "SW", "North", "West"))
            street = f"{side} {ordinal(rng.randint(1, 120))} {self.pick(('St', 'Ave', 'Street'))}"
        else:
            base = self.pick(STREET_BASES) if self.chance(0.6) else self.faker("en_US").last_name()
            street = f"{base} {self.pick(STREET_SUFFIXES)}"
            if self.chance(0.15):
                street = f"{self.pick(('N', 'S', 'E', 'W'))} {street}"
        street = f"{rng.randint(1, 29999)} {street}"
        if self.chance(0.05):
            street = f"PO Box {rng.randint(10, 9999)}"
        unit = self.pick(UNITS) if self.chance(0.3) else ""
        city = self.pick(REAL_CITIES) if self.chance(0.3) else self.faker("en_US").city()
        zip4 = _digits(rng, 4) if self.chance(0.25) else ""
        return Address(street, unit, city, self.pick(list(STATES)), _digits(rng, 5), zip4)

    def street(self, a: Address, upper: bool = False) -> Phi:
        text = (
            f"{a.street}, {a.unit}"
            if a.unit and self.chance(0.5)
            else f"{a.street} {a.unit}".strip()
        )
        return Phi("street_address", text.upper() if upper else text)

    def zip_code(self, a: Address) -> Phi:
        return Phi("zip", f"{a.zip5}-{a.zip4}" if a.zip4 else a.zip5)

    def address_line(self, a: Address) -> list[Piece]:
        """ "4821 Oak St, Apt 4B, Springfield, IL 62704" (a state is not PHI)."""
        state = a.state if self.chance(0.85) else STATES[a.state]
        return [self.street(a), ", ", Phi("city", a.city), f", {state} ", self.zip_code(a)]

    # numbers
    def ssn(self, digits: str, style: str | None = None) -> Phi:
        style = style or self.pick(("dash", "dash", "dash", "space", "bare"))
        a, g, s = digits[:3], digits[3:5], digits[5:]
        return Phi("ssn", {"dash": f"{a}-{g}-{s}", "space": f"{a} {g} {s}", "bare": digits}[style])

    def mrn(self, digits: str, style: str | None = None) -> Phi:
        style = style or self.pick(("plain", "plain", "plain", "groups", "pairs", "prefixed"))
        if style == "groups":  # "560-40-78-5"
            return Phi("mrn", f"{digits[:3]}-{digits[3:5]}-{digits[5:7]}-{digits[7:]}")
        if style == "pairs":  # "00-12-34"
            return Phi("mrn", f"{digits[:2]}-{digits[2:4]}-{digits[4:6]}")
        if style == "prefixed":
            return Phi("mrn", f"E{digits}")
        return Phi("mrn", digits)

    def account(self) -> Phi:
        r = self.rng
        return Phi(
            "account",
            self.pick(
                (
                    f"{r.randint(40, 99)}{_digits(r, 8)}",
                    f"E{r.randint(19, 25)}{_digits(r, 9)}",
                    f"V{_digits(r, 7)}",
                    _digits(r, 9),
                    f"HAR{_digits(r, 8)}",
                    f"{_digits(r, 3)}-{_digits(r, 6)}",
                )
            ),
        )

    def accession(self) -> Phi:
        return Phi(
            "account",
            f"{self.pick(('RAD', 'CT', 'MR', 'ACC'))}-{self.rng.randint(19, 25)}-"
            + _digits(self.rng, 7),
        )

    def member_id(self) -> Phi:
        r = self.rng
        # A Medicare MBI: digits and letters (no S, L, O, I, B, Z) in a fixed pattern.
        letter = "ACDEFGHJKMNPQRTUVWXY"
        mbi = f"{r.randint(1, 9)}{_letters(r, 1, letter)}{r.randint(0, 9)}{_letters(r, 1, letter)}"
        mbi += f"-{_letters(r, 2, letter)}{r.randint(0, 9)}-{_letters(r, 2, letter)}{_digits(r, 2)}"
        return Phi(
            "health_plan",
            self.pick(
                (
                    f"{_letters(r, 3)}{_digits(r, 9)}",
                    f"W{_digits(r, 9)}",
                    mbi,
                    f"{_letters(r, 3)}{_digits(r, 10)}",
                    f"{_digits(r, 8)}-{_digits(r, 2)}",
                    f"ZGP{_digits(r, 10)}",
                )
            ),
        )

    def drivers_license(self) -> Phi:
        r = self.rng
        return Phi(
            "license",
            self.pick(
                (
                    f"{_letters(r, 1)}{_digits(r, 7)}",
                    f"{_letters(r, 1)}{_digits(r, 3)}-{_digits(r, 4)}-{_digits(r, 4)}",
                    _digits(r, 9),
                    f"{_letters(r, 1)}{_digits(r, 12)}",
                )
            ),
        )

    def medical_license(self) -> Phi:
        r = self.rng
        return Phi(
            "license",
            self.pick(
                (
                    f"{_letters(r, 1)}{_digits(r, 6)}",
                    f"MD.{_digits(r, 6)}",
                    f"{_letters(r, 2)}{_digits(r, 7)}",
                    _digits(r, 5),
                )
            ),
        )

    def device_id(self) -> Phi:
        r = self.rng
        # A UDI: (01) device identifier, (17) expiry date, (21) serial number.
        expiry = f"{r.randint(25, 29)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
        udi = f"(01){_digits(r, 14)}(17){expiry}(21){_letters(r, 2)}{_digits(r, 5)}"
        return Phi(
            "device",
            self.pick(
                (
                    f"{_letters(r, 3)}{_digits(r, 6)}{_letters(r, 1)}",
                    f"SN-{_letters(r, 2)}{_digits(r, 3)}-{_digits(r, 5)}",
                    udi,
                    f"{_digits(r, 2)}{_letters(r, 1)}{_digits(r, 7)}",
                )
            ),
        )

    def plate(self) -> Phi:
        r = self.rng
        return Phi(
            "vehicle",
            self.pick(
                (
                    f"{r.randint(1, 9)}{_letters(r, 3)}{_digits(r, 3)}",
                    f"{_letters(r, 3)}-{_digits(r, 4)}",
                    f"{_letters(r, 3)} {_digits(r, 3)}",
                )
            ),
        )

    def ip(self) -> Phi:
        r = self.rng
        if self.chance(0.7):
            first = self.pick((10, 172, 192, r.randint(23, 223)))
            return Phi("ip", f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}")
        groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
        if self.chance(0.5):
            return Phi("ip", f"2001:db8:{groups[2]}:{groups[3]}::{groups[7]}")
        return Phi("ip", ":".join(groups))

    def portal_url(self, mrn_digits: str) -> Phi:
        host = self.pick(PORTAL_HOSTS)
        path = self.pick(
            (
                f"/patients/{mrn_digits}",
                f"/mychart/patient?id={mrn_digits}",
                f"/records/{mrn_digits}/summary",
                f"/p/{mrn_digits}/results",
            )
        )
        return Phi("url", f"https://{host}{path}")

    def employer(self) -> Phi:
        return Phi("employer", self.faker("en_US").company())


# --- clinical vocabulary: not PHI ------------------------------------------------------------

DIAGNOSES = (
    *(("Parkinson's disease", "G20"), ("Crohn's disease of small intestine", "K50.00")),
    *(("Hodgkin lymphoma, in remission", "C81.90"), ("Bell's palsy", "G51.0")),
    *(("type 2 diabetes mellitus with hyperglycemia", "E11.65"), ("essential hypertension", "I10")),
    *(
        ("paroxysmal atrial fibrillation", "I48.0"),
        ("heart failure with reduced ejection fraction", "I50.22"),
    ),
    *(("community-acquired pneumonia", "J18.9"), ("COPD with acute exacerbation", "J44.1")),
    *(("acute kidney injury", "N17.9"), ("urinary tract infection", "N39.0")),
    *(("Alzheimer's disease, late onset", "G30.1"), ("Hashimoto's thyroiditis", "E06.3")),
    *(("Graves' disease", "E05.00"), ("Guillain-Barre syndrome", "G61.0")),
    *(("Addison's disease", "E27.1"), ("Barrett's esophagus", "K22.70")),
    *(("Raynaud's phenomenon", "I73.00"), ("Meniere's disease", "H81.09")),
    *(("Huntington's disease", "G10"), ("Lyme disease", "A69.20")),
    *(("Paget's disease of bone", "M88.9"), ("Sjogren syndrome", "M35.00")),
    *(("chronic kidney disease, stage 3b", "N18.32"), ("iron deficiency anemia", "D50.9")),
    *(
        ("major depressive disorder, recurrent, moderate", "F33.1"),
        ("obstructive sleep apnea", "G47.33"),
    ),
    *(("osteoarthritis of right knee", "M17.11"), ("gastroesophageal reflux disease", "K21.9")),
    *(("cellulitis of left lower limb", "L03.116"), ("NSTEMI", "I21.4")),
    *(("Clostridioides difficile colitis", "A04.72"), ("hypothyroidism", "E03.9")),
)
COMPLAINTS = (
    *("chest pain", "shortness of breath", "fever and productive cough", "abdominal pain"),
    *("dizziness", "a fall at home", "worsening leg swelling", "confusion", "syncope"),
    *("palpitations", "bloody diarrhea", "right facial droop", "dysuria and flank pain"),
    *("generalized weakness", "worsening tremor", "nausea and vomiting", "a productive cough"),
)
DURATIONS = ("2 days", "3 days", "1 week", "48 hours", "several hours", "2 weeks", "one month")
MEDS = (
    *(("lisinopril", "20 mg", "PO daily"), ("metformin", "1000 mg", "PO BID")),
    *(("atorvastatin", "40 mg", "PO nightly"), ("apixaban", "5 mg", "PO BID")),
    *(("amlodipine", "5 mg", "PO daily"), ("levothyroxine", "75 mcg", "PO daily before breakfast")),
    *(("furosemide", "40 mg", "IV BID"), ("metoprolol succinate", "25 mg", "PO daily")),
    *(
        ("insulin glargine", "22 units", "SC at bedtime"),
        ("albuterol", "90 mcg", "2 puffs q4h PRN"),
    ),
    *(("sertraline", "50 mg", "PO daily"), ("gabapentin", "300 mg", "PO TID")),
    *(("omeprazole", "20 mg", "PO daily"), ("warfarin", "5 mg", "PO daily, goal INR 2-3")),
    *(("carbidopa-levodopa", "25/100 mg", "PO TID"), ("prednisone", "40 mg", "PO daily x 5 days")),
    *(("ceftriaxone", "1 g", "IV q24h"), ("vancomycin", "1.25 g", "IV q12h")),
    *(("piperacillin-tazobactam", "4.5 g", "IV q6h"), ("enoxaparin", "40 mg", "SC daily")),
    *(("acetaminophen", "650 mg", "PO q6h PRN pain"), ("ondansetron", "4 mg", "IV q6h PRN nausea")),
    *(("tamsulosin", "0.4 mg", "PO daily"), ("losartan", "50 mg", "PO daily")),
    *(("empagliflozin", "10 mg", "PO daily"), ("semaglutide", "0.5 mg", "SC weekly")),
    *(("mesalamine", "1.2 g", "PO BID"), ("infliximab", "5 mg/kg", "IV every 8 weeks")),
    *(("oral vancomycin", "125 mg", "PO QID"), ("donepezil", "10 mg", "PO nightly")),
)
ALLERGIES = (
    "NKDA",
    "penicillin (rash)",
    "sulfa drugs (hives)",
    "codeine (nausea)",
    "latex",
    "iodinated contrast (anaphylaxis)",
    "no known drug allergies",
)
LABS = (
    *(("Sodium", "2951-2", "mmol/L", 128, 146, 0), ("Potassium", "2823-3", "mmol/L", 3.1, 5.6, 1)),
    *(("Creatinine", "2160-0", "mg/dL", 0.6, 3.2, 2), ("BUN", "3094-0", "mg/dL", 7, 58, 0)),
    *(("Glucose", "2345-7", "mg/dL", 68, 340, 0), ("WBC", "6690-2", "10*3/uL", 3.1, 18.4, 1)),
    *(("Hemoglobin", "718-7", "g/dL", 7.2, 16.1, 1), ("Platelets", "777-3", "10*3/uL", 88, 420, 0)),
    *(("TSH", "3016-3", "mIU/L", 0.2, 9.8, 2), ("INR", "6301-6", "", 0.9, 3.4, 1)),
    *(
        ("Hemoglobin A1c", "4548-4", "%", 5.4, 11.2, 1),
        ("NT-proBNP", "33762-6", "pg/mL", 80, 9800, 0),
    ),
    *(
        ("Troponin I, high sensitivity", "89579-7", "ng/L", 2, 480, 0),
        ("Lactate", "2524-7", "mmol/L", 0.7, 4.8, 1),
    ),
    *(("ALT", "1742-6", "U/L", 9, 140, 0), ("CRP", "1988-5", "mg/L", 0.4, 190, 1)),
)
PROCEDURES = (
    *(("Initial hospital care, high complexity", "99223"), ("Subsequent hospital care", "99233")),
    *(("Office visit, established patient", "99214"), ("Electrocardiogram, 12-lead", "93000")),
    *(("Comprehensive metabolic panel", "80053"), ("CBC with differential", "85025")),
    *(("Transthoracic echocardiogram", "93306"), ("Colonoscopy with biopsy", "45380")),
)
STUDIES = (
    *(("CT ABDOMEN AND PELVIS WITH IV CONTRAST", "74177"), ("XR CHEST 2 VIEWS", "71046")),
    *(("MRI BRAIN WITHOUT AND WITH CONTRAST", "70553"), ("CT HEAD WITHOUT CONTRAST", "70450")),
    *(("US RIGHT UPPER QUADRANT", "76705"), ("CTA CHEST PULMONARY EMBOLISM PROTOCOL", "71275")),
)
FINDINGS = (
    "No acute intracranial hemorrhage, mass effect or midline shift.",
    "Patchy consolidation in the right lower lobe with small parapneumonic effusion.",
    "Bowel wall thickening of the terminal ileum with surrounding fat stranding, compatible with "
    "active Crohn's disease.",
    "Cholelithiasis without sonographic Murphy's sign; common bile duct measures 4 mm.",
    "No filling defect in the main or segmental pulmonary arteries.",
    "Mild cardiomegaly. Pulmonary vascular congestion. No pneumothorax.",
    "Chronic microvascular ischemic changes. Volume loss, in keeping with age.",
    "Foley catheter in place; bladder decompressed. No hydronephrosis.",
    "Nonspecific 4 mm nodule in the left upper lobe; per Fleischner Society guidelines, no "
    "follow-up needed.",
    "Degenerative changes of the lumbar spine, most pronounced at L4-L5.",
)
EPONYM_LINES = (
    "Glasgow Coma Scale 15 on arrival.",
    "Foley catheter placed in the ED; removed on hospital day 2.",
    "Romberg negative; no pronator drift.",
    "Murphy's sign negative. No McBurney point tenderness.",
    "CHA2DS2-VASc score of 4; HAS-BLED 2.",
    "Wells score 1.5, PE unlikely; D-dimer negative.",
    "Mallampati class II; ASA physical status III.",
    "Tinel and Phalen tests positive on the right.",
    "Babinski downgoing bilaterally.",
    "No Kernig or Brudzinski sign.",
    "Cheyne-Stokes respirations noted overnight.",
    "Heberden's nodes at the DIP joints.",
    "Apgar scores 8 and 9 at one and five minutes (birth history).",
    "History of Hodgkin lymphoma treated with ABVD, in remission.",
    "Child-Pugh class A; MELD-Na 11.",
    "Gleason score 3+4 on prior biopsy; on active surveillance.",
    "Swan-Ganz catheter not indicated.",
    "Levine sign absent.",
)
DEPARTMENTS = (
    *("Internal Medicine", "Hospitalist Service", "Cardiology", "Neurology", "Gastroenterology"),
    *(
        "Oncology",
        "Nephrology",
        "Pulmonology",
        "Endocrinology",
        "Geriatrics",
        "Emergency Department",
    ),
    *("Medical ICU", "Orthopedics", "Family Medicine", "Infectious Disease", "Physical Therapy"),
)
FACILITIES = (
    *("Mercy General Hospital", "St. Luke's Medical Center", "University Medical Center"),
    *("Valley Regional Hospital", "Riverside Community Hospital", "Good Samaritan Hospital"),
    *("Memorial Heart Institute", "County General Hospital"),
)
PAYERS = (
    *("Blue Cross Blue Shield PPO", "Aetna Choice POS II", "UnitedHealthcare Medicare Advantage"),
    *("Medicaid", "Medicare Part A and B", "Cigna Open Access Plus", "Humana Gold Plus HMO"),
)
JOBS = (
    "retired teacher",
    "warehouse supervisor",
    "nurse's aide",
    "truck driver",
    "accountant",
    "retired machinist",
    "student",
    "line cook",
    "software developer",
)
EMPLOYED_JOBS = (
    "warehouse supervisor",
    "nurse's aide",
    "accountant",
    "line cook",
    "software developer",
    "sales associate",
)
FAMILY_HISTORY = (
    "Mother with Alzheimer's disease; father died at 72 of myocardial infarction.",
    "Sister with breast cancer diagnosed at 48. No family history of colon cancer.",
    "Father with Parkinson's disease. Brother with type 1 diabetes.",
    "Noncontributory.",
    "Mother with Graves' disease; maternal grandmother with Huntington's disease.",
)
SOCIAL_EXTRAS = (
    "Former smoker, 20 pack-years, quit 2009. Drinks 2 glasses of wine per week.",
    "Never smoker. No alcohol or illicit drug use.",
    "Smokes 1/2 pack per day. Denies alcohol.",
    "Uses a walker at home. Independent in ADLs.",
)
ROS_LINES = (
    "Constitutional: positive for fatigue; negative for weight loss.",
    "Cardiovascular: denies orthopnea or PND.",
    "Respiratory: positive for cough; negative for hemoptysis.",
    "GI: negative for melena or hematochezia.",
    "Neuro: denies focal weakness or numbness.",
    "All other systems reviewed and negative.",
)
EXAM_LINES = (
    "General: alert, oriented x3, in no acute distress.",
    "HEENT: PERRL, EOMI, mucous membranes moist.",
    "Neck: no JVD. No lymphadenopathy.",
    "CV: irregularly irregular rhythm, no murmurs, rubs or gallops.",
    "CV: RRR, normal S1 and S2, 2/6 systolic murmur at the RUSB.",
    "Lungs: crackles at the right base; no wheezes.",
    "Abdomen: soft, tender in the RLQ, no rebound or guarding. Bowel sounds present.",
    "Extremities: 2+ pitting edema to the mid-shin bilaterally.",
    "Neuro: CN II-XII intact; resting tremor of the left hand, cogwheel rigidity.",
    "Skin: warm, dry; erythema of the left shin with a demarcated border.",
    "Psych: normal mood and affect.",
)
PLAN_ITEMS = (
    "Continue current regimen; recheck BMP in the morning.",
    "Start IV ceftriaxone and azithromycin; blood cultures x2 pending.",
    "Cardiology consulted; TTE ordered.",
    "Hold metformin given AKI; sliding-scale insulin.",
    "PT/OT evaluation; fall precautions.",
    "GI to evaluate for colonoscopy; stool studies sent.",
    "Neurology follow-up; continue carbidopa-levodopa, titrate to effect.",
    "DVT prophylaxis with enoxaparin.",
    "Diuresis with IV furosemide, strict I/Os, daily weights.",
    "Code status: Full Code, confirmed with the patient.",
    "Code status: DNR/DNI per discussion with family.",
    "Patient education provided on low-sodium diet and medication adherence.",
)
RELATIONS = (
    *(("daughter", "F"), ("son", "M"), ("wife", "F"), ("husband", "M"), ("sister", "F")),
    *(("brother", "M"), ("niece", "F"), ("mother", "F"), ("father", "M"), ("partner", "")),
)


def vitals(g: Gen) -> str:
    r = g.rng
    celsius = round(r.uniform(36.1, 39.4), 1)
    bp, hr, rr = f"{r.randint(96, 182)}/{r.randint(52, 104)}", r.randint(54, 128), r.randint(12, 28)
    spo2, oxygen = r.randint(86, 100), g.pick(("room air", "2 L NC", "4 L NC"))
    return g.pick(
        (
            f"BP {bp}, HR {hr}, RR {rr}, T {celsius} C, SpO2 {spo2}% on {oxygen}",
            f"T {round(celsius * 9 / 5 + 32, 1)} F | P {hr} | BP {bp} | RR {rr} | O2 sat {spo2}%",
            f"Vitals: afebrile, heart rate {hr}, blood pressure {bp}, "
            f"weight {round(r.uniform(45, 130), 1)} kg",
        )
    )


def lab_value(g: Gen, lab: tuple[str, str, str, float, float, int]) -> str:
    _name, _loinc, _unit, low, high, decimals = lab
    value = g.rng.uniform(low, high)
    return f"{value:.{decimals}f}" if decimals else str(round(value))


def lab_line(g: Gen) -> str:
    chosen = g.rng.sample(LABS, g.rng.randint(3, 6))
    style = g.pick(("inline", "loinc"))
    if style == "loinc":
        return "; ".join(
            f"{lab[0]} (LOINC {lab[1]}) {lab_value(g, lab)} {lab[2]}".rstrip() for lab in chosen
        )
    return ", ".join(f"{lab[0]} {lab_value(g, lab)}" for lab in chosen)


def med_line(g: Gen) -> str:
    drug, dose, sig = g.pick(MEDS)
    return f"{drug} {dose} {sig}"


# --- a case: the people and identifiers one document speaks of ---------------------------


@dataclass(frozen=True)
class Case:
    patient: Person
    relatives: tuple[tuple[str, Person], ...]
    attending: Clinician
    team: tuple[Clinician, ...]  # primary care, consultants, nurses, residents
    transcriptionist: str  # a username
    dob: dt.date
    admitted: dt.date
    discharged: dt.date
    age: int
    mrn: str  # digits
    ssn: str  # digits
    phone: Phone
    mobile: Phone
    clinic_phone: Phone
    clinic_fax: Phone
    email: Phi
    address: Address
    account: Phi
    member_id: Phi
    drivers_license: Phi
    facility: str
    department: str
    payer: str
    diagnoses: tuple[tuple[str, str], ...]

    @property
    def clinicians(self) -> tuple[Clinician, ...]:
        return (self.attending, *self.team)


def new_case(g: Gen) -> Case:
    r = g.rng
    admitted = dt.date(2019, 1, 1) + dt.timedelta(days=r.randint(0, 6 * 365))
    # One patient in five is 90 or older, far more than in life: their ages are PHI.
    age = g.pick((r.randint(90, 104), r.randint(0, 17), *(r.randint(18, 89) for _ in range(3))))
    dob = admitted - dt.timedelta(days=age * 365 + age // 4 + r.randint(1, 364))
    patient = g.person()
    relatives = tuple(_relative(g, patient, age) for _ in range(r.randint(1, 3)))
    specialties = r.sample(DEPARTMENTS, 5)
    return Case(
        patient=patient,
        relatives=relatives,
        attending=g.clinician(specialties[0]),
        team=tuple(g.clinician(s) for s in specialties[1:]),
        transcriptionist=g.username(g.person()),
        dob=dob,
        admitted=admitted,
        discharged=admitted + dt.timedelta(days=r.randint(1, 12)),
        age=_age(dob, admitted),
        mrn=_mrn_digits(g),
        ssn=ssn_digits(r),
        phone=g.phone_number(),
        mobile=g.phone_number(),
        clinic_phone=g.phone_number(),
        clinic_fax=g.phone_number(),
        email=g.email(patient),
        address=g.address(),
        account=g.account(),
        member_id=g.member_id(),
        drivers_license=g.drivers_license(),
        facility=g.pick(FACILITIES),
        department=specialties[0],
        payer=g.pick(PAYERS),
        diagnoses=tuple(r.sample(DIAGNOSES, r.randint(2, 4))),
    )


def _age(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _mrn_digits(g: Gen) -> str:
    return f"{g.rng.randint(1, 9)}{_digits(g.rng, g.pick((6, 7, 7, 8, 9)))}"


def _relative(g: Gen, patient: Person, age: int) -> tuple[str, Person]:
    young = age < 18
    options = [r for r in RELATIONS if (r[0] in ("mother", "father")) == young or r[0] == "sister"]
    relation, sex = g.pick(options)
    return relation, g.relative(patient, sex or None)


def age_words(g: Gen, case: Case) -> list[Piece]:
    """ "67-year-old" in the clear; 90 and over, the number is PHI ("92-year-old")."""
    age = str(case.age)
    unit = g.pick(("-year-old", " y/o", " yo", "-yo", " year old", "-year-old"))
    if case.age == 0:
        return ["newborn"]
    return [Phi("age_over_89", age) if case.age >= 90 else age, unit]


def age_short(case: Case) -> list[Piece]:
    age = str(case.age)
    return [Phi("age_over_89", age) if case.age >= 90 else age]


def sex_word(g: Gen, case: Case) -> str:
    female = case.patient.sex == "F"
    if case.age < 18:
        return g.pick(("girl", "female")) if female else g.pick(("boy", "male"))
    return (
        g.pick(("woman", "female", "female patient"))
        if female
        else g.pick(("man", "male", "gentleman"))
    )


# --- clinical notes --------------------------------------------------------------------------

HEADING_STYLES = ("colon", "upper", "markdown", "bold", "plain")


def heading(g: Gen, style: str, *names: str) -> str:
    """A section heading as this note writes them: "HPI:", "HISTORY OF PRESENT ILLNESS:",
    "## Hpi", "**Plan:**", "Assessment"."""
    name = g.pick(names)
    return {
        "colon": f"{name}:",
        "upper": f"{name.upper()}:",
        "markdown": f"## {name}",
        "bold": f"**{name}:**",
        "plain": name,
    }[style]


def patient_header(g: Gen, case: Case, b: Builder) -> None:
    """Who the note is about, in one of the layouts EHRs print."""
    p, dob = case.patient, g.date(case.dob)
    layout = g.pick(("labels", "labels", "one_line", "table", "caps"))
    if layout == "labels":
        label = g.pick(("Patient:", "Name:", "Patient Name:", "Pt:", "PATIENT:"))
        b.line(label, " ", g.name(p))
        b.line(
            g.pick(("DOB:", "Date of Birth:", "D.O.B.")), " ", dob, g.pick(("", f"  Sex: {p.sex}"))
        )
        b.line(
            g.pick(("MRN:", "MRN #:", "Med Rec #:", "Medical Record Number:", "MR#")),
            " ",
            g.mrn(case.mrn),
        )
        if g.chance(0.6):
            b.line(
                g.pick(("Acct #:", "Account:", "FIN:", "Encounter #:", "Visit ID:")),
                " ",
                case.account,
            )
    elif layout == "one_line":
        b.line(
            fill(
                "{name} | MRN {mrn} | DOB {dob} | {age}{sex} | {facility}",
                name=g.name(p, form=g.pick(("upper_comma", "last_first", "full"))),
                mrn=g.mrn(case.mrn),
                dob=dob,
                age=age_short(case),
                sex=p.sex,
                facility=case.facility,
            )
        )
    elif layout == "table":
        b.line("Patient Name: ", g.name(p, form="last_first"), "\tMRN: ", g.mrn(case.mrn, "plain"))
        b.line(
            "DOB: ",
            dob,
            " (age ",
            age_short(case),
            ")\tRoom: ",
            f"{g.rng.randint(2, 9)}W-{g.rng.randint(100, 450)}",
        )
        b.line(
            "Date of Service: ",
            g.date(case.admitted),
            "\tInsurance: ",
            case.payer,
            ", Member ID ",
            case.member_id,
        )
    else:
        b.line(
            "PATIENT NAME: ",
            g.name(p, form="upper_comma"),
            "   DATE OF BIRTH: ",
            g.date(case.dob, "us"),
        )
        b.line("MEDICAL RECORD #: ", g.mrn(case.mrn), "   ACCOUNT #: ", case.account)
        b.line(
            "LOCATION: ", case.department.upper(), "   SERVICE DATE: ", g.date(case.admitted, "us")
        )


def hpi(g: Gen, case: Case) -> list[Piece]:
    p = case.patient
    pmh = " and ".join(d[0] for d in case.diagnoses[:2])
    relation, relative = case.relatives[0]
    opening = g.pick(
        (
            fill(
                "{name} is a {age} {sex} with a history of {pmh} who presents with {cc} for {dur}.",
                name=g.name(p),
                age=age_words(g, case),
                sex=sex_word(g, case),
                pmh=pmh,
                cc=g.pick(COMPLAINTS),
                dur=g.pick(DURATIONS),
            ),
            fill(
                "{age} {sex} with {pmh}, presenting with {cc} x {dur}.",
                age=age_words(g, case),
                sex=sex_word(g, case),
                pmh=pmh,
                cc=g.pick(COMPLAINTS),
                dur=g.pick(DURATIONS),
            ),
            fill(
                "Patient is a {age} {sex} transferred from an outside hospital in {state} with "
                "{cc}.",
                age=age_words(g, case),
                sex=sex_word(g, case),
                state=g.pick(list(STATES.values())),
                cc=g.pick(COMPLAINTS),
            ),
            fill(
                "{titled} is a pleasant {age} {sex} known to {dept} for {pmh}.",
                titled=g.titled(p),
                age=age_words(g, case),
                sex=sex_word(g, case),
                dept=case.department,
                pmh=pmh,
            ),
        )
    )
    middle = g.pick(
        (
            fill(
                " Symptoms began on {date} and progressed despite {drug}.",
                date=g.short_date(case.admitted - dt.timedelta(days=g.rng.randint(1, 9))),
                drug=g.pick(MEDS)[0],
            ),
            fill(
                " History is obtained from the patient and {pronoun} {relation}, {rel}, who is at "
                "the bedside.",
                pronoun="her" if p.sex == "F" else "his",
                relation=relation,
                rel=g.name(relative, form=g.pick(("full", "given"))),
            ),
            fill(
                " {casual} reports subjective fevers and decreased oral intake. Seen by {pcp} "
                "last week, who started {drug}.",
                casual=g.casual(p),
                pcp=g.doctor(case.team[0], "dr_family"),
                drug=med_line(g),
            ),
            [" Denies chest pain, melena or recent travel. ", g.pick(EPONYM_LINES)],
        )
    )
    return [*opening, *middle]


def social(g: Gen, case: Case) -> list[list[Piece]]:
    """Lines of social history; most carry something that identifies."""
    p, a = case.patient, case.address
    relation, relative = g.pick(case.relatives)
    lines = [
        fill(
            "Lives in {city}, {state} with {pronoun} {relation} {rel}.",
            city=Phi("city", a.city),
            state=STATES[a.state],
            pronoun="her" if p.sex == "F" else "his",
            relation=relation,
            rel=g.name(relative),
        ),
        [g.pick(SOCIAL_EXTRAS)],
    ]
    if g.chance(0.5) and 18 <= case.age < 70:
        lines.append(
            fill(
                "Works as a {job} at {employer}.", job=g.pick(EMPLOYED_JOBS), employer=g.employer()
            )
        )
    elif g.chance(0.4):
        lines.append([f"{g.pick(JOBS).capitalize()}."])
    if g.chance(0.6):
        lines.append(
            fill(
                "Emergency contact: {rel} ({relation}), {phone}.",
                rel=g.name(relative),
                relation=relation,
                phone=g.phone(g.phone_number()),
            )
        )
    if g.chance(0.25):
        lines.append(
            fill(
                "Restrained driver in a low-speed collision; vehicle plate {plate} ({state}), VIN "
                "{vin}.",
                plate=g.plate(),
                state=a.state,
                vin=Phi("vehicle", vin(g.rng)),
            )
        )
    return lines


def data_section(g: Gen, case: Case) -> list[list[Piece]]:
    lines: list[list[Piece]] = [[vitals(g)], [f"Labs: {lab_line(g)}"]]
    if g.chance(0.5):
        when = g.pick((g.short_date(case.admitted), g.date(case.admitted)))
        lines.append(fill("Imaging ({when}): {finding}", when=when, finding=g.pick(FINDINGS)))
    if g.chance(0.35):
        device = g.pick(
            (
                "Medtronic Azure XT DR MRI pacemaker",
                "Tandem t:slim X2 insulin pump",
                "Boston Scientific ICD",
                "Dexcom G7 sensor",
            )
        )
        lines.append(
            fill("Device: {device}, serial {serial}.", device=device, serial=g.device_id())
        )
    return lines


def assessment_plan(g: Gen, case: Case, style: str) -> list[list[Piece]]:
    lines: list[list[Piece]] = []
    numbered = g.chance(0.7)
    for i, (dx, icd) in enumerate(case.diagnoses, 1):
        code = g.pick((f" ({icd})", f" - ICD-10 {icd}", ""))
        lead = f"{i}. " if numbered else "# "
        lines.append([f"{lead}{dx[0].upper()}{dx[1:]}{code}: {g.pick(PLAN_ITEMS)}"])
    if g.chance(0.4):
        lines.append(
            fill(
                "Discussed with {relation} {rel} by phone at {phone}.",
                relation=case.relatives[0][0],
                rel=g.name(case.relatives[0][1], form=g.pick(("full", "given"))),
                phone=g.phone(case.mobile),
            )
        )
    if g.chance(0.3):
        lines.append(
            fill(
                "Case discussed with {dr} ({dept}).",
                dr=g.doctor(case.team[1]),
                dept=case.team[1].specialty,
            )
        )
    return lines


def signature(g: Gen, case: Case, b: Builder, signer: Clinician | None = None) -> None:
    c = signer or case.attending
    when = g.datetime(g.pick((case.admitted, case.discharged)))
    style = g.pick(("electronic", "block", "initials", "slash", "attest"))
    if style == "electronic":
        b.line(
            fill(
                "Electronically signed by {dr} on {when}",
                dr=g.doctor(c, g.pick(("full_cred", "last_first_cred"))),
                when=when,
            )
        )
    elif style == "block":
        if g.chance(0.3):
            b.line("Signed,")
        b.line(
            g.name(c.person, "clinician_name", g.pick(("full", "full_mid"))), f", {c.credential}"
        )
        b.line(f"{c.specialty}, {case.facility}")
        b.line("Phone ", g.phone(case.clinic_phone), " | Fax ", g.phone(case.clinic_fax, "fax"))
    elif style == "initials":
        b.line(fill("{dr}", dr=g.doctor(c, "full_cred")))
        b.line(
            g.initials(c),
            ":",
            Phi("username", case.transcriptionist),
            "  D: ",
            g.datetime(case.admitted),
            "  T: ",
            g.datetime(case.discharged),
        )
    elif style == "slash":
        b.line(
            "/s/ ",
            g.name(c.person, "clinician_name", g.pick(("initial_last", "full"))),
            f", {c.credential}  ",
            when,
        )
    else:
        b.line(
            fill(
                "I saw and examined the patient with the resident, {res}, and agree with the "
                "findings and plan as documented.",
                res=g.doctor(case.team[2], "plain"),
            )
        )
        b.line(
            fill(
                "Attending: {dr}  NPI {npi}", dr=g.doctor(c, "full_cred"), npi=Phi("license", c.npi)
            )
        )
    if g.chance(0.4):
        cc = g.pick(case.team)
        b.line(
            fill(
                "cc: {dr}; {dept}",
                dr=g.doctor(cc, g.pick(("dr_full", "full_cred"))),
                dept=cc.specialty,
            )
        )
    if g.chance(0.25):
        b.line(fill("Last edited by {user} from {ip}", user=Phi("username", c.username), ip=g.ip()))


def _section(
    b: Builder, title: str, lines: Iterable[Sequence[Piece]], inline: bool = False
) -> None:
    lines = list(lines)
    if inline and len(lines) == 1 and title.endswith(":"):
        b.line(title, " ", lines[0])
    else:
        b.line(title)
        for line in lines:
            b.line(line)
    b.add("\n")


def note_hp(g: Gen, case: Case) -> Builder:
    b, style = Builder(), g.pick(HEADING_STYLES)
    b.line(
        g.pick(
            (
                "ADMISSION HISTORY AND PHYSICAL",
                "History & Physical",
                "H&P - Hospitalist Admission",
                "Admission Note",
            )
        )
    )
    patient_header(g, case, b)
    b.line(
        fill(
            "Admit date: {date}   Attending: {dr}",
            date=g.date(case.admitted),
            dr=g.doctor(case.attending),
        )
    )
    b.add("\n")
    _section(
        b,
        heading(g, style, "CC", "Chief Complaint"),
        [[g.pick(COMPLAINTS).capitalize()]],
        inline=True,
    )
    _section(b, heading(g, style, "HPI", "History of Present Illness"), [hpi(g, case)])
    middle = [
        (heading(g, style, "PMH", "Past Medical History"), [[f"- {d[0]}"] for d in case.diagnoses]),
        (
            heading(g, style, "Medications", "Home Medications", "Meds"),
            [[f"- {med_line(g)}"] for _ in range(g.rng.randint(2, 5))],
        ),
        (heading(g, style, "Allergies"), [[g.pick(ALLERGIES)]]),
        (heading(g, style, "Social History", "SH", "Social"), social(g, case)),
        (heading(g, style, "Family History", "FH"), [[g.pick(FAMILY_HISTORY)]]),
    ]
    g.rng.shuffle(middle)
    for title, lines in middle:
        _section(b, title, lines, inline=True)
    _section(
        b,
        heading(g, style, "ROS", "Review of Systems"),
        [[line] for line in g.rng.sample(ROS_LINES, 3)],
    )
    _section(
        b,
        heading(g, style, "Exam", "Physical Exam", "Physical Examination"),
        [[line] for line in g.rng.sample(EXAM_LINES, 4)],
    )
    _section(b, heading(g, style, "Data", "Labs and Imaging", "Results"), data_section(g, case))
    _section(
        b,
        heading(g, style, "Assessment and Plan", "A/P", "Impression and Plan"),
        assessment_plan(g, case, style),
    )
    signature(g, case, b)
    return b


def note_soap(g: Gen, case: Case) -> Builder:
    b, style = Builder(), g.pick(HEADING_STYLES)
    day = g.rng.randint(2, 9)
    on = case.admitted + dt.timedelta(days=day - 1)
    title = g.pick(
        ("Progress Note", f"Hospital Day {day} - Progress Note", "SOAP Note", "Daily Progress Note")
    )
    if g.chance(0.5):
        b.line(
            fill(
                "{title} - {name} - {date}", title=title, name=g.name(case.patient), date=g.date(on)
            )
        )
    else:
        b.line(title)
        patient_header(g, case, b)
    b.add("\n")
    subjective = g.pick(
        (
            fill(
                "{name} reports feeling better today; slept well. Tolerating diet. {extra}",
                name=g.casual(case.patient),
                extra=g.pick(EPONYM_LINES),
            ),
            fill(
                "Overnight: episode of {cc} at 02:30, resolved with {drug}. {relative} "
                "({relation}) at bedside, has questions about discharge.",
                cc=g.pick(COMPLAINTS),
                drug=g.pick(MEDS)[0],
                relative=g.name(case.relatives[0][1]),
                relation=case.relatives[0][0],
            ),
            ["Pt denies new complaints. Pain 3/10, controlled with acetaminophen."],
        )
    )
    names = ("S", "Subjective") if style != "markdown" else ("Subjective",)
    _section(b, heading(g, style, *names), [subjective], inline=True)
    _section(
        b,
        heading(g, style, "O", "Objective"),
        [[vitals(g)], *([line] for line in g.rng.sample(EXAM_LINES, 3)), [f"Labs: {lab_line(g)}"]],
    )
    _section(
        b,
        heading(g, style, "A", "Assessment"),
        [
            fill(
                "{age} {sex} with {dx}, hospital day {day}.",
                age=age_words(g, case),
                sex=sex_word(g, case),
                dx=case.diagnoses[0][0],
                day=str(day),
            )
        ],
        inline=True,
    )
    _section(b, heading(g, style, "P", "Plan"), assessment_plan(g, case, style))
    if g.chance(0.5):
        b.line(
            fill(
                "Follow-up with {dr} on {date}.",
                dr=g.doctor(case.team[0]),
                date=g.date(case.discharged + dt.timedelta(days=g.rng.randint(5, 30))),
            )
        )
    signature(g, case, b, g.pick(case.clinicians))
    return b


def note_discharge(g: Gen, case: Case) -> Builder:
    b, style = Builder(), g.pick(HEADING_STYLES)
    b.line(g.pick(("DISCHARGE SUMMARY", "Discharge Summary", "Hospital Discharge Summary")))
    patient_header(g, case, b)
    b.line(
        "Admission Date: ", g.date(case.admitted), "    Discharge Date: ", g.date(case.discharged)
    )
    b.line(
        fill(
            "Attending: {dr}    PCP: {pcp}", dr=g.doctor(case.attending), pcp=g.doctor(case.team[0])
        )
    )
    b.add("\n")
    _section(
        b,
        heading(g, style, "Discharge Diagnoses", "Diagnoses"),
        [[f"{i}. {d[0]} ({d[1]})"] for i, d in enumerate(case.diagnoses, 1)],
    )
    course = [
        hpi(g, case),
        fill(
            "On {d1}, {name} was started on {drug}; by {d2} {pronoun} was afebrile and ambulating "
            "with PT.",
            d1=g.short_date(case.admitted + dt.timedelta(days=1)),
            name=g.casual(case.patient),
            drug=med_line(g),
            d2=g.short_date(case.discharged - dt.timedelta(days=1)),
            pronoun="she" if case.patient.sex == "F" else "he",
        ),
        [g.pick(EPONYM_LINES), " ", g.pick(PLAN_ITEMS)],
    ]
    _section(b, heading(g, style, "Hospital Course", "Brief Hospital Course"), course)
    proc, cpt = g.pick(PROCEDURES)
    _section(
        b,
        heading(g, style, "Procedures"),
        [
            fill(
                "{proc} (CPT {cpt}) on {date}",
                proc=proc,
                cpt=cpt,
                date=g.date(case.admitted + dt.timedelta(days=1)),
            )
        ],
        inline=True,
    )
    _section(
        b,
        heading(g, style, "Discharge Medications", "Medications at Discharge"),
        [[f"- {med_line(g)}"] for _ in range(g.rng.randint(3, 6))],
    )
    follow = [
        fill(
            "{dr} ({dept}) on {date} at 10:30 AM. Clinic phone {phone}.",
            dr=g.doctor(case.team[0]),
            dept=case.team[0].specialty,
            date=g.date(
                case.discharged + dt.timedelta(days=g.rng.randint(5, 21)),
                g.pick(("long", "long_ord", "us", "abbr")),
            ),
            phone=g.phone(case.clinic_phone),
        ),
        fill(
            "Results and instructions are in the patient portal: {url}", url=g.portal_url(case.mrn)
        ),
    ]
    if g.chance(0.4):
        follow.append(
            fill("Home health referral faxed to {fax}.", fax=g.phone(g.phone_number(), "fax"))
        )
    _section(b, heading(g, style, "Follow-up", "Follow Up Appointments"), follow)
    _section(
        b,
        heading(g, style, "Disposition", "Discharged to"),
        [
            fill(
                "Home with {relation} {rel}; contact {phone}.",
                relation=case.relatives[0][0],
                rel=g.name(case.relatives[0][1]),
                phone=g.phone(case.phone),
            )
        ],
        inline=True,
    )
    signature(g, case, b)
    return b


def _title(study: str) -> str:
    """ "XR CHEST 2 VIEWS" as "XR Chest 2 Views": acronyms stay capitals."""
    return " ".join(
        w if len(w) <= 3 and w not in ("AND", "IV") else w.capitalize() for w in study.split()
    )


def note_radiology(g: Gen, case: Case) -> Builder:
    b = Builder()
    study, cpt = g.pick(STUDIES)
    radiologist, orderer = case.team[1], case.attending
    b.line(g.pick((f"EXAM: {study} (CPT {cpt})", f"Exam: {_title(study)}", f"PROCEDURE: {study}")))
    b.line(
        "PATIENT: ",
        g.name(case.patient, form=g.pick(("upper_comma", "last_first", "upper_comma_space"))),
        "   MRN: ",
        g.mrn(case.mrn),
        "   DOB: ",
        g.date(case.dob),
    )
    b.line("ACCESSION: ", g.accession(), "   DATE OF EXAM: ", g.datetime(case.admitted))
    b.line(
        fill(
            "ORDERING PHYSICIAN: {dr}",
            dr=g.doctor(orderer, g.pick(("last_first_cred", "full_cred", "dr_full"))),
        )
    )
    b.add("\n")
    b.line(
        fill(
            "CLINICAL HISTORY: {age} {sex} with {cc}. {dx}.",
            age=age_words(g, case),
            sex=sex_word(g, case),
            cc=g.pick(COMPLAINTS),
            dx=case.diagnoses[0][0].capitalize(),
        )
    )
    b.line(
        g.pick(
            (
                fill(
                    "COMPARISON: {study} dated {date}.",
                    study=_title(g.pick(STUDIES)[0]),
                    date=g.date(case.admitted - dt.timedelta(days=g.rng.randint(30, 900))),
                ),
                ["COMPARISON: None."],
            )
        )
    )
    technique = [
        "TECHNIQUE: Axial images were acquired per protocol. 80 mL Omnipaque 350 IV. DLP 612 "
        "mGy-cm."
    ]
    if g.chance(0.4):
        technique = fill(
            "TECHNIQUE: Standard protocol on {scanner}, serial {serial}. Dose reduction "
            "techniques used.",
            scanner=g.pick(("Siemens SOMATOM Force", "GE Revolution CT", "Philips Ingenia 3T")),
            serial=g.device_id(),
        )
    b.line(technique)
    b.add("\n")
    b.line(g.pick(("FINDINGS:", "Findings:")))
    for finding in g.rng.sample(FINDINGS, g.rng.randint(2, 4)):
        b.line(finding)
    b.add("\n")
    b.line(g.pick(("IMPRESSION:", "Impression:")))
    b.line(f"1. {g.pick(FINDINGS)}")
    if g.chance(0.5):
        b.line(
            fill(
                "2. Findings communicated to {dr} by telephone at 15:42 on {date}, read back "
                "confirmed.",
                dr=g.doctor(orderer, "dr_family"),
                date=g.short_date(case.admitted),
            )
        )
    b.add("\n")
    b.line(fill("Dictated by: {dr}", dr=g.doctor(radiologist, "full_cred")))
    b.line(
        fill(
            "Electronically signed by {dr} on {when}",
            dr=g.doctor(radiologist, g.pick(("full_cred", "last_first_cred"))),
            when=g.datetime(case.admitted),
        )
    )
    if g.chance(0.5):
        b.line(g.initials(radiologist), ":", Phi("username", case.transcriptionist))
    return b


def note_referral(g: Gen, case: Case) -> Builder:
    b = Builder()
    sender, receiver = case.attending, case.team[1]
    p = case.patient
    b.line(case.facility)
    b.line(f"Department of {sender.specialty}")
    b.line("Tel ", g.phone(case.clinic_phone), "  Fax ", g.phone(case.clinic_fax, "fax"))
    b.add("\n")
    b.line(g.date(case.discharged, g.pick(("long", "long_ord", "us", "dmy"))))
    b.add("\n")
    if receiver.credential in DOCTORS and g.chance(0.7):
        b.line(
            "Dear Dr. ", Phi("clinician_name", receiver.person.family, receiver.person.holdout), ","
        )
    else:
        b.line("Dear ", g.name(receiver.person, "clinician_name", "full"), ",")
    b.add("\n")
    b.line(
        "RE: ",
        g.name(p, form=g.pick(("full", "full_mid", "last_first"))),
        "   DOB: ",
        g.date(case.dob),
        "   MRN: ",
        g.mrn(case.mrn),
    )
    b.add("\n")
    b.line(
        fill(
            "Thank you for seeing {titled}, a {age} {sex} whom I follow for {dx}. I would value "
            "your opinion regarding {dx2}.",
            titled=g.titled(p),
            age=age_words(g, case),
            sex=sex_word(g, case),
            dx=case.diagnoses[0][0],
            dx2=case.diagnoses[-1][0],
        )
    )
    b.line(
        fill(
            "Current medications include {m1} and {m2}. {line}",
            m1=med_line(g),
            m2=med_line(g),
            line=g.pick(EPONYM_LINES),
        )
    )
    b.line(
        fill("Most recent labs on {date}: {labs}.", date=g.date(case.admitted), labs=lab_line(g))
    )
    contact = g.pick(
        (
            fill(
                "{given} can be reached at {phone} or {email}.",
                given=g.casual(p),
                phone=g.phone(case.phone),
                email=case.email,
            ),
            fill(
                "Please contact the patient at {phone}; {pronoun} {relation} {rel} helps with "
                "scheduling.",
                phone=g.phone(case.mobile),
                pronoun="her" if p.sex == "F" else "his",
                relation=case.relatives[0][0],
                rel=g.name(case.relatives[0][1]),
            ),
            fill(
                "Insurance: {payer}, member ID {member}. Address on file: {addr}.",
                payer=case.payer,
                member=case.member_id,
                addr=g.address_line(case.address),
            ),
        )
    )
    b.line(contact)
    b.add("\n")
    b.line(g.pick(("Sincerely,", "With kind regards,", "Best regards,")))
    b.add("\n")
    b.line(
        g.name(sender.person, "clinician_name", g.pick(("full_mid", "full"))),
        f", {sender.credential}",
    )
    if g.chance(0.5):
        b.line(
            "DEA ",
            Phi("license", dea(g.rng, sender.person.family)),
            "  NPI ",
            Phi("license", sender.npi),
            "  State license ",
            g.medical_license(),
        )
    b.line(g.initials(sender), ":", Phi("username", case.transcriptionist))
    b.line(fill("cc: {dr}", dr=g.doctor(case.team[0], g.pick(("dr_full", "full_cred")))))
    return b


# --- JSON rows -------------------------------------------------------------------------------

# A concept's key: the words it may be spelled with, and its abbreviation.
KEYS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "name": ((("patient", "name"), ("full", "name"), ("name",)), "pt_name"),
    "first": ((("first", "name"), ("given", "name")), "fname"),
    "middle": ((("middle", "name"), ("middle", "initial")), "mi"),
    "last": ((("last", "name"), ("family", "name"), ("surname",)), "lname"),
    "dob": ((("date", "of", "birth"), ("birth", "date"), ("dob",)), "dob"),
    "sex": ((("sex",), ("gender",)), "sex"),
    "age": ((("age",),), "age"),
    "mrn": ((("medical", "record", "number"), ("mrn",), ("patient", "id")), "mrn"),
    "ssn": ((("social", "security", "number"), ("ssn",)), "ssn"),
    "phone": ((("phone", "number"), ("home", "phone"), ("phone",)), "ph"),
    "mobile": ((("mobile", "phone"), ("cell", "phone")), "cell"),
    "email": ((("email", "address"), ("email",)), "email"),
    "line1": ((("address", "line1"), ("street", "address")), "addr1"),
    "city": ((("city",),), "city"),
    "state": ((("state",),), "st"),
    "zip": ((("zip",), ("zip", "code"), ("postal", "code")), "zip"),
    "member": ((("member", "id"), ("insurance", "member", "id"), ("policy", "number")), "mbr_id"),
    "payer": ((("insurance", "plan"), ("payer",)), "plan"),
    "account": ((("account", "number"), ("encounter", "id"), ("visit", "number")), "acct_no"),
    "pcp": ((("primary", "care", "provider"), ("attending", "physician")), "pcp"),
    "last_visit": ((("last", "visit", "date"), ("admit", "date")), "last_visit"),
    "diagnoses": ((("diagnoses",), ("problems",)), "dx"),
    "medications": ((("medications",), ("active", "meds")), "meds"),
    "allergies": ((("allergies",),), "allergies"),
    "note": ((("clinical", "note"), ("note",), ("summary",)), "note"),
    "contact": ((("emergency", "contact"), ("next", "of", "kin")), "ec"),
    "relationship": ((("relationship",),), "rel"),
    "license": ((("drivers", "license"), ("driver", "license", "number")), "dl_no"),
    "portal": ((("portal", "url"), ("chart", "link")), "portal"),
    "status": ((("status",), ("encounter", "status")), "status"),
    "employer": ((("employer",), ("employer", "name")), "empl"),
    "login_ip": ((("last", "login", "ip"), ("client", "ip")), "ip"),
    "device": ((("device", "serial"), ("implant", "udi")), "dev_sn"),
}
KEY_STYLES = ("snake", "camel", "pascal", "kebab", "abbr", "upper")


def key(g: Gen, concept: str, style: str) -> str:
    spellings, abbr = KEYS[concept]
    words = spellings[g.rng.randrange(len(spellings))]
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "abbr":
        return abbr
    return "_".join(words)


def note_text(g: Gen, case: Case) -> Txt:
    """A one-paragraph note, as a record's free-text field holds it."""
    p = case.patient
    pieces = g.pick(
        (
            fill(
                "{name} seen on {date} for {dx}. BP {bp}. Continue {med}. {given} to call {phone} "
                "with questions.",
                name=g.name(p),
                date=g.date(case.admitted),
                dx=case.diagnoses[0][0],
                bp=f"{g.rng.randint(100, 170)}/{g.rng.randint(60, 100)}",
                med=med_line(g),
                given=g.casual(p),
                phone=g.phone(case.phone),
            ),
            fill(
                "{age} {sex}, {dx}. {line} Daughter/son at bedside. Seen by {dr}.",
                age=age_words(g, case),
                sex=sex_word(g, case),
                dx=case.diagnoses[-1][0],
                line=g.pick(EPONYM_LINES),
                dr=g.doctor(case.attending),
            ),
            [*hpi(g, case), " ", g.pick(PLAN_ITEMS)],
        )
    )
    return Txt(tuple(pieces))


def record(g: Gen, case: Case, style: str, concepts: Sequence[str]) -> dict[str, Any]:
    p, a = case.patient, case.address
    values: dict[str, Callable[[], Any]] = {
        "name": lambda: g.name(p, form=g.pick(("full", "last_first", "full_mid", "upper_comma"))),
        "first": lambda: Phi("name", p.given, p.holdout),
        "middle": lambda: Phi("name", p.middle, p.holdout) if p.middle else None,
        "last": lambda: Phi("name", p.family, p.holdout),
        "dob": lambda: g.date(case.dob, g.pick(("iso", "iso", "us", "us_short"))),
        "sex": lambda: g.pick((p.sex, "female" if p.sex == "F" else "male")),
        "age": lambda: (
            Phi("age_over_89", str(case.age), number=True) if case.age >= 90 else case.age
        ),
        "mrn": lambda: Phi("mrn", case.mrn, number=True) if g.chance(0.3) else g.mrn(case.mrn),
        "ssn": lambda: g.ssn(case.ssn, g.pick(("dash", "dash", "bare"))),
        "phone": lambda: g.phone(case.phone),
        "mobile": lambda: g.phone(case.mobile, style=g.pick(("dash", "bare", "plus", "paren"))),
        "email": lambda: case.email,
        "line1": lambda: g.street(a),
        "city": lambda: Phi("city", a.city),
        "state": lambda: a.state,
        "zip": lambda: g.zip_code(a),
        "member": lambda: case.member_id,
        "payer": lambda: case.payer,
        "account": lambda: case.account,
        "pcp": lambda: Txt(tuple(g.doctor(case.team[0]))),
        "last_visit": lambda: g.date(case.admitted, g.pick(("iso", "us"))),
        "diagnoses": lambda: [{"code": icd, "display": name} for name, icd in case.diagnoses],
        "medications": lambda: [med_line(g) for _ in range(g.rng.randint(1, 4))],
        "allergies": lambda: [g.pick(ALLERGIES)],
        "note": lambda: note_text(g, case),
        "contact": lambda: {
            key(g, "name", style): g.name(case.relatives[0][1], form="full"),
            key(g, "relationship", style): case.relatives[0][0],
            key(g, "phone", style): g.phone(case.mobile),
        },
        "license": lambda: case.drivers_license,
        "portal": lambda: g.portal_url(case.mrn),
        "status": lambda: g.pick(("active", "inpatient", "discharged", "outpatient")),
        "employer": lambda: g.employer(),
        "login_ip": lambda: g.ip(),
        "device": lambda: g.device_id(),
    }
    out: dict[str, Any] = {}
    for concept in concepts:
        value = values[concept]()
        if value is not None:
            out[key(g, concept, style)] = value
    return out


def record_concepts(g: Gen) -> list[str]:
    split = g.chance(0.5)
    names = ["first", "middle", "last"] if split else ["name"]
    optional = ["sex", "age", "ssn", "phone", "mobile", "email", "line1", "city", "state", "zip"]
    optional += ["member", "payer", "account", "pcp", "last_visit", "diagnoses", "medications"]
    optional += ["allergies", "note", "contact", "license", "portal", "status", "employer"]
    optional += ["login_ip", "device"]
    chosen = g.rng.sample(optional, g.rng.randint(6, 14))
    ordered = ["mrn", *names, "dob", *(c for c in optional if c in chosen)]
    if "city" in chosen and "state" not in chosen:
        ordered.append("state")
    return ordered


def json_rows(g: Gen, case: Case) -> tuple[Builder, Any]:
    style, concepts = g.pick(KEY_STYLES), record_concepts(g)
    cases = [case, *(new_case(g) for _ in range(g.rng.randint(0, 3)))]
    records = [record(g, c, style, concepts) for c in cases]
    shape = g.pick(("list_key", "bare_list", "single", "nested"))
    if shape == "list_key" or (shape == "single" and len(records) > 1):
        document: Any = {
            g.pick(("patients", "results", "rows", "data", "matches")): records,
            "count": len(records),
        }
    elif shape == "bare_list":
        document = records
    elif shape == "single":
        document = records[0]
    else:
        document = {
            "query": {"tool": "search_patients", "limit": 25},
            "data": {"patients": records},
        }
    b = Builder()
    emit_json(b, document, g.pick((2, 2, None)))
    return b, document


# --- FHIR R4 ---------------------------------------------------------------------------------


def _uuid(g: Gen) -> str:
    h = f"{g.rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def fhir_name(g: Gen, p: Person, entity: str, prefix: str | None = None) -> dict[str, Any]:
    given = [Phi(entity, p.given, p.holdout)]
    if p.middle:
        given.append(Phi(entity, p.middle, p.holdout))
    name: dict[str, Any] = {
        "use": "official",
        "family": Phi(entity, p.family, p.holdout),
        "given": given,
    }
    if prefix:
        name["prefix"] = [prefix]
    if g.chance(0.3):
        name["text"] = g.name(p, entity, "full_mid" if p.middle else "full")
    return name


def fhir_patient(g: Gen, case: Case, pid: str) -> dict[str, Any]:
    p, a = case.patient, case.address
    line = (
        [g.street(a)]
        if not a.unit
        else [Phi("street_address", a.street), Phi("street_address", a.unit)]
    )
    mr = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "MR",
                "display": "Medical record number",
            }
        ]
    }
    dl_type = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "DL"}]
    }
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "use": "usual",
                "type": mr,
                "system": "urn:oid:1.2.840.114350.1.13.861.1.7.5.737384.14",
                "value": g.mrn(case.mrn, "plain"),
            },
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": g.ssn(case.ssn, "dash")},
        ],
        "active": True,
        "name": [
            fhir_name(
                g,
                p,
                "name",
                g.pick(("Mr.", None)) if p.sex == "M" else g.pick(("Ms.", "Mrs.", None)),
            )
        ],
        "telecom": [
            {"system": "phone", "value": g.phone(case.phone), "use": "home"},
            {"system": "phone", "value": g.phone(case.mobile), "use": "mobile"},
            {"system": "email", "value": case.email},
        ],
        "gender": "female" if p.sex == "F" else "male",
        "birthDate": g.date(case.dob, "iso"),
        "address": [
            {
                "use": "home",
                "line": line,
                "city": Phi("city", a.city),
                "state": a.state,
                "postalCode": g.zip_code(a),
                "country": "US",
            }
        ],
        "generalPractitioner": [
            {
                "reference": f"Practitioner/{_uuid(g)}",
                "display": Txt(tuple(g.doctor(case.team[0], "dr_full"))),
            }
        ],
    }
    if g.chance(0.5):
        resource["identifier"].append(
            {
                "type": dl_type,
                "system": f"urn:oid:2.16.840.1.113883.4.3.{STATE_FIPS[a.state]}",
                "value": case.drivers_license,
            }
        )
    return resource


def fhir_practitioner(g: Gen, c: Clinician) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": _uuid(g),
        "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": Phi("license", c.npi)}
        ],
        "name": [
            fhir_name(g, c.person, "clinician_name", "Dr." if c.credential in DOCTORS else None)
        ],
        "telecom": [
            {"system": "phone", "value": g.phone(g.phone_number()), "use": "work"},
            {"system": "fax", "value": g.phone(g.phone_number(), "fax")},
        ],
        "qualification": [{"code": {"text": c.credential}}],
    }


def fhir_related(g: Gen, case: Case, pid: str) -> dict[str, Any]:
    relation, person = case.relatives[0]
    codes = {
        "mother": "MTH",
        "father": "FTH",
        "daughter": "DAU",
        "son": "SON",
        "wife": "WIFE",
        "husband": "HUSB",
        "sister": "SIS",
        "brother": "BRO",
        "niece": "NIECE",
        "partner": "DOMPART",
    }
    return {
        "resourceType": "RelatedPerson",
        "id": _uuid(g),
        "patient": {"reference": f"Patient/{pid}"},
        "relationship": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": codes[relation],
                        "display": relation,
                    }
                ]
            }
        ],
        "name": [fhir_name(g, person, "name")],
        "telecom": [{"system": "phone", "value": g.phone(g.phone_number())}],
    }


def _div(*pieces: Piece | Sequence[Piece]) -> Txt:
    flat: list[Piece] = ['<div xmlns="http://www.w3.org/1999/xhtml">']
    for piece in pieces:
        flat.extend([piece] if isinstance(piece, str | Phi) else piece)
    return Txt((*flat, "</div>"))


def fhir_encounter(g: Gen, case: Case, pid: str) -> dict[str, Any]:
    narrative = _div(
        fill(
            "Inpatient encounter for <b>{name}</b> ({dept}) from {start} to {end}. Attending {dr}.",
            name=g.name(case.patient),
            dept=case.department,
            start=g.date(case.admitted),
            end=g.date(case.discharged),
            dr=g.doctor(case.attending),
        )
    )
    return {
        "resourceType": "Encounter",
        "id": _uuid(g),
        "text": {"status": "generated", "div": narrative},
        "identifier": [
            {"system": "urn:oid:1.2.840.114350.1.13.861.1.7.3.698084.8", "value": case.account}
        ],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": f"Patient/{pid}", "display": g.name(case.patient, form="full")},
        "participant": [
            {"individual": {"display": g.name(case.attending.person, "clinician_name", "full")}}
        ],
        "period": {
            "start": Txt(tuple(g.datetime(case.admitted, "iso"))),
            "end": Txt(tuple(g.datetime(case.discharged, "iso"))),
        },
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": case.diagnoses[0][1],
                        "display": case.diagnoses[0][0],
                    }
                ]
            }
        ],
    }


def fhir_observation(g: Gen, case: Case, pid: str) -> dict[str, Any]:
    lab = g.pick(LABS)
    value = lab_value(g, lab)
    narrative = _div(
        fill(
            "{lab} {value} {unit} for {name}, collected {date}.",
            lab=lab[0],
            value=value,
            unit=lab[2],
            name=g.name(case.patient),
            date=g.date(case.admitted),
        )
    )
    return {
        "resourceType": "Observation",
        "id": _uuid(g),
        "text": {"status": "generated", "div": narrative},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": lab[1], "display": lab[0]}]},
        "subject": {"reference": f"Patient/{pid}", "display": g.name(case.patient, form="full")},
        "effectiveDateTime": Txt(tuple(g.datetime(case.admitted, "iso"))),
        "valueQuantity": {
            "value": float(value) if "." in value else int(value),
            "unit": lab[2] or "1",
            "system": "http://unitsofmeasure.org",
        },
    }


def fhir_bundle(g: Gen, case: Case) -> tuple[Builder, Any]:
    pid = _uuid(g)
    resources = [fhir_patient(g, case, pid)]
    extras: list[Callable[[], dict[str, Any]]] = [
        lambda: fhir_practitioner(g, case.attending),
        lambda: fhir_related(g, case, pid),
        lambda: fhir_encounter(g, case, pid),
        lambda: fhir_observation(g, case, pid),
    ]
    chosen = g.rng.sample(extras, g.rng.randint(2, 4))
    if not any(e in chosen for e in extras[2:]):  # always a narrative that names the patient
        chosen.append(extras[2])
    resources += [make() for make in chosen]
    bundle = {
        "resourceType": "Bundle",
        "id": _uuid(g),
        "type": g.pick(("searchset", "collection")),
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    b = Builder()
    emit_json(b, bundle, g.pick((2, None)))
    return b, bundle


# --- HL7 v2 ----------------------------------------------------------------------------------


def _hl7_name(g: Gen, p: Person, entity: str) -> Phi:
    text = f"{p.family}^{p.given}^{p.middle}" if p.middle else f"{p.family}^{p.given}"
    return Phi(entity, text.upper() if g.chance(0.6) else text, p.holdout)


def _segment(b: Builder, name: str, fields: dict[int, Any], end: str) -> None:
    """One segment, its fields by number as the standard counts them ("PID-19" the SSN);
    those not given are empty. MSH-1 is the field separator itself."""
    b.add(name)
    for number in range(2 if name == "MSH" else 1, max(fields) + 1):
        b.add("|", fields.get(number, ""))
    b.add(end)


def hl7_message(g: Gen, case: Case) -> Builder:
    c = case.attending
    b = Builder()
    end = g.pick(("\n", "\n", "\r\n"))
    kind = g.pick(("ADT^A01^ADT_A01", "ADT^A08^ADT_A01", "ORU^R01^ORU_R01"))
    facility = "".join(w[0] for w in case.facility.split())
    if g.chance(0.4):
        b.add("Message received from interface engine:", end)
    header = {2: "^~\\&", 3: "EPIC", 4: facility, 5: "LAB", 6: facility}
    header |= {7: g.datetime(case.admitted, "hl7"), 9: kind, 10: f"MSG{_digits(g.rng, 8)}"}
    _segment(b, "MSH", header | {11: "P", 12: "2.5.1"}, end)
    if kind.startswith("ADT"):
        _segment(b, "EVN", {1: kind[4:7], 2: g.datetime(case.admitted, "hl7")}, end)
    _segment(b, "PID", _pid(g, case, facility), end)
    relation, relative = case.relatives[0]
    codes = {"mother": "MTH", "father": "FTH", "daughter": "CHD", "son": "CHD"}
    code = {**codes, "wife": "SPO", "husband": "SPO"}.get(relation, "OTH")
    kin = {1: "1", 2: _hl7_name(g, relative, "name"), 3: f"{code}^{relation.capitalize()}"}
    _segment(b, "NK1", kin | {5: g.phone(g.phone_number(), style="paren_tight")}, end)
    credential = c.credential.replace(".", "").replace(", ", "")
    attending = [Phi("license", c.npi), "^", _hl7_name(g, c.person, "clinician_name")]
    room = f"{g.rng.randint(2, 9)}W^{g.rng.randint(100, 450)}^A^{facility}"
    visit = {1: "1", 2: g.pick(("I", "O", "E")), 3: room}
    visit |= {7: [*attending, f"^^^{credential}"], 10: case.department[:3].upper()}
    _segment(b, "PV1", visit | {19: case.account}, end)
    if kind.startswith("ORU"):
        order = {1: "1", 2: f"ORD{_digits(g.rng, 7)}", 4: "80053^Comprehensive metabolic panel^CPT"}
        _segment(b, "OBR", order | {7: g.datetime(case.admitted, "hl7")}, end)
    for i, lab in enumerate(g.rng.sample(LABS, g.rng.randint(1, 4)), 1):
        flag = g.pick(("N", "H", "L", ""))
        result = {1: str(i), 2: "NM", 3: f"{lab[1]}^{lab[0]}^LN", 5: lab_value(g, lab)}
        result |= {6: lab[2], 7: f"{lab[3]}-{lab[4]}", 8: flag, 11: "F"}
        _segment(b, "OBX", result | {14: g.datetime(case.admitted, "hl7")}, end)
    return b


def _pid(g: Gen, case: Case, facility: str) -> dict[int, Any]:
    """The patient's identification: MRN, name, birth date, address, phone, account, SSN,
    driver's licence."""
    p, a = case.patient, case.address
    street = [Phi("street_address", a.street.upper()), "^"]
    if a.unit:
        street.append(Phi("street_address", a.unit.upper()))
    address = [*street, "^", Phi("city", a.city.upper()), f"^{a.state}^", g.zip_code(a), "^USA"]
    phone = g.phone(case.phone, style=g.pick(("paren_tight", "dash", "bare")))
    pid = {1: "1", 3: [g.mrn(case.mrn, "plain"), "^^^", facility, "^MR"]}
    pid |= {5: _hl7_name(g, p, "name"), 7: g.date(case.dob, "hl7"), 8: p.sex}
    pid |= {10: g.pick(("2106-3", "2054-5", "2131-1")), 11: address, 13: phone}
    pid |= {16: g.pick(("S", "M", "W")), 18: case.account}
    pid |= {
        19: g.ssn(case.ssn, g.pick(("dash", "bare"))),
        20: [case.drivers_license, f"^{a.state}"],
    }
    return pid


# --- C-CDA and DICOM headers ----------------------------------------------------------------


def _xml_name(g: Gen, p: Person, entity: str, indent: str) -> list[Piece]:
    given = [f"{indent}  <given>", Phi(entity, p.given, p.holdout), "</given>\n"]
    if p.middle and g.chance(0.5):
        given += [f"{indent}  <given>", Phi(entity, p.middle, p.holdout), "</given>\n"]
    family = [f"{indent}  <family>", Phi(entity, p.family, p.holdout), "</family>\n"]
    return [f"{indent}<name>\n", *given, *family, f"{indent}</name>\n"]


def cda_header(g: Gen, case: Case) -> Builder:
    """A C-CDA document's header as an EHR's API returns it: the patient's identifiers,
    address, telecom, name and birth time by element, the author and the custodian."""
    p, a, c = case.patient, case.address, case.attending
    root = f"2.16.840.1.113883.19.{g.rng.randint(1, 9)}"
    b = Builder()
    b.line('<ClinicalDocument xmlns="urn:hl7-org:v3">')
    b.line(f'  <id root="{root}" extension="DOC-{_digits(g.rng, 6)}"/>')
    b.line('  <effectiveTime value="', Phi("date", f"{case.admitted:%Y%m%d}"), '"/>')
    b.line("  <recordTarget>", "\n    <patientRole>")
    b.line('      <id extension="', g.mrn(case.mrn, "plain"), f'" root="{root}"/>')
    b.add(
        '      <addr use="HP">\n        <streetAddressLine>', g.street(a), "</streetAddressLine>\n"
    )
    b.add("        <city>", Phi("city", a.city), "</city>\n", f"        <state>{a.state}</state>\n")
    b.add("        <postalCode>", g.zip_code(a), "</postalCode>\n      </addr>\n")
    phone = case.phone
    b.line('      <telecom use="HP" value="tel:', g.phone(phone, style="dash"), '"/>')
    b.line("      <patient>")
    b.add(_xml_name(g, p, "name", "        "))
    b.line(f'        <administrativeGenderCode code="{p.sex}"/>')
    b.line('        <birthTime value="', Phi("date", f"{case.dob:%Y%m%d}"), '"/>')
    relation, relative = case.relatives[0]
    if g.chance(0.5):
        b.line("        <guardian>", f'\n          <code code="{relation.upper()[:3]}"/>')
        b.line("          <guardianPerson>")
        b.add(_xml_name(g, relative, "name", "            "))
        b.line("          </guardianPerson>", "\n        </guardian>")
    b.line("      </patient>")
    b.line(f"      <providerOrganization><name>{case.facility}</name></providerOrganization>")
    b.line("    </patientRole>", "\n  </recordTarget>")
    b.line(
        "  <author>", '\n    <time value="', Phi("date", f"{case.admitted:%Y%m%d}"), '1030-0500"/>'
    )
    b.add('    <assignedAuthor>\n      <id root="2.16.840.1.113883.4.6" extension="')
    b.add(Phi("license", c.npi), '"/>\n      <assignedPerson>\n')
    b.add(_xml_name(g, c.person, "clinician_name", "        "))
    b.line("      </assignedPerson>", "\n    </assignedAuthor>", "\n  </author>")
    b.line("  <component><section><title>Problems</title>")
    b.line(f"    <text>{case.diagnoses[0][0]}</text></section></component>")
    b.line("</ClinicalDocument>")
    return b


def _dicom_line(b: Builder, tag: str, vr: str, value: Piece | Sequence[Piece], name: str) -> None:
    b.add(f"({tag}) {vr} [", value, f"]  # {name}\n")


def dicom_header(g: Gen, case: Case) -> Builder:
    """An imaging study's header as dcmdump prints it: the patient's and the study's
    attributes by tag."""
    p, c = case.patient, case.attending
    b = Builder()
    b.line("# Dicom-Data-Set", "\n# Used TransferSyntax: Little Endian Explicit")
    _dicom_line(b, "0008,0020", "DA", Phi("date", f"{case.admitted:%Y%m%d}"), "StudyDate")
    accession = Phi("account", f"ACC{case.admitted:%Y%m%d}-{_digits(g.rng, 4)}")
    _dicom_line(b, "0008,0050", "SH", accession, "AccessionNumber")
    _dicom_line(b, "0008,0060", "CS", g.pick(("CR", "CT", "MR", "US")), "Modality")
    _dicom_line(b, "0008,0080", "LO", case.facility, "InstitutionName")
    doctor = _hl7_name(g, c.person, "clinician_name")
    _dicom_line(b, "0008,0090", "PN", [doctor, "^^DR"], "ReferringPhysicianName")
    _dicom_line(b, "0010,0010", "PN", _hl7_name(g, p, "name"), "PatientName")
    _dicom_line(b, "0010,0020", "LO", g.mrn(case.mrn, g.pick(("plain", "prefixed"))), "PatientID")
    _dicom_line(b, "0010,0030", "DA", Phi("date", f"{case.dob:%Y%m%d}"), "PatientBirthDate")
    _dicom_line(b, "0010,0040", "CS", p.sex, "PatientSex")
    age = f"{case.age:03d}Y"
    _dicom_line(
        b, "0010,1010", "AS", Phi("age_over_89", age) if case.age >= 90 else age, "PatientAge"
    )
    serial = Phi("device", f"{_letters(g.rng, 2)}{_digits(g.rng, 6)}")
    _dicom_line(b, "0018,1000", "LO", serial, "DeviceSerialNumber")
    _dicom_line(b, "0018,5101", "CS", g.pick(("PA", "AP", "LAT")), "ViewPosition")
    return b


def x12_eligibility(g: Gen, case: Case) -> Builder:
    """An eligibility answer (X12 271) as a clearinghouse returns it: the subscriber's
    name, member id, address, birth date and SSN by position; the payer's and the clinic's
    names and ids are not PHI."""
    p, a = case.patient, case.address
    end = g.pick(("~", "~\n"))
    b = Builder()
    stamp = f"{case.admitted:%y%m%d}"
    b.add(f"ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*CLINIC         *{stamp}*1030")
    b.add(f"*^*00501*{_digits(g.rng, 9)}*0*P*:", end, f"ST*271*{_digits(g.rng, 4)}", end)
    b.add(f"NM1*PR*2*{case.payer.upper()}*****PI*{_digits(g.rng, 9)}", end)
    b.add(f"NM1*1P*2*{case.facility.upper()}*****XX*{npi(g.rng)}", end)  # a place's NPI
    upper = g.chance(0.7)
    given = p.given.upper() if upper else p.given
    family = p.family.upper() if upper else p.family
    b.add("NM1*IL*1*", Phi("name", family, p.holdout), "*", Phi("name", given, p.holdout))
    b.add("****MI*", case.member_id, end)
    b.add("N3*", Phi("street_address", a.street.upper()), end)
    b.add("N4*", Phi("city", a.city.upper()), f"*{a.state}*", Phi("zip", a.zip5 + a.zip4), end)
    b.add("DMG*D8*", Phi("date", f"{case.dob:%Y%m%d}"), f"*{p.sex}", end)
    if g.chance(0.5):
        b.add("REF*SY*", Phi("ssn", case.ssn), end)
    b.add("DTP*291*D8*", Phi("date", f"{case.admitted:%Y%m%d}"), end)
    b.add(f"EB*1*IND*30**{g.pick(('GOLD', 'SILVER', 'BRONZE'))} PLAN", end)
    b.add(f"SE*12*{_digits(g.rng, 4)}", end)
    return b


# --- tables in text --------------------------------------------------------------------------

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("Patient Name", "Name", "Patient"),
    "dob": ("DOB", "Date of Birth", "Birth Date"),
    "mrn": ("MRN", "Med Rec #", "Patient ID"),
    "phone": ("Phone", "Contact #", "Home Phone"),
    "last_visit": ("Last Visit", "Admit Date", "Visit Date"),
    "dx": ("Dx", "Diagnosis", "Problem"),
    "provider": ("Provider", "Attending", "PCP"),
    "zip": ("ZIP", "Zip Code"),
    "age": ("Age",),
    "member": ("Member ID",),
    "email": ("Email",),
    "result": ("A1c", "Last A1c"),
}


def table_cell(g: Gen, case: Case, column: str) -> list[Piece]:
    cells: dict[str, Callable[[], list[Piece]]] = {
        "name": lambda: [
            g.name(
                case.patient,
                form=g.pick(("last_first", "full", "upper_comma", "upper_comma_space")),
            )
        ],
        "dob": lambda: [g.date(case.dob, g.pick(("us", "iso", "us_short")))],
        "mrn": lambda: [g.mrn(case.mrn)],
        "phone": lambda: [g.phone(case.phone)],
        "last_visit": lambda: [g.date(case.admitted, g.pick(("us", "iso", "abbr")))],
        "dx": lambda: [f"{case.diagnoses[0][0]} ({case.diagnoses[0][1]})"],
        "provider": lambda: g.doctor(
            case.attending, g.pick(("dr_family", "last_first_cred", "plain"))
        ),
        "zip": lambda: [g.zip_code(case.address)],
        "age": lambda: age_short(case),
        "member": lambda: [case.member_id],
        "email": lambda: [case.email],
        "result": lambda: [f"{g.rng.uniform(5.4, 11.2):.1f}%"],
    }
    return cells[column]()


def _table_parts(g: Gen) -> tuple[list[str], list[Case]]:
    columns = [
        "name",
        *g.rng.sample([c for c in TABLE_COLUMNS if c != "name"], g.rng.randint(3, 6)),
    ]
    return columns, [new_case(g) for _ in range(g.rng.randint(3, 7))]


def csv_table(g: Gen, case: Case) -> Builder:
    columns, cases = _table_parts(g)
    cases[0] = case
    b = Builder()
    b.line(
        g.pick(
            (
                "Query results (CSV):",
                "Export of the panel follows.",
                f"{len(cases)} rows returned:",
                "",
            )
        )
    )
    headers = [g.pick(TABLE_COLUMNS[c]) for c in columns]
    b.line(",".join(headers))
    for row in cases:
        for i, column in enumerate(columns):
            cell = table_cell(g, row, column)
            text = "".join(p.value if isinstance(p, Phi) else p for p in cell)
            quoted = "," in text or g.chance(0.1)
            b.add("," if i else "", '"' if quoted else "", cell, '"' if quoted else "")
        b.add("\n")
    return b


def markdown_table(g: Gen, case: Case) -> Builder:
    columns, cases = _table_parts(g)
    cases[0] = case
    b = Builder()
    b.line(
        g.pick(
            (
                "### Patients due for follow-up",
                f"**{g.pick(DEPARTMENTS)} census**",
                "Here are the matching patients:",
                "## Results",
            )
        )
    )
    b.add("\n")
    b.line("| " + " | ".join(g.pick(TABLE_COLUMNS[c]) for c in columns) + " |")
    b.line("|" + "|".join("---" for _ in columns) + "|")
    for row in cases:
        b.add("|")
        for column in columns:
            b.add(" ", table_cell(g, row, column), " |")
        b.add("\n")
    if g.chance(0.5):
        b.add("\n")
        b.line(
            fill(
                "Flagged by {dr} for outreach; see the {dept} worklist.",
                dr=g.doctor(case.attending),
                dept=case.department,
            )
        )
    return b


# --- conversation and sentences --------------------------------------------------------------


def chat(g: Gen, case: Case) -> Builder:
    p = case.patient
    relation, relative = g.pick(case.relatives)
    user_label, bot_label = g.pick(
        (("User", "Assistant"), ("**user**", "**assistant**"), ("Q", "A"), ("Caller", "Agent"))
    )
    b = Builder()
    asks = (
        fill(
            "Hi, I'm asking about my {rel_word} {name}, born {dob}. {pronoun} was admitted on "
            "{date} to {facility}. Can you tell me {pronoun_l} latest labs? My number is {phone}.",
            rel_word=_inverse(relation, p.sex),
            name=g.name(p, form=g.pick(("full", "full_mid"))),
            dob=g.date(case.dob, g.pick(("us_short", "long", "long_ord", "us_2y"))),
            pronoun="She" if p.sex == "F" else "He",
            date=g.date(case.admitted),
            facility=case.facility,
            pronoun_l="her" if p.sex == "F" else "his",
            phone=g.phone(g.phone_number(), style=g.pick(("paren", "dot", "bare", "dash"))),
        ),
        fill(
            "This is {rel} - {name}'s {relation}. {pronoun} MRN is {mrn} and {pronoun_l} SSN "
            "ends... actually here's the full one: {ssn}. Please update {pronoun_l} address "
            "to {addr}.",
            rel=g.name(relative, form=g.pick(("full", "given"))),
            name=g.name(p, form="given"),
            relation=relation,
            pronoun="Her" if p.sex == "F" else "His",
            mrn=g.mrn(case.mrn),
            pronoun_l="her" if p.sex == "F" else "his",
            ssn=g.ssn(case.ssn),
            addr=g.address_line(case.address),
        ),
        fill(
            "can u check if {name} has an appt with {dr} on the {day}? email me at {email}",
            name=g.name(p, form=g.pick(("full", "given", "upper_full"))),
            dr=g.doctor(case.attending, "dr_family"),
            day=g.date(case.discharged, "of_month"),
            email=case.email,
        ),
    )
    answers = (
        fill(
            "Here are the most recent results for {name} (MRN {mrn}, DOB {dob}): {labs}. {line}",
            name=g.name(p),
            mrn=g.mrn(case.mrn),
            dob=g.date(case.dob),
            labs=lab_line(g),
            line=g.pick(EPONYM_LINES),
        ),
        fill(
            "I found an appointment for {name} with {dr} on {date} at 9:15 AM in {dept}. The "
            "clinic can be reached at {phone}.",
            name=g.name(p),
            dr=g.doctor(case.attending),
            date=g.date(case.discharged, g.pick(("long", "abbr", "us"))),
            dept=case.department,
            phone=g.phone(case.clinic_phone),
        ),
        fill(
            "{given}'s chart shows {dx} and a current prescription for {med}. The record was last "
            "updated on {date} by {user}.",
            given=g.casual(p),
            dx=case.diagnoses[0][0],
            med=med_line(g),
            date=g.short_date(case.discharged),
            user=Phi("username", case.attending.username),
        ),
    )
    b.line(f"{user_label}: ", g.pick(asks))
    b.add("\n")
    b.line(f"{bot_label}: ", g.pick(answers))
    if g.chance(0.4):
        b.add("\n")
        pronoun = "she" if p.sex == "F" else "he"
        b.line(f"{user_label}: thanks! is {pronoun} still on {g.pick(MEDS)[0]}?")
        b.add("\n")
        b.line(
            f"{bot_label}: ",
            fill(
                "Yes - {med}, per the {date} medication reconciliation by {dr}.",
                med=med_line(g),
                date=g.date(case.admitted, "mon_day"),
                dr=g.doctor(case.team[0]),
            ),
        )
    return b


def _inverse(relation: str, sex: str) -> str:
    """The patient as the relative speaks of them: a daughter's patient is her mother."""
    parent = "mother" if sex == "F" else "father"
    child = "daughter" if sex == "F" else "son"
    spouse = "wife" if sex == "F" else "husband"
    sibling = "sister" if sex == "F" else "brother"
    return {
        **dict.fromkeys(("daughter", "son"), parent),
        **dict.fromkeys(("mother", "father"), child),
        **dict.fromkeys(("wife", "husband", "partner"), spouse),
        **dict.fromkeys(("sister", "brother"), sibling),
        "niece": "aunt" if sex == "F" else "uncle",
    }[relation]


def sentence(g: Gen, case: Case) -> Builder:
    p, c = case.patient, case.attending
    templates: list[Callable[[], list[Piece]]] = [
        lambda: fill(
            "Patient {name} (MRN {mrn}) was seen on {date} by {dr} for {dx}.",
            name=g.name(p),
            mrn=g.mrn(case.mrn),
            date=g.date(case.admitted),
            dr=g.doctor(c),
            dx=case.diagnoses[0][0],
        ),
        lambda: fill(
            "{name}, DOB {dob}, SSN {ssn}, phone {phone}.",
            name=g.name(p),
            dob=g.date(case.dob),
            ssn=g.ssn(case.ssn),
            phone=g.phone(case.phone, style=g.pick(("bare", "dash", "paren"))),
        ),
        lambda: fill(
            "Seen by {dr} on {date}; {titled} tolerated the procedure well.",
            dr=g.doctor(c, "plain"),
            date=g.date(case.admitted),
            titled=g.titled(p),
        ),
        lambda: fill(
            "{age} {sex} admitted {date} with {dx}; lives at {addr}.",
            age=age_words(g, case),
            sex=sex_word(g, case),
            date=g.date(case.admitted),
            dx=case.diagnoses[0][0],
            addr=g.address_line(case.address),
        ),
        lambda: fill(
            "Member ID {member} ({payer}) verified for {name} on {date}.",
            member=case.member_id,
            payer=case.payer,
            name=g.name(p),
            date=g.date(case.admitted),
        ),
        lambda: fill(
            "Account {acct}: {name}, admitted {d1}, discharged {d2}.",
            acct=case.account,
            name=g.name(p, form="upper_comma"),
            d1=g.date(case.admitted),
            d2=g.date(case.discharged),
        ),
        lambda: fill(
            "Called {name} at {phone}, left voicemail re: {dx} follow-up.",
            name=g.name(p, form=g.pick(("full", "given"))),
            phone=g.phone(case.phone),
            dx=case.diagnoses[0][0],
        ),
        lambda: fill(
            "Rx: {med}. Prescriber {dr}, DEA {dea}, NPI {npi}.",
            med=med_line(g),
            dr=g.doctor(c, "full_cred"),
            dea=Phi("license", dea(g.rng, c.person.family)),
            npi=Phi("license", c.npi),
        ),
        lambda: fill(
            "Driver's license {dl} ({state}) scanned at registration for {name}.",
            dl=case.drivers_license,
            state=STATES[case.address.state],
            name=g.name(p),
        ),
        lambda: fill(
            "{name} logged in to {url} from {ip} at 21:14.",
            name=g.name(p, form="full"),
            url=g.portal_url(case.mrn),
            ip=g.ip(),
        ),
        lambda: fill(
            "Pacemaker interrogation: device serial {serial}, battery 8.5 years; {name} to return "
            "in 6 months.",
            serial=g.device_id(),
            name=g.casual(p),
        ),
        lambda: fill(
            "Fax: {fax} - records for {name} sent to {dr}.",
            fax=g.phone(g.phone_number(), "fax"),
            name=g.name(p),
            dr=g.doctor(case.team[0]),
        ),
        lambda: fill(
            "{relative} ({relation}) is the health care proxy for {name}; reach {pronoun} at "
            "{phone} or {email}.",
            relative=g.name(case.relatives[0][1]),
            relation=case.relatives[0][0],
            name=g.name(p),
            pronoun="her" if case.relatives[0][1].sex == "F" else "him",
            phone=g.phone(g.phone_number()),
            email=g.email(case.relatives[0][1]),
        ),
        lambda: fill(
            "Dear {dr}, thank you for referring {name} ({dob}).",
            dr=g.doctor(c, g.pick(("dr_family", "dr_full"))),
            name=g.name(p),
            dob=g.date(case.dob),
        ),
        lambda: fill(
            "Pt: {name}   Med Rec #: {mrn}   Acct: {acct}   Visit: {date}",
            name=g.name(p, form="upper_comma"),
            mrn=g.mrn(case.mrn, g.pick(("pairs", "groups"))),
            acct=case.account,
            date=g.date(case.admitted, g.pick(("dash", "dash_upper", "dmy"))),
        ),
        lambda: fill(
            "On the {day}, {name} reported {cc}; {line}",
            day=g.date(case.admitted, "of_month"),
            name=g.casual(p),
            cc=g.pick(COMPLAINTS),
            line=g.pick(EPONYM_LINES),
        ),
        lambda: fill(
            "Nursing: {rn}, RN, administered {med} at 08:00. {name} resting comfortably.",
            rn=g.name(case.team[3].person, "clinician_name", "full"),
            med=med_line(g),
            name=g.name(p, form="given"),
        ),
        lambda: fill(
            "{name} ZIP {zip}, {city} - eligible for the {state} Medicaid waiver.",
            name=g.name(p),
            zip=g.zip_code(case.address),
            city=Phi("city", case.address.city),
            state=STATES[case.address.state],
        ),
        lambda: fill(
            "Vehicle VIN {vin} registered to {name}; towed after the collision on {date}.",
            vin=Phi("vehicle", vin(g.rng)),
            name=g.name(p),
            date=g.date(case.admitted),
        ),
        lambda: fill(
            "SSN: {ssn}  DOB {dob}  age {age}",
            ssn=g.ssn(case.ssn, "bare"),
            dob=g.date(case.dob, "hl7"),
            age=age_short(case),
        ),
        lambda: fill(
            "Note by {user} ({name}, {cred}) on {date} at 14:05.",
            user=Phi("username", c.username),
            name=g.name(c.person, "clinician_name", "full"),
            cred=c.credential,
            date=g.date(case.admitted),
        ),
        lambda: fill(
            "Trauma activation: {name}, driver, vehicle plate {plate} ({state}); airbags deployed.",
            name=g.name(p),
            plate=g.plate(),
            state=case.address.state,
        ),
        lambda: fill(
            "Occupational history: {job} at {employer} since 2015; exposure to solvents.",
            job=g.pick(EMPLOYED_JOBS),
            employer=g.employer(),
        ),
        lambda: fill(
            "Workers' compensation claim for {name}: employer {employer}, injury date {date}.",
            name=g.name(p),
            employer=g.employer(),
            date=g.date(case.admitted - dt.timedelta(days=g.rng.randint(1, 60))),
        ),
        lambda: fill(
            "{titled} was counseled about {dx}; daughter {rel} present.",
            titled=g.titled(p),
            dx=case.diagnoses[0][0],
            rel=g.name(case.relatives[0][1], form="given"),
        ),
    ]
    b = Builder()
    for make in g.rng.sample(templates, g.rng.randint(1, 3)):
        b.line(make())
    return b


# --- the corpus ------------------------------------------------------------------------------

Shape = Callable[[Gen, Case], "Builder | tuple[Builder, Any]"]
SHAPES: dict[str, Shape] = {
    "note_hp": note_hp,
    "note_soap": note_soap,
    "note_discharge": note_discharge,
    "note_radiology": note_radiology,
    "note_referral": note_referral,
    "json": json_rows,
    "fhir": fhir_bundle,
    "hl7": hl7_message,
    "cda": cda_header,
    "dicom": dicom_header,
    "x12": x12_eligibility,
    "csv": csv_table,
    "markdown": markdown_table,
    "chat": chat,
    "sentence": sentence,
}


def document(shape: str, seed: int, number: int) -> Document:
    """One document; its randomness is its own (seed and number), so a document does not
    change when others are added or removed."""
    g = Gen(random.Random(f"{seed}:{number}"))
    made = SHAPES[shape](g, new_case(g))
    builder, structured = made if isinstance(made, tuple) else (made, None)
    text = builder.text()
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if structured is not None and g.chance(0.5):
        content = plain(structured)
        result["structuredContent"] = content if isinstance(content, dict) else {"result": content}
    result["isError"] = False
    body = json.dumps({"jsonrpc": "2.0", "id": number, "result": result}, ensure_ascii=False)
    return Document(shape, body.encode(), text, list(builder.spans))


def generate(n: int, seed: int) -> list[Document]:
    """`n` documents; the shapes take turns in a shuffled order, so any slice has them all."""
    order = random.Random(f"{seed}:shapes")
    shapes: list[str] = []
    while len(shapes) < n:
        block = list(SHAPES)
        order.shuffle(block)
        shapes += block
    return [document(shape, seed, i + 1) for i, shape in enumerate(shapes[:n])]


# --- statistics ------------------------------------------------------------------------------


def statistics(docs: Sequence[Document]) -> str:
    shapes = Counter(d.shape for d in docs)
    entities = Counter(s.entity for d in docs for s in d.spans)
    names = [s for d in docs for s in d.spans if s.entity in ("name", "clinician_name")]
    holdout = sum(s.holdout for s in names)
    size = sum(len(d.body) for d in docs)
    lines = [f"{len(docs)} documents, {size / 1000:.0f} kB of JSON-RPC bodies"]
    lines[0] += f", {sum(entities.values())} spans"
    lines.append("documents per shape:")
    lines += [f"  {shape:<16}{count:>6}" for shape, count in sorted(shapes.items())]
    lines.append("spans per entity:")
    lines += [f"  {entity:<16}{entities[entity]:>6}" for entity in ENTITIES]
    lines.append(
        f"holdout names: {holdout} of {len(names)} name spans ({holdout / max(1, len(names)):.0%})"
    )
    return "\n".join(lines)


def marked(doc: Document) -> str:
    """The text with each span bracketed and labelled, for reading."""
    out, last = [], 0
    for span in sorted(doc.spans, key=lambda s: s.start):
        tag = f"{span.entity}{'*' if span.holdout else ''}"
        out += [doc.text[last : span.start], f"\u27e6{doc.text[span.start : span.end]}\u27e7{tag}"]
        last = span.end
    out.append(doc.text[last:])
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--show", type=int, default=0, help="print this many documents, spans marked"
    )
    args = parser.parse_args()
    docs = generate(args.n, args.seed)
    print(statistics(docs))
    for doc in docs[: args.show]:
        print(f"\n--- {doc.shape} ---\n{marked(doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
