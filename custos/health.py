"""A health-only gRPC port. In a pod the services' data ports stay on loopback, but the
kubelet's probes come to the pod IP: each service answers them on a port of its own that
serves `grpc.health.v1.Health` and nothing else, so opening it to the pod network opens
no way around Envoy."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from custos.errors import ConfigError

# What a liveness probe asks: whether the process answers at all. A service that refuses
# for a reason a restart does not mend (a full spool) is NOT_SERVING under "" (not ready),
# but alive.
LIVENESS = "liveness"

Status = health_pb2.HealthCheckResponse.ServingStatus


async def set_status(servicer: health.aio.HealthServicer, service: str, status: Status) -> None:
    """`status` for the process as a whole ("") and for its one gRPC `service`: a probe
    may ask for either, and the two must never disagree."""
    for name in ("", service):
        await servicer.set(name, status)


async def not_serving_yet(
    servicer: health.aio.HealthServicer, service: str, listen: str | None
) -> list[grpc.aio.Server]:
    """NOT_SERVING (as `set_status`) until the caller's main server is started, and the
    health-only server on `listen` when there is one: the servers to stop at the end, to
    which the caller adds its main one."""
    await set_status(servicer, service, health_pb2.HealthCheckResponse.NOT_SERVING)
    # Bound before the main server exists: an address it cannot have fails the start with
    # no gRPC server left behind (grpc complains about those at exit).
    return [] if listen is None else [await serve_health(servicer, listen)]


async def serve_health(servicer: health.aio.HealthServicer, listen: str) -> grpc.aio.Server:
    """A started server on `listen` (host:port) answering from `servicer`, the same object
    the main server uses, so a status set there (NOT_SERVING) is what the probe sees. The
    caller stops it along with the main server."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        _bind(server, listen)
    except ConfigError:
        await server.stop(None)  # else its finalizer complains once the loop is gone
        raise
    await server.start()
    await servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    return server


def serve_health_sync(servicer: health.HealthServicer, listen: str) -> grpc.Server:
    """The same for a threaded process: two threads are plenty for probes (Watch does not
    hold one)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    _bind(server, listen)
    server.start()
    return server


def _bind(server: grpc.Server | grpc.aio.Server, listen: str) -> None:
    try:
        server.add_insecure_port(listen)
    except RuntimeError as exc:  # grpc says no more than that, and logs the reason itself
        raise ConfigError(
            f"cannot serve health checks on {listen}: address taken or not host:port"
        ) from exc
