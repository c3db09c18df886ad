"""Deciding: which rules match a request, and what the effect is.

Precedence, per MCP call: any matching `deny` wins; otherwise any matching `allow`;
otherwise deny. A batch is allowed only if every call in it is. A rule whose
expression fails at run time (a missing argument, say) fails closed: an erroring
`deny` rule counts as matched, an erroring `allow` rule as not matched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cel_expr_python import cel

from custos.policy.document import DEFAULT_DENY, Effect, Policy, Rule
from custos.policy.environment import activations
from custos.policy.inputs import PolicyInput

Outcome = Literal["match", "no-match", "error"]


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    effect: Effect
    outcome: Outcome
    error: str = ""


@dataclass(frozen=True, slots=True)
class CallDecision:
    effect: Effect
    rule: str
    results: tuple[RuleResult, ...]  # every rule when explaining, else those evaluated


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    # The deciding rule: the deny that fired (or default-deny) or, when allowed, the
    # allow rule(s) of the calls joined by ",".
    rule: str
    # Index of the denied call in a batch, for the error message and the audit record.
    denied_call: int | None
    calls: tuple[CallDecision, ...]

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"


def decide(policy: Policy, inp: PolicyInput, *, explain: bool = False) -> Decision:
    calls: list[CallDecision] = []
    denied: int | None = None
    for index, activation in enumerate(activations(inp)):
        call = _decide_call(policy, activation, explain)
        calls.append(call)
        if call.effect == "deny" and denied is None:
            denied = index
            if not explain:
                break
    if denied is not None:
        return Decision("deny", calls[denied].rule, denied, tuple(calls))
    rules = ",".join(dict.fromkeys(c.rule for c in calls))
    return Decision("allow", rules, None, tuple(calls))


def _decide_call(policy: Policy, activation: cel.Activation, explain: bool) -> CallDecision:
    results: list[RuleResult] = []
    denied_by = allowed_by = ""
    for rule in policy.deny_rules:
        result = _evaluate(rule, activation)
        results.append(result)
        if result.outcome != "no-match":
            denied_by = denied_by or rule.name
            if not explain:
                break
    if explain or not denied_by:
        for rule in policy.allow_rules:
            result = _evaluate(rule, activation)
            results.append(result)
            if result.outcome == "match":
                allowed_by = allowed_by or rule.name
                if not explain:
                    break
    if denied_by:
        return CallDecision("deny", denied_by, tuple(results))
    if allowed_by:
        return CallDecision("allow", allowed_by, tuple(results))
    return CallDecision("deny", DEFAULT_DENY, tuple(results))


def _evaluate(rule: Rule, activation: cel.Activation) -> RuleResult:
    try:
        value = rule.expression.eval(activation)
    except RuntimeError as exc:  # the runtime raises for some failures, returns others
        return RuleResult(rule.name, rule.effect, "error", str(exc))
    if value.type() != cel.Type.BOOL:
        return RuleResult(rule.name, rule.effect, "error", str(value.value()))
    return RuleResult(rule.name, rule.effect, "match" if value.value() else "no-match")
