"""Checking a set of audit records: every hash, every link, every signature, every end.

Records come from a spool (in the order they were written) or from Cloud Logging (in
chain order); either way each comes with where it was found, so a finding can name the
place. What is found:

- modified: a record's hash is not the hash of its content, a checkpoint's signature does
  not hold, or a link is broken: a record's previous hash is not the hash of the record
  numbered before it (one of the two was changed and rehashed, or put in the other's place);
- deleted: sequence numbers skip, a chain does not start at 1, or two chains say they
  follow the same one (a writer's run cut out of the spool, and the writer started again);
- inserted: several records with one sequence number: those that do not link to their
  neighbours are named, or, when each does, all of them (an exact copy is named as one);
  or records after a chain's shutdown checkpoint;
- reordered: a sequence number lower than one before it;
- truncated: a chain that ends neither with a shutdown checkpoint nor where a later chain
  says it ended;
- unsigned: a checkpoint by a key not given; and with `live` (writers still running, so a
  chain may end open), an open end left unsigned longer than a running writer takes to sign;
- missing: no record at all, or no chain of a writer that was expected;
- unreadable: bytes, or an entry, that are not a record.

A record is verified when a valid checkpoint signature covers it: the head it names, and
back from there through records whose hashes hold and link, across a chain start to the
head of the chain before. `replay` marks the records that are not."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.defaults import MAX_UNSIGNED_SECONDS
from custos.audit.records import GENESIS_HASH, content_hash, record_id
from custos.audit.signing import signature_holds, statement


@dataclass(frozen=True)
class Found:
    """One record read, or a place where none could be."""

    where: str
    record: AuditRecord | None
    problem: str = ""  # why nothing could be read here; never the bytes' content (PHI)
    # The start of a frame at the end of a writer's newest segment: a write under way.
    write_under_way: bool = False


@dataclass(frozen=True)
class Finding:
    kind: str  # modified, deleted, inserted, reordered, truncated, unsigned, missing, unreadable
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
    verified: set[bytes] = field(default_factory=set)  # hashes a valid signature covers

    @property
    def ok(self) -> bool:
        return not self.findings

    def verifies(self, record: AuditRecord) -> bool:
        """Whether a valid checkpoint signature covers `record` as it is: a copy whose
        content was changed but whose hash was not carries a covered hash, so the content
        is hashed again."""
        return record.hash in self.verified and content_hash(record) == record.hash


@dataclass(frozen=True)
class Place:
    """A record, and where it was found."""

    where: str
    record: AuditRecord

    @property
    def label(self) -> str:
        return f"{self.where} ({_name(self.record)})"


@dataclass
class _Chain:
    summary: ChainSummary
    candidates: dict[int, list[Place]] = field(default_factory=dict)  # as read, by sequence
    kept: dict[int, list[Place]] = field(default_factory=dict)  # those that link
    highest: int = 0  # the highest sequence read so far: a lower one after it is out of order


@dataclass
class _Set:
    chains: dict[str, _Chain] = field(default_factory=dict)
    sound: dict[bytes, AuditRecord] = field(default_factory=dict)  # hash holds, by hash
    heads: set[bytes] = field(default_factory=set)  # heads named by a valid signature


@dataclass(frozen=True)
class _Ends:
    live: bool
    max_unsigned_ns: int
    newest_ns: int  # the newest record time of the set: ages do not depend on when it is read


def verify(
    found: Iterable[Found],
    keys: dict[str, Ed25519PublicKey],
    *,
    live: bool = False,
    shipped_start: bool = False,
    max_unsigned_seconds: float = MAX_UNSIGNED_SECONDS,
    expect_writers: Iterable[str] = (),
) -> Report:
    """`shipped_start`: the set is a spool whose shipped segments were deleted, so each
    writer's oldest chain left may begin after its first record, and after a chain that
    is gone (notes: those are checked in Cloud Logging).
    `expect_writers`: writers that must have a chain in the set (a deleted chain leaves no
    other trace)."""
    report = Report()
    seen = _Set()
    for item in found:
        if item.record is None:
            _unreadable(item, live, report)
        else:
            _read(Place(item.where, item.record), seen, keys, report)
    # In a spool the shipper pruned, a writer's oldest chain left may have lost its start
    # (and the chain before it) to Cloud Logging; any other chain may not.
    firsts: dict[str, str] = {}
    for name, chain in seen.chains.items():
        firsts.setdefault(chain.summary.writer, name)
    pruned = set(firsts.values()) if shipped_start else set()
    for name, chain in seen.chains.items():
        _check_links(chain, report, name in pruned)
        _summarize(chain)
        _check_closed(chain, report)
    linked = _check_successors(seen.chains, report, pruned)
    ends = _Ends(live, int(max_unsigned_seconds * 1e9), _newest(seen.chains))
    for name, chain in seen.chains.items():
        if name not in linked:
            _check_end(chain, ends, report)
    _check_presence(seen.chains, expect_writers, report)
    report.verified = _covered(seen)
    return report


def _unreadable(item: Found, live: bool, report: Report) -> None:
    if live and item.write_under_way:
        report.notes.append(
            f"{item.where}: {item.problem}, at the end of its writer's newest segment: "
            "a write under way"
        )
        return
    message = item.problem
    if item.write_under_way:
        message += (
            ", at the end of its writer's newest segment: a write under way, or one a crash "
            "left unfinished (pass --live for writers still running)"
        )
    report.findings.append(Finding("unreadable", item.where, message))


def _read(place: Place, seen: _Set, keys: dict[str, Ed25519PublicKey], report: Report) -> None:
    record = place.record
    chain = seen.chains.get(record.chain)
    if chain is None:
        summary = report.chains[record.chain] = ChainSummary(record.chain, record.writer)
        chain = seen.chains[record.chain] = _Chain(summary)
    if _check_hash(place, chain.summary, report):
        seen.sound[record.hash] = record
    head = _check_signature(place, chain.summary, keys, report)
    if head is not None:
        seen.heads.add(head)
    sequence = record.sequence
    # A sequence number read before is named when duplicates are sorted out, not here.
    if sequence < chain.highest and sequence not in chain.candidates:
        report.findings.append(
            Finding("reordered", place.label, f"comes after sequence {chain.highest}")
        )
    chain.candidates.setdefault(sequence, []).append(place)
    chain.highest = max(chain.highest, sequence)


def _check_hash(place: Place, summary: ChainSummary, report: Report) -> bool:
    record = place.record
    sound = content_hash(record) == record.hash
    if not sound:
        report.findings.append(
            Finding("modified", place.label, "its content does not match its hash")
        )
    if record.record_id != record_id(record.chain, record.sequence) or (
        record.writer != summary.writer
    ):
        report.findings.append(
            Finding("modified", place.label, "its id or writer does not match its chain")
        )
    return sound


def _check_signature(
    place: Place, summary: ChainSummary, keys: dict[str, Ed25519PublicKey], report: Report
) -> bytes | None:
    """The head a checkpoint's valid signature names, if it is one."""
    record = place.record
    if not record.HasField("checkpoint"):
        return None
    checkpoint = record.checkpoint
    key = keys.get(checkpoint.key_id)
    if key is None:
        report.findings.append(
            Finding("unsigned", place.label, f"signed with key {checkpoint.key_id!r}, not given")
        )
        return None
    said = statement(
        record.writer,
        record.chain,
        checkpoint.head_sequence,
        checkpoint.head_hash,
        checkpoint.reason,
    )
    if not signature_holds(key, checkpoint.signature, said):
        report.findings.append(Finding("modified", place.label, "its signature does not hold"))
        return None
    if (
        checkpoint.head_sequence != record.sequence - 1
        or checkpoint.head_hash != record.previous_hash
    ):
        report.findings.append(
            Finding("modified", place.label, "it signs a head other than the record before it")
        )
        return None
    summary.signed_through = max(summary.signed_through, checkpoint.head_sequence)
    return checkpoint.head_hash


def _check_links(chain: _Chain, report: Report, shipped_start: bool) -> None:
    """Every sequence number from 1 to the last is there, once, and each record's previous
    hash is the hash of the record numbered before it."""
    chain.kept, dropped = _resolve(chain.candidates)
    report.findings.extend(Finding("inserted", place.label, why) for place, why in dropped)
    missing_from = 1
    for sequence in sorted(chain.kept):
        places = chain.kept[sequence]
        label = places[0].label
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
        _check_copies(places, report)
        _check_link(chain.kept.get(sequence - 1), places, report)


def _resolve(
    candidates: dict[int, list[Place]],
) -> tuple[dict[int, list[Place]], list[tuple[Place, str]]]:
    """Of several records with one sequence number, those that link to fewer neighbours
    than another does are dropped, and named with why. One number at a time, and again
    until nothing changes: dropping a forged record can leave the forged one before it
    linked to nothing."""
    kept = {sequence: list(places) for sequence, places in candidates.items()}
    shared = {sequence for sequence, places in candidates.items() if len(places) > 1}
    dropped: list[tuple[Place, str]] = []
    # Lowest number first, as a rescan from the start would go; a drop can only change
    # what its neighbours link to, so only they are looked at again (not every number:
    # that made a log full of copies take quadratic time).
    waiting = sorted(shared)
    queued = set(shared)
    while waiting:
        sequence = heapq.heappop(waiting)
        queued.discard(sequence)
        drop = _unlinked(kept, sequence)
        for near in (sequence - 1, sequence, sequence + 1) if drop else ():
            if near in shared and near not in queued:
                queued.add(near)
                heapq.heappush(waiting, near)
        for place, why in drop:
            sequence = place.record.sequence
            kept[sequence] = [p for p in kept[sequence] if p is not place]
            count = len(candidates[sequence])
            dropped.append(
                (
                    place,
                    f"one of {count} records numbered {sequence}, and not one that links "
                    f"to the chain: {why}",
                )
            )
    return kept, dropped


def _unlinked(kept: dict[int, list[Place]], sequence: int) -> list[tuple[Place, str]]:
    """The records numbered `sequence` that link to fewer neighbours than another does."""
    places = kept[sequence]
    if len(places) < 2:
        return []
    links = [_links(p, kept.get(sequence - 1), kept.get(sequence + 1)) for p in places]
    counts = [sum(link is True for link in pair) for pair in links]
    return [
        (place, _why_unlinked(sequence, back))
        for place, (back, _), count in zip(places, links, counts, strict=True)
        if count < max(counts)
    ]


def _why_unlinked(sequence: int, back: bool | None) -> str:
    if back is not False:
        return f"#{sequence + 1} does not follow it"
    if sequence == 1:
        return "its previous hash is not the zero hash a chain starts with"
    return f"it does not follow #{sequence - 1}"


def _links(
    place: Place, before: list[Place] | None, after: list[Place] | None
) -> tuple[bool | None, bool | None]:
    """Whether a record follows one numbered before it, and whether one numbered after it
    follows it; None where there is no record to link to."""
    record = place.record
    if record.sequence == 1:
        back: bool | None = record.previous_hash == GENESIS_HASH
    elif before:
        back = any(record.previous_hash == p.record.hash for p in before)
    else:
        back = None
    forward = any(n.record.previous_hash == record.hash for n in after) if after else None
    return back, forward


def _check_copies(places: list[Place], report: Report) -> None:
    """Several records with one sequence number that each link: copies of one record, or
    records nothing tells apart (as at a chain's end, with no record after them)."""
    if len(places) < 2:
        return
    first, *others = places
    if all(p.record == first.record for p in others):
        report.findings.extend(
            Finding(
                "inserted",
                p.label,
                f"sequence {first.record.sequence} appears a second time: a copy of the "
                f"record at {first.where}",
            )
            for p in others
        )
        return
    report.findings.append(
        Finding(
            "inserted",
            " and ".join(p.label for p in places),
            f"{len(places)} different records numbered {first.record.sequence} each link "
            "to the chain: which one was written cannot be told",
        )
    )


def _check_link(before: list[Place] | None, places: list[Place], report: Report) -> None:
    sequence = places[0].record.sequence
    if sequence == 1:
        if not any(p.record.previous_hash == GENESIS_HASH for p in places):
            report.findings.append(
                Finding(
                    "modified",
                    places[0].label,
                    "it is numbered 1, but its previous hash is not the zero hash a chain "
                    "starts with",
                )
            )
        return
    if before is None:  # named as deleted
        return
    if any(p.record.previous_hash == b.record.hash for p in places for b in before):
        return
    report.findings.append(
        Finding(
            "modified",
            f"between {before[0].label} and {places[0].label}",
            f"#{sequence}'s previous hash is not the hash of #{sequence - 1}: one of the two "
            "was changed and rehashed, or put in the place of the one written",
        )
    )


def _summarize(chain: _Chain) -> None:
    """The chain as it links: one record per sequence number."""
    summary = chain.summary
    records = {sequence: places[0].record for sequence, places in chain.kept.items()}
    summary.records = len(records)
    summary.exchanges = sum(record.HasField("exchange") for record in records.values())
    summary.first, summary.last = min(records), max(records)
    last = chain.kept[summary.last][0]
    summary.last_where, summary.last_hash = last.where, last.record.hash
    summary.closed = (
        last.record.HasField("checkpoint") and last.record.checkpoint.reason == "shutdown"
    )


def _check_successors(chains: dict[str, _Chain], report: Report, pruned: set[str]) -> set[str]:
    """Chains that a later chain says ended at a given head: their end is that head."""
    starts = [
        place
        for chain in chains.values()
        for places in chain.kept.values()
        for place in places
        if place.record.HasField("chain_start") and place.record.chain_start.previous_chain
    ]
    _check_forks(starts, report)
    return {
        place.record.chain_start.previous_chain
        for place in starts
        if _check_successor(place, report, place.record.chain in pruned)
    }


def _check_forks(starts: list[Place], report: Report) -> None:
    """A writer starts one chain after another: two chains following the same one mean a
    run of its records was cut from the spool while it was down, and it started again
    from what was left (or that one of the two was made up)."""
    followers: dict[str, list[Place]] = {}
    for place in starts:
        followers.setdefault(place.record.chain_start.previous_chain, []).append(place)
    for previous, places in followers.items():
        if len(places) > 1:
            named = ", ".join(f"{p.record.chain} ({p.where})" for p in places)
            report.findings.append(
                Finding(
                    "deleted",
                    f"chain {previous}",
                    f"{len(places)} chains say they follow it: {named}; the records of the "
                    "writer's runs between them may have been cut",
                )
            )


def _check_closed(chain: _Chain, report: Report) -> None:
    """A shutdown checkpoint ends its chain: the writer starts a new one when it runs
    again, so a record after it was put there."""
    shutdown = [
        sequence
        for sequence, places in chain.kept.items()
        if places[0].record.checkpoint.reason == "shutdown"
    ]
    after = [s for s in chain.kept if shutdown and s > min(shutdown)]
    if after:
        place = chain.kept[min(after)][0]
        report.findings.append(
            Finding(
                "inserted",
                f"{place.where} ({_name(place.record)})",
                f"{len(after)} records after the chain's shutdown checkpoint (#{min(shutdown)})",
            )
        )


def _check_successor(place: Place, report: Report, pruned: bool) -> bool:
    """Whether the chain that `place` starts after is in the set; findings if it does not
    end where `place` says, or is not there (a writer's whole run deleted) unless the
    shipper pruned it from the spool."""
    record = place.record
    start = record.chain_start
    summary = report.chains.get(start.previous_chain)
    if summary is None:
        said = f"chain {record.chain} follows chain {start.previous_chain}, which is not here"
        if pruned:
            report.notes.append(f"{place.where}: {said} (shipped and pruned from the spool)")
        else:
            report.findings.append(Finding("deleted", place.label, said))
        return False
    where = f"chain {summary.chain} (writer {summary.writer})"
    if summary.last < start.previous_sequence:
        report.findings.append(
            Finding(
                "truncated",
                where,
                f"ends at sequence {summary.last}, but chain {record.chain} says it "
                f"ended at {start.previous_sequence}",
            )
        )
    elif summary.last > start.previous_sequence:
        report.findings.append(
            Finding(
                "inserted",
                where,
                f"goes on past sequence {start.previous_sequence}, where chain "
                f"{record.chain} says it ended ({start.reason})",
            )
        )
    elif summary.last_hash != start.previous_hash:
        report.findings.append(
            Finding(
                "modified", where, f"its last record is not the one chain {record.chain} links to"
            )
        )
    return True


def _newest(chains: dict[str, _Chain]) -> int:
    """Of every record read, forged ones too: a made-up late time can make open ends look
    old (findings), never young."""
    return max(
        (
            place.record.time.ToNanoseconds()
            for chain in chains.values()
            for places in chain.candidates.values()
            for place in places
        ),
        default=0,
    )


def _check_end(chain: _Chain, ends: _Ends, report: Report) -> None:
    summary = chain.summary
    if summary.closed:
        return
    where = f"chain {summary.chain} (writer {summary.writer})"
    if not ends.live:
        report.findings.append(
            Finding(
                "truncated",
                where,
                f"ends at sequence {summary.last} ({summary.last_where}) without a shutdown "
                "checkpoint: its tail may have been cut, or its writer stopped without "
                "closing it (pass --live for writers still running)",
            )
        )
        return
    unsigned = _unsigned(chain)
    oldest = min(unsigned, key=lambda p: p.record.time.ToNanoseconds(), default=None)
    age = ends.newest_ns - oldest.record.time.ToNanoseconds() if oldest else 0
    if oldest is None:
        last = summary.last
        report.notes.append(f"{where}: open; its last record (#{last}) is a valid checkpoint")
        return
    if age <= ends.max_unsigned_ns:
        since = "since the last" if summary.signed_through else "and no"
        report.notes.append(
            f"{where}: open at sequence {summary.last}; not signed yet: "
            f"{_records(len(unsigned))} {since} valid checkpoint, the oldest "
            f"{_seconds(age)} before the newest record of the set"
        )
        return
    report.findings.append(Finding("unsigned", where, _unsigned_too_long(chain, oldest, age, ends)))


def _unsigned(chain: _Chain) -> list[Place]:
    """The records after the checkpoint record of the last valid signature, or all of them
    when no signature holds."""
    signed = chain.summary.signed_through
    after = signed + 1 if signed else 0
    return [places[0] for sequence, places in chain.kept.items() if sequence > after]


def _unsigned_too_long(chain: _Chain, oldest: Place, age: int, ends: _Ends) -> str:
    bound = _seconds(ends.max_unsigned_ns)
    if not chain.summary.signed_through:
        what = "no valid checkpoint signs any of its records, and its oldest"
    else:
        what = (
            f"its records after the last valid checkpoint (#{chain.summary.signed_through + 1})"
            " are not signed, and the oldest of them"
        )
    return (
        f"{what} ({oldest.label}) is {_seconds(age)} older than the newest record of the set, "
        f"over the {bound} a running writer takes to sign (--max-unsigned-seconds): a "
        "record made up, or a writer gone without closing its chain"
    )


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e9:.1f} s"


def _check_presence(chains: dict[str, _Chain], expect: Iterable[str], report: Report) -> None:
    if not chains:
        report.findings.append(
            Finding("missing", "the set", "it holds no audit record: nothing was verified")
        )
    writers = {chain.summary.writer for chain in chains.values()}
    for writer in dict.fromkeys(expect):  # in the order given, each once
        if writer not in writers:
            report.findings.append(
                Finding(
                    "missing",
                    f"writer {writer}",
                    "no chain of this writer is in the set: its records were deleted, or "
                    "never written or shipped",
                )
            )


def _covered(seen: _Set) -> set[bytes]:
    """The hashes of the records a valid signature covers: from each signed head back
    through previous hashes, and from a chain start to the chain before it."""
    covered: set[bytes] = set()
    todo = list(seen.heads)
    while todo:
        head = todo.pop()
        record = seen.sound.get(head)
        if record is None or head in covered:
            continue
        covered.add(head)
        todo.append(record.previous_hash)
        if record.HasField("chain_start") and record.chain_start.previous_chain:
            todo.append(record.chain_start.previous_hash)
    return covered


def _name(record: AuditRecord) -> str:
    return f"{record.writer} #{record.sequence}"
