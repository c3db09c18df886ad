"""The health-only ports that the kubelet's probes reach on the pod IP: each service, run
as `custos ...` would run it in its container, answers `grpc.health.v1.Health` there from
the same statuses as its main port, and serves nothing else there."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from custos.audit.signing import generate_key_pair
from custos.audit.writer import AuditWriter
from custos.children import Child, Supervisor
from custos.cloud_logging.emulator import Emulator
from custos.health import serve_health
from custos.net import free_ports
from custos.stack import EXAMPLE_MASKING, EXAMPLE_POLICY
from extauthz.server import SERVICE_NAME as AUTHZ_SERVICE
from extproc.server import SERVICE_NAME as EXTPROC_SERVICE
from extproc.server import serving_while_recording
from tests.audit.support import audit_config
from tests.extproc.test_audit_recording import fill_spool
from tests.extproc.test_servicer import json_headers
from tests.processes import custos

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PSEUDONYM_KEY = {"CUSTOS_PSEUDONYM_KEY": "health-test-key-0123456789"}


async def status(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


async def serving(port: int, service: str = "") -> bool:
    """Whether the port says SERVING within a few seconds: it opens before the service
    is ready, and says NOT_SERVING until then."""
    return await says(port, SERVING, service, within=10)


async def says(port: int, wanted: int, service: str = "", *, within: float) -> bool:
    """Whether the port says `wanted` within `within` seconds, asked every 50 ms."""
    async with asyncio.timeout(within):
        while True:
            if await status(port, service) == wanted:
                return True
            await asyncio.sleep(0.05)


async def watch_until_closed(port: int, stopping: Child) -> list[int]:
    """The statuses a Watch on "" sees from before the child gets SIGTERM to its end."""
    seen: list[int] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        call = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=15)
        try:
            async for reply in call:
                seen.append(int(reply.status))
                if len(seen) == 1:
                    stopping.process.send_signal(signal.SIGTERM)
        except grpc.aio.AioRpcError as exc:
            # The server goes away after its grace; the stream ends with it.
            assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, seen
    return seen


async def test_ext_authz_answers_probes_on_its_health_port_and_nothing_else(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    main, metrics, health_port, nobody = free_ports(4)
    config = tmp_path / "extauthz.yaml"
    settings = {
        "listen": f"127.0.0.1:{main}",
        "metrics_listen": f"127.0.0.1:{metrics}",
        "health_listen": f"127.0.0.1:{health_port}",
        "policy": str(EXAMPLE_POLICY),
        # Nothing listens there: its keys are not needed to answer probes.
        "issuers": [{"issuer": f"http://127.0.0.1:{nobody}", "audience": "custos-tests"}],
        "resource_metadata_url": "http://127.0.0.1/.well-known/oauth-protected-resource",
    }
    config.write_text(yaml.safe_dump(settings))
    await supervisor.spawn("ext_authz", custos("extauthz", "--config", config), health_port)

    for service in ("", AUTHZ_SERVICE):
        assert await serving(health_port, service)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await authz_grpc.AuthorizationStub(channel).Check(authz.CheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    async with grpc.aio.insecure_channel(f"127.0.0.1:{main}") as channel:
        answered = await authz_grpc.AuthorizationStub(channel).Check(
            authz.CheckRequest(), timeout=5
        )
    assert answered.status.code != 0  # the main port decides (no token: denied)


async def test_ext_proc_answers_probes_on_its_health_port_and_nothing_else(
    supervisor: Supervisor,
) -> None:
    main, health_port = free_ports(2)
    child = await supervisor.spawn(
        "ext_proc",
        custos(
            "extproc",
            *("--masking", EXAMPLE_MASKING),
            *("--listen", f"127.0.0.1:{main}"),
            *("--health-listen", f"127.0.0.1:{health_port}"),
        ),
        health_port,
        env=PSEUDONYM_KEY,
    )

    for service in ("", EXTPROC_SERVICE):
        assert await serving(health_port, service)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
        # The call is refused on its headers alone, so no message is written: a write
        # racing the server's refusal fails inside grpc's core, and the client then
        # reports INTERNAL in place of the status the server sent.
        stream = ext_proc_grpc.ExternalProcessorStub(channel).Process(timeout=5)
        assert await stream.code() == grpc.StatusCode.UNIMPLEMENTED
    async with grpc.aio.insecure_channel(f"127.0.0.1:{main}") as channel:
        stream = ext_proc_grpc.ExternalProcessorStub(channel).Process(timeout=5)
        await stream.write(json_headers())
        answered = await stream.read()
        await stream.done_writing()
    assert isinstance(answered, ext_proc.ProcessingResponse)

    # On SIGTERM the probe sees NOT_SERVING before the port goes away.
    seen = await watch_until_closed(health_port, child)
    assert seen[0] == SERVING and seen[-1] == NOT_SERVING, seen
    assert await asyncio.wait_for(child.process.wait(), 10) == 0


async def test_not_serving_for_want_of_an_audit_record_shows_on_the_health_port(
    tmp_path: Path,
) -> None:
    # As ext_proc wires it: one servicer for the main server and the health port.
    writer = await AuditWriter.open(audit_config(tmp_path, max_spool_bytes=65_536), "extproc")
    servicer = health.aio.HealthServicer()
    await servicer.set("", SERVING)
    (port,) = free_ports(1)
    server = await serve_health(servicer, f"127.0.0.1:{port}")
    # Asked every 20 ms rather than every second: the test sees the change at once.
    follows = asyncio.create_task(serving_while_recording(writer, servicer, interval=0.02))
    try:
        assert await status(port) == SERVING
        fill_spool(tmp_path, writer)
        # Within the 1.2 s the test once slept (when the writer was asked once a second).
        assert await says(port, NOT_SERVING, within=1.2)
        # Not ready, but alive: a restart would not empty the spool.
        assert await status(port, "liveness") == SERVING
    finally:
        follows.cancel()
        await server.stop(grace=None)
        await writer.close()


async def test_the_shipper_is_serving_once_shipping_and_not_serving_once_stopping(
    tmp_path: Path, emulator: Emulator, supervisor: Supervisor
) -> None:
    generate_key_pair(tmp_path / "audit.pem", tmp_path / "audit.pub")
    config = tmp_path / "audit.yaml"
    settings = {
        "spool_dir": "spool",
        "signing_key": "audit.pem",
        "shipping": {"project": "custos-tests", "endpoint": emulator.endpoint},
    }
    config.write_text(yaml.safe_dump(settings))
    (health_port,) = free_ports(1)
    child = await supervisor.spawn(
        "shipper",
        custos("shipper", "--audit", config, "--health-listen", f"127.0.0.1:{health_port}"),
        health_port,
    )

    assert await serving(health_port)
    seen = await watch_until_closed(health_port, child)
    assert seen[0] == SERVING and seen[-1] == NOT_SERVING, seen
    assert await asyncio.wait_for(child.process.wait(), 10) == 0


async def test_a_health_port_that_cannot_be_bound_is_a_clear_error() -> None:
    (main,) = free_ports(1)
    process = await asyncio.create_subprocess_exec(
        *custos(
            "extproc",
            *("--masking", EXAMPLE_MASKING),
            *("--listen", f"127.0.0.1:{main}"),
            *("--health-listen", "no-such-host.invalid:1"),
        ),
        env={**os.environ, **PSEUDONYM_KEY},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    text = err.decode()
    assert process.returncode == 1, text
    assert "error: cannot serve health checks on no-such-host.invalid:1" in text
    assert "Traceback" not in text
