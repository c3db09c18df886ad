"""The built-in detectors: one regex branch per Safe Harbor identifier with a recognisable
shape, each with its entity, its rank on ties and, where looks deceive, a validator.
`extproc.masking.detectors` compiles them, with operators' patterns and word lists, into the one
alternation the scanner runs."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from faker.providers.address.en_US import Provider as UsAddress

from extproc.masking import validators as v
from extproc.masking.names import dictionaries

# A branch's opening character class or literal, when it is not quantified.
LEAD = re.compile(r"(?:\[(?:\\.|[^\]\\])+\]|\\.|[^\\\[\](){}|?*+.^$])(?![?*+{])")


@dataclass(frozen=True, slots=True)
class Branch:
    entity: str
    regex: str
    rank: int  # on a tie (same span), the lower rank is the more specific entity and wins
    check: Callable[[str], bool] | None = None  # validates the finding's text
    word_start: bool = True  # can only match where a word starts: tried behind the `\b`
    known_lead: bool = True  # the regex opens with its lead (operators' regexes: unknown)

    @property
    def lead(self) -> str:
        found = LEAD.match(self.regex) if self.known_lead else None
        return found.group() if found else ""


# --- literal words as regexes ------------------------------------------------------------


def tries(words: Iterable[str], *, ignore_case: bool = True) -> list[str]:
    """Literal words as prefix tries, one per first letter, so each opens with its lead."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for ch in word.lower() if ignore_case else word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return [_char(ch, ignore_case) + _node(child, ignore_case) for ch, child in root.items()]


def _trie(words: Iterable[str], *, ignore_case: bool = True) -> str:
    (only,) = tries(words, ignore_case=ignore_case)  # words sharing their first letter
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
# Separators as typed, and as word processors and web pages turn them: no-break, figure,
# thin and narrow spaces; hyphens, dashes and the minus sign.
_DASH = "[-\u2010-\u2014\u2212]"
_SPACE = "[ \u00a0\u2007\u2009\u202f]"
_SEP = "[-. \u00a0\u2007\u2009\u202f\u2010-\u2014\u2212]"
_NANP = rf"(?:\({_D}{{3}}\){_SEP}?|{_D}{{3}}{_SEP}){_D}{{3}}{_SEP}{_D}{{4}}"
# Grouped as people type to get past filters: a dash with spaces, a middle dot, "_".
_ODD_GAP = rf"(?:[ ]{_DASH}[ ]|[\u00b7_])"
# after "+": 1 and a NANP number, or E.164's country code and up to 15 digits, grouped or not
# (a trunk 0 in brackets may follow the country code: "+44 (0)20 7946 0958")
_GROUPS = rf"(?:{_SEP}?\(0\){_D}{{1,8}})?(?:{_SEP}{_D}{{1,8}}){{1,6}}"
_PLUS_TAIL = rf"(?:1{_SEP}?{_NANP}|[1-9]{_D}{{0,3}}{_GROUPS}|[1-9]{_D}{{6,14}})"
# Ten digits in a row are a US number when they read as one (area code and exchange
# starting 2-9): "3785553442"; an epoch time ("1700000000") does not.
_BARE_NANP = rf"1?[2-9]{_D}{{2}}[2-9]{_D}{{6}}"
_PHONE = rf"(?:1{_SEP}?)?{_NANP}|\+{_PLUS_TAIL}|{_BARE_NANP}"
# An extension belongs to the number: "x7240", "ext. 45".
_EXT = r"(?:(?:[ \t]*(?:[xX]|[eE]xt\.?|[eE]xtension)|;ext=)[ \t]*[0-9]{1,6}(?![0-9]))?"
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS = {name[:3]: number for number, name in enumerate(_MONTH_NAMES.split(), 1)}
_MONTH_TRIES = tries([*_MONTH_NAMES.split(), *_MONTHS, "sept"])
_MONTH = f"(?:{'|'.join(_MONTH_TRIES)})"
_ORD = "(?:st|nd|rd|th)?"
_YEAR = f"[12]{_D}{{3}}"
_STATES = (  # US states, DC and territories, as USPS codes
    "(?:A[KLRSZ]|C[AOT]|D[CE]|F[LM]|G[AU]|HI|I[ADLN]|K[SY]|LA|M[ADEHINOPST]|N[CDEHJMVY]"
    "|O[HKR]|P[AR]|RI|S[CD]|T[NX]|UT|V[AIT]|W[AIVY])"
)
_ZIP = rf"{_D}{{5}}(?:-{_D}{{4}})?{_END}"
_POSTAL = rf"{_D}{{4,6}}(?:-{_D}{{3,4}})?{_END}"  # numeric postcodes of the world
# CMS's MBI: digit, letter, letter or digit, digit, letter, letter or digit, digit, two
# letters, two digits; letters but S, L, O, I, B, Z; dashes where the card prints them.
_MBI_LETTER = "[AC-HJKMNP-RT-Y]"
_MBI = (
    rf"[1-9]{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]{_D}-?{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]{_D}-?"
    rf"{_MBI_LETTER}{{2}}{_D}{{2}}(?![A-Za-z0-9])"
)
_OUTCOME = "|".join(tries(["failed", "failure", "succeeded", "successful"]))
# A national number: digits in groups, letters after or around them ("0978133G")
_NATIONAL_ID = rf"[A-Z]{{0,2}}{_D}{{3,}}(?:[ .-]{_D}{{2,}}){{0,4}}[A-Z]{{0,2}}"
_FRENCH_WAY = (
    "(?:rue|avenue|av\\.|boulevard|bd|impasse|chemin|allée|allee|place|quai|route|cours"
    "|passage|square|voie|sentier|RUE|AVENUE|BOULEVARD|IMPASSE|CHEMIN|ALLÉE|PLACE|QUAI|ROUTE)"
)
_GERMAN_WAY = "(?:{})".format(
    "|".join(
        form
        for way in ("straße", "strasse", "weg", "allee", "gasse", "platz", "ring", "damm", "ufer")
        for form in (way, way.capitalize(), way.upper())
    )
    + "|str\\."
)
_UK_POSTCODE = rf"[A-Z]{{1,2}}{_D}[A-Z0-9]?[ ]{_D}[A-Z]{{2}}(?![A-Za-z0-9])"
_CA_POSTCODE = rf"[A-Z]{_D}[A-Z][ ]{_D}[A-Z]{_D}(?![A-Za-z0-9])"
# US state names, from the address provider of the package the name dictionaries come from.
_STATE_NAMES = f"(?:{'|'.join(tries(UsAddress.states, ignore_case=False))})"
# A labelled identifier's value: letters, digits and the separators people group them with
# ("XKQ123456789", "88-7712-334", "88 7712 334", a UDI's "(01)00844588003288(17)141120");
# `_id_ok` wants two digits and four characters of it, so "Visit 12" is no number.
_ID_VALUE = r"[A-Za-z0-9()]{1,64}(?:[-./][A-Za-z0-9()]{1,64}|[ ][0-9]{1,64}(?![A-Za-z])){0,5}"
# An e-mail address's "@" and "." as people spell them out to hide them from robots. With
# " at " in words, the dots must be spelled out too: "available at cdc.gov" is a sentence.
_BRACKETED_AT = r"[ \t]*(?:\[at\]|\(at\)|\{at\}|\[@\]|\(@\))[ \t]*"
_SPOKEN_DOT = r"(?:[ \t]*(?:\[dot\]|\(dot\)|\{dot\}|\[\.\]|\(\.\))[ \t]*|[ \t]+dot[ \t]+)"
_SAID_DOT = rf"(?:{_SPOKEN_DOT}|\.)"
_TLDS = "com|org|net|edu|gov|mil|us|io|info|biz|co|uk|ca|de|fr|au|in|me|health"
# A company's name: capitalised words, joined by commas, "and" or "&" ("Hall, Hayden and
# Howell", "Perkins PLC").
_COMPANY_WORDS = (
    r"[A-Z][A-Za-z'&-]{0,40}(?:(?:,[ \t]?|[ \t](?:and|&)[ \t]|[ \t])[A-Z][A-Za-z'&-]{0,40}){0,5}"
)
_FIRM = r"[A-Z][a-z]+,[ \t][A-Z][a-z]+,?[ \t](?:and|&)[ \t][A-Z][a-z]+(?![\w])"
# The words that end a company's name, not a group of people's ("Blood Group" stands after
# no "at").
_FIRM_WORDS = (
    "Group|Holdings|Partners|Associates|Company|Industries|Enterprises|Solutions|Services"
    "|Systems|Technologies|Logistics|Foods|Manufacturing|Construction|Consulting|Motors"
)
# A handle after "user:" or "edited by": letters and digits, dots or underscores.
_HANDLE = r"[ \t]*+(?:[:=#][ \t]*+)?(?P<v>[A-Za-z][A-Za-z0-9._-]{1,39})(?![\w@-]|\.\w)"
_ID_END = r"(?![\w@-]|[.][\w])"
# Between a label and its value: "No.", "number", "#", "ID", a colon, "is" or "as", a face sheet's
# dotted leader ("MRN ....... 16738762").
_ID_GLUE = (
    r"(?:[ \t]*+(?:[nN][oO]\.?|[nN][uU][mM](?:[bB][eE][rR])?\.?|[nN][bB][rR]\.?|#|[iI][dD]"
    r"|[iI][dD][ \t]*+#))?"
    r"[ \t]*+(?:[:#=][ \t]*+)?(?:\.{2,}+[ \t]*+)?(?:(?:is|as)[ \t]+)?[`'\"]?"
)
# Labels that say which identifier follows: the Safe Harbor numbers without a shape.
_ID_LABELS = {
    "mrn": (
        *("med rec", "medical rec", "mr", "chart", "patient id", "pt id", "record"),
        *("hospital number", "unit number", "emr", "ehr", "empi", "mpi"),
        # as hospitals outside the US label their numbers: "Hosp. No", "UHID", "UR number",
        # "CR No", "IP No", "NHS number", "Fallnummer"
        *("hospital", "hosp", "hosp.", "uhid", "ur", "urn", "crn", "cr", "ip", "op", "nhs"),
        *("client", "client id", "resident id"),  # behavioral health, long-term care
        *("fallnummer", "patientennummer", "case", "file"),
    ),
    "account": (
        *("account", "acct", "acc", "encounter", "visit", "fin", "billing", "invoice"),
        *("claim", "har", "csn", "episode", "accession", "acc#", "specimen"),
        *("reference", "ref", "confirmation", "police report", "case number", "aba"),
        *("routing", "routing/aba", "iban", "sort code"),
    ),
    "health_plan": (
        *("member", "member id", "subscriber", "subscriber id", "policy", "insurance"),
        *("insurance id", "medicaid", "medicare", "mbi", "beneficiary", "health plan"),
        *("plan member", "group member", "hicn", "coverage", "group", "grp", "insured's i.d."),
        *("insured's id", "insured id", "versichertennummer", "nhif", "nhis", "sus", "cns"),
    ),
    "license": (
        *("license", "licence", "lic", "dea", "certificate", "cert", "dl"),
        *("driver's license", "drivers license", "driver license", "driver's licence"),
        *("passport", "state license", "medical license", "board certification"),
        *(
            "state id",
            "id card",
            "gmc",
            "ahpra",
            "registration number",
            "reg no",
            "reg. no",
            "reg. no.",
        ),
    ),
    "device": ("serial", "s/n", "sn", "device", "device id", "udi", "imei", "mac", "lot"),
    "vehicle": ("plate", "license plate", "licence plate", "tag", "registration"),
}
# Street suffixes: the address provider's (USPS's full names), their usual abbreviations.
_SUFFIXES = "St Ave Rd Blvd Ln Dr Ct Pl Plz Ter Cir Pkwy Hwy Sq Trl Row Path Run Walk Loop"
_SUFFIX_WORDS = {*UsAddress.street_suffixes, *_SUFFIXES.split()}
_STREET_SUFFIX = "(?:{})".format(  # as written, and in capitals ("7093 W JUNIPER PKWY")
    "|".join(tries({*_SUFFIX_WORDS, *(w.upper() for w in _SUFFIX_WORDS)}, ignore_case=False))
)
_UNIT = (
    r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Floor|Fl|Lot|Bldg|Building|#)\.?"
    r"[ \t]*#?[0-9A-Za-z-]{1,8})"
)
# People's titles. After "Patient" or "Pt", the names finder judges: "Patient Name" is a
# column, "Patient Ada Okafor" is not.
_TITLE_WORDS = "Mr|Mrs|Ms|Mx|Miss|Dr|Prof"
_TITLES = [f"{t}." for t in ("Mr", "Mrs", "Ms", "Mx", "Dr", "Prof")]
_TITLES += ["Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof"]
# A place's name: one to three capitalised words, each bounded (so "A-A-A-..." is read in
# linear time).
_PLACE_WORDS = r"[A-Z][A-Za-z'.-]{1,40}(?:[ \t][A-Z][A-Za-z'.-]{1,40}){0,2}"
_NAME_WORD = r"(?:[A-Z][A-Za-z'\u2019-]{0,40}[a-z]|[A-Z]\.)"
_DATE_PARTS = re.compile("[-/]")
_NUMBERS = re.compile("[0-9]+")
_DATE_LIKE = re.compile(r"^[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4}(?![0-9])")
_WORD_HEAD = re.compile(r"([A-Za-z]+)([-./ ]|$)")
_LETTERS = re.compile("[A-Za-z]{3}")


# What an age is said by, before the number: "died at 94", "she turned 90", "who is 103".
# Said of a person only: "HR turned 95", "celebrating 100 days" are not ages.
_SUBJECTS = ("she", "he", "who", "patient", "pt", "and")  # "was born ... and turned 99"
_AGE_CUE = "(?:{})".format(
    "|".join(
        tries(
            [
                *("died at", "death at", "passed away at", "age of", "aged", "at age"),
                *(f"{s} {verb}" for s in _SUBJECTS for verb in ("turned", "turns", "is")),
            ]
        )
    )
)
# After such an age, the clause ends, or goes on as about a person ("is 92 on room air" is
# a saturation).
_AGE_CLAUSE_END = (
    r"(?=[ \t]*(?:[.,;:)!?\n]|$)|[ \t]+(?:years?|yrs?|y/?o|yo|last|this|next|today|now|and|but"
    r"|with|in|when|at)(?![A-Za-z]))"
)
_FOREIGN_AGE = "|".join(tries(["alter", "edad", "idade", "leeftijd", "età", "eta", "âge"]))
# A day of the month in words: "fifth", "twenty-first", "thirty first".
_ORDINAL_WORDS = [
    *("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"),
    *("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth"),
    *("seventeenth", "eighteenth", "nineteenth", "twentieth", "thirtieth"),
]
_ORDINALS = [
    *_ORDINAL_WORDS,
    *(
        f"{tens}{sep}{unit}"
        for tens in ("twenty", "thirty")
        for sep in ("-", " ")
        for unit in (
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
        )
        if tens == "twenty" or unit == "first"
    ),
]
_DAY_WORD = "(?:{})".format("|".join(tries(_ORDINALS)))
_YEAR_OR_BIRTHDAY = "|".join(tries(["year", "birthday"]))
# A measure's unit after a number: "he is 95 kg" is no age.
_UNIT_WORDS = r"(?:mg|kg|lbs?|g|mm|cm|ml|mL|bpm|min|percent|degrees|units?)(?![A-Za-z])"
_HHMM = "(?:[01][0-9]|2[0-3])[0-5][0-9]"
# A temperature's cue, just before its number ("Tmax 101F", "fever over 101 F"): the
# number and a sex letter after it would read as an age. Looked behind the number's first
# digit, one fixed width at a time.
_NOT_AFTER_TEMPERATURE = "".join(
    f"(?<!{re.escape(cue)}[0-9])"
    for cue in ("T ", "T", "Tmax ", "Tmax", "emp ", "emp: ", "emp:", "ever ", "over ", "of ")
)
_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NINETIES = ["ninety", *(f"ninety{sep}{unit}" for unit in _UNITS for sep in ("-", " ", ""))]
_AGE_WORDS = "(?:{}|{})".format(
    "|".join(tries(_NINETIES)),
    "|".join(
        tries(
            ["one hundred", "a hundred", "hundred"]
            + [f"one hundred{sep}{unit}" for unit in _UNITS for sep in (" and ", " ", "-")]
        )
    ),
)


def _ymd_ok(year: str, month: str, day: str) -> bool:
    # A two-digit year is read as 20yy: 19yy and 20yy agree on leap years except 1900.
    return v.date_valid(int(year) + (2000 if len(year) == 2 else 0), int(month), int(day))


def _iso_date_ok(s: str) -> bool:
    year, month, day = _DATE_PARTS.split(s)
    return _ymd_ok(year, month, day)


# A trunk-prefixed number's groups after its first, up to its extension.
_TRUNK_TAIL = (
    rf"(?:{_SPACE}|/){_D}{{2,8}}(?:(?:{_SPACE}|{_DASH}){_D}{{2,8}}){{0,3}}{_EXT}{_NUM_END}"
    rf"(?!{_SPACE}[0-9])(?![ \t]*{_UNIT_WORDS})"
)
_EXTENSION = re.compile(r"[xXeE;]")


def _national_ok(s: str) -> bool:
    return len(v.digits_of(s)) >= 7  # fewer are a count or a score after the word


def _trunk_ok(s: str) -> bool:
    """Ten to twelve digits before the extension, as national numbers have."""
    return 10 <= len(v.digits_of(_EXTENSION.split(s, maxsplit=1)[0])) <= 12


def _slashed_date_ok(s: str) -> bool:
    # Month first in the US, day first in most of the world ("29/04/2022"): a date either way.
    first, second, year = _DATE_PARTS.split(s)
    return _ymd_ok(year, first, second) or _ymd_ok(year, second, first)


def _dotted_date_ok(s: str) -> bool:
    first, second, year = s.split(".")  # day first in most of the world, month first in some
    return _ymd_ok(year, second, first) or _ymd_ok(year, first, second)


def _month_of(s: str) -> int:
    """The number of the month named in `s` ("the 4th of March": 3), 0 if none is."""
    return next((_MONTHS[w.lower()] for w in _LETTERS.findall(s) if w.lower() in _MONTHS), 0)


def _named_date_ok(s: str) -> bool:
    numbers = _NUMBERS.findall(s)  # [day, year], or [year] for "March 2024"
    if not numbers:
        return False
    day = int(numbers[0]) if len(numbers) > 1 else 1
    return v.date_valid(int(numbers[-1]), _month_of(s), day)


def _handle_ok(s: str) -> bool:
    return any(c.isdigit() or c in "._" for c in s)


def _login_ok(s: str) -> bool:
    """A login, not a word: digits, dots or underscores, or a word no vocabulary knows."""
    return _handle_ok(s) or not dictionaries().words.get(s, 0)


def _date_like(s: str) -> bool:
    """Whether `s` opens with what reads as a date ("04/12/1947"), not with a number
    grouped as dates are ("59-94-12")."""
    found = _DATE_LIKE.search(s)
    if found is None:
        return False
    a, b = (int(n) for n in _NUMBERS.findall(found.group())[:2])
    return (len(str(a)) == 4 and 1 <= b <= 12) or (
        (1 <= a <= 12 and 1 <= b <= 31) or (1 <= a <= 31 and 1 <= b <= 12)
    )


def _id_ok(s: str) -> bool:
    # A word first ("shows 12") is the sentence going on; a short prefix ("SN-88812", a
    # plate's "NQY 730") is not.
    word = _WORD_HEAD.match(s)
    if word is not None and (
        len(word.group(1)) > 3 or (word.group(2) == " " and not word.group(1).isupper())
    ):
        return False
    if _date_like(s):  # "Encounter 04/12/1947 1745" heads a date, it numbers nothing
        return False
    return sum(c.isdigit() for c in s) >= 2 and sum(c.isalnum() for c in s) >= 4


# Hosts of standards' namespaces and code systems (FHIR's `system`, XHTML's `xmlns`):
# nobody's identifier, and the client needs them whole. Refused inside the URL's regex: a
# match refused by a validator would make the scan re-read the rest of the token.
_STANDARD_HOST = (
    r"(?:www\.)?(?:(?:terminology\.)?hl7\.org|w3\.org|snomed\.info|loinc\.org"
    r"|unitsofmeasure\.org|nlm\.nih\.gov|fhir\.org|cdc\.gov|cms\.gov|ietf\.org)(?:[/:]|$)"
)


def _md_ok(s: str) -> bool:
    month, day = s.split()[-1].split("/")
    return v.date_valid(2000, int(month), int(day))


def _compact_ok(s: str) -> bool:
    """YYYYMMDD, and perhaps the time of day after it (HL7's and CDA's timestamps)."""
    return v.date_valid(int(s[:4]), int(s[4:6]), int(s[6:8]))


def _short_date_ok(s: str) -> bool:
    """MMDDYY ("030324"), or M.D.YY ("3.12.24"), after what says it is a date."""
    month, day, year = (s[:2], s[2:4], s[4:]) if s.isdigit() else s.split(".")
    return _ymd_ok(year, month, day)


def _day_ok(s: str) -> bool:
    """A month and a day without a year: a day that month has in a leap year."""
    day = _NUMBERS.search(s)
    return day is not None and v.date_valid(2000, _month_of(s), int(day.group()))


def _day_month_ok(s: str) -> bool:
    """A day and a month that month has, but not "2 may" or "3 march", which are words."""
    if s.rstrip(".").rsplit(None, 1)[-1] in ("may", "march"):
        return False
    return _day_ok(s)


def _month_year_ok(s: str) -> bool:
    month, _year = _DATE_PARTS.split(s)
    return 1 <= int(month) <= 12


def _age_ok(s: str) -> bool:
    age = int(_NUMBERS.search(s).group())  # type: ignore[union-attr]
    return 90 <= age <= 130


def builtin_branches(ssn_test_areas: bool) -> list[Branch]:
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
    b = Branch
    return [
        # rank 0-2: validated identifiers, the most specific
        b("ssn", rf"{_D}{_D}{{2}}{_DASH}{_D}{{2}}{_DASH}{_D}{{4}}{_END}", 0, ssn_ok),
        b("ssn", rf"{_D}{_D}{{2}}{_SPACE}{_D}{{2}}{_SPACE}{_D}{{4}}{_END}", 0, ssn_ok),
        b(  # 9 bare digits are an SSN only after the words that say so
            "ssn",
            rf"{_trie(['ssn', 'ss#', 'social security'])}[^0-9\n]{{0,60}}(?P<v>{_D}{{9}}){_END}",
            0,
            ssn_ok,
        ),
        b("npi", rf"[12]{_D}{{9}}{_END}", 1, v.npi_valid),
        *(  # other countries' national numbers after their label: "Aadhaar: 2743 7441 7185"
            b(
                "ssn",
                rf"{lead}(?![A-Za-z]){_ID_GLUE}(?P<v>{_NATIONAL_ID}){_ID_END}",
                2,
                _national_ok,
            )
            for lead in tries(
                [
                    *("aadhaar", "ihi", "ppsn", "pps no", "nir", "cpf", "curp", "nino"),
                    *("ni number", "national insurance", "national id", "sin", "nhi"),
                ]
            )
        ),
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
        b(  # written so that robots miss it: "jane dot doe at gmail dot com", "jd [at] x.org"
            "email",
            rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}+(?:{_SAID_DOT}[A-Za-z0-9_-]{{1,63}}+){{0,3}}"
            rf"(?:{_BRACKETED_AT}[A-Za-z0-9-]{{1,63}}+(?:{_SAID_DOT}[A-Za-z0-9-]{{1,63}}+){{0,3}}"
            rf"{_SAID_DOT}"
            rf"|[ \t]+at[ \t]+[A-Za-z0-9-]{{1,63}}+(?:{_SPOKEN_DOT}[A-Za-z0-9-]{{1,63}}+){{0,3}}"
            rf"{_SPOKEN_DOT})(?:{_TLDS})(?![A-Za-z0-9])",
            4,
        ),
        # A URL runs to whitespace or a quote; trailing punctuation belongs to the sentence.
        *(
            b(
                "url",
                rf"{lead}(?!{_STANDARD_HOST})"
                rf"[^\s<>\"'`]{{0,2048}}[^\s<>\"'`.,;:!?)\]}}]",
                5,
            )
            for lead in tries(["http://", "https://", "www."])
        ),
        # a network card's MAC address, before IPv6 could read part of it
        b("device", rf"{hexa}{{2}}(?:(?::{hexa}{{2}}){{5}}|(?:-{hexa}{{2}}){{5}}){_END}", 5),
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
            rf"{_trie(['fax'])}(?:[ \t]*(?:{'|'.join(tries(['no', 'no.', 'number', '#']))}))?"
            rf"[ \t]*(?:[:#.-][ \t]*)?(?P<v>{_PHONE}){_NUM_END}",
            7,
            e164_ok,
        ),
        b("phone", rf"{_D}{_D}{{2}}{_SEP}{_D}{{3}}{_SEP}{_D}{{4}}{_EXT}{_NUM_END}", 8),
        b(  # "555 - 010 - 2202", "555\u00b7010\u00b72203": an area code, not "120 - 180 - 2400"
            "phone",
            rf"[2-9]{_D}{{2}}(?P<g>{_ODD_GAP}){_D}{{3}}(?P=g){_D}{{4}}{_NUM_END}"
            rf"(?![ \t]*{_UNIT_WORDS})",
            8,
        ),
        b("phone", rf"1{_SEP}?{_NANP}{_EXT}{_NUM_END}", 8),
        b("phone", rf"{_BARE_NANP}(?![0-9])", 8),
        # A DEA registration: two letters and seven digits whose last is their check digit.
        b("license", rf"[A-Z][A-Z9]{_D}{{7}}(?![0-9A-Za-z])", 3, v.dea_valid),
        b(
            "phone",
            rf"\({_D}{{3}}\){_SEP}?{_D}{{3}}{_SEP}{_D}{{4}}{_EXT}{_NUM_END}",
            8,
            word_start=False,
        ),
        b(
            "phone",
            rf"\+(?<![\w+]\+){_PLUS_TAIL}{_EXT}{_NUM_END}",
            8,
            e164_ok,
            word_start=False,
        ),
        # A national number with its trunk 0, as most of the world writes it, in groups
        # parted by spaces: "07700 900123", "020 7946 0958", "030 1234567", "01 23 45 67 89",
        # "(02) 9876 5432". Not with dashes: "0002-3227-30" is a drug's NDC.
        # Nor one of a longer row of numbers ("scores 01 02 03 04 05 06 ..."). After the
        # area code, a slash ("0171/1080355"); further on, dashes ("0931 201-44949").
        b("phone", rf"0(?<![0-9]{_SPACE}0)[1-9]{_D}{{0,4}}{_TRUNK_TAIL}", 8, _trunk_ok),
        b("phone", rf"\(0[1-9]{_D}{{0,3}}\){_TRUNK_TAIL}", 8, _trunk_ok, word_start=False),
        b("phone", rf"0[1-9](?:\.{_D}{{2}}){{4}}{_NUM_END}", 8),  # "01.58.42.02.08"
        # "(11) 93726-0348": a two-digit area code in brackets, as Brazil writes it
        b("phone", rf"\({_D}{{2}}\)[ ]?9?{_D}{{4}}-{_D}{{4}}{_NUM_END}", 8, word_start=False),
        # dialled with 00 for "+", in groups parted by spaces: "0044 20 7946 0958" (with dashes,
        # "0093-7214-01" is a drug's NDC)
        b(
            "phone",
            rf"00(?<![0-9]00)[1-9]{_D}{{0,3}}(?:[ ]\(0\){_D}{{1,8}})?(?:[ ]{_D}{{1,8}}){{1,6}}"
            rf"{_EXT}{_NUM_END}",
            8,
            e164_ok,
        ),
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
            _slashed_date_ok,
        ),
        b(  # "12.03.1984": 19xx or 20xx only, so "1.2.3" and most versions stay as they are
            "date",
            rf"{_D}(?<![0-9]\.{_D}){_D}?\.{_D}{_D}?\.(?:19|20){_D}{{2}}{_NUM_END}",
            9,
            _dotted_date_ok,
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
        b(  # "04-Mar-1950", "4/Mar/50"
            "date",
            rf"{_D}{_D}?(?P<s>[-/]){_MONTH}(?P=s)(?:{_YEAR}|{_D}{{2}}){_NUM_END}",
            9,
            _named_date_ok,
        ),
        *(  # "March 4th", "Mar 4": a month name and a day, without a year
            b("date", rf"{month}\.?[ \t]+{_D}{{1,2}}{_ORD}(?![0-9]|:|[.,]?[0-9])", 9, _day_ok)
            for month in _MONTH_TRIES
        ),
        *(  # "on 10/22", "by 3/18": a month and a day after what says it is a date
            b("date", rf"{lead}[ \t]+(?P<v>{_D}{_D}?/{_D}{_D}?)(?![0-9/]|\.[0-9])", 9, _md_ok)
            for lead in tries(
                [
                    *("on", "by", "since", "until", "from", "through", "dated", "seen"),
                    *("admitted", "admit", "discharged", "discharge", "born", "died"),
                    *("expired", "visit", "surgery", "presented", "returned"),
                ]
            )
        ),
        *(  # "Wed 10/6", "Monday, 10/28": the weekday with it
            b("date", rf"{day}\.?,?[ \t]+{_D}{_D}?/{_D}{_D}?(?![0-9/]|\.[0-9])", 9, _md_ok)
            for day in tries(
                [
                    *(d.casefold() for d in (*calendar.day_name, *calendar.day_abbr)),
                    *("tues", "weds", "thur", "thurs"),
                ]
            )
        ),
        b(  # "03/12 0800", "3/14 14:30" opening a line (a flowsheet's row): a month and a
            # day before the time of day; not "Pain 7/10 0800"
            "date",
            rf"{_D}(?:(?<=\n[0-9])|(?<![\s\S][0-9]))"
            rf"{_D}?/{_D}{_D}?(?=[ \t]+(?:[01][0-9]|2[0-3]):?[0-5][0-9](?![0-9]))",
            9,
            _md_ok,
        ),
        b(  # "12MAR2024", "04JUL1930", "12Mar24": day, month and year run together
            "date",
            rf"{_D}{_D}?{_MONTH}(?:{_YEAR}|{_D}{{2}}){_NUM_END}",
            9,
            _named_date_ok,
        ),
        b(  # "12th March", "11 Mar", "3 Sept": a day and a month, without a year
            "date",
            rf"{_D}{_D}?{_ORD}[ \t]+{_MONTH}\.?(?![A-Za-z])",
            9,
            _day_month_ok,
        ),
        *(  # "Mar '24", and with a typographic apostrophe: a month and a two-digit year
            b(
                "date",
                rf"{month}\.?[ \t]+(?:{_D}{{1,2}}{_ORD},?[ \t]+)?['\u2019]{_D}{{2}}(?![0-9])",
                9,
                _named_date_ok,
            )
            for month in _MONTH_TRIES
        ),
        b(  # "2/2019", "05-2021": a month and a year, 19xx or 20xx
            "date",
            rf"{_D}(?<![-/.][0-9]){_D}?[/-](?:19|20){_D}{{2}}{_NUM_END}",
            9,
            _month_year_ok,
        ),
        b(  # "| 3/9 |": a month and a day alone in a table's cell
            "date",
            rf"\|[ \t]*(?P<v>{_D}{_D}?/{_D}{_D}?)[ \t]*(?=\|)",
            9,
            _md_ok,
            word_start=False,
        ),
        b(  # "(6/27)": an imaging or lab date in brackets
            "date",
            rf"\((?P<v>{_D}{_D}?/{_D}{_D}?)\)",
            9,
            _md_ok,
            word_start=False,
        ),
        *(  # "the fifth of November", "twelfth of April": the day in words
            b("date", rf"{the}{_DAY_WORD}[ \t]+of[ \t]+{_MONTH}(?![A-Za-z])", 9)
            for the in ("", r"[tT]he[ \t]+")
        ),
        *(  # "March the twelfth", "on April fifth.": where the clause ends or a year follows
            # ("March second opinion", "may first be given" are not dates)
            b(
                "date",
                rf"{month}[ \t]+(?:the[ \t]+{_DAY_WORD}(?![A-Za-z])"
                rf"|{_DAY_WORD}(?=[ \t]*(?:[,.;:)\n]|$)|[ \t]+{_YEAR}))",
                9,
            )
            for month in tries([n.capitalize() for n in _MONTH_NAMES.split()], ignore_case=False)
        ),
        *(  # "the 4th of March", "4th of March"
            b(
                "date",
                rf"{the}{_D}{_D}?(?:st|nd|rd|th)[ \t]+of[ \t]+{_MONTH}(?![A-Za-z])",
                9,
                _day_ok,
            )
            for the in ("", r"[tT]he[ \t]+")
        ),
        b(  # "94F", "102 M", "91/F" after a date of birth: an age and a sex; not a
            # temperature ("Tmax 101F", "fever over 101 F", "98.6 F")
            "age_over_89",
            rf"{_D}{_NOT_AFTER_TEMPERATURE}{_D}{_D}?(?=(?:[ \t]?|/)[MF](?![A-Za-z0-9]))",
            10,
            _age_ok,
        ),
        b(  # "age 92", "Age: 101", "Age/Sex: 91/F", "age at death: 101", "aged 95"
            "age_over_89",
            rf"{_trie(['age', 'aged'])}(?![A-Za-z-])[^0-9\n]{{0,24}}?(?P<v>{_D}{{2,3}})"
            rf"(?![0-9]|[.,][0-9]|[ \t]*(?:[%\u00b0]|{_UNIT_WORDS}))",
            10,
            _age_ok,
        ),
        b(  # "a 104 yr admitted", "an 91 y F": an age after its article, its unit cut short
            "age_over_89",
            r"(?:[aA]n?)[ \t]+(?P<v>[0-9]{2,3})[- ]?(?:yrs?|y)(?![A-Za-z/])",
            10,
            _age_ok,
        ),
        b(  # "AGE-Last Birthday (Years): 93": a form's age, after its label's words
            "age_over_89",
            rf"{_trie(['age'])}[^0-9\n]{{0,40}}?:[ \t]*(?P<v>{_D}{{2,3}})"
            rf"(?![0-9/]|[.,][0-9]|[ \t]*(?:%|{_UNIT_WORDS}))",
            10,
            _age_ok,
        ),
        b(  # "Alter: 95 J.", "edad: 98 años", "Âge : 91 ans": an age's label in other languages
            "age_over_89",
            rf"(?:{_FOREIGN_AGE})[ \t]*:[ \t]*(?P<v>{_D}{{2,3}})(?![0-9]|[ \t]*{_UNIT_WORDS})",
            10,
            _age_ok,
        ),
        b(  # "turned 90", "died at 94", "who is 103": an age by what is said of it
            "age_over_89",
            rf"{_AGE_CUE}[ \t]+(?P<v>{_D}{{2,3}})(?![0-9]|[.,][0-9]){_AGE_CLAUSE_END}",
            10,
            _age_ok,
        ),
        b(  # "in her 96th year", "his 100th birthday"
            "age_over_89",
            rf"{_D}{_D}{_D}?(?:st|nd|rd|th)(?=[ \t]+(?:{_YEAR_OR_BIRTHDAY})(?![a-z]))",
            10,
            _age_ok,
        ),
        b(  # "ninety-three-year-old", "one hundred and one years old": in words
            "age_over_89",
            rf"{_AGE_WORDS}(?=[- ]?{_trie(['years', 'year', 'yrs', 'yr'])}[- ]?{_trie(['old'])}"
            rf"|[- ]{_trie(['years of age', 'year of age'])}(?![a-z]))",
            10,
        ),
        b(  # the number of "92-year-old", "95 y/o", "95-yo", "101 years of age"
            "age_over_89",
            rf"{_D}{_D}{_D}?(?=(?:[- ]?{_trie(['years', 'year', 'yrs', 'yr'])}[- ]?"
            rf"{_trie(['old'])}|[- ]?{_trie(['y/o', 'y.o.', 'yo'])}"
            rf"|[ ]{_trie(['years of age', 'year of age'])})"
            r"(?!\w))",
            10,
            _age_ok,
        ),
        b(
            "street_address",
            rf"{_D}{_D}{{0,5}}[A-Za-z]?[ \t]+(?:(?:[A-Z][A-Za-z'-]{{0,40}}\.?|{_D}{{1,3}}{_ORD})"
            rf"[ \t]+){{1,4}}{_STREET_SUFFIX}\.?(?!\w){_UNIT}?",
            11,
        ),
        b(  # "95 avenue des Tanneurs", "125 chemin de la République": a French street
            "street_address",
            rf"{_D}{{1,4}}(?:[ \t]+(?:bis|ter))?,?[ \t]+{_FRENCH_WAY}[ \t]+"
            r"(?:(?:de|du|des|la|le|l'|d')[ \t']*){0,2}[A-ZÀ-Ý][\w'-]{1,40}"
            r"(?:[ \t][A-ZÀ-Ý][\w'-]{1,40}){0,2}",
            11,
        ),
        b(  # "Magret-Ring-Platz 92b", "Hauptstraße 5": a German street and its number
            "street_address",
            rf"[A-ZÄÖÜ][\w-]{{0,40}}{_GERMAN_WAY}[ \t]+{_D}{{1,4}}[a-z]?(?![\w])",
            11,
        ),
        # Biometric identifiers and photographs (Safe Harbor's P and Q): a template's or an
        # image's number after what says it is one, and an image file's name (a camera's
        # holds the day it was taken: "IMG_20181217_201147.jpg").
        *(
            b("biometric", rf"{lead}(?![A-Za-z]){_ID_GLUE}(?P<v>{_ID_VALUE}){_ID_END}", 4, _id_ok)
            for lead in tries(
                [
                    *("voiceprint", "voice print", "fingerprint", "finger print", "palm vein"),
                    *("palm-vein", "iris scan", "retina scan", "retinal scan", "face scan"),
                    *("biometric", "biometric id", "template", "photo", "photo id", "photograph"),
                    *("template hash", "fingerprint template hash", "voiceprint enrollment"),
                    *("retinal scan reference", "enrollment id"),
                ]
            )
        ),
        b(
            "biometric",
            r"[\w-]{1,64}(?:[.][\w-]{1,64}){0,3}[.](?:jpe?g|JPE?G|png|PNG|heic|HEIC|tiff?|TIFF?|bmp"
            r"|gif|webp|dcm|DCM)(?![\w])",
            4,
        ),
        b(  # a UDI as GS1 prints it: "(01)59305347160777(17)260411(10)W78885(21)2489459"
            "device",
            r"\(01\)[0-9]{14}(?:\((?:1[01]|17|10|21|240|30)\)[0-9A-Za-z-]{1,20}){0,6}",
            4,
            word_start=False,
        ),
        b(  # an image's own number: "PHOTO-6848827", "IMG_4471"
            "biometric",
            r"(?:PHOTO|Photo|photo|IMG|Img|img|IMAGE|Image|image)[-_][0-9]{4,}(?![\w])",
            4,
        ),
        b(  # a name spelled out, letter by letter: "that's K-A-B-I-R"
            "name",
            r"[A-Z](?<![\w-][A-Z])(?:-[A-Z]){3,24}+(?![\w-])",
            16,
        ),
        b(  # "PO Box 6940", "P.O. Box 12"
            "street_address",
            r"[Pp](?:\.?[ \t]?[Oo]\.?[ \t]?|(?:ost|OST)[ \t]+(?:[Oo]ffice|OFFICE)[ \t]+)"
            r"(?:Box|BOX)[ \t]+#?[0-9]{1,7}(?![0-9])",
            11,
        ),
        b(  # a rural route or a county road: "RR 9 Box 323", "County Road 130"
            "street_address",
            r"(?:(?:R\.?R\.?|HC)[ \t]+[0-9]{1,4}[ \t,]+(?:Box|BOX)[ \t]+[0-9]{1,6}"
            r"|(?:Rural|RURAL)[ \t]+(?:Route|ROUTE)[ \t]+[0-9]{1,4}"
            r"(?:[ \t,]+(?:Box|BOX)[ \t]+[0-9]{1,6})?"
            r"|(?:[0-9]{1,6}[ \t]+)?(?:County|COUNTY|State|STATE)[ \t]+(?:Road|ROAD|Route|ROUTE)"
            r"[ \t]+[0-9]{1,4})(?![0-9])",
            11,
        ),
        b("mrn", rf"[mM][rR][nN]-{mrn_id}", 12, mrn_ok),
        b(
            "mrn",
            _trie(mrn_words) + r"(?![A-Za-z])\.?[ \t]*(?:[:#=][ \t]*)?(?:\.{2,}[ \t]*)?"
            r"(?:[Ii][Ss][ \t]+)?[`'\"]?"
            rf"(?P<v>{mrn_id})",
            12,
            mrn_ok,
        ),
        # A signature's initials and username ("XGT:holmes", "PLG:RZ5851"), both of them,
        # after a space or a line's start: not a heading and its word ("NOTE:Raynaud",
        # "END:VCARD", "HPI:Patient") nor a code of a segment ("HI*ABK:E119").
        b(
            "username",
            r"[A-Z](?<![^\s][A-Z])[A-Z]{1,3}:"
            r"(?:[a-z][a-z0-9._-]{1,30}|[A-Za-z]{1,4}[0-9]{4}[A-Za-z0-9._-]{0,24})"
            r"(?![\w@-]|\.\w)",
            12,
        ),
        # A labelled user name; after a bare "user" (a chat's speaker) only one that has a
        # digit, a dot or an underscore ("User: can you ..." is someone talking).
        *(
            b(
                "username",
                rf"{lead}[ \t]*+[:=#][ \t]*+(?P<v>[A-Za-z0-9._@-]{{3,40}})(?![\w@-]|\.\w)",
                12,
            )
            for lead in tries(["username", "user name", "user_name", "login", "user id", "userid"])
        ),
        *(
            b("username", rf"{lead}{_HANDLE}", 12, _handle_ok)
            for lead in tries(["user", "edited by", "updated by", "modified by", "entered by"])
        ),
        # "... by bolanderf from 10.1.2.3", "Note by nerryst (": a login where a sentence
        # or a log line ends, not "by mouth" or "controlled by metformin 500 mg".
        b(
            "username",
            r"by[ \t]+(?P<v>[a-z][a-z0-9._-]{1,30}[a-z0-9])"
            r"(?=[ \t]*(?:[.(\n]|from\b|on\b|at\b|$))",
            12,
            _login_ok,
        ),
        b(  # a chat's sender after its time: "[03:53] vangp: ..."
            "username",
            r"\[(?<![^\n]\[)[0-9]{1,2}:?[0-9]{2}(?::[0-9]{2})?(?:[ \t]?[AaPp][Mm])?\][ \t]*"
            r"(?P<v>[A-Za-z][A-Za-z0-9._-]{1,30}):",
            12,
            word_start=False,
        ),
        b(  # "@brianna.reilly", not an e-mail's "@"
            "username",
            r"@(?<![\w.]@)(?P<v>[A-Za-z][A-Za-z0-9._-]{0,30}[A-Za-z0-9])(?![\w@-]|\.\w)",
            12,
            word_start=False,
        ),
        *(
            b("username", rf"{lead}(?P<v>[A-Za-z0-9][A-Za-z0-9._@-]{{1,40}})(?![\w@-])", 12)
            for lead in tries(["user=", "usr=", "uid=", "userid=", "username=", "login="])
        ),
        b("username", r"by[ \t]+(?P<v>[a-z][a-z0-9]*[._][a-z0-9._]*[a-z0-9])(?![\w@-])", 12),
        # A log's user: "login failed for 'jbaeza'", and the user of a web server's access
        # log line, before its request ('1.2.3.4 - dwoulfe [...] "GET ...' or '- dwoulfe "GET').
        *(
            b(
                "username",
                rf"{lead}[ \t]+(?:(?:{_OUTCOME})"
                r"[ \t]+)?for[ \t]+(?:user[ \t]+)?['\"]?"
                r"(?!(?:the|a|an|this|that|user|unknown|invalid|all|some|\d+(?:st|nd|rd|th))\b)"
                r"(?P<v>\w[\w.@-]{1,63})(?<![.-])(?![\w@-])",
                12,
            )
            for lead in tries(["login", "logon", "log-in", "sign-in", "signin", "authentication"])
        ),
        b(
            "username",
            r"[ \t]-[ \t]+(?P<v>\w[\w.@-]{1,63})[ \t]+(?:\[[^\]\n]{1,64}\][ \t]+)?"
            r"\"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS)[ \t]",
            12,
            word_start=False,
        ),
        # An employer (Safe Harbor names the individual's): a company's name by its suffix,
        # or after what says it is one.
        b(
            "employer",
            rf"(?!(?:EMPLOYER|Employer|Works|Employed|Worked)\b){_COMPANY_WORDS}[ \t]+"
            r"(?:LLC|L\.L\.C\.|Inc\.?|PLC|Ltd\.?|Corp\.?|Corporation|GmbH|S\.A\.|& Co\.?"
            r"|and Sons|& Sons)(?![\w])",
            14,
        ),
        *(
            b("employer", rf"{lead}(?:[ \t]*+:)?[ \t]++(?P<v>{_COMPANY_WORDS})", 14)
            for lead in tries(
                [
                    *("employer", "employed by", "works at", "works for", "working at"),
                    *("employed at", "employed with", "formerly with", "retired from"),
                    *("worked at", "worked for"),
                ]
            )
        ),
        *(  # "works as a nurse's aide at Rodriguez, Rojas and Johnson"
            b(
                "employer",
                rf"{lead}[ \t]+as[ \t]+(?:an?[ \t]+)?[a-z'\- ]{{2,40}}?[ \t]+(?:at|for)[ \t]+"
                rf"(?P<v>{_COMPANY_WORDS})",
                14,
            )
            for lead in tries(["works", "worked", "working", "employed"])
        ),
        *(  # "nurse's aide at Harris Group": a company by the word that ends its name
            b(
                "employer",
                rf"{lead}[ \t]+(?P<v>{_COMPANY_WORDS}[ \t]+(?:{_FIRM_WORDS}))(?![\w])",
                14,
            )
            for lead in tries(["at", "for", "with"])
        ),
        *(  # "accountant at Church, Hale and Weiss": a firm's three names
            b("employer", rf"{lead}[ \t]+(?P<v>{_FIRM})", 14)
            for lead in tries(["at", "with", "for", "by"])
        ),
        # Identifiers with no shape of their own, after the label that names them; behind
        # operators' patterns (rank 13), which know their own formats better.
        *(
            b(entity, rf"{lead}(?![A-Za-z0-9]){_ID_GLUE}(?P<v>{_ID_VALUE}){_ID_END}", 14, _id_ok)
            for entity, labels in _ID_LABELS.items()
            for lead in tries(labels)
        ),
        # A local number (seven digits, no area code) after what says it is a phone's.
        *(
            b(
                "phone",
                rf"{lead}(?![A-Za-z])[ \t]*(?:[:#.-][ \t]*)?(?P<v>[2-9]{_D}{{2}}{_SEP}{_D}{{4}})"
                rf"{_EXT}{_NUM_END}(?![ \t]*{_UNIT_WORDS})",
                8,
            )
            for lead in tries(
                [
                    *("phone", "tel", "telephone", "mobile", "pager", "beeper", "ph"),
                    *("landline", "home phone", "work phone", "cell phone", "cell:", "call me at"),
                ]
            )
        ),
        # A pager's number, four digits or more, as hospitals hand them out ("Pager 89012",
        # "pgr 647-5348", "beeper: 2231").
        *(
            b(
                "phone",
                rf"{lead}(?![A-Za-z])[ \t]*(?:[:#.-][ \t]*)?#?"
                rf"(?P<v>{_D}{{3}}-?{_D}{{1,4}}|{_D}{{4,7}}){_NUM_END}(?![ \t]*{_UNIT_WORDS})",
                8,
            )
            for lead in tries(["pager", "pgr", "beeper", "bleep"])
        ),
        # Ten digits after what says they are a phone number.
        *(
            b(
                "phone",
                rf"{lead}(?![A-Za-z])[^0-9\n]{{0,12}}(?P<v>1?{_D}{{10}}|0{_D}{{10}})(?![0-9])",
                8,
            )
            for lead in tries(
                ["phone", "tel", "telephone", "cell", "mobile", "call", "ph", "number is"]
            )
        ),
        # A date written as one number, 19xx or 20xx: "Received: 19840920", "DOB 19500304".
        b("date", rf"(?:19|20){_D}{{6}}(?:{_HHMM}(?:[0-5]{_D})?)?(?![0-9])", 9, _compact_ok),
        # A date of birth written as one number: "DOB: 19500304".
        *(
            b("date", rf"{lead}[^0-9\n]{{0,12}}(?P<v>(?:19|20){_D}{{6}})(?![0-9])", 9, _compact_ok)
            for lead in tries(["dob", "date of birth", "birth date", "birthdate", "born", "d.o.b."])
        ),
        *(  # "Adm: 030324", "DOS 3.12.24": six digits, or a two-digit year, after a date's label
            b(
                "date",
                rf"{lead}(?![A-Za-z])[^0-9\n]{{0,12}}(?P<v>{_D}{{6}}|{_D}{_D}?\.{_D}{_D}?\.{_D}{{2}})"
                r"(?![0-9]|\.[0-9])",
                9,
                _short_date_ok,
            )
            for lead in tries(
                [
                    *("dob", "d.o.b.", "dos", "adm", "admit", "admitted", "admission"),
                    *("disch", "discharge", "discharged", "d/c", "date"),
                ]
            )
        ),
        # rank 13 is operators' patterns, 15 their word lists
        *(
            b("zip", rf"{lead}[ \t]*+(?:[:#][ \t]*+)?(?P<v>{_ZIP})", 14)
            for lead in tries(["zip", "zip code", "zipcode", "postal code"])
        ),
        # Postcodes of other countries after what says they are one: "CEP 73740-508",
        # "C.P. 87324", "PIN 432166", "PLZ 10115", "Postcode: 2031"
        *(
            b("zip", rf"{lead}(?![A-Za-z])[ \t]*+(?:[:#-][ \t]*+)?(?P<v>{_POSTAL})", 14)
            for lead in tries(
                ["postcode", "post code", "postal", "cep", "c.p.", "pin", "pin code", "plz"]
            )
        ),
        # A Medicare Beneficiary Identifier has a shape of its own: "2E54-R44-GM76".
        b("health_plan", _MBI, 3),
        # UK and Canadian postcodes have shapes of their own: "CT1 9UB", "SW1A 1AA", "K1A 0B1".
        b("zip", _UK_POSTCODE, 14),
        b("zip", _CA_POSTCODE, 14),
        b(  # after a state code, or any two capitals ending an address line: ", ZZ 00001"
            "zip",
            rf"[A-Z][A-Z](?:(?<={_STATES})|(?<=, [A-Z][A-Z]))[ \t]+(?P<v>{_ZIP})"
            rf"(?![ \t]*{_UNIT_WORDS})",
            14,
        ),
        b(  # "43897, South Jenniferstad": the place after its ZIP (and a space: in a CSV row,
            # "60606,CHF" is the next column)
            "city",
            rf"{_D}{_D}{{4}}(?:-{_D}{{4}})?,[ \t]+"
            rf"(?![A-Z]{{2,4}}(?![a-z]))(?P<v>{_PLACE_WORDS})(?![\w])",
            14,
        ),
        *(  # "they live in Kingsport", "moved from Beatrice"
            b(
                "city",
                rf"{lead}[ \t]+(?P<v>{_PLACE_WORDS})",
                14,
            )
            for lead in tries(
                [
                    *("lives in", "live in", "living in", "lived in", "resides in", "reside in"),
                    *("residing in", "moved to", "moved from", "relocated to", "relocated from"),
                    *("hometown", "born in", "native of", "lives alone in", "living alone in"),
                    "lives over in",
                ]
            )
        ),
        *(  # "Springfield, Illinois 62704"
            b("zip", rf"{state}[ \t]+(?P<v>{_ZIP})", 14)
            for state in tries(UsAddress.states, ignore_case=False)
        ),
        # "Marblehead, NH", "Salt Lake City, Utah", "Springfield, ZZ 00001": before a state;
        # before "MD", "PA" or "MA" only with a ZIP ("Ada Okafor, MD" is a physician).
        b(
            "city",
            rf"(?!(?:{_TITLE_WORDS})\.?[ \t]){_PLACE_WORDS}"
            rf"(?=,[ \t]*"
            rf"(?:(?!MD|PA|MA|ID[ \t:#]+[A-Z]*[A-Z][0-9]){_STATES}(?![A-Za-z]|-[A-Z])"
            rf"|{_STATE_NAMES}(?![A-Za-z])"
            rf"|[A-Z]{{2}}[ \t]+{_D}{{5}}(?![0-9])))",
            14,
        ),
        b(  # "..., Frisco TX 75034": a city before its state code and ZIP, without a comma,
            # where an address line goes on ("Heparin SC 10000" is a dose)
            "city",
            rf"(?:(?<=,[ ])|(?<=\n)|(?<![\s\S]))(?!(?:{_TITLE_WORDS})\.?[ \t]){_PLACE_WORDS}"
            rf"(?=[ \t]+{_STATES}[ \t]+{_D}{{5}}(?![0-9]|[ \t]*{_UNIT_WORDS}))",
            14,
        ),
        b(  # "Truro CT1 9UB", "Ottawa, ON K1A 0B1": a town before a UK or Canadian postcode
            "city",
            rf"(?!(?:{_TITLE_WORDS})\.?[ \t]|[A-Z]{{2}}[ \t]){_PLACE_WORDS}"
            rf"(?=,?[ \t]+(?:[A-Z]{{2}}[ \t]+)?(?:{_UK_POSTCODE}|{_CA_POSTCODE}))",
            14,
        ),
        *(  # a title or "Patient" followed by one to three capitalised words
            b(
                "name",
                rf"{title}(?:[ \t]*:[ \t]*|[ \t]+)"
                rf"(?P<v>{_NAME_WORD}(?:[ ]{_NAME_WORD}){{0,2}})(?!\w)",
                16,
            )
            for title in tries(_TITLES, ignore_case=False)
        ),
    ]


BUILTIN_ENTITIES = frozenset(branch.entity for branch in builtin_branches(False))
# Ranks of operators' patterns and word lists among the built-in ranks (lower wins a tie).
CUSTOM_RANK, WORDS_RANK = 13, 15
