"""A writer's hash chain: each record gets the next sequence number and the previous
record's hash, and is committed to the spool before the caller goes on; a signed
checkpoint follows every N records, every T seconds with news, at shutdown, and once a
second while a failing spool is tried again.

Every start of the writer starts a new chain, whose first record says why (a shutdown, a
crash, an unfinished write cut off, damage, a spool shorter than what was shipped) and
links to the head of the chain before it. So no later chain can continue from a spool
whose end was cut while the writer was down, and `verify` holds every chain's end against
the link of the chain after it. A failed write starts a new chain too, linked to the last
record on disk: the records lost with that write were never acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import shutil
import time
from collections.abc import Callable

from google.protobuf import timestamp_pb2
from prometheus_client import CollectorRegistry

from custos.audit.audit_pb2 import AuditRecord, ChainStart, Checkpoint, Exchange
from custos.audit.config import AuditConfig
from custos.audit.metrics import AuditMetrics
from custos.audit.records import GENESIS_HASH, parse, record_id
from custos.audit.signing import Signer, statement
from custos.audit.spool import Recovery, Spool, SpoolError, frame

log = logging.getLogger(__name__)

# The tag and length of AuditRecord.hash (field 6, length-delimited, 32 bytes).
_HASH_FIELD = bytes([6 << 3 | 2, 32])
# How often the size of the spool is looked at again (the shipper shrinks it meanwhile).
_SIZE_CHECK_SECONDS = 1.0


class AuditWriter:
    def __init__(
        self,
        config: AuditConfig,
        name: str,
        spool: Spool,
        signer: Signer,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._spool = spool
        self._signer = signer
        self._on_event = on_event or (lambda event: None)
        self.chain = ""
        self.sequence = 0
        self.head = GENESIS_HASH
        self._unsigned = 0  # records since the last checkpoint
        self._spool_bytes = 0
        self._disk_free = 0
        self._size_checked = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._failures_seen = 0
        self._failing = False  # the last write failed; cleared by the next that succeeds
        self._probe: asyncio.Task[None] | None = None
        self._probed = 0.0

    @classmethod
    async def open(
        cls, config: AuditConfig, role: str, on_event: Callable[[str], None] | None = None
    ) -> AuditWriter:
        name = config.writer_name(role)
        signer = Signer.from_file(config.signing_key)
        spool = Spool(config.spool_dir / name, config.segment_bytes)
        recovery = spool.open()
        writer = cls(config, name, spool, signer, on_event)
        await writer._start(recovery)
        writer._timer = asyncio.create_task(writer._checkpoint_on_time())
        return writer

    @property
    def full(self) -> bool:
        """The spool has reached its cap, or the disk under it has no room left for the
        biggest record (a small probe write could pass where a record would not)."""
        if time.monotonic() - self._size_checked >= _SIZE_CHECK_SECONDS:
            self.measure_spool()
        room = 4 * self.config.bodies.max_bytes + 1_048_576  # two bodies, as text, and more
        return self._spool_bytes >= self.config.max_spool_bytes or self._disk_free < room

    def measure_spool(self) -> None:
        """Look at the spool's size now (it is looked at once a second otherwise)."""
        self._spool_bytes = self._spool.bytes_on_disk()
        self._disk_free = shutil.disk_usage(self._spool.directory).free
        self._size_checked = time.monotonic()

    @property
    def refuses(self) -> bool:
        """Whether a new exchange must be refused now, before the MCP server is asked: its
        record would find no room, or the spool does not take writes. A failing spool is
        tried again (a checkpoint) at most once a second, and taken back when it works."""
        if self._spool.broken:
            return True
        if self._failing:
            self._try_again()
            return True
        return self.config.when_full == "refuse" and self.full

    def _try_again(self) -> None:
        now = time.monotonic()
        if (self._probe is None or self._probe.done()) and now - self._probed >= 1.0:
            self._probed = now
            self._probe = asyncio.create_task(self._append_checkpoint("probe"))
            self._probe.add_done_callback(_quiet)

    async def record(self, exchange: Exchange) -> bool:
        """Returns once the record is durable: True. Raises SpoolError when it cannot be
        kept and the configuration says to refuse; with `when_full: serve`, a record for
        which the spool has no room is dropped and counted: False."""
        if self.full:
            if self.config.when_full == "refuse":
                self._on_event("refused_full")
                raise SpoolError("the audit spool is full")
            self._on_event("dropped_full")
            log.error("audit spool full: record of request %s dropped", exchange.request_id)
            return False
        await self._append(exchange)
        self._on_event("written")
        return True

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        try:
            await self._append_checkpoint("shutdown")
        finally:
            await self._spool.drain()
            self._spool.close()

    async def _start(self, recovery: Recovery) -> None:
        last = None if recovery.last is None else parse(recovery.last)
        reasons = [_why_started(last, recovery.last is not None, self.name)]
        if recovery.dropped_bytes:
            reasons.append(f"{recovery.dropped_bytes} bytes of an unfinished write cut off")
        if recovery.damaged_at:
            reasons.append(f"damaged bytes at {recovery.damaged_at} left in place")
        if recovery.shipped_past_end:
            reasons.append("the spool ends before what the shipper shipped: records are gone")
        self._spool.durable = last
        await self._write(lambda: self._chain_start("; ".join(reasons), last))

    async def _checkpoint_on_time(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_every_seconds)
            if self._unsigned:
                try:
                    await self._append_checkpoint("interval")
                except SpoolError as exc:
                    log.error("audit checkpoint not written: %s", exc)

    async def _append_checkpoint(self, reason: str) -> None:
        if self._unsigned or reason in ("shutdown", "probe"):
            await self._write(lambda: frame(self._checkpoint(reason)))

    async def _append(self, exchange: Exchange) -> None:
        def frames() -> bytes:
            data = frame(self._next(exchange=exchange))
            self._unsigned += 1
            if self._unsigned >= self.config.checkpoint_every_records:
                data += frame(self._checkpoint("count"))
            return data

        await self._write(frames)

    async def _write(self, make: Callable[[], bytes]) -> None:
        """Commits the frames `make` builds, after a new chain's first record if a write
        failed since the last one: the records lost with it are not on disk to follow."""
        data = b""
        if self._spool.failures != self._failures_seen:
            self._failures_seen = self._spool.failures
            lost = "a spool write failed: the records written with it were not kept"
            data = self._chain_start(lost, self._spool.durable)
        data += make()
        try:
            # The spool notes the head once it is on disk, even if this caller is gone.
            await self._spool.commit(data, self._head_record())
        except SpoolError:
            self._failing = True
            raise
        self._failing = False

    def _chain_start(self, reason: str, previous: AuditRecord | None) -> bytes:
        start = ChainStart(reason=reason)
        if previous is not None:
            start.previous_chain = previous.chain
            start.previous_sequence = previous.sequence
            start.previous_hash = previous.hash
        self.chain, self.sequence, self.head = secrets.token_hex(8), 0, GENESIS_HASH
        started = frame(self._next(chain_start=start))
        # Signed like any record: by the next checkpoint, on time even if nothing follows.
        self._unsigned = 1
        return started

    def _head_record(self) -> AuditRecord:
        """The chain's head, as much of it as the next chain start links to."""
        return AuditRecord(chain=self.chain, sequence=self.sequence, hash=self.head)

    def _checkpoint(self, reason: str) -> bytes:
        said = statement(self.name, self.chain, self.sequence, self.head, reason)
        signature = self._signer.sign(said)
        checkpoint = Checkpoint(
            head_sequence=self.sequence,
            head_hash=self.head,
            key_id=self._signer.key_id,
            signature=signature,
            reason=reason,
        )
        self._unsigned = 0
        return self._next(checkpoint=checkpoint)

    def _next(self, **body: Exchange | ChainStart | Checkpoint) -> bytes:
        """The next entry of the chain, sealed and serialized; the chain moves on at once,
        so entries are numbered in the order they are committed."""
        self.sequence += 1
        record = AuditRecord(
            record_id=record_id(self.chain, self.sequence),
            writer=self.name,
            chain=self.chain,
            sequence=self.sequence,
            previous_hash=self.head,  # GENESIS_HASH for a chain's first record
            time=_now(),
            **body,
        )
        # The canonical form is this serialization, `hash` being empty yet; the hash goes
        # after it as one more field (a parser takes fields in any order), so a record of
        # up to two bodies is serialized once, not copied and serialized twice.
        canonical = record.SerializeToString(deterministic=True)
        self.head = hashlib.sha256(canonical).digest()
        return canonical + _HASH_FIELD + self.head


async def open_writer(
    audit: AuditConfig | None, role: str, registry: CollectorRegistry, unrecorded: str
) -> AuditWriter | None:
    """A service's writer, its events counted in the service's metrics; None, with a
    warning naming what goes `unrecorded`, when no audit configuration is given."""
    if audit is None:
        log.warning("no audit configuration: %s are not recorded", unrecorded)
        return None
    return await AuditWriter.open(audit, role, AuditMetrics(registry).event)


def _why_started(last: AuditRecord | None, had_records: bool, name: str) -> str:
    if not had_records:
        return "new spool"
    if last is None or last.writer != name:
        return "the spool's last record is unreadable or another writer's"
    if last.HasField("checkpoint") and last.checkpoint.reason == "shutdown":
        return "writer started again after a shutdown"
    return "writer started again after a crash (no shutdown checkpoint)"


def _quiet(task: asyncio.Task[None]) -> None:
    """A probe of a failing spool may fail again: that is what it is for."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("audit spool still failing: %s", task.exception())


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
