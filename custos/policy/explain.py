"""`custos policy explain`: a decision with every rule's outcome, for humans."""

from __future__ import annotations

from custos.policy.engine import Decision

_MARKS = {"match": "matched", "no-match": "no match", "error": "ERROR (fails closed)"}


def render(title: str, decision: Decision) -> str:
    lines = [f"{title}: {decision.effect.upper()} by {decision.rule}"]
    for index, call in enumerate(decision.calls):
        if len(decision.calls) > 1:
            lines.append(f"  call {index}: {call.effect} by {call.rule}")
        for result in call.results:
            detail = f": {result.error}" if result.error else ""
            lines.append(
                f"    {result.effect:<5} {result.rule:<32} {_MARKS[result.outcome]}{detail}"
            )
    lines.append("  precedence: a matching deny wins; else a matching allow; else default-deny")
    return "\n".join(lines)
