"""Policy deciding: precedence, batches, fail-closed evaluation, what rules see, explain."""

from __future__ import annotations

import datetime as dt

import pytest

from custos.policy import (
    DEFAULT_DENY,
    Identity,
    McpCall,
    decide,
)
from custos.policy.explain import render
from tests.policy.support import (
    ALLOW_ALL,
    DENY_DELETE,
    input_of,
    policy_of,
    tool_call,
)

# --- precedence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules", [(ALLOW_ALL, DENY_DELETE), (DENY_DELETE, ALLOW_ALL)], ids=["allow-first", "deny-first"]
)
def test_a_matching_deny_wins_over_an_allow_whatever_the_order(
    rules: tuple[tuple[str, str, str], ...],
) -> None:
    decision = decide(policy_of(*rules), input_of(tool_call("delete_patient")))
    assert (decision.effect, decision.rule, decision.denied_call) == ("deny", "no-delete", 0)
    assert not decision.allowed


def test_a_matching_allow_allows_when_no_deny_matches() -> None:
    decision = decide(policy_of(ALLOW_ALL, DENY_DELETE), input_of(tool_call("search_patients")))
    assert (decision.effect, decision.rule, decision.denied_call) == ("allow", "everyone", None)
    assert decision.allowed


def test_nothing_matching_is_denied_by_default() -> None:
    policy = policy_of(("listers", "mcp.method == 'tools/list'", "allow"))
    decision = decide(policy, input_of(tool_call("search_patients")))
    assert (decision.effect, decision.rule) == ("deny", DEFAULT_DENY)


# --- batches ---------------------------------------------------------------------------

BATCH_POLICY_RULES = (
    ("search", "mcp.tool == 'search_patients'", "allow"),
    ("read", "mcp.tool == 'get_patient_record'", "allow"),
    DENY_DELETE,
)


def test_batch_of_allowed_calls_is_allowed_naming_each_rule_once() -> None:
    policy = policy_of(*BATCH_POLICY_RULES)
    calls = (
        tool_call("search_patients", 1),
        tool_call("get_patient_record", 2),
        tool_call("search_patients", 3),
    )
    decision = decide(policy, input_of(*calls))
    assert (decision.effect, decision.rule, decision.denied_call) == ("allow", "search,read", None)
    assert [c.rule for c in decision.calls] == ["search", "read", "search"]


@pytest.mark.parametrize(
    ("tools", "denied_call", "rule"),
    [
        (["search_patients", "delete_patient", "get_patient_record"], 1, "no-delete"),
        (["search_patients", "get_patient_record", "export_everything"], 2, DEFAULT_DENY),
    ],
    ids=["deny-rule", "default-deny"],
)
def test_batch_with_one_denied_call_is_denied_whole(
    tools: list[str], denied_call: int, rule: str
) -> None:
    calls = [tool_call(tool, index + 1) for index, tool in enumerate(tools)]
    decision = decide(policy_of(*BATCH_POLICY_RULES), input_of(*calls))
    assert (decision.effect, decision.rule, decision.denied_call) == ("deny", rule, denied_call)


def test_rules_see_the_batch_size() -> None:
    policy = policy_of(("small-batches", "mcp.batch_size <= 2", "allow"))
    assert decide(policy, input_of(tool_call("a", 1), tool_call("b", 2))).allowed
    assert not decide(
        policy, input_of(tool_call("a", 1), tool_call("b", 2), tool_call("c", 3))
    ).allowed


# --- runtime errors fail closed --------------------------------------------------------

LIMIT_OVER_5 = "mcp.arguments.limit > 5.0"


def test_erroring_allow_rule_does_not_match() -> None:
    # limit is absent, so the expression errors; an allow must not follow from that.
    policy = policy_of(("big-searches", LIMIT_OVER_5, "allow"))
    assert decide(policy, input_of(tool_call("search_patients", limit=10))).allowed  # rule works
    decision = decide(policy, input_of(tool_call("search_patients")))
    assert (decision.effect, decision.rule) == ("deny", DEFAULT_DENY)


def test_erroring_allow_rule_leaves_the_decision_to_the_other_rules() -> None:
    policy = policy_of(("big-searches", LIMIT_OVER_5, "allow"), ALLOW_ALL)
    decision = decide(policy, input_of(tool_call("search_patients")))
    assert (decision.effect, decision.rule) == ("allow", "everyone")


def test_erroring_deny_rule_denies() -> None:
    policy = policy_of(("cap-limit", LIMIT_OVER_5, "deny"), ALLOW_ALL)
    assert decide(policy, input_of(tool_call("search_patients", limit=1))).allowed  # rule works
    decision = decide(policy, input_of(tool_call("search_patients")), explain=True)
    assert (decision.effect, decision.rule) == ("deny", "cap-limit")
    outcome = decision.calls[0].results[0]
    assert (outcome.rule, outcome.outcome) == ("cap-limit", "error")
    assert "limit" in outcome.error  # explain must say what was missing


# --- what rules can see ----------------------------------------------------------------


def test_now_is_the_decision_time() -> None:
    before_2000 = policy_of(("old", "now < timestamp('2000-01-01T00:00:00Z')", "allow"))
    assert decide(before_2000, input_of(tool_call("x"))).rule == DEFAULT_DENY  # now is 2000+
    past = dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert decide(before_2000, input_of(tool_call("x"), now=past)).allowed


def test_nested_claims_are_reachable() -> None:
    cardiology_north = policy_of(
        (
            "cardiology-north",
            "identity.claims.org.unit == 'cardiology' && identity.claims.org.site.id == 'north'"
            " && identity.claims.level >= 3",
            "allow",
        )
    )
    assert decide(cardiology_north, input_of(tool_call("x"))).allowed
    south = Identity("https://issuer.example", "bob", claims={"org": {"unit": "cardiology"}})
    assert not decide(cardiology_north, input_of(tool_call("x"), identity=south)).allowed


def test_identity_fields_are_bound() -> None:
    policy = policy_of(
        (
            "alice",
            "identity.issuer == 'https://issuer.example' && identity.subject == 'alice'"
            " && identity.email == 'alice@example.org' && 'phi-readers' in identity.groups",
            "allow",
        )
    )
    assert decide(policy, input_of(tool_call("x"))).allowed


def test_request_headers_are_reachable() -> None:
    policy = policy_of(
        ("acme", "'x-tenant' in request.headers && request.headers['x-tenant'] == 'acme'", "allow")
    )
    assert decide(policy, input_of(tool_call("x"), headers={"x-tenant": "acme"})).allowed
    assert not decide(policy, input_of(tool_call("x"), headers={"x-tenant": "other"})).allowed
    assert not decide(policy, input_of(tool_call("x"))).allowed


def test_mcp_call_fields_are_bound() -> None:
    policy = policy_of(
        ("read-notes", "mcp.method == 'resources/read' && mcp.uri.startsWith('notes://')", "allow"),
        ("prompt", "mcp.method == 'prompts/get' && mcp.name == 'summary'", "allow"),
        ("notify", "mcp.is_notification && mcp.method.startsWith('notifications/')", "allow"),
    )
    read = McpCall(method="resources/read", id=1, uri="notes://pt-1")
    prompt = McpCall(method="prompts/get", id=2, name="summary")
    note = McpCall(method="notifications/initialized", is_notification=True)
    assert [decide(policy, input_of(c)).rule for c in (read, prompt, note)] == [
        "read-notes",
        "prompt",
        "notify",
    ]
    other_uri = McpCall(method="resources/read", id=1, uri="file:///etc/passwd")
    assert decide(policy, input_of(other_uri)).rule == DEFAULT_DENY


def test_get_without_a_body_sees_an_empty_mcp() -> None:
    # The SSE stream (GET) and session end (DELETE) carry no JSON-RPC; rules must still
    # be able to tell them apart from a call, and a call rule must not match them.
    policy = policy_of(
        ("stream", "request.method == 'GET' && mcp.method == '' && mcp.batch_size == 0", "allow"),
        ("list", "mcp.method == 'tools/list'", "allow"),
    )
    assert decide(policy, input_of(method="GET")).rule == "stream"
    delete = decide(policy, input_of(method="DELETE"))
    assert (delete.effect, delete.rule, delete.denied_call) == ("deny", DEFAULT_DENY, 0)


# --- explain ---------------------------------------------------------------------------


def test_explain_evaluates_every_rule_and_reports_each_outcome() -> None:
    policy = policy_of(
        ("cap-limit", LIMIT_OVER_5, "deny"),
        DENY_DELETE,
        ("search", "mcp.tool == 'search_patients'", "allow"),
        ALLOW_ALL,
    )
    call = tool_call("search_patients")
    quick = decide(policy, input_of(call))
    explained = decide(policy, input_of(call), explain=True)
    # Same verdict either way; only explain evaluates and reports every rule.
    assert (quick.effect, quick.rule) == (explained.effect, explained.rule) == ("deny", "cap-limit")
    assert quick.calls[0].results == ()
    assert [(r.rule, r.effect, r.outcome) for r in explained.calls[0].results] == [
        ("cap-limit", "deny", "error"),
        ("no-delete", "deny", "no-match"),
        ("search", "allow", "match"),
        ("everyone", "allow", "match"),
    ]
    text = render("a search without limit", explained)
    assert text.startswith("a search without limit: DENY by cap-limit")
    assert "ERROR (fails closed)" in text
    assert "no-delete" in text and "everyone" in text


def test_explain_of_a_batch_reports_every_call() -> None:
    policy = policy_of(*BATCH_POLICY_RULES)
    calls = (tool_call("delete_patient", 1), tool_call("search_patients", 2))
    decision = decide(policy, input_of(*calls), explain=True)
    # Without explain the second call is never looked at; with it, it is.
    assert [(c.effect, c.rule) for c in decision.calls] == [
        ("deny", "no-delete"),
        ("allow", "search"),
    ]
    assert (decision.effect, decision.denied_call) == ("deny", 0)
    assert len(decide(policy, input_of(*calls)).calls) == 1


def test_deny_rules_ending_in_a_comment_still_deny() -> None:
    # Deny rules are also evaluated OR-ed together; a trailing CEL comment must not
    # swallow what follows it there.
    policy = policy_of(
        ("no-delete", "mcp.tool == 'delete_patient' // destructive", "deny"),
        ("no-export", "mcp.tool == 'export' // bulk PHI", "deny"),
        ALLOW_ALL,
    )
    assert decide(policy, input_of(tool_call("export"))).rule == "no-export"
    assert decide(policy, input_of(tool_call("delete_patient"))).rule == "no-delete"
    assert decide(policy, input_of(tool_call("search_patients"))).rule == "everyone"
