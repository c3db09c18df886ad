"""What the masking engine finds: an entity type and where it is."""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):  # a tuple: made by the hundred per answer, at half the cost
    entity: str  # "ssn", "phone", "email", "mrn", ... (stable: metric label, audit field)
    start: int  # span in the text that was scanned, [start, end)
    end: int
    # For a part of a marked name ("Ada" of "Ada Okafor"), the whole name it stands for,
    # so both get one pseudonym. Kept in memory for that only, like the text itself.
    stands_for: str | None = None


def trimmed(entity: str, value: str, start: int) -> Finding | None:
    """`value`, standing at `start`, as a finding without the spaces around it; None when
    it is blank. How the readers of fielded text (DICOM, X12, vCards, XML) mark a field."""
    kept = value.strip()
    if not kept:
        return None
    start += len(value) - len(value.lstrip())
    return Finding(entity, start, start + len(kept))


def joined(findings: list[Finding]) -> list[Finding]:
    """The findings sorted, without overlaps: of two that overlap, the earlier (then the
    longer, then the one listed first) names the entity of both spans together; the union
    is masked, not half of it."""
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            if finding.end > last.end:  # overlapping in part: the union goes
                merged[-1] = Finding(last.entity, last.start, finding.end)
            continue
        merged.append(finding)
    return merged
