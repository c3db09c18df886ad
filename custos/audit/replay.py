"""`custos audit replay`: the exchanges that match, in the order they happened, each as
the client saw it, with the decision and what was masked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf import json_format

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.verify import Found


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


def as_json(records: Iterable[AuditRecord]) -> Iterator[str]:
    """One JSON object per line: the record's proto3 JSON form."""
    for record in records:
        yield json.dumps(
            json_format.MessageToDict(record, preserving_proto_field_name=True), sort_keys=True
        )


def as_text(records: Iterable[AuditRecord]) -> Iterator[str]:
    for record in records:
        exchange = record.exchange
        who = exchange.principal.subject or "(no identity)"
        if exchange.principal.email:
            who += f" <{exchange.principal.email}>"
        calls = ", ".join(
            c.method + (f" {c.tool or c.name}" if c.tool or c.name else "") for c in exchange.calls
        )
        decision = exchange.decision
        yield (
            f"{record.time.ToJsonString()}  {who}  {exchange.http_method} {exchange.http_path}"
            f"  {calls or '-'}"
        )
        yield (
            f"  request {exchange.request_id}  session {exchange.session_id or '-'}"
            f"  record {record.record_id}"
        )
        yield (
            f"  decision {decision.effect or 'none'} ({decision.code or '-'}, rule "
            f"{decision.rule or '-'})  status {exchange.status}  {exchange.outcome}"
        )
        if exchange.masking.counts:
            masked = ", ".join(f"{k} {v}" for k, v in sorted(exchange.masking.counts.items()))
            yield f"  masked {masked}"
        yield f"  > {_shown(exchange.request)}"
        yield f"  < {_shown(exchange.response)}"


def _shown(body: object) -> str:
    text = getattr(body, "text", "")
    size = getattr(body, "size", 0)
    if not size:
        return "(empty)"
    if not text:
        return f"({size} bytes, not kept)"
    cut = getattr(body, "truncated", False)
    return text + (f" ... ({size} bytes in all)" if cut else "")
