"""Prometheus metrics of the ext_authz service. Labels are bounded sets (effects, rule
names from the policy, stable error codes, configured issuers), never request data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from custos.reloading import ReloadCounter
from extauthz.pipeline import Verdict


class AuthzMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter(
            "custos_authz_decisions",
            "Authorization decisions by effect, deciding rule and code.",
            ["effect", "rule", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "custos_authz_decision_seconds",
            "Time to decide one request, token verification included.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0),
            registry=self.registry,
        )
        self.jwks_fetches = Counter(
            "custos_jwks_fetches",
            "JWKS refreshes by issuer and result.",
            ["issuer", "result"],
            registry=self.registry,
        )
        self.record_policy_reload = ReloadCounter("policy", self.registry)

    def record_verdict(self, verdict: Verdict) -> None:
        effect = "allow" if verdict.allowed else "deny"
        self.decisions.labels(effect, verdict.rule, verdict.code).inc()
        self.latency.observe(verdict.elapsed)

    def record_jwks_fetch(self, issuer: str, ok: bool) -> None:
        self.jwks_fetches.labels(issuer, "ok" if ok else "failed").inc()
