"""Policy reloading, and policies at the edges of size and nesting."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from custos.errors import PolicyError
from custos.policy import (
    DEFAULT_DENY,
    Policy,
    decide,
    load_policy,
    parse_policy,
)
from custos.policy.reloader import PolicyReloader
from tests.configmap import ConfigMapMount, rewrite
from tests.policy.support import (
    ALLOW_ALL,
    input_of,
    tool_call,
)

# --- reload ----------------------------------------------------------------------------

GOOD_V1 = (
    "rules:\n  - name: readers\n    when: \"'phi-readers' in identity.groups\"\n    effect: allow\n"
)
BROKEN = (
    "rules:\n  - name: readers\n    when: \"'phi-readers' in identity.grups\"\n    effect: allow\n"
)
GOOD_V2 = 'rules:\n  - name: nobody\n    when: "false"\n    effect: allow\n'


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

    rewrite(path, BROKEN)
    with caplog.at_level(logging.ERROR, logger="custos.policy.reloader"):
        assert reloader.check() is False
    assert reloader.policy.digest == first
    assert decide(reloader.policy, input_of(tool_call("x"))).rule == "readers"  # still serving
    assert events == [False]
    assert any("refused" in r.getMessage() and "grups" in r.getMessage() for r in caplog.records)
    assert reloader.check() is False  # the same broken file is not refused again
    assert events == [False]

    rewrite(path, GOOD_V2)
    assert reloader.check() is True
    assert events == [False, True]
    assert reloader.policy.digest == hashlib.sha256(GOOD_V2.encode()).hexdigest()
    assert decide(reloader.policy, input_of(tool_call("x"))).rule == DEFAULT_DENY


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
        rewrite(path, GOOD_V2)
        async with asyncio.timeout(2):
            await reloaded.wait()
    finally:
        watcher.cancel()
    assert [r.name for r in reloader.policy.rules] == ["nobody"]


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
    assert decide(policy, input_of(tool_call("delete_patient"))).rule == "no-delete"
    assert decide(policy, input_of(tool_call("export"))).rule == "no-export"
    assert decide(policy, input_of(tool_call("b" * LONG_LITERAL_LENGTH))).rule == "no-delete"
    search = decide(policy, input_of(tool_call("search_patients")))
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

    rewrite(path, _policy_text(*LONG_DENY_RULES))

    assert reloader.check() is True
    assert events == [True]
    assert [r.name for r in reloader.policy.rules] == ["no-export", "no-delete", "everyone"]
    _assert_long_deny_rules_decide(reloader.policy)
    assert reloader.check() is False  # unchanged since


# --- Kubernetes ConfigMap updates ----------------------------------------------------------

SAME_SIZE_AS_V1 = GOOD_V1.replace("phi-readers", "phi-writers")


def test_reloader_follows_a_configmap_update(tmp_path: Path) -> None:
    # policy.yaml -> ..data/policy.yaml, ..data -> ..2026_11_26_01: the kubelet repoints
    # ..data, so the symlink the reloader was given never changes, only what it reaches.
    mount = ConfigMapMount(tmp_path / "config", {"policy.yaml": GOOD_V1})
    events: list[bool] = []
    reloader = PolicyReloader(mount.path("policy.yaml"), on_reload=events.append)
    assert reloader.check() is False

    mount.update({"policy.yaml": SAME_SIZE_AS_V1})  # same size, same mtime: a new inode
    assert reloader.check() is True
    assert events == [True]
    assert "'phi-writers' in identity.groups" in reloader.policy.rules[0].when

    mount.update({"policy.yaml": BROKEN})
    assert reloader.check() is False
    assert events == [True, False]
    assert "'phi-writers' in identity.groups" in reloader.policy.rules[0].when
