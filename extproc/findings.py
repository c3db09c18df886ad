"""What the masking engine finds: an entity type and where it is, never the value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str  # "ssn", "phone", "email", "mrn", ... (stable: metric label, audit field)
    start: int  # span in the text that was scanned, [start, end)
    end: int
