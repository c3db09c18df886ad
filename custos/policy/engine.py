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
    results: tuple[RuleResult, ...] = ()  # every rule's outcome, when explaining


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
    if explain:
        return _explain_call(policy, activation)
    # Usually nothing denies: one evaluation of all deny rules OR-ed answers that. CEL's
    # `||` is true if any side is, an error if none is true and one errs: either way the
    # rules are then evaluated one by one to name the one that fired.
    any_deny = policy.any_deny
    if any_deny is None or not _is_false(any_deny.eval(activation)):
        for rule in policy.deny_rules:
            if _outcome(rule, activation) != "no-match":
                return CallDecision("deny", rule.name, ())
    for rule in policy.allow_rules:
        if _outcome(rule, activation) == "match":
            return CallDecision("allow", rule.name, ())
    return CallDecision("deny", DEFAULT_DENY, ())


def _explain_call(policy: Policy, activation: cel.Activation) -> CallDecision:
    """Every rule evaluated and reported, the same precedence applied."""
    results = tuple(RuleResult(r.name, r.effect, *_evaluate(r, activation)) for r in policy.rules)
    denied = [r.rule for r in results if r.effect == "deny" and r.outcome != "no-match"]
    allowed = [r.rule for r in results if r.effect == "allow" and r.outcome == "match"]
    if denied:
        return CallDecision("deny", denied[0], results)
    if allowed:
        return CallDecision("allow", allowed[0], results)
    return CallDecision("deny", DEFAULT_DENY, results)


def _is_false(value: cel.Value) -> bool:
    return value.type() == cel.Type.BOOL and value.value() is False


def _outcome(rule: Rule, activation: cel.Activation) -> Outcome:
    return _evaluate(rule, activation)[0]


def _evaluate(rule: Rule, activation: cel.Activation) -> tuple[Outcome, str]:
    """The rule's outcome, and the error text when it failed."""
    try:
        value = rule.expression.eval(activation)
    except RuntimeError as exc:  # the runtime raises for some failures, returns others
        return "error", str(exc)
    if value.type() != cel.Type.BOOL:
        return "error", str(value.value())
    return ("match" if value.value() else "no-match"), ""
