"""Checking a set of audit records: every hash, every link, every signature, every end.

Records come from a spool (in the order they were written) or from Cloud Logging (in
chain order); either way each comes with where it was found, so a finding can name the
place. What is found:

- modified: a record's hash is not the hash of its content, or a checkpoint's signature
  does not hold;
- deleted: sequence numbers skip, or a chain does not start at 1;
- inserted: a second record with a sequence number already seen, or one whose previous
  hash is not the hash of the record before it;
- reordered: a sequence number lower than one before it;
- truncated: a chain that ends neither with a shutdown checkpoint nor where a later chain
  says it ended (`live` allows an open end for writers still running)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.records import GENESIS_HASH, content_hash, record_id
from custos.audit.signing import signature_holds, statement


@dataclass(frozen=True)
class Found:
    """One record read, or a place where none could be."""

    where: str
    record: AuditRecord | None
    problem: str = ""  # why nothing could be read here


@dataclass(frozen=True)
class Finding:
    kind: str  # modified, deleted, inserted, reordered, truncated, unreadable, unsigned
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass
class ChainSummary:
    chain: str
    writer: str
    first: int = 0
    last: int = 0
    records: int = 0
    exchanges: int = 0
    signed_through: int = 0  # the head of the last checkpoint whose signature holds
    closed: bool = False
    last_where: str = ""
    last_hash: bytes = b""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(
    found: Iterable[Found],
    keys: dict[str, Ed25519PublicKey],
    live: bool = False,
    shipped_start: bool = False,
) -> Report:
    """`shipped_start`: the set is a spool whose shipped segments were deleted, so a chain
    may begin after its first record (a note; those are checked in Cloud Logging)."""
    report = Report()
    entries: dict[str, dict[int, tuple[str, AuditRecord]]] = {}  # chain -> sequence -> it
    links: list[tuple[str, AuditRecord]] = []  # chain starts that name an earlier chain
    for item in found:
        if item.record is None:
            report.findings.append(Finding("unreadable", item.where, item.problem))
            continue
        record = item.record
        summary = report.chains.get(record.chain)
        if summary is None:
            summary = report.chains[record.chain] = ChainSummary(record.chain, record.writer)
        _check_record(item.where, record, summary, keys, report)
        chain = entries.setdefault(record.chain, {})
        label = f"{item.where} ({_name(record)})"
        if record.sequence in chain:
            report.findings.append(
                Finding("inserted", label, f"sequence {record.sequence} appears a second time")
            )
            continue
        if record.sequence < summary.last:
            report.findings.append(
                Finding("reordered", label, f"comes after sequence {summary.last}")
            )
        chain[record.sequence] = (item.where, record)
        summary.records += 1
        if record.HasField("exchange"):
            summary.exchanges += 1
        if record.sequence > summary.last:
            summary.last, summary.last_where, summary.last_hash = (
                record.sequence,
                item.where,
                record.hash,
            )
            summary.closed = (
                record.HasField("checkpoint") and record.checkpoint.reason == "shutdown"
            )
        if record.HasField("chain_start") and record.chain_start.previous_chain:
            links.append((item.where, record))
    for chain in entries.values():
        _check_links(chain, report, shipped_start)
    linked = _check_successors(links, report)
    for summary in report.chains.values():
        _check_end(summary, summary.chain in linked, live, report)
    return report


def _check_record(
    where: str,
    record: AuditRecord,
    summary: ChainSummary,
    keys: dict[str, Ed25519PublicKey],
    report: Report,
) -> None:
    label = f"{where} ({_name(record)})"
    if content_hash(record) != record.hash:
        report.findings.append(Finding("modified", label, "its content does not match its hash"))
    if record.record_id != record_id(record.chain, record.sequence) or (
        record.writer != summary.writer
    ):
        report.findings.append(
            Finding("modified", label, "its id or writer does not match its chain")
        )
    if not record.HasField("checkpoint"):
        return
    checkpoint = record.checkpoint
    key = keys.get(checkpoint.key_id)
    if key is None:
        report.findings.append(
            Finding("unsigned", label, f"signed with key {checkpoint.key_id!r}, not given")
        )
        return
    said = statement(
        record.writer,
        record.chain,
        checkpoint.head_sequence,
        checkpoint.head_hash,
        checkpoint.reason,
    )
    if not signature_holds(key, checkpoint.signature, said):
        report.findings.append(Finding("modified", label, "its signature does not hold"))
    elif (
        checkpoint.head_sequence != record.sequence - 1
        or checkpoint.head_hash != record.previous_hash
    ):
        report.findings.append(
            Finding("modified", label, "it signs a head other than the record before it")
        )
    else:
        summary.signed_through = max(summary.signed_through, checkpoint.head_sequence)


def _check_links(
    chain: dict[int, tuple[str, AuditRecord]], report: Report, shipped_start: bool
) -> None:
    """Every sequence number from 1 to the last is there, and each record's previous hash
    is the hash of the record numbered before it."""
    missing_from = 1
    for sequence in sorted(chain):
        where, record = chain[sequence]
        label = f"{where} ({_name(record)})"
        if shipped_start and missing_from == 1 < sequence:
            report.notes.append(
                f"{label}: records 1-{sequence - 1} of its chain were shipped and are no "
                "longer in the spool; verify them in Cloud Logging"
            )
        elif sequence > missing_from:
            report.findings.append(
                Finding(
                    "deleted", label, f"records {missing_from}-{sequence - 1} are missing before it"
                )
            )
        missing_from = sequence + 1
        before = chain.get(sequence - 1)
        expected = GENESIS_HASH if sequence == 1 else before[1].hash if before else None
        if expected is not None and record.previous_hash != expected:
            report.findings.append(
                Finding(
                    "inserted",
                    label,
                    f"it does not follow sequence {sequence - 1}: its previous hash differs",
                )
            )


def _check_successors(links: list[tuple[str, AuditRecord]], report: Report) -> set[str]:
    """Chains that a later chain says ended at a given head: their end is that head."""
    linked = set()
    for where, record in links:
        start = record.chain_start
        summary = report.chains.get(start.previous_chain)
        if summary is None:
            report.notes.append(
                f"{where}: chain {record.chain} follows chain {start.previous_chain}, "
                "whose records are not in this set"
            )
            continue
        linked.add(start.previous_chain)
        if summary.last < start.previous_sequence:
            report.findings.append(
                Finding(
                    "truncated",
                    f"chain {summary.chain} (writer {summary.writer})",
                    f"ends at sequence {summary.last}, but chain {record.chain} says it "
                    f"ended at {start.previous_sequence}",
                )
            )
        elif summary.last > start.previous_sequence:
            report.findings.append(
                Finding(
                    "inserted",
                    f"chain {summary.chain} (writer {summary.writer})",
                    f"goes on past sequence {start.previous_sequence}, where chain "
                    f"{record.chain} says it ended ({start.reason})",
                )
            )
        elif summary.last_hash != start.previous_hash:
            report.findings.append(
                Finding(
                    "modified",
                    f"chain {summary.chain} (writer {summary.writer})",
                    f"its last record is not the one chain {record.chain} links to",
                )
            )
    return linked


def _check_end(summary: ChainSummary, linked: bool, live: bool, report: Report) -> None:
    if summary.closed or linked:
        return
    where = f"chain {summary.chain} (writer {summary.writer})"
    unsigned = summary.last - summary.signed_through
    if live:
        report.notes.append(
            f"{where}: open at sequence {summary.last}; "
            f"{unsigned} records after the last checkpoint are not signed yet"
        )
        return
    report.findings.append(
        Finding(
            "truncated",
            where,
            f"ends at sequence {summary.last} ({summary.last_where}) without a shutdown "
            "checkpoint: its tail may have been cut, or its writer stopped without closing "
            "it (pass --live for writers still running)",
        )
    )


def _name(record: AuditRecord) -> str:
    return f"{record.writer} #{record.sequence}"
