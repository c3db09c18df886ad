"""Masking configurations that tests write for themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from extproc.masking.config import load_masking_config
from extproc.masking.engine import Masker


def masker_with_exception(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, when: str, entities: str, more: str = ""
) -> Masker:
    """Default rules, the demo's test SSNs accepted, and one exception: `when` (CEL)
    unmasks `entities` (a YAML list, e.g. "[ssn]"); `more` is YAML for other keys."""
    monkeypatch.setenv("CUSTOS_PSEUDONYM_KEY", "exception-test-key-0123456789")
    config = tmp_path / "masking.yaml"
    config.write_text(
        "pseudonym_key: {env: CUSTOS_PSEUDONYM_KEY}\n"
        "ssn_test_areas: true\n"
        "exceptions:\n"
        f"  - {{name: the-exception, when: {when!r}, entities: {entities}}}\n" + more
    )
    return Masker(load_masking_config(config))
