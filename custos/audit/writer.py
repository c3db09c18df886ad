"""A writer's hash chain: each record gets the next sequence number and the previous
record's hash, and is committed to the spool before the caller goes on; a signed
checkpoint follows every N records, every T seconds with news, and at shutdown.

A restart continues the chain from the spool's last record. When the spool's end had to
be cut off, or its last record is not this writer's, a new chain starts with a record that
says why and links to the old head, so an auditor sees the seam."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from custos.audit.audit_pb2 import AuditRecord, ChainStart, Checkpoint, Exchange
from custos.audit.config import AuditConfig
from custos.audit.records import GENESIS_HASH, content_hash, record_id
from custos.audit.signing import Signer, statement
from custos.audit.spool import Recovery, Spool, SpoolError, frame

log = logging.getLogger(__name__)

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
        self._size_checked = 0.0
        self._timer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, config: AuditConfig, role: str, on_event: Callable[[str], None] | None = None
    ) -> AuditWriter:
        name = config.writer_name(role)
        signer = Signer.from_file(config.signing_key)
        spool = Spool(config.spool_dir / name, config.segment_bytes)
        recovery = spool.open()
        writer = cls(config, name, spool, signer, on_event)
        await writer._resume(recovery)
        writer._timer = asyncio.create_task(writer._checkpoint_on_time())
        return writer

    @property
    def full(self) -> bool:
        if time.monotonic() - self._size_checked >= _SIZE_CHECK_SECONDS:
            self.measure_spool()
        return self._spool_bytes >= self.config.max_spool_bytes

    def measure_spool(self) -> None:
        """Look at the spool's size now (it is looked at once a second otherwise)."""
        self._spool_bytes = self._spool.bytes_on_disk()
        self._size_checked = time.monotonic()

    @property
    def refuses(self) -> bool:
        """Whether a new exchange must be refused now, for want of room for its record."""
        return self.config.when_full == "refuse" and self.full

    async def record(self, exchange: Exchange) -> None:
        """Returns once the record is durable. Raises SpoolError when it cannot be kept
        and the configuration says to refuse; with `when_full: serve`, a record for which
        the spool has no room is dropped and counted."""
        if self.full:
            if self.config.when_full == "refuse":
                self._on_event("refused_full")
                raise SpoolError("the audit spool is full")
            self._on_event("dropped_full")
            log.error("audit spool full: record of request %s dropped", exchange.request_id)
            return
        await self._append(exchange=exchange)
        self._on_event("written")

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

    async def _resume(self, recovery: Recovery) -> None:
        last = _parse(recovery.last)
        if last is not None and not recovery.dropped_bytes and last.writer == self.name:
            self.chain, self.sequence, self.head = last.chain, last.sequence, last.hash
            if not last.HasField("checkpoint"):  # a crash: what came before is signed now
                self._unsigned = 1
                await self._append_checkpoint("resumed")
            return
        start = ChainStart(reason="new spool")
        if recovery.dropped_bytes:
            start.reason = (
                f"spool end cut off: {recovery.dropped_bytes} bytes of an unfinished write"
            )
        elif recovery.last is not None:
            start.reason = "the spool's last record is unreadable or another writer's"
        if last is not None:
            start.previous_chain = last.chain
            start.previous_sequence = last.sequence
            start.previous_hash = last.hash
        self.chain = secrets.token_hex(8)
        await self._append(chain_start=start)

    async def _checkpoint_on_time(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_every_seconds)
            if self._unsigned:
                try:
                    await self._append_checkpoint("interval")
                except SpoolError as exc:
                    log.error("audit checkpoint not written: %s", exc)

    async def _append_checkpoint(self, reason: str) -> None:
        if self._unsigned or reason == "shutdown":
            await self._spool.commit(frame(self._checkpoint(reason)))

    async def _append(self, **body: Exchange | ChainStart) -> None:
        data = frame(self._next(**body))
        self._unsigned += 1
        if self._unsigned >= self.config.checkpoint_every_records:
            data += frame(self._checkpoint("count"))
        await self._spool.commit(data)

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
            previous_hash=self.head if self.sequence > 1 else GENESIS_HASH,
            time=_now(),
            **body,
        )
        record.hash = content_hash(record)
        self.head = record.hash
        return record.SerializeToString(deterministic=True)


def _parse(payload: bytes | None) -> AuditRecord | None:
    if payload is None:
        return None
    try:
        return AuditRecord.FromString(payload)
    except DecodeError:
        return None


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
