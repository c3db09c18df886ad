"""The durable spool: one directory per writer, append-only segment files of framed
records, written with group commit.

A frame is its payload's length and CRC-32, then the payload. A record is acknowledged
only once the write that holds it has been fsync'd; records that arrive while a write is
under way go together in the next one, so one fsync serves many requests. A crash can
only leave an unfinished frame at the end of the newest segment, never acknowledged:
opening the spool cuts it off and says how many bytes went. The shipper reads the same
files and records how far it got in `shipped`; segments wholly behind that are deleted."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from custos.errors import CustosError

_HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload
MAX_FRAME = 64 * 1_048_576
SUFFIX = ".seg"
SHIPPED = "shipped"


class SpoolError(CustosError):
    """The spool cannot take or give records: a request whose record cannot be kept is
    refused."""

    code = "audit_unavailable"


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class Scan:
    """The whole frames of a segment from some offset on, and where they end."""

    frames: list[tuple[int, bytes]]  # (offset of the frame, payload)
    end: int  # just after the last whole frame
    size: int  # bytes in the file


def scan(data: bytes, start: int = 0) -> Scan:
    frames: list[tuple[int, bytes]] = []
    offset = start
    while (payload := frame_at(data, offset)) is not None:
        frames.append((offset, payload))
        offset += _HEADER.size + len(payload)
    return Scan(frames, offset, len(data))


def frame_at(data: bytes, offset: int) -> bytes | None:
    """The payload of the whole frame at `offset`, or None if there is none there."""
    if offset + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    end = offset + _HEADER.size + length
    # Nothing writes an empty payload; eight zero bytes (a zeroed block on a failing disk)
    # would otherwise pass for a frame, with the CRC-32 of nothing being 0.
    if length == 0 or length > MAX_FRAME or end > len(data):
        return None
    payload = memoryview(data)[offset + _HEADER.size : end]
    return bytes(payload) if zlib.crc32(payload) == crc else None


def next_frame(data: bytes, start: int, accept: Callable[[bytes], bool] = bool) -> int:
    """Where reading can go on after damage: the first offset from `start` on where a whole
    frame begins whose payload `accept` takes, or the end of `data`."""
    for offset in range(start, len(data)):
        payload = frame_at(data, offset)
        if payload is not None and accept(payload):
            return offset
    return len(data)


def segments(directory: Path) -> list[int]:
    """The numbers of the directory's segments, oldest first."""
    numbers = []
    for path in directory.glob(f"*{SUFFIX}"):
        with contextlib.suppress(ValueError):
            numbers.append(int(path.name.removesuffix(SUFFIX)))
    return sorted(numbers)


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:012d}{SUFFIX}"


def read_all(directory: Path) -> Iterator[tuple[int, int, bytes]]:
    """Every whole frame of a spool directory in order, as (segment, offset, payload), and
    stops at the first that is not whole (the end, or damage `custos audit verify`
    reports as the records it cannot read)."""
    for number in segments(directory):
        result = scan(segment_path(directory, number).read_bytes())
        for offset, payload in result.frames:
            yield number, offset, payload
        if result.end != result.size:
            return


@dataclass(frozen=True)
class Recovery:
    last: bytes | None  # the last whole record's payload; None for an empty spool
    dropped_bytes: int  # of an unfinished write at the end, cut off


class Spool:
    """The writing end. One process per directory: a lock file keeps a second out."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._lock_fd = -1
        self._fd = -1
        self._number = 0
        self._size = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._broken: str | None = None

    def open(self) -> Recovery:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise SpoolError(f"{self.directory}: another process writes this spool") from exc
        numbers = segments(self.directory)
        last: bytes | None = None
        dropped = 0
        for number in reversed(numbers):  # the newest segment that holds a record
            path = segment_path(self.directory, number)
            result = scan(path.read_bytes())
            if number == numbers[-1] and result.end != result.size:
                dropped = result.size - result.end
                os.truncate(path, result.end)
            if result.frames:
                last = result.frames[-1][1]
                break
        self._number = numbers[-1] if numbers else 1
        self._open_segment(self._number)
        if dropped:
            os.fsync(self._fd)
        return Recovery(last, dropped)

    def bytes_on_disk(self) -> int:
        """What the segments take, shipped or not; the shipper deletes shipped ones."""
        total = 0
        for number in segments(self.directory):
            with contextlib.suppress(FileNotFoundError):
                total += segment_path(self.directory, number).stat().st_size
        return total

    async def commit(self, data: bytes) -> None:
        """Returns once `data` (whole frames) is on disk; raises SpoolError if it is not."""
        if self._broken is not None:
            raise SpoolError(self._broken)
        waiter = asyncio.get_running_loop().create_future()
        self._pending.append(data)
        self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A caller that gives up (Envoy cancelled the stream) leaves its record queued.
        await asyncio.shield(waiter)

    async def drain(self) -> None:
        while self._flusher is not None and not self._flusher.done():
            await self._flusher

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    async def _flush(self) -> None:
        while self._pending:
            data, waiters = b"".join(self._pending), self._waiters
            self._pending, self._waiters = [], []
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                error = SpoolError(f"audit spool write failed: {exc.strerror or exc}")
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if self._broken is not None:
            raise OSError(self._broken)
        if self._size and self._size + len(data) > self._segment_bytes:
            os.fsync(self._fd)
            os.close(self._fd)
            self._open_segment(self._number + 1)
        try:
            view = memoryview(data)
            while view:  # O_APPEND: each write lands at the end
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except OSError:
            self._undo()
            raise
        self._size += len(data)

    def _undo(self) -> None:
        """Cut a failed write off, so that later frames do not follow a half one; if even
        that fails, the spool takes nothing more."""
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError as exc:
            self._broken = f"audit spool unusable after a failed write: {exc.strerror}"

    def _open_segment(self, number: int) -> None:
        path = segment_path(self.directory, number)
        created = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._number = number
        self._size = os.fstat(self._fd).st_size
        if created:  # the new name must survive a crash too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
