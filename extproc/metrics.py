"""Prometheus metrics of the ext_proc service. Labels are entity types and stable error
codes, never values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from custos.reloading import ReloadCounter
from extproc.masking.engine import MaskReport


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
        self.record_masking_reload = ReloadCounter("masking", self.registry)
        # ext_proc's own copy of the policy, which hides the tools/list entries it refuses.
        self.record_policy_reload = ReloadCounter("policy", self.registry)
        self.latency = Histogram(
            "custos_extproc_message_seconds",
            "Time to answer one ext_proc message, by its kind (a body's includes masking).",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def handled(self, kind: str, seconds: float) -> None:
        self.latency.labels(kind).observe(seconds)

    def record(self, report: MaskReport) -> None:
        for entity, count in report.counts.items():
            self.masked.labels(entity).inc(count)

    def record_refusal(self, code: str) -> None:
        self.refused.labels(code).inc()
