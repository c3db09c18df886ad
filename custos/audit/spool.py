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

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.records import is_record
from custos.errors import CustosError

HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload
MAX_FRAME = 64 * 1_048_576
SUFFIX = ".seg"
SHIPPED = "shipped"
COMMITTED = "committed"


class SpoolError(CustosError):
    """The spool cannot take or give records: a request whose record cannot be kept is
    refused."""

    code = "audit_unavailable"


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


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
        offset += HEADER.size + len(payload)
    return Scan(frames, offset, len(data))


def frame_at(data: bytes, offset: int) -> bytes | None:
    """The payload of the whole frame at `offset`, or None if there is none there."""
    if offset + HEADER.size > len(data):
        return None
    length, crc = HEADER.unpack_from(data, offset)
    end = offset + HEADER.size + length
    if not _header_ok(length, end, len(data)):
        return None
    payload = memoryview(data)[offset + HEADER.size : end]
    return bytes(payload) if zlib.crc32(payload) == crc else None


def _header_ok(length: int, end: int, size: int) -> bool:
    """Whether a header saying `length`, its payload ending at `end`, can start a whole
    frame in `size` bytes. Nothing writes an empty payload; eight zero bytes (a zeroed
    block on a failing disk) would otherwise pass for a frame, with the CRC-32 of nothing
    being 0."""
    return 0 < length <= MAX_FRAME and end <= size


def read_frames(path: Path, start: int, stop: int | None, most: int) -> Scan:
    """Up to `most` whole frames of a segment file from `start` on, reading no further than
    `stop` (None: the file's end), without reading the rest of the file. `Scan.size` is
    where reading had to stop; `end` short of it, with fewer than `most` frames, is a
    frame not whole (yet)."""
    frames: list[tuple[int, bytes]] = []
    with open(path, "rb") as segment:
        size = os.fstat(segment.fileno()).st_size
        size = size if stop is None else min(stop, size)
        segment.seek(start)
        offset = start
        while len(frames) < most and offset + HEADER.size <= size:
            length, crc = HEADER.unpack(segment.read(HEADER.size))
            if not _header_ok(length, offset + HEADER.size + length, size):
                break
            payload = segment.read(length)
            if len(payload) != length or zlib.crc32(payload) != crc:
                break
            frames.append((offset, payload))
            offset += HEADER.size + length
    return Scan(frames, offset, size)


def whole_frames(data: bytes, start: int = 0) -> list[tuple[int, bytes]]:
    """Every whole frame holding a record from `start` on, reading on past any damage."""
    return [(at, payload) for at, payload, _ in walk(data, start) if payload is not None]


def walk(
    data: bytes, start: int = 0, accept: Callable[[bytes], bool] = is_record
) -> Iterator[tuple[int, bytes | None, int]]:
    """`data` from `start` to its end, frame by frame and past damage: (offset, payload,
    offset after it) for each whole frame, (offset, None, resume) for bytes that are not
    one, `resume` being where `next_frame` (with `accept`) goes on. Each step starts where
    the one before ended, and the last ends at the end of `data`."""
    offset = start
    while offset < len(data):
        payload = frame_at(data, offset)
        if payload is None:
            after = next_frame(data, offset + 1, accept)
        else:
            after = offset + HEADER.size + len(payload)
        yield offset, payload, after
        offset = after


def next_frame(data: bytes, start: int, accept: Callable[[bytes], bool] = is_record) -> int:
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


def bytes_on_disk(directory: Path) -> int:
    """What a writer's segments take, shipped or not; the shipper deletes shipped ones,
    maybe between listing a segment and looking at its size."""
    total = 0
    for number in segments(directory):
        with contextlib.suppress(FileNotFoundError):
            total += segment_path(directory, number).stat().st_size
    return total


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd`, which is opened O_APPEND: a write may take only part of it,
    and each one lands at the end, so the rest follows on."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(path: Path) -> None:
    """Makes a name just made in the directory `path` survive a crash: fsync of the file
    alone does not."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, order=True)
class Mark:
    """A place in a spool: how far the shipper got, or how far the writer committed."""

    segment: int
    offset: int


def read_mark(directory: Path, name: str = SHIPPED) -> Mark | None:
    try:
        segment, offset = (directory / name).read_text().split()
        return Mark(int(segment), int(offset))
    except (FileNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Recovery:
    """What opening the spool found, for the record that starts the writer's new chain."""

    last: bytes | None  # the last whole record's payload; None for an empty spool
    dropped_bytes: int = 0  # of an unfinished write at the end, cut off
    damaged_at: str = ""  # bad bytes with whole records after them, left in place
    shipped_past_end: bool = False  # the shipper's mark lies beyond the spool's end


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
        self._committed_fd = -1
        self._heads: list[AuditRecord] = []
        self.failures = 0  # failed writes: the records queued with them are lost too
        self.durable: AuditRecord | None = None  # the head of the last write on disk

    def open(self) -> Recovery:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise SpoolError(f"{self.directory}: another process writes this spool") from exc
        numbers = segments(self.directory)
        newest = numbers[-1] if numbers else 1
        last, dropped, damaged = None, 0, ""
        for number in reversed(numbers):  # the newest segment that holds a record
            path = segment_path(self.directory, number)
            data = path.read_bytes()
            result = scan(data)
            frames = result.frames
            if result.end != result.size:
                resume = next_frame(data, result.end + 1)
                if number == newest and resume == len(data):
                    # An unfinished write: never acknowledged, so it goes.
                    dropped = result.size - result.end
                    os.truncate(path, result.end)
                else:
                    # Damage with whole records after it: nothing is cut (verify and the
                    # shipper see it all), the last record is the one after it, and
                    # writing goes on in a new segment.
                    damaged = damaged or f"{path.name}@{result.end}"
                    frames = [*frames, *whole_frames(data, resume)]
            if frames:
                last = frames[-1][1]
                break
        shipped = read_mark(self.directory)
        behind = shipped is not None and shipped > Mark(newest, self._size_of(newest))
        if damaged or behind:
            # Never write where the shipper's mark says it has been, or after damage.
            newest = max(newest, shipped.segment if shipped else 0) + 1
        self._open_segment(newest)
        if dropped:
            os.fsync(self._fd)
        self._committed_fd = os.open(self.directory / COMMITTED, os.O_RDWR | os.O_CREAT, 0o600)
        self._publish()
        return Recovery(last, dropped, damaged, behind)

    def _size_of(self, number: int) -> int:
        try:
            return segment_path(self.directory, number).stat().st_size
        except FileNotFoundError:
            return 0

    def bytes_on_disk(self) -> int:
        return bytes_on_disk(self.directory)

    async def commit(self, data: bytes, head: AuditRecord) -> None:
        """Returns once `data` (whole frames) is on disk; raises SpoolError if it is not.
        `head` (the last record in `data`) becomes `durable` once it is, whether or not
        the caller is still waiting then."""
        if self._broken is not None:
            raise SpoolError(self._broken)
        waiter = asyncio.get_running_loop().create_future()
        self._pending.append(data)
        self._heads.append(head)
        self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A caller that gives up (Envoy cancelled the stream) leaves its record queued.
        await asyncio.shield(waiter)

    @property
    def broken(self) -> bool:
        return self._broken is not None

    async def drain(self) -> None:
        while self._flusher is not None and not self._flusher.done():
            # A caller cancelled here must not cancel the write its records are in.
            await asyncio.shield(self._flusher)

    def close(self) -> None:
        for fd in (self._fd, self._committed_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._committed_fd = self._lock_fd = -1

    async def _flush(self) -> None:
        while self._pending:
            data, waiters, heads = b"".join(self._pending), self._waiters, self._heads
            self._pending, self._waiters, self._heads = [], [], []
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                # Records queued meanwhile chain onto the lost ones: they fail with them,
                # and the writer starts a new chain from what is on disk.
                waiters += self._waiters
                self._pending, self._waiters, self._heads = [], [], []
                self.failures += 1
                _settle(waiters, SpoolError(f"audit spool write failed: {exc.strerror or exc}"))
            except BaseException:
                _settle([*waiters, *self._waiters], SpoolError("audit spool write cancelled"))
                self._pending, self._waiters, self._heads = [], [], []
                raise
            else:
                self.durable = heads[-1]
                _settle(waiters, None)

    def _write(self, data: bytes) -> None:
        if self._broken is not None:
            raise OSError(self._broken)
        try:
            if self._size and self._size + len(data) > self._segment_bytes:
                self._roll()
            write_all(self._fd, data)
            os.fdatasync(self._fd)
        except OSError:
            self._undo()
            raise
        self._size += len(data)
        self._publish()

    def _roll(self) -> None:
        """The next segment is open before the full one is closed: a failure leaves the
        spool writing where it was."""
        full = self._fd
        os.fsync(full)
        self._open_segment(self._number + 1)
        os.close(full)

    def _publish(self) -> None:
        """How far the records are durable, for the shipper, which reads no further: it
        never ships a record whose write was not acknowledged. Not fsync'd: after a power
        loss it may lag behind the data, never run ahead of it."""
        text = f"{self._number:012d} {self._size:020d}\n".encode()
        os.pwrite(self._committed_fd, text, 0)

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
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fd, self._number, self._size = fd, number, os.fstat(fd).st_size
        if created:  # the new name must survive a crash too
            fsync_directory(self.directory)


def _settle(waiters: list[asyncio.Future[None]], error: SpoolError | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
