"""The policy engine as an operator meets it: load errors that point at the broken line,
deny-wins precedence, batches, fail-closed runtime errors, and reload that never loses
the last good policy."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from custos.errors import PolicyError
from custos.policy import (
    DEFAULT_DENY,
    HttpRequest,
    Identity,
    McpCall,
    Policy,
    PolicyInput,
    decide,
    load_policy,
    parse_policy,
)
from custos.policy.explain import render
from custos.policy.reloader import PolicyReloader

EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "policy.yaml"

ALICE = Identity(
    issuer="https://issuer.example",
    subject="alice",
    email="alice@example.org",
    groups=("phi-readers",),
    claims={"org": {"unit": "cardiology", "site": {"id": "north"}}, "level": 3},
)


def _policy(*rules: tuple[str, str, str]) -> Policy:
    """A policy from (name, when, effect) triples; `when` is quoted so any CEL fits."""
    body = "".join(
        f"  - name: {name}\n    when: {when!r}\n    effect: {effect}\n"
        for name, when, effect in rules
    )
    return parse_policy("rules:\n" + body, source="test.yaml")


def _input(
    *calls: McpCall,
    identity: Identity = ALICE,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> PolicyInput:
    extra: dict[str, Any] = {} if now is None else {"now": now}
    return PolicyInput(
        identity=identity,
        request=HttpRequest(method=method, path="/mcp", headers=headers or {}),
        calls=calls,
        is_batch=len(calls) > 1,
        **extra,
    )


def _tool(tool: str, call_id: int = 1, **arguments: Any) -> McpCall:
    return McpCall(method="tools/call", id=call_id, tool=tool, name=tool, arguments=arguments)


# --- load errors -----------------------------------------------------------------------

# Each bad file and the fragments of the error an operator needs to find and fix it.
# The file is always written as policy.yaml, so "policy.yaml:N:" is file and line.
BAD_POLICIES: list[tuple[str, str, list[str]]] = [
    (
        "typo in a field name",
        """
        rules:
          - name: readers
            when: "'phi-readers' in identity.grups"
            effect: allow
        """,
        ["policy.yaml:3:", "rule 'readers'", "undefined field 'grups'", "when 1:26"],
    ),
    (
        "undeclared variable",
        """
        rules:
          - name: readers
            when: "'phi-readers' in user.groups"
            effect: allow
        """,
        ["policy.yaml:3:", "rule 'readers'", "undeclared reference to 'user.groups'"],
    ),
    (
        "expression is not a bool",
        """
        rules:
          - name: who
            when: identity.subject
            effect: allow
        """,
        ["policy.yaml:3:", "rule 'who'", "'when' must be a bool expression", "it is STRING"],
    ),
    (
        "CEL syntax error",
        """
        rules:
          - name: half
            when: "mcp.tool =="
            effect: deny
        """,
        ["policy.yaml:3:", "rule 'half'", "Syntax error", "when 1:12"],
    ),
    (
        "error in the second, multi-line rule",
        """
        rules:
          - name: fine
            when: "mcp.method == 'tools/list'"
            effect: allow
          - name: broken
            when: >-
              mcp.method == 'tools/call'
              && mcp.tol == 'search_patients'
            effect: allow
        """,
        ["policy.yaml:6:", "rule 'broken'", "undefined field 'tol'"],
    ),
    (
        "rule name used twice",
        """
        rules:
          - name: readers
            when: "true"
            effect: allow
          - name: readers
            when: "false"
            effect: deny
        """,
        ["policy.yaml:5:", "rule 'readers'", "used twice"],
    ),
    (
        "rule takes the reserved name",
        """
        rules:
          - name: default-deny
            when: "true"
            effect: allow
        """,
        ["policy.yaml:2:", "rule 'default-deny'", "reserved"],
    ),
    (
        "unknown field",
        """
        rules:
          - name: readers
            when: "true"
            effect: allow
            priority: 10
        """,
        ["policy.yaml:5:", "rule 'readers'", "priority", "Extra inputs are not permitted"],
    ),
    (
        "unknown effect",
        """
        rules:
          - name: readers
            when: "true"
            effect: permit
        """,
        ["policy.yaml:4:", "rule 'readers'", "effect", "'allow' or 'deny'"],
    ),
    (
        "rule without when",
        """
        rules:
          - name: readers
            effect: allow
        """,
        ["policy.yaml:2:", "rule 'readers'", "when", "Field required"],
    ),
    (
        "no rules at all",
        """
        rules: []
        """,
        ["policy.yaml:", "rules", "at least 1"],
    ),
    (
        "not YAML",
        """
        rules: [
          - name: readers
        """,
        ["policy.yaml:", "not valid YAML"],
    ),
    (
        "a list instead of a mapping",
        """
        - name: readers
          when: "true"
          effect: allow
        """,
        ["policy.yaml:", "(top level)"],
    ),
]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [pytest.param(text, fragments, id=name) for name, text, fragments in BAD_POLICIES],
)
def test_bad_policy_is_refused_with_a_pointed_error(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_every_broken_rule_is_reported_not_just_the_first(tmp_path: Path) -> None:
    # An operator fixing a file should see all the problems in one `policy check`.
    path = tmp_path / "policy.yaml"
    path.write_text(
        "rules:\n"
        "  - name: one\n    when: \"identity.grups == ''\"\n    effect: allow\n"
        "  - name: two\n    when: \"mcp.tol == ''\"\n    effect: deny\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert "policy.yaml:3: rule 'one'" in message
    assert "policy.yaml:6: rule 'two'" in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nowhere\.yaml: cannot read policy file"):
        load_policy(tmp_path / "nowhere.yaml")


def test_example_policy_loads_with_digest_of_the_file() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    written = yaml.safe_load(EXAMPLE_POLICY.read_text())["rules"]
    assert [r.name for r in policy.rules] == [r["name"] for r in written]
    # The digest lands in audit records; it must identify the exact file bytes.
    assert policy.digest == hashlib.sha256(EXAMPLE_POLICY.read_bytes()).hexdigest()


# --- precedence ------------------------------------------------------------------------

ALLOW_ALL = ("everyone", "true", "allow")
DENY_DELETE = ("no-delete", "mcp.tool == 'delete_patient'", "deny")


@pytest.mark.parametrize(
    "rules", [(ALLOW_ALL, DENY_DELETE), (DENY_DELETE, ALLOW_ALL)], ids=["allow-first", "deny-first"]
)
def test_a_matching_deny_wins_over_an_allow_whatever_the_order(
    rules: tuple[tuple[str, str, str], ...],
) -> None:
    decision = decide(_policy(*rules), _input(_tool("delete_patient")))
    assert (decision.effect, decision.rule, decision.denied_call) == ("deny", "no-delete", 0)
    assert not decision.allowed


def test_a_matching_allow_allows_when_no_deny_matches() -> None:
    decision = decide(_policy(ALLOW_ALL, DENY_DELETE), _input(_tool("search_patients")))
    assert (decision.effect, decision.rule, decision.denied_call) == ("allow", "everyone", None)
    assert decision.allowed


def test_nothing_matching_is_denied_by_default() -> None:
    policy = _policy(("listers", "mcp.method == 'tools/list'", "allow"))
    decision = decide(policy, _input(_tool("search_patients")))
    assert (decision.effect, decision.rule) == ("deny", DEFAULT_DENY)


# --- batches ---------------------------------------------------------------------------

BATCH_POLICY_RULES = (
    ("search", "mcp.tool == 'search_patients'", "allow"),
    ("read", "mcp.tool == 'get_patient_record'", "allow"),
    DENY_DELETE,
)


def test_batch_of_allowed_calls_is_allowed_naming_each_rule_once() -> None:
    policy = _policy(*BATCH_POLICY_RULES)
    calls = (
        _tool("search_patients", 1),
        _tool("get_patient_record", 2),
        _tool("search_patients", 3),
    )
    decision = decide(policy, _input(*calls))
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
    calls = [_tool(tool, index + 1) for index, tool in enumerate(tools)]
    decision = decide(_policy(*BATCH_POLICY_RULES), _input(*calls))
    assert (decision.effect, decision.rule, decision.denied_call) == ("deny", rule, denied_call)


def test_rules_see_the_batch_size() -> None:
    policy = _policy(("small-batches", "mcp.batch_size <= 2", "allow"))
    assert decide(policy, _input(_tool("a", 1), _tool("b", 2))).allowed
    assert not decide(policy, _input(_tool("a", 1), _tool("b", 2), _tool("c", 3))).allowed


# --- runtime errors fail closed --------------------------------------------------------

LIMIT_OVER_5 = "mcp.arguments.limit > 5.0"


def test_erroring_allow_rule_does_not_match() -> None:
    # limit is absent, so the expression errors; an allow must not follow from that.
    policy = _policy(("big-searches", LIMIT_OVER_5, "allow"))
    assert decide(policy, _input(_tool("search_patients", limit=10))).allowed  # rule works
    decision = decide(policy, _input(_tool("search_patients")))
    assert (decision.effect, decision.rule) == ("deny", DEFAULT_DENY)


def test_erroring_allow_rule_leaves_the_decision_to_the_other_rules() -> None:
    policy = _policy(("big-searches", LIMIT_OVER_5, "allow"), ALLOW_ALL)
    decision = decide(policy, _input(_tool("search_patients")))
    assert (decision.effect, decision.rule) == ("allow", "everyone")


def test_erroring_deny_rule_denies() -> None:
    policy = _policy(("cap-limit", LIMIT_OVER_5, "deny"), ALLOW_ALL)
    assert decide(policy, _input(_tool("search_patients", limit=1))).allowed  # rule works
    decision = decide(policy, _input(_tool("search_patients")), explain=True)
    assert (decision.effect, decision.rule) == ("deny", "cap-limit")
    outcome = decision.calls[0].results[0]
    assert (outcome.rule, outcome.outcome) == ("cap-limit", "error")
    assert "limit" in outcome.error  # explain must say what was missing


# --- what rules can see ----------------------------------------------------------------


def test_now_is_the_decision_time() -> None:
    before_2000 = _policy(("old", "now < timestamp('2000-01-01T00:00:00Z')", "allow"))
    assert decide(before_2000, _input(_tool("x"))).rule == DEFAULT_DENY  # now is 2000+
    past = dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert decide(before_2000, _input(_tool("x"), now=past)).allowed


def test_nested_claims_are_reachable() -> None:
    cardiology_north = _policy(
        (
            "cardiology-north",
            "identity.claims.org.unit == 'cardiology' && identity.claims.org.site.id == 'north'"
            " && identity.claims.level >= 3",
            "allow",
        )
    )
    assert decide(cardiology_north, _input(_tool("x"))).allowed
    south = Identity("https://issuer.example", "bob", claims={"org": {"unit": "cardiology"}})
    assert not decide(cardiology_north, _input(_tool("x"), identity=south)).allowed


def test_identity_fields_are_bound() -> None:
    policy = _policy(
        (
            "alice",
            "identity.issuer == 'https://issuer.example' && identity.subject == 'alice'"
            " && identity.email == 'alice@example.org' && 'phi-readers' in identity.groups",
            "allow",
        )
    )
    assert decide(policy, _input(_tool("x"))).allowed


def test_request_headers_are_reachable() -> None:
    policy = _policy(
        ("acme", "'x-tenant' in request.headers && request.headers['x-tenant'] == 'acme'", "allow")
    )
    assert decide(policy, _input(_tool("x"), headers={"x-tenant": "acme"})).allowed
    assert not decide(policy, _input(_tool("x"), headers={"x-tenant": "other"})).allowed
    assert not decide(policy, _input(_tool("x"))).allowed


def test_mcp_call_fields_are_bound() -> None:
    policy = _policy(
        ("read-notes", "mcp.method == 'resources/read' && mcp.uri.startsWith('notes://')", "allow"),
        ("prompt", "mcp.method == 'prompts/get' && mcp.name == 'summary'", "allow"),
        ("notify", "mcp.is_notification && mcp.method.startsWith('notifications/')", "allow"),
    )
    read = McpCall(method="resources/read", id=1, uri="notes://pt-1")
    prompt = McpCall(method="prompts/get", id=2, name="summary")
    note = McpCall(method="notifications/initialized", is_notification=True)
    assert [decide(policy, _input(c)).rule for c in (read, prompt, note)] == [
        "read-notes",
        "prompt",
        "notify",
    ]
    other_uri = McpCall(method="resources/read", id=1, uri="file:///etc/passwd")
    assert decide(policy, _input(other_uri)).rule == DEFAULT_DENY


def test_get_without_a_body_sees_an_empty_mcp() -> None:
    # The SSE stream (GET) and session end (DELETE) carry no JSON-RPC; rules must still
    # be able to tell them apart from a call, and a call rule must not match them.
    policy = _policy(
        ("stream", "request.method == 'GET' && mcp.method == '' && mcp.batch_size == 0", "allow"),
        ("list", "mcp.method == 'tools/list'", "allow"),
    )
    assert decide(policy, _input(method="GET")).rule == "stream"
    delete = decide(policy, _input(method="DELETE"))
    assert (delete.effect, delete.rule, delete.denied_call) == ("deny", DEFAULT_DENY, 0)


# --- explain ---------------------------------------------------------------------------


def test_explain_evaluates_every_rule_and_reports_each_outcome() -> None:
    policy = _policy(
        ("cap-limit", LIMIT_OVER_5, "deny"),
        DENY_DELETE,
        ("search", "mcp.tool == 'search_patients'", "allow"),
        ALLOW_ALL,
    )
    call = _tool("search_patients")
    quick = decide(policy, _input(call))
    explained = decide(policy, _input(call), explain=True)
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
    policy = _policy(*BATCH_POLICY_RULES)
    calls = (_tool("delete_patient", 1), _tool("search_patients", 2))
    decision = decide(policy, _input(*calls), explain=True)
    # Without explain the second call is never looked at; with it, it is.
    assert [(c.effect, c.rule) for c in decision.calls] == [
        ("deny", "no-delete"),
        ("allow", "search"),
    ]
    assert (decision.effect, decision.denied_call) == ("deny", 0)
    assert len(decide(policy, _input(*calls)).calls) == 1


# --- reload ----------------------------------------------------------------------------

GOOD_V1 = (
    "rules:\n  - name: readers\n    when: \"'phi-readers' in identity.groups\"\n    effect: allow\n"
)
BROKEN = (
    "rules:\n  - name: readers\n    when: \"'phi-readers' in identity.grups\"\n    effect: allow\n"
)
GOOD_V2 = 'rules:\n  - name: nobody\n    when: "false"\n    effect: allow\n'


def _rewrite(path: Path, text: str) -> None:
    """Replace the file and push its mtime forward, so the change is seen even where the
    filesystem's timestamp resolution would hide two writes in the same tick."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    later = before + 2_000_000_000
    os.utime(path, ns=(later, later))


def test_reloader_keeps_the_last_good_policy_when_the_new_file_is_broken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_V1)
    events: list[bool] = []
    reloader = PolicyReloader(path, on_reload=events.append)
    first = reloader.policy.digest
    assert reloader.check() is False  # nothing changed
    assert events == []

    _rewrite(path, BROKEN)
    with caplog.at_level(logging.ERROR, logger="custos.policy.reloader"):
        assert reloader.check() is False
    assert reloader.policy.digest == first
    assert decide(reloader.policy, _input(_tool("x"))).rule == "readers"  # still serving
    assert events == [False]
    assert any("refused" in r.getMessage() and "grups" in r.getMessage() for r in caplog.records)
    assert reloader.check() is False  # the same broken file is not refused again
    assert events == [False]

    _rewrite(path, GOOD_V2)
    assert reloader.check() is True
    assert events == [False, True]
    assert reloader.policy.digest == hashlib.sha256(GOOD_V2.encode()).hexdigest()
    assert decide(reloader.policy, _input(_tool("x"))).rule == DEFAULT_DENY


def test_reloader_refuses_to_start_on_a_broken_file(tmp_path: Path) -> None:
    # There is no last good policy to fall back on, so the sidecar must not start.
    path = tmp_path / "policy.yaml"
    path.write_text(BROKEN)
    with pytest.raises(PolicyError, match="grups"):
        PolicyReloader(path)


def test_reloader_survives_the_file_disappearing(tmp_path: Path) -> None:
    # A ConfigMap update briefly removes the file; that is a refusal, not a crash.
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_V1)
    events: list[bool] = []
    reloader = PolicyReloader(path, on_reload=events.append)
    first = reloader.policy.digest
    path.unlink()
    assert reloader.check() is False
    assert (reloader.policy.digest, events) == (first, [False])
    path.write_text(GOOD_V2)
    assert reloader.check() is True
    assert events == [False, True]


async def test_watch_picks_up_a_change(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_V1)
    reloaded = asyncio.Event()
    reloader = PolicyReloader(path, on_reload=lambda ok: reloaded.set() if ok else None)
    watcher = asyncio.create_task(reloader.watch(interval=0.01))
    try:
        _rewrite(path, GOOD_V2)
        async with asyncio.timeout(2):
            await reloaded.wait()
    finally:
        watcher.cancel()
    assert [r.name for r in reloader.policy.rules] == ["nobody"]


def test_deny_rules_ending_in_a_comment_still_deny() -> None:
    # Deny rules are also evaluated OR-ed together; a trailing CEL comment must not
    # swallow what follows it there.
    policy = _policy(
        ("no-delete", "mcp.tool == 'delete_patient' // destructive", "deny"),
        ("no-export", "mcp.tool == 'export' // bulk PHI", "deny"),
        ALLOW_ALL,
    )
    assert decide(policy, _input(_tool("export"))).rule == "no-export"
    assert decide(policy, _input(_tool("delete_patient"))).rule == "no-delete"
    assert decide(policy, _input(_tool("search_patients"))).rule == "everyone"


# --- size and nesting limits -------------------------------------------------------------

# Each deny rule compiles alone, but OR-ed together they pass CEL's 100,000-codepoint
# expression limit, so the one-evaluation shortcut cannot be built for this policy.
LONG_LITERAL_LENGTH = 60_000
LONG_DENY_RULES = (
    ("no-export", f"mcp.tool == '{'a' * LONG_LITERAL_LENGTH}' || mcp.tool == 'export'", "deny"),
    (
        "no-delete",
        f"mcp.tool == '{'b' * LONG_LITERAL_LENGTH}' || mcp.tool == 'delete_patient'",
        "deny",
    ),
    ALLOW_ALL,
)


def _policy_text(*rules: tuple[str, str, str]) -> str:
    """The YAML `_policy` parses, for tests that need it in a file."""
    return "rules:\n" + "".join(
        f"  - name: {name}\n    when: {when!r}\n    effect: {effect}\n"
        for name, when, effect in rules
    )


def _assert_long_deny_rules_decide(policy: Policy) -> None:
    assert decide(policy, _input(_tool("delete_patient"))).rule == "no-delete"
    assert decide(policy, _input(_tool("export"))).rule == "no-export"
    assert decide(policy, _input(_tool("b" * LONG_LITERAL_LENGTH))).rule == "no-delete"
    search = decide(policy, _input(_tool("search_patients")))
    assert (search.effect, search.rule) == ("allow", "everyone")


def test_deny_rules_too_long_to_combine_are_evaluated_one_by_one(tmp_path: Path) -> None:
    assert sum(len(when) for _, when, effect in LONG_DENY_RULES if effect == "deny") > 100_000
    path = tmp_path / "policy.yaml"
    path.write_text(_policy_text(*LONG_DENY_RULES))

    policy = load_policy(path)

    # Proves the fallback is what decides below, not the combined expression.
    assert policy.any_deny is None
    _assert_long_deny_rules_decide(policy)


def test_policy_nested_past_the_parser_stack_is_a_policy_error(tmp_path: Path) -> None:
    # A RecursionError escaping here would crash `custos policy check`; in the reloader
    # it would be logged as "unexpected" instead of naming the file's problem.
    text = "rules: " + "[" * 100_000
    with pytest.raises(PolicyError, match=r"^deep\.yaml: nested too deeply"):
        parse_policy(text, source="deep.yaml")

    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"policy\.yaml: "):
        load_policy(path)


def test_reloader_moves_onto_deny_rules_too_long_to_combine(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_V1)
    events: list[bool] = []
    reloader = PolicyReloader(path, on_reload=events.append)

    _rewrite(path, _policy_text(*LONG_DENY_RULES))

    assert reloader.check() is True
    assert events == [True]
    assert [r.name for r in reloader.policy.rules] == ["no-export", "no-delete", "everyone"]
    _assert_long_deny_rules_decide(reloader.policy)
    assert reloader.check() is False  # unchanged since
