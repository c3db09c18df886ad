"""Policy: CEL rules that decide who may call which MCP method and tool.

Lives in `custos` so both ext_authz and ext_proc can use it."""

from custos.policy.document import DEFAULT_DENY, Policy, Rule, load_policy, parse_policy
from custos.policy.engine import CallDecision, Decision, RuleResult, decide
from custos.policy.inputs import HttpRequest, Identity, McpCall, PolicyInput

__all__ = [
    "DEFAULT_DENY",
    "CallDecision",
    "Decision",
    "HttpRequest",
    "Identity",
    "McpCall",
    "Policy",
    "PolicyInput",
    "Rule",
    "RuleResult",
    "decide",
    "load_policy",
    "parse_policy",
]
