"""Policy loading: what an operator is told when a policy file does not load."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
import yaml

from custos.errors import PolicyError
from custos.policy import (
    load_policy,
)
from custos.stack import EXAMPLE_POLICY

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
