"""What happens to a value once it is found to be PHI.

- `redact`: `[SSN]`;
- `partial`: every letter and digit but the last four hidden, separators kept
  (`***-**-6789`), so a person can still tell two records apart;
- `pseudonym`: `[SSN:7f3a2c]`, a keyed HMAC of the value: the same value gives the same
  pseudonym under one key (an agent can still correlate records) and nothing a reader
  could reverse without the key;
- `drop`: a field masked by a field rule is removed from its object; inside free text
  (where there is no field to remove) it is redacted."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

Action = Literal["redact", "partial", "pseudonym", "drop"]

_KEEP = 4  # characters left visible by `partial`
_PSEUDONYM_HEX = 6
_NOT_ALNUM = re.compile(r"[\W_]+")


def redact(entity: str) -> str:
    return f"[{entity.upper()}]"


def partial(value: str) -> str:
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    if len(alnum) <= _KEEP:  # too short to leave anything visible
        return "*" * len(value)
    hidden = set(alnum[:-_KEEP])
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


def pseudonym(entity: str, value: str, key: bytes) -> str:
    # Normalised so `123-45-6789` and `123 45 6789` (or `Ada` and `ADA`) are one person.
    normal = _NOT_ALNUM.sub("", value.casefold())
    digest = hmac.new(key, f"{entity}:{normal}".encode(), hashlib.sha256).hexdigest()
    return f"[{entity.upper()}:{digest[:_PSEUDONYM_HEX]}]"


def apply(action: Action, entity: str, value: str, key: bytes) -> str:
    """The replacement text for a value found in text (or in a field not dropped)."""
    if action == "partial":
        return partial(value)
    if action == "pseudonym":
        return pseudonym(entity, value, key)
    return redact(entity)
