"""The chart's Envoy bootstrap is the project's envoy/bootstrap.yaml, filled in: the same
bytes custos.envoy_config renders for the same settings, and real Envoy accepts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from custos.envoy_config import EnvoySettings, render_bootstrap
from tests.chart.chart import CHART, VALUE_SETS, helm, merged, render, required_values
from tests.processes import run


def test_the_chart_reads_the_projects_bootstrap() -> None:
    linked = CHART / "files" / "envoy-bootstrap.yaml"
    assert linked.is_symlink()
    assert linked.resolve() == (CHART.parents[1] / "envoy" / "bootstrap.yaml").resolve()


def test_a_packaged_chart_carries_the_bootstrap_itself(tmp_path: Path) -> None:
    """`helm package` follows the link: the archive holds the file, not a dangling link."""
    archive = Path(helm.package(CHART, destination=tmp_path))
    packaged = helm.Chart.load_archive(archive.read_bytes())
    files = {f["name"]: f for f in packaged.files}
    assert "files/envoy-bootstrap.yaml" in files
    rendered = packaged.render(VALUE_SETS["defaults"], name="clinic", namespace="mcp")
    assert "static_resources:" in rendered["custos/templates/configmap.yaml"]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {
            "publicUrl": "https://mcp.clinic.example:8443/tenant-a/",
            "mcpServer": {"port": 3000, "path": "/v1/mcp"},
            "ports": {"envoy": 10000, "envoyReady": 10002, "extauthz": 10011},
            "envoy": {
                "authzTimeoutMs": 750,
                "extprocTimeoutMs": 12005,
                "maxRequestBytes": 4194304,
                "streamIdleTimeoutSeconds": 900,
                "requestTimeoutSeconds": 45,
                "connectionIdleTimeoutSeconds": 120,
                "drainTimeoutSeconds": 9,
                "maxHeapBytes": 134217728,
            },
        },
    ],
    ids=["defaults", "changed"],
)
def test_the_rendered_bootstrap_equals_the_local_one(changes: dict[str, object]) -> None:
    values = merged(VALUE_SETS["inline-rules"], changes)
    chart = render(values).config_file("envoy.yaml")
    envoy, ports = values.get("envoy", {}), {
        "envoy": 8080, "envoyAdmin": 9901, "envoyReady": 9902, "extauthz": 9001, "extproc": 9003,
        **values.get("ports", {}),
    }  # fmt: skip
    mcp = {"port": 8000, "path": "/mcp", **values["mcpServer"]}
    local = render_bootstrap(
        EnvoySettings(
            listen_address="0.0.0.0",
            listen_port=ports["envoy"],
            admin_port=ports["envoyAdmin"],
            ready_port=ports["envoyReady"],
            authz_port=ports["extauthz"],
            extproc_port=ports["extproc"],
            upstream_port=mcp["port"],
            mcp_path=mcp["path"],
            authz_timeout_ms=envoy.get("authzTimeoutMs", 2000),
            extproc_timeout_ms=envoy.get("extprocTimeoutMs", 5000),
            max_request_bytes=envoy.get("maxRequestBytes", 1_048_576),
            stream_idle_timeout_s=envoy.get("streamIdleTimeoutSeconds", 300),
            request_timeout_s=envoy.get("requestTimeoutSeconds", 60),
            connection_idle_timeout_s=envoy.get("connectionIdleTimeoutSeconds", 300),
            drain_timeout_s=envoy.get("drainTimeoutSeconds", 5),
            max_heap_bytes=envoy.get("maxHeapBytes", 160 * 1_048_576),
            public_url=str(values["publicUrl"]).rstrip("/"),
            authorization_servers=tuple(i["issuer"] for i in values["oidc"]["issuers"]),
        )
    )
    assert chart.rstrip("\n") == local.rstrip("\n")


@pytest.mark.parametrize("name", ["defaults", "inline-rules"])
def test_envoy_accepts_the_rendered_bootstrap(name: str, tmp_path: Path) -> None:
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(render(VALUE_SETS[name]).config_file("envoy.yaml"))
    # Through the image's envoy role, as the chart's envoy container starts it.
    result = run("envoy", f"--config={bootstrap}", "--", "--mode", "validate")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def test_envoy_refuses_a_broken_bootstrap(tmp_path: Path) -> None:
    text = render(required_values()).config_file("envoy.yaml")
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(text.replace("cluster: mcp_server", "cluster: no_such_cluster"))
    result = run("envoy", f"--config={bootstrap}", "--", "--mode", "validate")
    assert result.returncode != 0
