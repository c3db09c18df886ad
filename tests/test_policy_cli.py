"""`custos policy check|test|explain` as an operator runs them: the real command line in a
subprocess, judged by exit code and what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "policy.yaml"
CASES = ROOT / "examples" / "policy_cases.yaml"


def custos(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # Output stays captured: the summary line must not reach pytest's own report.
    return subprocess.run(
        [sys.executable, "-m", "custos", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_check_accepts_the_example_policy() -> None:
    result = custos("policy", "check", POLICY)
    assert result.returncode == 0, result.stderr
    count = len(yaml.safe_load(POLICY.read_text())["rules"])
    assert re.search(rf"policy\.yaml: {count} rules OK \([0-9a-f]{{12}}\)", result.stdout)


def test_check_refuses_a_broken_policy_naming_file_line_and_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "rules:\n"
        "  - name: readers\n"
        "    when: \"'phi-readers' in identity.groups\"\n"
        "    effect: allow\n"
        "  - name: typo\n"
        "    when: \"'phi-admins' in identity.grups\"\n"
        "    effect: allow\n"
    )
    result = custos("policy", "check", broken)
    assert result.returncode == 1
    assert f"{broken}:6: rule 'typo': when 1:" in result.stderr
    assert "undefined field 'grups'" in result.stderr
    assert "Traceback" not in result.stderr  # an operator error, not a crash
    assert "OK" not in result.stdout


def test_check_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = custos("policy", "check", tmp_path / "absent.yaml")
    assert result.returncode == 1
    assert "absent.yaml: cannot read policy file" in result.stderr


def test_the_example_cases_pass_against_the_example_policy() -> None:
    result = custos("policy", "test", POLICY, CASES)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    total = len(yaml.safe_load(CASES.read_text())["cases"])
    pass_lines = [line for line in lines if line.startswith("PASS  ")]
    assert len(pass_lines) == total
    assert "PASS  a reader may not delete a patient: deny (delete-requires-admin)" in lines
    assert not any(line.startswith("FAIL") for line in lines)
    assert lines[-1] == f"{total} passed, 0 failed"


def test_a_wrong_expectation_fails_the_run(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: a reader lists tools\n"
        "    identity: {subject: alice, groups: [phi-readers]}\n"
        "    mcp: {method: tools/list}\n"
        "    expect: {effect: allow}\n"
        "  - name: readers may delete (they may not)\n"
        "    identity: {subject: alice, groups: [phi-readers]}\n"
        "    mcp: {method: tools/call, tool: delete_patient, arguments: {patient_id: p1}}\n"
        "    expect: {effect: allow, rule: admins-delete-patients}\n"
        "  - name: right effect, wrong rule\n"
        "    identity: {subject: mallory, groups: []}\n"
        "    mcp: {method: tools/list}\n"
        "    expect: {effect: deny, rule: delete-requires-admin}\n"
    )
    result = custos("policy", "test", POLICY, cases)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "PASS  a reader lists tools: allow (staff-list-tools)" in lines
    assert (
        "FAIL  readers may delete (they may not): expected allow (admins-delete-patients), "
        "got deny (delete-requires-admin)"
    ) in lines
    # The rule is part of the expectation: the right effect for the wrong reason fails.
    assert (
        "FAIL  right effect, wrong rule: expected deny (delete-requires-admin), "
        "got deny (default-deny)"
    ) in lines
    assert lines[-1] == "1 passed, 2 failed"


def test_a_malformed_cases_file_exits_1(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: no identity\n    expect: {effect: allow}\n")
    result = custos("policy", "test", POLICY, cases)
    assert result.returncode == 1
    assert "cases.yaml" in result.stderr
    assert "identity" in result.stderr


def test_explain_shows_the_deciding_rule_and_every_rule_outcome() -> None:
    result = custos(
        "policy", "explain", POLICY, "--case", CASES, "--name", "a reader may not delete a patient"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "a reader may not delete a patient: DENY by delete-requires-admin"
    outcomes = {
        tuple(line.split(None, 2)[:2]): line.split(None, 2)[2]
        for line in lines[1:]
        if line.startswith("    ")
    }
    # Every rule of the policy is listed, the deny as matched, the allows as not.
    rules = yaml.safe_load(POLICY.read_text())["rules"]
    assert outcomes == {
        (r["effect"], r["name"]): "matched" if r["name"] == "delete-requires-admin" else "no match"
        for r in rules
    }
    assert "precedence: a matching deny wins" in result.stdout


def test_explain_of_an_unknown_case_exits_1() -> None:
    result = custos("policy", "explain", POLICY, "--case", CASES, "--name", "no such case")
    assert result.returncode == 1
    assert "no case named 'no such case'" in result.stderr
