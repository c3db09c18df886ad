"""Where `verify` and `replay` read records from: a spool directory, in written order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from custos.audit.records import parse, time_in_range
from custos.audit.spool import (
    HEADER,
    MAX_FRAME,
    SHIPPED,
    SUFFIX,
    segment_path,
    segments,
    walk,
)
from custos.audit.verify import Found
from custos.errors import ConfigError


def spool_writers(root: Path) -> list[Path]:
    """The writer directories under `root`, or `root` itself if it is one."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    if any(root.glob(f"*{SUFFIX}")):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob(f"*{SUFFIX}")))


def shipped_from(root: Path) -> bool:
    """Whether the shipper has deleted segments of any writer under `root`: their records
    are then in Cloud Logging, not here."""
    return any(
        (directory / SHIPPED).exists() and segments(directory)[:1] != [1]
        for directory in spool_writers(root)
    )


def from_spool(root: Path) -> Iterator[Found]:
    for directory in spool_writers(root):
        numbers = segments(directory)
        for number in numbers:
            path = segment_path(directory, number)
            newest = number == numbers[-1]
            yield from _segment(path, f"{directory.name}/{path.name}", newest)


def _segment(path: Path, name: str, newest: bool) -> Iterator[Found]:
    """`newest`: the segment its writer may be appending to now."""
    data = path.read_bytes()
    for at, payload, after in walk(data):
        if payload is not None:
            yield _parsed(f"{name}@{at}", payload)
            continue
        # Damage: reading goes on at the next offset where a whole frame starts.
        yield Found(
            f"{name}@{at}",
            None,
            f"{after - at} bytes that are not whole records",
            write_under_way=newest and after == len(data) and _cut_short(data[at:]),
        )


def _cut_short(tail: bytes) -> bool:
    """Whether `tail` is what a reader sees of a frame still being written: the start of
    a header, or a whole header whose payload runs past the end. The file grows as the
    write goes, so the bytes there are right, only not all there yet; bytes that do not
    start a frame like that are damage, wherever they are."""
    if len(tail) < HEADER.size:
        return True
    length, _ = HEADER.unpack_from(tail)
    return 0 < length <= MAX_FRAME and HEADER.size + length > len(tail)


def _parsed(where: str, payload: bytes) -> Found:
    record = parse(payload)
    if record is None:
        return Found(where, None, "a frame that is not an audit record")
    if not time_in_range(record):
        # Reading such a time raises: verify and replay would stop on a traceback.
        return Found(where, None, "a record whose time is out of range")
    return Found(where, record)
