"""Every Envoy configuration the project ships is accepted by real Envoy."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from custos.envoy_config import ENVOY_DIR, EnvoySettings, envoy_binary, render_bootstrap

SHIPPED = sorted(ENVOY_DIR.glob("*.yaml"))
SETTINGS = {
    "defaults": EnvoySettings(),
    "production-like": EnvoySettings(
        listen_address="0.0.0.0",
        listen_port=8443,
        mcp_path="/v1/mcp",
        max_request_bytes=4 * 1024 * 1024,
        authz_timeout_ms=500,
        public_url="https://mcp.example.org",
        authorization_servers=("https://accounts.example.org",),
    ),
}


def test_the_project_ships_configurations() -> None:
    assert SHIPPED, f"no Envoy configuration in {ENVOY_DIR}"


@pytest.mark.parametrize("template", SHIPPED, ids=lambda p: p.name)
@pytest.mark.parametrize("name", SETTINGS)
def test_envoy_validates(template: Path, name: str, tmp_path: Path) -> None:
    rendered = tmp_path / "envoy.yaml"
    rendered.write_text(render_bootstrap(SETTINGS[name], template))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(rendered), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def connection_manager(config: dict[str, Any], listener: str) -> dict[str, Any]:
    (found,) = [x for x in config["static_resources"]["listeners"] if x["name"] == listener]
    return dict(found["filter_chains"][0]["filters"][0]["typed_config"])


def test_ext_authz_fails_closed_and_judges_the_body_whole() -> None:
    settings = EnvoySettings(max_request_bytes=2048, buffer_limit_bytes=1_048_576)
    config = yaml.safe_load(render_bootstrap(settings))
    filters = {
        f["name"]: f["typed_config"] for f in connection_manager(config, "mcp")["http_filters"]
    }
    authz = filters["envoy.filters.http.ext_authz"]
    assert authz["failure_mode_allow"] is False
    # Its bound is the exchange's buffer (the answer's too); the edge bounds the request.
    assert authz["with_request_body"] == {
        "max_request_bytes": 1_048_576,
        "allow_partial_message": False,
        "pack_as_bytes": True,
    }
    (buffer,) = [
        f["typed_config"]
        for f in connection_manager(config, "edge")["http_filters"]
        if f["name"] == "envoy.filters.http.buffer"
    ]
    assert buffer["max_request_bytes"] == 2048


def test_the_buffer_holds_at_least_a_request() -> None:
    with pytest.raises(ValidationError):
        EnvoySettings(max_request_bytes=2_000_000, buffer_limit_bytes=1_048_576)


def test_metadata_document_is_embedded_as_json() -> None:
    settings = EnvoySettings(
        public_url="https://mcp.example.org", authorization_servers=("https://idp.example",)
    )
    config = yaml.safe_load(render_bootstrap(settings))
    routes = connection_manager(config, "mcp")["route_config"]["virtual_hosts"][0]["routes"]
    body = routes[0]["direct_response"]["body"]["inline_string"]
    assert yaml.safe_load(body) == {
        "resource": "https://mcp.example.org/mcp",
        "authorization_servers": ["https://idp.example"],
        "bearer_methods_supported": ["header"],
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"listen_port": 70000},
        {"mcp_path": "mcp"},
        {"mcp_path": "/mcp\n  evil: 1"},
        {"public_url": "ftp://x"},
        {"max_request_bytes": 10},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EnvoySettings(**bad)  # type: ignore[arg-type]


def test_what_clients_reach_has_no_ext_proc_between_envoy_and_its_own_refusals() -> None:
    # Behind ext_proc, Envoy never writes the reply to a request it cannot parse
    # (envoyproxy/envoy#29440): the listener clients reach only parses and forwards, and
    # every filter of Custos stands on the internal listener behind it.
    config = yaml.safe_load(render_bootstrap(EnvoySettings()))
    edge = [f["name"] for f in connection_manager(config, "edge")["http_filters"]]
    assert edge == ["envoy.filters.http.buffer", "envoy.filters.http.router"]
    inner = [f["name"] for f in connection_manager(config, "mcp")["http_filters"]]
    assert {"envoy.filters.http.ext_authz", "envoy.filters.http.ext_proc"} <= set(inner)
    (mcp,) = [x for x in config["static_resources"]["listeners"] if x["name"] == "mcp"]
    assert "internal_listener" in mcp and "address" not in mcp
