"""Playing the chart's pod on this machine, the way the kubelet would: each volume becomes
a directory (ConfigMaps and Secrets in the kubelet's own layout, so that an update is the
same atomic swap of `..data`), each container runs its rendered
command from the installed `custos` entry point, the native sidecars start in order once
their startup probes pass, and they stop in the reverse order after the MCP server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from custos.children import Supervisor
from tests.chart.chart import Rendered
from tests.configmap import ConfigMapMount

# The image's ENTRYPOINT: the console script the package installs beside this interpreter.
CUSTOS = str(Path(sys.executable).parent / "custos")
PROBE_TIMEOUT_SECONDS = 30.0


@dataclass
class PlayedPod:
    rendered: Rendered
    root: Path
    secrets: dict[str, dict[str, str]]  # Secret name → key → value, as the cluster holds them
    # Where the volumes of a StatefulSet's claims live: they outlive the pod, and a pod
    # played again with the same directory finds them as it left them.
    claims: Path | None = None
    mounts: dict[str, Path] = field(default_factory=dict)  # mount path → directory
    volumes: dict[str, ConfigMapMount] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # what the containers printed
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(on_line=self._keep)

    def _keep(self, name: str, line: str) -> None:
        self.lines.append(f"{name:<9}| {line}")

    @property
    def spec(self) -> dict[str, Any]:
        return self.rendered.pod

    def config_maps(self) -> dict[str, dict[str, str]]:
        return {c["metadata"]["name"]: c["data"] for c in self.rendered.kinds("ConfigMap")}

    def mount_volumes(self) -> None:
        directories = {v["name"]: self.root / "volumes" / v["name"] for v in self.spec["volumes"]}
        for claim in self.rendered.workload["spec"].get("volumeClaimTemplates", []):
            name = claim["metadata"]["name"]
            directories[name] = (self.claims or self.root / "claims") / name
            directories[name].mkdir(parents=True, exist_ok=True)
        for container in self._containers():
            for mount in container.get("volumeMounts", []):
                self.mounts[mount["mountPath"]] = directories[mount["name"]]
        config_maps = self.config_maps()
        for volume in self.spec["volumes"]:
            directory = self.root / "volumes" / volume["name"]
            if "configMap" in volume:
                source = volume["configMap"]
                data = {k: self._mounted(v) for k, v in config_maps[source["name"]].items()}
                self.volumes[volume["name"]] = ConfigMapMount(directory, _items(source, data))
            elif "secret" in volume:
                source = volume["secret"]
                data = self.secrets[source["secretName"]]
                self.volumes[volume["name"]] = ConfigMapMount(directory, _items(source, data))
            else:
                directory.mkdir(parents=True)

    def update_config_map(self, name: str, data: Mapping[str, str]) -> None:
        """What `kubectl apply` of an edited ConfigMap ends in, on the node."""
        for volume in self.spec["volumes"]:
            source = volume.get("configMap")
            if source is not None and source["name"] == name:
                mounted = {k: self._mounted(v) for k, v in data.items()}
                self.volumes[volume["name"]].update(_items(source, mounted), keep_mtime=False)

    def _mounted(self, text: str) -> str:
        """Paths under a mount point name the directory that stands for it here: one pass,
        so that a directory standing for a mount is never itself rewritten."""
        if not self.mounts:
            return text
        points = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        under = re.compile(rf"(?<![\w./-])({points})(?![\w.-])")
        mapped = under.sub(lambda m: str(self.mounts[m.group(1)]), text)
        # A path left as the pod has it would read or write this machine's own directories.
        assert not re.search(r"(?<![\w./-])/(etc|var/spool)/custos", mapped), mapped
        return mapped

    def _containers(self) -> list[dict[str, Any]]:
        return [*self.spec["initContainers"], *self.spec["containers"]]

    def _env(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = self.secrets[ref["name"]][ref["key"]]
        return env

    async def start(self) -> None:
        """Sidecars in order, each once its startup probe passes; then the MCP server."""
        self._mount_paths_first()
        for sidecar in self.spec["initContainers"]:
            argv = [CUSTOS, *(self._mounted(a) for a in sidecar["args"])]
            port = _probe_port(sidecar["startupProbe"])
            await self.supervisor.spawn(sidecar["name"], argv, port, self._env(sidecar))
            await until_probe_passes(sidecar["startupProbe"])
        main = self.spec["containers"][0]
        argv = [*main.get("command", []), *main.get("args", [])]
        await self.supervisor.spawn(main["name"], argv, self.mcp_port, self._env(main))

    def _mount_paths_first(self) -> None:
        if not self.mounts:
            self.mount_volumes()

    @property
    def mcp_port(self) -> int:
        return int(self.rendered.values["mcpServer"]["port"])

    async def stop(self) -> None:
        """The MCP server first, then the sidecars, last started first (the kubelet's order)."""
        await self.supervisor.stop_all()

    def output(self) -> str:
        return "\n".join(self.lines)


def _items(source: dict[str, Any], data: Mapping[str, str]) -> dict[str, str]:
    """A volume's files: the items it selects, by their paths, or every key."""
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    return {item["path"]: data[item["key"]] for item in items}


def _probe_port(probe: dict[str, Any]) -> int:
    action = probe.get("grpc") or probe.get("httpGet") or {}
    return int(action["port"])


async def until_probe_passes(probe: dict[str, Any]) -> None:
    deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
    while not await probe_passes(probe):
        if time.monotonic() > deadline:
            raise AssertionError(f"probe {probe} did not pass in {PROBE_TIMEOUT_SECONDS}s")
        await asyncio.sleep(0.1)


async def probe_passes(probe: dict[str, Any]) -> bool:
    """The kubelet's check: gRPC health SERVING, or an HTTP status from 200 to 399."""
    if "grpc" in probe:
        target = f"127.0.0.1:{probe['grpc']['port']}"
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = await stub.Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                    timeout=1,
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    get = probe["httpGet"]
    async with httpx.AsyncClient() as client:
        try:
            answer = await client.get(f"http://127.0.0.1:{get['port']}{get['path']}", timeout=1)
        except httpx.HTTPError:
            return False
        return 200 <= answer.status_code < 400


@contextlib.asynccontextmanager
async def played(pod: PlayedPod) -> AsyncIterator[PlayedPod]:
    try:
        await pod.start()
        yield pod
    except BaseException:
        print(pod.output())  # shown by pytest only when the test fails
        raise
    finally:
        await pod.stop()
