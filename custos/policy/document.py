"""Loading a policy file: YAML → validated rules → compiled, type-checked CEL.

A policy that does not load is refused whole, with an error that names the file, the
line, the rule and the problem; nothing half-loaded ever decides."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from cel_expr_python import cel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from custos.errors import PolicyError
from custos.policy.environment import ENV

Effect = Literal["allow", "deny"]

# The name a decision carries when no rule matched; rules may not take it.
DEFAULT_DENY = "default-deny"

_CEL_NOISE = re.compile(r"^(?:[A-Z_]+: )?(?:ERROR: )?|\s*\[[A-Z_]+\]\s*$")


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    description: str = ""
    when: str = Field(min_length=1)
    effect: Effect

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == DEFAULT_DENY:
            raise ValueError(f"{DEFAULT_DENY!r} is reserved for 'no rule matched'")
        return name


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Unique names are checked in parse_policy, where the duplicate's line is known.
    rules: list[RuleSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str
    effect: Effect
    when: str
    expression: cel.Expression


@dataclass(frozen=True)
class Policy:
    source: str
    digest: str  # sha256 of the file, so an audit record can name the exact policy
    rules: tuple[Rule, ...]

    @cached_property
    def deny_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.effect == "deny")

    @cached_property
    def any_deny(self) -> cel.Expression | None:
        """All deny rules OR-ed, to rule out a denial in one evaluation."""
        if not self.deny_rules:
            return None
        # The newline ends any `//` comment a rule's expression closes with.
        combined = " || ".join(f"({rule.when}\n)" for rule in self.deny_rules)
        try:
            return ENV.compile(combined)
        except RuntimeError:  # past CEL's size limits: deny rules are then evaluated alone
            return None

    @cached_property
    def allow_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.effect == "allow")


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: bytes | str, source: str = "<policy>") -> Policy:
    raw = text.encode() if isinstance(text, str) else text
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise PolicyError(f"{source}: nested too deeply to be a policy") from exc
    lines = _rule_lines(node)
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_message(exc, source, lines, data)) from exc
    errors: list[str] = []
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, rule in enumerate(spec.rules):
        if rule.name in seen:
            line = lines.get(index, {}).get("name", 0)
            errors.append(f"{source}:{line}: rule {rule.name!r}: rule name is used twice")
            continue
        seen.add(rule.name)
        where = f"{source}:{lines.get(index, {}).get('when', 0)}"
        try:
            expression = compile_condition(rule.when)
        except ValueError as exc:
            errors.append(f"{where}: rule {rule.name!r}: {exc}")
            continue
        rules.append(Rule(rule.name, rule.description, rule.effect, rule.when, expression))
    if errors:
        raise PolicyError("\n".join(errors))
    policy = Policy(source=source, digest=hashlib.sha256(raw).hexdigest(), rules=tuple(rules))
    _ = policy.any_deny  # compiled now, not on the first request
    return policy


def compile_condition(when: str) -> cel.Expression:
    """A CEL condition over the policy variables, compiled and checked to be a bool;
    ValueError says where it is wrong (`when 1:9: undefined field ...`)."""
    try:
        expression = ENV.compile(when)
    except RuntimeError as exc:
        raise ValueError(_cel_message(str(exc))) from None
    result = expression.return_type()
    if result != cel.Type.BOOL:
        raise ValueError(f"'when' must be a bool expression, it is {result.name()}")
    return expression


def _validation_message(
    exc: ValidationError, source: str, lines: dict[int, dict[str, int]], data: Any
) -> str:
    """Pydantic says `rules.3.priority`; an operator wants the line and the rule's name."""
    parts = []
    for error in exc.errors():
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
            location = ".".join(str(p) for p in loc) or "(top level)"
            parts.append(f"{source}: {location}: {message}")
            continue
        index, field = loc[1], ".".join(str(p) for p in loc[2:])
        rule_lines = lines.get(index, {})
        line = rule_lines.get(str(loc[2]) if field else "", rule_lines.get("", 0))
        raw = data["rules"]  # a list, or a set from `!!set`: pydantic takes both
        raw = raw[index] if isinstance(raw, list) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        rule = f"rule {name!r}" if isinstance(name, str) else f"rule #{index + 1}"
        parts.append(f"{source}:{line}: {rule}: {field + ': ' if field else ''}{message}")
    return "\n".join(parts)


def _cel_message(message: str) -> str:
    """CEL says `<input>:1:9: msg` plus a caret drawing; we keep the drawing and name
    the expression's position as `when 1:9`."""
    message = _CEL_NOISE.sub("", message.strip())
    return message.replace("<input>:", "when ", 1)


def _rule_lines(root: Any) -> dict[int, dict[str, int]]:
    """1-based file lines of each rule, by rule index: "" the rule itself, every key's
    value (`when` is where a CEL position counts from)."""
    lines: dict[int, dict[str, int]] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value != "rules" or not isinstance(value, yaml.SequenceNode):
            continue
        for index, item in enumerate(value.value):
            lines[index] = {"": item.start_mark.line + 1}
            if not isinstance(item, yaml.MappingNode):
                continue
            for rule_key, rule_value in item.value:
                if isinstance(rule_key, yaml.ScalarNode):
                    lines[index][rule_key.value] = rule_value.start_mark.line + 1
    return lines
