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

    rules: list[RuleSpec] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return rules


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
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_validation_message(exc)}") from exc
    lines = _when_lines(node)
    errors: list[str] = []
    rules: list[Rule] = []
    for index, rule in enumerate(spec.rules):
        where = f"{source}:{lines.get(index, 0)}"
        try:
            expression = ENV.compile(rule.when)
        except RuntimeError as exc:
            errors.append(f"{where}: rule {rule.name!r}: {_cel_message(str(exc))}")
            continue
        result = expression.return_type()
        if result != cel.Type.BOOL:
            errors.append(
                f"{where}: rule {rule.name!r}: 'when' must be a bool expression, "
                f"it is {result.name()}"
            )
            continue
        rules.append(Rule(rule.name, rule.description, rule.effect, rule.when, expression))
    if errors:
        raise PolicyError("\n".join(errors))
    return Policy(source=source, digest=hashlib.sha256(raw).hexdigest(), rules=tuple(rules))


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"]) or "(top level)"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def _cel_message(message: str) -> str:
    """CEL says `<input>:1:9: msg` plus a caret drawing; we keep the drawing and name
    the expression's position as `when 1:9`."""
    message = _CEL_NOISE.sub("", message.strip())
    return message.replace("<input>:", "when ", 1)


def _when_lines(root: Any) -> dict[int, int]:
    """1-based file line of each rule's `when` value, by rule index."""
    lines: dict[int, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value != "rules" or not isinstance(value, yaml.SequenceNode):
            continue
        for index, item in enumerate(value.value):
            if not isinstance(item, yaml.MappingNode):
                continue
            for rule_key, rule_value in item.value:
                if rule_key.value == "when":
                    lines[index] = rule_value.start_mark.line + 1
    return lines
