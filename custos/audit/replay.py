"""`custos audit replay`: the exchanges that match, in the order they happened, each as
the client saw it, with the decision and what was masked, and whether a valid checkpoint
signature covers its record: a forged record is printed too, marked as not verified."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf import json_format

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.printable import printable
from custos.audit.verify import Found, Report


@dataclass(frozen=True)
class Selection:
    request_id: str | None = None
    session_id: str | None = None
    subject: str | None = None  # the principal's subject or e-mail
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def matches(self, record: AuditRecord) -> bool:
        if not record.HasField("exchange"):
            return False
        exchange = record.exchange
        when = record.time.ToDatetime(tzinfo=dt.UTC)
        principal = exchange.principal
        return (
            self.request_id in (None, exchange.request_id)
            and self.session_id in (None, exchange.session_id)
            and self.subject in (None, principal.subject, principal.email)
            and (self.since is None or when >= self.since)
            and (self.until is None or when < self.until)
        )


def select(found: Iterable[Found], selection: Selection) -> list[AuditRecord]:
    records = [f.record for f in found if f.record is not None and selection.matches(f.record)]
    return sorted(records, key=lambda r: (r.time.ToNanoseconds(), r.record_id))


@dataclass(frozen=True)
class Shown:
    record: AuditRecord
    verified: bool  # a valid checkpoint signature covers the record as it is


def checked(records: Iterable[AuditRecord], report: Report | None) -> list[Shown]:
    """`report`: verify's over the whole set the records come from; None without keys."""
    return [Shown(r, report is not None and report.verifies(r)) for r in records]


def warning(shown: list[Shown], keys_given: bool) -> str | None:
    """One line to say, before the records, what of them is not verified."""
    if not keys_given:
        return (
            "warning: no --public-key given: these records are not verified; they may be "
            "forged or altered"
        )
    unverified = sum(not s.verified for s in shown)
    if not unverified:
        return None
    return (
        f"warning: {unverified} of the {len(shown)} records shown are NOT VERIFIED: no valid "
        "checkpoint signature covers them (forged, altered, or not signed yet); "
        "`custos audit verify` says what is wrong"
    )


def as_json(shown: Iterable[Shown]) -> Iterator[str]:
    """One JSON object per line: the record's proto3 JSON form, and `verified`."""
    for item in shown:
        data = json_format.MessageToDict(item.record, preserving_proto_field_name=True)
        yield json.dumps(data | {"verified": item.verified}, sort_keys=True)


def as_text(shown: Iterable[Shown], marked: bool = True) -> Iterator[str]:
    """`marked`: flag each record not verified (without keys, the warning says it once).

    Every string from a record is shown with its control characters escaped: a body (or
    any field) is what a client, a server or a forger wrote, and a newline or terminal
    escape in it would print lines that look like records, or hide the mark."""
    for item in shown:
        lines = _text(item.record)
        if marked and not item.verified:
            lines[0] = f"NOT VERIFIED  {lines[0]}"
        yield from lines


def _text(record: AuditRecord) -> list[str]:
    exchange = record.exchange
    who = exchange.principal.subject or "(no identity)"
    if exchange.principal.email:
        who += f" <{exchange.principal.email}>"
    calls = ", ".join(
        c.method + (f" {c.tool or c.name}" if c.tool or c.name else "") for c in exchange.calls
    )
    decision = exchange.decision
    lines = [
        f"{record.time.ToJsonString()}  {who}  {exchange.http_method} {exchange.http_path}"
        f"  {calls or '-'}",
        f"  request {exchange.request_id}  session {exchange.session_id or '-'}"
        f"  record {record.record_id}",
        f"  decision {decision.effect or 'none'} ({decision.code or '-'}, rule "
        f"{decision.rule or '-'})  status {exchange.status}  {exchange.outcome}",
    ]
    if exchange.masking.counts:
        masked = ", ".join(f"{k} {v}" for k, v in sorted(exchange.masking.counts.items()))
        lines.append(f"  masked {masked}")
    lines += [f"  > {_shown(exchange.request)}", f"  < {_shown(exchange.response)}"]
    return [printable(line) for line in lines]


def _shown(body: object) -> str:
    text = getattr(body, "text", "")
    size = getattr(body, "size", 0)
    if not size:
        return "(empty)"
    if not text:
        return f"({size} bytes, not kept)"
    cut = getattr(body, "truncated", False)
    return text + (f" ... ({size} bytes in all)" if cut else "")
