"""The checked-in generated code must be what `make protos` makes from each .proto.

Policy rules are type-checked against the generated descriptors, so a .proto edit that
was never regenerated would make `custos policy check` judge rules by the old fields; and
audit records written by stale code would not carry the fields the .proto promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each .proto and the package its code is generated into (the Makefile's `protos` target).
PROTOS = {"policy_context": "custos/policy", "audit": "custos/audit"}
GENERATED = [(name, f"{name}_pb2{suffix}") for name in PROTOS for suffix in (".py", ".pyi")]


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
            *(f"protos/{name}.proto" for name in PROTOS),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@pytest.mark.parametrize(("proto", "name"), GENERATED)
def test_checked_in_code_matches_the_proto(regenerated: Path, proto: str, name: str) -> None:
    fresh = (regenerated / name).read_text()
    where = f"{PROTOS[proto]}/{name}"
    assert (ROOT / where).read_text() == fresh, f"{where} is stale: run `make protos`"


def test_cel_environment_declares_every_message_of_the_proto() -> None:
    # A message added to the .proto but not declared as a variable is dead weight, and a
    # variable naming a message that is not in the .proto would not load at all.
    from custos.policy import policy_context_pb2 as pb
    from custos.policy.environment import VARIABLES

    declared = {f"{pb.DESCRIPTOR.package}.{m}" for m in pb.DESCRIPTOR.message_types_by_name}
    assert set(VARIABLES.values()) == declared
