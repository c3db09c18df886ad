"""The chart's pod, played on this machine: the configuration the chart renders, written
where its volumes would be, and the processes its containers would run, started from the
installed package with real Envoy, the demo MCP server, a local OIDC issuer and a local
Cloud Logging API. A token call is served (masked, with the sidecar's credential
upstream), a call without a token is refused (the `helm test` hook's own check), a rule
changed in the ConfigMap takes effect without a restart, and every exchange reaches Cloud
Logging as a verified record."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from custos.audit.entries import from_cloud_logging
from custos.audit.signing import generate_key_pair, load_public_keys
from custos.audit.verify import verify
from custos.cloud_logging.emulator import Emulator
from custos.dev_issuer import DevIssuer
from custos.net import free_ports
from custos.stack import DEMO_SERVER
from tests.chart.chart import FULLNAME, VALUE_SETS, merged, render
from tests.chart.pod import PlayedPod, played, probe_passes, until_probe_passes
from tests.issuer_server import IssuerServer
from tests.stack_fixture import MCP_HEADERS

AUDIENCE = "patients-mcp"
UPSTREAM_TOKEN = "sidecar-credential-for-the-mcp-server"
PORT_NAMES = (
    "envoy", "envoyAdmin", "envoyReady", "extauthz", "extauthzMetrics", "extauthzHealth",
    "extproc", "extprocMetrics", "extprocHealth", "shipperMetrics", "shipperHealth",
)  # fmt: skip


def pod_values(issuer: str, emulator: Emulator, header_log: Path) -> dict[str, Any]:
    envoy, mcp, *others = free_ports(len(PORT_NAMES) + 1)
    ports = dict(zip(PORT_NAMES, [envoy, *others], strict=True))
    return merged(
        VALUE_SETS["inline-rules"],
        {
            "listenAddress": "127.0.0.1",
            "publicUrl": f"http://127.0.0.1:{envoy}",
            "oidc": {"issuers": [{"issuer": issuer, "audience": AUDIENCE}]},
            "ports": ports,
            "mcpServer": {
                "port": mcp,
                "command": [sys.executable, str(DEMO_SERVER)],
                "args": ["--port", str(mcp)],
                "env": [{"name": "DEMO_MCP_HEADER_LOG", "value": str(header_log)}],
            },
            "cloudLogging": {"endpoint": emulator.endpoint},
            "audit": {"checkpointEverySeconds": 2},
        },
    )


@dataclass
class Scene:
    pod: PlayedPod
    issuer: DevIssuer
    public_key: Path

    def token(self, subject: str) -> str:
        return self.issuer.mint(subject, ["phi-readers"], audience=AUDIENCE)


@contextlib.asynccontextmanager
async def playing(
    tmp_path: Path, emulator: Emulator, changes: dict[str, Any] | None = None, name: str = "pod"
) -> AsyncIterator[Scene]:
    """The pod with its Secrets as an installer would create them (the signing key made
    for the test, never a checked-in one). Played again in the same directory under
    another name, it is the same release's pod coming back: same Secrets, same claims."""
    if not (tmp_path / "signing.pem").exists():
        generate_key_pair(tmp_path / "signing.pem", tmp_path / "signing.pub")
    secrets = {
        "custos-signing-key": {"private.pem": (tmp_path / "signing.pem").read_text()},
        "patients-mcp-token": {"token": UPSTREAM_TOKEN},
        "custos-pseudonym-key": {"pseudonym-key": "pseudonyms-for-this-test"},
    }
    with IssuerServer(audience=AUDIENCE) as issuer:
        values = merged(pod_values(issuer.url, emulator, tmp_path / "headers.log"), changes or {})
        pod = PlayedPod(render(values), tmp_path / name, secrets, claims=tmp_path / "claims")
        async with played(pod):
            yield Scene(pod, issuer.issuer, tmp_path / "signing.pub")


@pytest.fixture
async def scene(tmp_path: Path, emulator: Emulator) -> AsyncIterator[Scene]:
    async with playing(tmp_path, emulator) as played_scene:
        yield played_scene


def url(pod: PlayedPod) -> str:
    return f"http://127.0.0.1:{url_port(pod)}/mcp"


async def call_tool(pod: PlayedPod, bearer: str, tool: str, **arguments: Any) -> Any:
    headers = {"authorization": f"Bearer {bearer}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url(pod), http_client=http), read_timeout_seconds=10) as c,
    ):
        return await c.call_tool(tool, arguments)


async def test_a_token_call_is_served_and_one_without_is_refused(scene: Scene) -> None:
    pod, token = scene.pod, scene.token("alice")
    result = await call_tool(pod, token, "get_patient_record", patient_id="pt-0001")
    assert not result.is_error
    answer = str(result.structured_content)
    # pt-0001 of the demo: masked by the example rules the chart was given inline.
    for phi in ("Fakenham", "MRN-100001", "900-12-3456", "1984-03-12"):
        assert phi not in answer
    assert "[NAME:" in answer
    # The MCP server got the sidecar's credential, never the client's token.
    header_log = Path(pod.rendered.values["mcpServer"]["env"][0]["value"])
    headers = await asyncio.to_thread(header_log.read_text)
    assert f"Bearer {UPSTREAM_TOKEN}" in headers
    assert token not in headers

    async with httpx.AsyncClient() as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        refused = await client.post(url(pod), json=body, headers=MCP_HEADERS)
    assert refused.status_code == 401
    metadata = f"{pod.rendered.values['publicUrl']}/.well-known/oauth-protected-resource"
    assert f'resource_metadata="{metadata}"' in refused.headers["www-authenticate"]


def test_the_helm_test_hook_passes_against_the_pod_and_fails_on_what_it_guards(
    scene: Scene,
) -> None:
    pod = scene.pod
    hook = pod.rendered.one("Pod", f"{FULLNAME}-test")["spec"]["containers"][0]
    assert hook["command"][0] == "python"
    argv = [sys.executable, *hook["command"][1:]]
    env = {e["name"]: e["value"] for e in hook["env"]}

    def run(**changes: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env={**env, **changes}, capture_output=True, text=True, timeout=60
        )

    # The pod's address, as the headless Service would give it: this machine's own
    # non-loopback address, on which the loopback-bound processes do not answer.
    passed = run(CUSTOS_URL=url(pod), CUSTOS_PODS=outside_address())
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "refused a call without a token: 401" in passed.stdout
    assert "answer on loopback only" in passed.stdout
    # The MCP server itself, with no Custos in front: the call is not refused.
    bare = run(CUSTOS_URL=f"http://127.0.0.1:{pod.mcp_port}/mcp", CUSTOS_PODS="127.0.0.1")
    assert bare.returncode == 1 and "not 401" in bare.stderr, bare.stderr
    # A pod address on which the MCP server answers: it must not.
    exposed = run(CUSTOS_URL=url(pod), CUSTOS_PODS="127.0.0.1")
    assert exposed.returncode == 1, exposed.stdout + exposed.stderr
    assert f"127.0.0.1:{pod.mcp_port} answers on the pod's address" in exposed.stderr


def outside_address() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = str(probe.getsockname()[0])
    except OSError:
        address = ""
    finally:
        probe.close()
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    return address


async def test_envoy_is_ready_only_while_the_mcp_server_answers(scene: Scene) -> None:
    pod = scene.pod
    envoy = next(c for c in pod.spec["initContainers"] if c["name"] == "envoy")
    ready = {**envoy["readinessProbe"], "httpGet": {"path": "/healthz", "port": url_port(pod)}}
    await until_probe_passes(ready)
    await pod.supervisor.stop("mcp-server")
    deadline = time.monotonic() + 10
    while await probe_passes(ready):
        assert time.monotonic() < deadline, "still ready 10 s after the MCP server stopped"
        await asyncio.sleep(0.2)
    # Envoy itself is still up: started and alive, so the kubelet does not restart it.
    assert await probe_passes(envoy["livenessProbe"])


def url_port(pod: PlayedPod) -> int:
    return int(pod.rendered.values["ports"]["envoy"])


async def test_a_rule_changed_in_the_configmap_takes_effect_without_a_restart(
    scene: Scene,
) -> None:
    pod, token = scene.pod, scene.token("alice")
    assert not (await call_tool(pod, token, "search_patients", query="smith")).is_error
    started = {name: child.process.pid for name, child in pod.supervisor.children.items()}

    values = pod.rendered.values
    policy = dict(values["rules"]["policy"])
    # Readers may now read a record they name, but no longer search.
    policy["rules"] = [
        {**rule, "when": rule["when"].replace("'search_patients', ", "")}
        if rule["name"] == "readers-read-patients"
        else rule
        for rule in policy["rules"]
    ]
    edited = render(merged(values, {"rules": {"policy": policy}}))
    pod.update_config_map(f"{FULLNAME}-rules", edited.one("ConfigMap", f"{FULLNAME}-rules")["data"])

    deadline = time.monotonic() + 15
    while True:
        try:
            result = await call_tool(pod, token, "search_patients", query="smith")
            refused = result.is_error
        except* MCPError:  # 403, raised from inside the client's task group
            refused = True
        if refused:
            break
        assert time.monotonic() < deadline, "the edited rule did not take effect in 15 s"
        await asyncio.sleep(0.5)
    # The same processes: reloaded, not restarted.
    assert {n: c.process.pid for n, c in pod.supervisor.children.items()} == started

    # A rules file that does not load is refused; the last good rules stay active.
    data = edited.one("ConfigMap", f"{FULLNAME}-rules")["data"]
    pod.update_config_map(f"{FULLNAME}-rules", {**data, "policy.yaml": "rules: [ {name: broken"})
    await asyncio.sleep(2.5)
    assert not (await call_tool(pod, token, "get_patient_record", patient_id="pt-0001")).is_error
    with pytest.raises(BaseExceptionGroup):
        await call_tool(pod, token, "search_patients", query="smith")
    assert "policy reload refused" in pod.output()


async def test_every_exchange_reaches_cloud_logging_verified(
    tmp_path: Path, emulator: Emulator
) -> None:
    async with playing(tmp_path, emulator) as scene:
        for patient in ("pt-0001", "pt-0002"):
            await call_tool(scene.pod, scene.token("bob"), "get_patient_record", patient_id=patient)
        async with httpx.AsyncClient() as client:
            await client.post(url(scene.pod), json={"jsonrpc": "2.0"}, headers=MCP_HEADERS)
    # The pod has stopped: the shipper, stopped last, shipped the others' final records.
    project = scene.pod.rendered.values["cloudLogging"]["project"]
    found = list(from_cloud_logging(project, "custos-audit", emulator.endpoint))
    report = verify(found, load_public_keys([scene.public_key]))
    assert report.findings == [], (report.chains, scene.pod.output())
    writers = {summary.writer.split("-", 1)[0] for summary in report.chains.values()}
    assert writers == {"extauthz", "extproc"}
    assert all(summary.closed for summary in report.chains.values())
    exchanges = [f.record.exchange for f in found if f.record and f.record.HasField("exchange")]
    # Per call: initialize, the initialized notification, tools/call, the session's end;
    # and the refused call without a token.
    assert len(exchanges) >= 2 * 3 + 1
    assert 401 in {e.status for e in exchanges}


async def test_a_persistent_spool_keeps_records_through_an_outage_and_a_deleted_pod(
    tmp_path: Path, emulator: Emulator
) -> None:
    """Cloud Logging refuses every write while the pod serves, and the pod is deleted: its
    records wait on its volume, and reach Cloud Logging when the pod comes back."""
    persistent = {"audit": {"spool": {"volume": "persistentVolumeClaim"}}}
    emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=None)
    async with playing(tmp_path, emulator, persistent, name="first") as first:
        assert first.pod.rendered.workload["kind"] == "StatefulSet"
        for patient in ("pt-0001", "pt-0002", "pt-0003"):
            await call_tool(
                first.pod, first.token("carol"), "get_patient_record", patient_id=patient
            )
    project = first.pod.rendered.values["cloudLogging"]["project"]
    assert list(from_cloud_logging(project, "custos-audit", emulator.endpoint)) == []

    emulator.clear_faults()
    async with playing(tmp_path, emulator, persistent, name="again") as again:
        deadline = time.monotonic() + 20
        while not _calls_by(project, emulator, "carol"):
            assert time.monotonic() < deadline, "the first pod's records did not arrive"
            await asyncio.sleep(0.2)
    found = list(from_cloud_logging(project, "custos-audit", emulator.endpoint))
    report = verify(found, load_public_keys([again.public_key]))
    assert report.findings == [], again.pod.output()
    assert len(_calls_by(project, emulator, "carol")) == 3


def _calls_by(project: str, emulator: Emulator, subject: str) -> list[str]:
    found = from_cloud_logging(project, "custos-audit", emulator.endpoint)
    return [
        f.record.exchange.request_id
        for f in found
        if f.record is not None
        and f.record.HasField("exchange")
        and f.record.exchange.principal.subject == subject
        and any(c.method == "tools/call" for c in f.record.exchange.calls)
    ]
