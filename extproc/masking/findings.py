"""What the masking engine finds: an entity type and where it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str  # "ssn", "phone", "email", "mrn", ... (stable: metric label, audit field)
    start: int  # span in the text that was scanned, [start, end)
    end: int
    # For a part of a marked name ("Ada" of "Ada Okafor"), the whole name it stands for,
    # so both get one pseudonym. Kept in memory for that only, like the text itself.
    stands_for: str | None = None
