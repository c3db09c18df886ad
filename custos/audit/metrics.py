"""The writer's figures, in the registry of the service it writes for."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "custos_audit_records",
            "Audit records by what became of them: written, refused_full (the request was "
            "refused: spool full), dropped_full (served without a record: when_full: serve).",
            ["event"],
            registry=registry,
        )

    def event(self, name: str) -> None:
        self.records.labels(name).inc()
