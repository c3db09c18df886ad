"""The ext_authz configuration file as an operator writes it: every mistake is refused when
the file loads, with a message naming the file and the key to fix, and the settings that
weaken security (plain-HTTP IdPs off loopback, `none` or HMAC algorithms) cannot be
configured at all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from custos.errors import ConfigError
from custos.policy.reloader import PolicyReloader
from extauthz.config import load_config
from extauthz.upstream_credential import CredentialSource

EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "policy.yaml"

VALID: dict[str, Any] = {
    "policy": "policy.yaml",
    "resource_metadata_url": "https://mcp.example/.well-known/oauth-protected-resource",
    "issuers": [{"issuer": "https://idp.example", "audience": "custos"}],
}


def with_changes(path: str, value: Any) -> dict[str, Any]:
    """VALID with one dotted-path key set (integer parts index lists)."""
    config = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return config


def write(tmp_path: Path, content: dict[str, Any] | str, name: str = "authz.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def issuer(**fields: Any) -> list[dict[str, Any]]:
    return [{"issuer": "https://idp.example", "audience": "custos", **fields}]


# (id, file content, fragments the error must contain besides the file's path)
BAD_CONFIGS: list[tuple[str, dict[str, Any] | str, list[str]]] = [
    (
        "unknown top-level key",
        with_changes("polcy", "typo.yaml"),
        ["polcy", "Extra inputs are not permitted"],
    ),
    (
        "unknown issuer key",
        with_changes("issuers", issuer(audiance="x")),
        ["issuers.0.audiance", "Extra inputs are not permitted"],
    ),
    (
        "issuer over plain http off loopback",
        with_changes("issuers.0.issuer", "http://idp.example"),
        ["issuers.0.issuer", "must be https"],
    ),
    (
        "issuer on a host that only starts like loopback",
        with_changes("issuers.0.issuer", "http://127.0.0.1.evil.example"),
        ["issuers.0.issuer", "must be https"],
    ),
    (
        "issuer with loopback as userinfo",
        with_changes("issuers.0.issuer", "http://127.0.0.1@evil.example"),
        ["issuers.0.issuer", "must be https"],
    ),
    (
        "discovery_url over plain http off loopback",
        with_changes("issuers", issuer(discovery_url="http://idp.example/.well-known/x")),
        ["issuers.0.discovery_url", "must be https"],
    ),
    (
        "algorithms with HS256",
        with_changes("issuers", issuer(algorithms=["RS256", "HS256"])),
        ["issuers.0.algorithms.1", "Input should be 'RS256'"],
    ),
    (
        "algorithms with none",
        with_changes("issuers", issuer(algorithms=["none"])),
        ["issuers.0.algorithms.0", "Input should be 'RS256'"],
    ),
    (
        "jwks_refetch_interval_seconds 0",
        with_changes("issuers", issuer(jwks_refetch_interval_seconds=0)),
        ["issuers.0.jwks_refetch_interval_seconds", "greater than or equal to 1"],
    ),
    (
        "upstream_credential with both file and env",
        with_changes("upstream_credential", {"file": "token", "env": "UPSTREAM_TOKEN"}),
        ["upstream_credential", "set exactly one of 'file' or 'env'"],
    ),
    (
        "upstream_credential with neither file nor env",
        with_changes("upstream_credential", {"header": "x-upstream-token"}),
        ["upstream_credential", "set exactly one of 'file' or 'env'"],
    ),
    (
        "upstream_credential header in uppercase",
        with_changes("upstream_credential", {"env": "UPSTREAM_TOKEN", "header": "X-Token"}),
        ["upstream_credential.header", "should match pattern"],
    ),
    (
        "identity header name in uppercase",
        with_changes("identity_headers", {"subject": "X-Custos-Subject"}),
        ["identity_headers.subject", "should match pattern"],
    ),
    (
        "identity header name with spaces",
        with_changes("identity_headers", {"groups": "x custos groups"}),
        ["identity_headers.groups", "should match pattern"],
    ),
    (
        "max_json_depth 100",
        with_changes("max_json_depth", 100),
        ["max_json_depth", "less than or equal to 32"],
    ),
    (
        "the same issuer twice",
        with_changes("issuers", issuer() + issuer(audience="other")),
        ["issuers", "each issuer may be configured once"],
    ),
    (
        "no issuer",
        with_changes("issuers", []),
        ["issuers", "at least 1 item"],
    ),
    (
        "missing policy",
        {k: v for k, v in VALID.items() if k != "policy"},
        ["policy", "Field required"],
    ),
    (
        "a list instead of a mapping",
        "- policy: policy.yaml\n",
        ["(top level)", "valid dictionary"],
    ),
    (
        "an empty file",
        "",
        ["(top level)", "valid dictionary"],
    ),
    (
        "not YAML",
        "policy: [unclosed\n",
        ["not valid YAML", "line 1"],
    ),
]


@pytest.mark.parametrize(
    ("content", "fragments"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_refused_naming_file_and_key(
    tmp_path: Path, content: dict[str, Any] | str, fragments: list[str]
) -> None:
    path = write(tmp_path, content)

    with pytest.raises(ConfigError) as exc_info:
        load_config(path)

    message = str(exc_info.value)
    # The message starts with the file: an operator with several sidecars knows which.
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError, match="cannot read") as exc_info:
        load_config(path)

    assert str(exc_info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example",
        "https://idp.example:8443/realms/clinic",
        "http://127.0.0.1:5556",
        "http://localhost:5556",
        "http://[::1]:5556",
    ],
)
def test_https_or_loopback_issuer_is_accepted(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, with_changes("issuers.0.issuer", url)))

    assert config.issuers[0].issuer == url
    assert config.issuers[0].discovery == f"{url}/.well-known/openid-configuration"


def test_relative_paths_resolve_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sidecar's working directory is whatever the container runtime chose; paths in
    # the file must mean the same thing wherever it is started from.
    config_dir = tmp_path / "etc" / "custos"
    (config_dir / "secrets").mkdir(parents=True)
    (config_dir / "policy.yaml").write_bytes(EXAMPLE_POLICY.read_bytes())
    (config_dir / "secrets" / "upstream-token").write_text("s3cret\n")
    content = with_changes("upstream_credential", {"file": "secrets/upstream-token"})
    path = write(config_dir, content)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(path)

    assert config.policy == config_dir / "policy.yaml"
    assert config.upstream_credential is not None
    assert config.upstream_credential.file == config_dir / "secrets" / "upstream-token"
    # And the services built from it find the files from the unrelated working directory.
    assert len(PolicyReloader(config.policy).policy.rules) > 0
    assert CredentialSource(config.upstream_credential).header_value() == "Bearer s3cret"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    token = tmp_path / "token"
    content = with_changes("policy", str(EXAMPLE_POLICY))
    content["upstream_credential"] = {"file": str(token)}
    config_dir = tmp_path / "conf"
    config_dir.mkdir()

    config = load_config(write(config_dir, content))

    assert config.policy == EXAMPLE_POLICY
    assert config.upstream_credential is not None
    assert config.upstream_credential.file == token
