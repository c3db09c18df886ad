"""Checks that turn a pattern match into a finding: check digits and range rules.

A regex only says a string has the right shape; these say whether it can be what the shape
suggests (a card number passes Luhn, an SSN is in an area the SSA issues, a date exists).
Each is pure, small and total: it answers False on any odd input instead of raising, because
the scanner calls it on whatever the regex happened to match.
"""

from __future__ import annotations

import calendar
import ipaddress
import re

__all__ = [
    "date_valid",
    "dea_valid",
    "digits_of",
    "ipv4_valid",
    "ipv6_valid",
    "luhn_valid",
    "npi_valid",
    "ssn_possible",
    "vin_check_digit_valid",
]

_ASCII_DIGITS = frozenset("0123456789")
_NOT_DIGITS = re.compile("[^0-9]+")


def digits_of(text: str) -> str:
    """The ASCII digits of `text`, in order (separators such as spaces and dashes dropped)."""
    return _NOT_DIGITS.sub("", text)


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts superscripts and other scripts' digits; identifiers are ASCII.
    return bool(text) and all(ch in _ASCII_DIGITS for ch in text)


def luhn_valid(digits: str) -> bool:
    """The Luhn (ISO/IEC 7812-1) check over a string of ASCII digits only."""
    if not _is_digits(digits):
        return False
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        if position % 2:  # every second digit from the right is doubled
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def dea_valid(dea: str) -> bool:
    """A DEA registration number: two letters, six digits and a check digit, the last digit
    of (d1 + d3 + d5) + 2 * (d2 + d4 + d6)."""
    digits = dea[2:]
    if len(dea) != 9 or not dea[:2].isascii() or not _is_digits(digits):
        return False
    d = [ord(c) - 48 for c in digits]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def npi_valid(npi: str) -> bool:
    """A US National Provider Identifier: 10 digits, first 1 or 2, Luhn over "80840" + NPI.

    The 80840 prefix is the NPI's issuer identifier as a card number (ISO 7812); CMS defines
    the check digit over the prefixed number."""
    return len(npi) == 10 and npi[:1] in ("1", "2") and luhn_valid("80840" + npi)


def ssn_possible(digits: str, *, test_areas: bool = False) -> bool:
    """Whether 9 digits can be an issued SSN: area not 000, 666 or 9xx, group not 00,
    serial not 0000.

    The SSA has never issued areas 900-999, so real data never contains them, but fake and
    test data (the project's demo server included) use them precisely for that reason;
    `test_areas=True` accepts them so such data is still masked as SSNs."""
    if len(digits) != 9 or not _is_digits(digits):
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or group == "00" or serial == "0000":
        return False
    return test_areas or area[0] != "9"


# ISO 3779 / 49 CFR 565 transliteration and weights for the North American check digit.
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit_valid(vin: str) -> bool:
    """A 17-character VIN (no I, O or Q) whose 9th character is its check digit."""
    if len(vin) != 17 or any(ch not in _VIN_VALUES for ch in vin):
        return False
    remainder = sum(_VIN_VALUES[ch] * w for ch, w in zip(vin, _VIN_WEIGHTS, strict=True)) % 11
    return vin[8] == ("X" if remainder == 10 else str(remainder))


def ipv4_valid(text: str) -> bool:
    """Dotted-quad IPv4: four decimal octets of 1-3 digits, each at most 255."""
    octets = text.split(".")
    return len(octets) == 4 and all(
        _is_digits(octet) and len(octet) <= 3 and int(octet) <= 255 for octet in octets
    )


def ipv6_valid(text: str) -> bool:
    """Any RFC 4291 text form: full, compressed (`::`), or with an embedded IPv4 tail."""
    if "%" in text:  # a zone id is not part of the address we mask; ipaddress would accept it
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def date_valid(year: int, month: int, day: int) -> bool:
    """A calendar date that exists (month 1-12, day within the month, leap years counted)."""
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return False
    return 1 <= day <= (29 if month == 2 and calendar.isleap(year) else _MONTH_DAYS[month])
