"""Prometheus metrics of the ext_proc service. Labels are entity types and stable error
codes, never values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from extproc.engine import MaskReport


class MaskingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.masked = Counter(
            "custos_masked_values",
            "Values masked in answers, by entity type.",
            ["entity"],
            registry=self.registry,
        )
        self.refused = Counter(
            "custos_masking_refusals",
            "Answers refused because they could not be masked, by code.",
            ["code"],
            registry=self.registry,
        )

    def record(self, report: MaskReport) -> None:
        for entity, count in report.counts.items():
            self.masked.labels(entity).inc(count)

    def record_refusal(self, code: str) -> None:
        self.refused.labels(code).inc()
