"""The checked-in policy context code must be what `make protos` makes from the .proto.

Policy rules are type-checked against the generated descriptors, so a .proto edit that
was never regenerated would make `custos policy check` judge rules by the old fields."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO = "policy_context.proto"
GENERATED = ["policy_context_pb2.py", "policy_context_pb2.pyi"]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("protos")
    # The same command as the Makefile's `protos` target, with the output redirected;
    # `python -m grpc_tools.protoc` also puts the well-known types (struct.proto) on -I.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iprotos",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"protos/{PROTO}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@pytest.mark.parametrize("name", GENERATED)
def test_checked_in_code_matches_the_proto(regenerated: Path, name: str) -> None:
    fresh = (regenerated / name).read_text()
    checked_in = (ROOT / "custos" / "policy" / name).read_text()
    assert checked_in == fresh, f"custos/policy/{name} is stale: run `make protos`"


def test_cel_environment_declares_every_message_of_the_proto() -> None:
    # A message added to the .proto but not declared as a variable is dead weight, and a
    # variable naming a message that is not in the .proto would not load at all.
    from custos.policy import policy_context_pb2 as pb
    from custos.policy.environment import VARIABLES

    declared = {f"{pb.DESCRIPTOR.package}.{m}" for m in pb.DESCRIPTOR.message_types_by_name}
    assert set(VARIABLES.values()) == declared
