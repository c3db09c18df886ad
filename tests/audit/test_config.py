"""The audit configuration file's `shipping.log_name`: held at load to the Logging API's
rule for a log id (under 512 characters), not found out at the first write, when every
record would be refused and set aside in quarantine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from custos.audit.config import load_audit_config
from custos.errors import ConfigError


def write(tmp_path: Path, log_name: str) -> Path:
    path = tmp_path / "audit.yaml"
    shipping = {"project": "custos-test", "log_name": log_name}
    content = {"spool_dir": "spool", "signing_key": "audit.pem", "shipping": shipping}
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.mark.parametrize(
    "log_name",
    ["custos-audit", "custos/audit", "Custos_audit.v2", "a" * 511],
    ids=["default", "slash", "marks", "511 characters"],
)
def test_a_log_name_the_api_takes_loads(tmp_path: Path, log_name: str) -> None:
    shipping = load_audit_config(write(tmp_path, log_name)).shipping

    assert shipping is not None
    assert shipping.log_name == log_name


@pytest.mark.parametrize(
    "log_name",
    ["a" * 512, "", "custos audit", "custos-audité", "custos%2Faudit", "custos-audit\n"],
    ids=["512 characters", "empty", "space", "non-ASCII", "percent", "trailing newline"],
)
def test_a_log_name_the_api_refuses_is_refused_at_load(tmp_path: Path, log_name: str) -> None:
    path = write(tmp_path, log_name)

    with pytest.raises(ConfigError) as exc_info:
        load_audit_config(path)

    message = str(exc_info.value)
    assert message.startswith(f"{path}: shipping.log_name: ")
    assert "1 to 511 letters, digits, '/', '_', '-' or '.' only" in message


def test_the_log_name_defaults_to_the_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("spool_dir: spool\nsigning_key: audit.pem\nshipping: {project: custos-test}\n")

    shipping = load_audit_config(path).shipping

    assert shipping is not None
    assert shipping.log_name == "custos-audit"
