"""The image cannot be built here (no container engine), so what can be checked is: the
Dockerfile is the conventional shape the issue asks for, it runs as the user the chart
expects, it ships what the package needs, and every role the chart starts is a command
of the installed `custos` entry point (the image's ENTRYPOINT)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRY_POINT = str(Path(sys.executable).parent / "custos")
ROLES = ("envoy", "extauthz", "extproc", "shipper")


def stages() -> list[list[str]]:
    """The instructions of each stage, comments and continuations folded."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_the_image_is_built_in_stages_and_the_last_holds_no_build_tools() -> None:
    build, final = stages()
    assert build[0].endswith(" AS build")
    assert any("pip install ." in line for line in build)
    # The final stage copies the installed environment; it installs nothing itself.
    assert not [line for line in final if line.startswith("RUN") and "install" in line]
    assert any(line.startswith("COPY --from=build /opt/custos") for line in final)


def test_the_image_runs_as_the_non_root_user_the_chart_names() -> None:
    final = stages()[-1]
    user = next(line for line in final if line.startswith("USER "))
    uid, _, gid = user.removeprefix("USER ").partition(":")
    assert uid.isdigit() and int(uid) > 0, "runAsNonRoot can only check a numeric user"
    values = yaml.safe_load((ROOT / "k8s" / "custos" / "values.yaml").read_text())
    assert (int(uid), int(gid)) == (values["runAsUser"], values["runAsGroup"])
    assert final[-2:] == ['ENTRYPOINT ["custos"]', 'CMD ["--help"]']


def test_the_build_context_holds_what_the_package_build_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    allowed = [
        line[1:]
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for needed in ["pyproject.toml", project["project"]["readme"], *(f"{p}/" for p in packages)]:
        assert needed in allowed, needed
        copied = [line.split()[1:-1] for line in stages()[0] if line.startswith("COPY ")]
        assert any(needed.rstrip("/") in sources for sources in copied), needed


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_a_command_of_the_installed_entry_point(role: str) -> None:
    result = subprocess.run(
        [ENTRY_POINT, role, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage: custos " + role in result.stdout
