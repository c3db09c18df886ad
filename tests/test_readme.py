"""The README's configuration reference holds what the code reads: each example file loads
with the model that reads it and names every key the model has, every option of the
services' commands is documented, and every link inside the README lands on a heading.
(tests/test_newcomer.py runs the README's commands.)"""

from __future__ import annotations

import argparse
import re
import typing

import pytest
import yaml
from pydantic import BaseModel

from custos.audit.config import AuditConfig
from custos.cli import _parser
from custos.envoy_config import EnvoySettings
from extauthz.config import AuthzConfig
from extproc.masking.config import MaskingConfig
from tests.readme import README, yaml_block

SERVICES = ("extauthz", "extproc", "shipper", "envoy", "run", "token", "dev-issuer")


def keys(model: type[BaseModel]) -> set[str]:
    """Every key a file of this model may hold, nested models' included."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        found.add(name)
        pending = [field.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= keys(annotation)
            pending.extend(typing.get_args(annotation))
    return found


@pytest.mark.parametrize(
    ("name", "model"),
    [("masking.yaml", MaskingConfig), ("extauthz.yaml", AuthzConfig), ("audit.yaml", AuditConfig)],
)
def test_each_example_file_loads_and_names_every_key(name: str, model: type[BaseModel]) -> None:
    block = yaml_block(name)
    model.model_validate(yaml.safe_load(block))
    # Keys left at their default are shown commented out, so they are looked for as text.
    missing = {key for key in keys(model) if not re.search(rf"\b{key}:", block)}
    assert missing == set(), f"{name} in the README does not show {sorted(missing)}"


def test_the_envoy_settings_are_each_named() -> None:
    text = README.read_text()
    section = text[text.index("### Envoy (") : text.index("### Metrics")]
    missing = {key for key in EnvoySettings.model_fields if f"`{key}`" not in section}
    assert missing == set()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices.choices)


@pytest.mark.parametrize("command", SERVICES)
def test_every_option_of_the_services_commands_is_documented(command: str) -> None:
    text = README.read_text()
    (row,) = [line for line in text.splitlines() if line.startswith(f"| `custos {command}` |")]
    options = {
        option
        for action in subcommands(_parser())[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert {option for option in options if f"`{option}" not in row} == set()


def test_every_link_inside_the_readme_lands_on_a_heading() -> None:
    text = README.read_text()
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", prose, re.MULTILINE)
    # GitHub's anchors: lower case, punctuation but - and _ dropped, spaces made dashes.
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links - anchors == set()
