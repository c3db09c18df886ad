"""The shipper as a process (`custos shipper`): its metrics, and shipping until a signal,
then a last, bounded pass."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from custos.audit.config import AuditConfig
from custos.audit.shipper import Shipper
from custos.audit.spool import bytes_on_disk
from custos.errors import ConfigError
from custos.health import serve_health_sync

log = logging.getLogger(__name__)


class ShipperCollector(Collector):
    """The shipper's figures, read when Prometheus scrapes: nothing to keep in step."""

    def __init__(self, shipper: Shipper, spool_root: Path) -> None:
        self._shipper = shipper
        self._root = spool_root

    def collect(self) -> Iterator[Metric]:
        shipper = self._shipper
        yield CounterMetricFamily(
            "custos_audit_shipped_records", "Records Cloud Logging accepted.", shipper.shipped
        )
        yield CounterMetricFamily(
            "custos_audit_ship_failures",
            "Errors writing to Cloud Logging, each retried (not refusals: those are set aside).",
            shipper.failures,
        )
        yield CounterMetricFamily(
            "custos_audit_quarantined_records",
            "Records Cloud Logging refused, set aside in quarantine.",
            shipper.quarantined,
        )
        yield GaugeMetricFamily(
            "custos_audit_spool_bytes",
            "Bytes of spool segments not yet deleted (shipped segments are).",
            sum(bytes_on_disk(writer) for writer in self._root.glob("*/")),
        )


def serve(
    config: AuditConfig, metrics_listen: str | None = None, health_listen: str | None = None
) -> None:
    """Ships until SIGTERM or SIGINT, then once more, for at most FINAL_PASS_SECONDS (see
    `Shipper.run`). With `health_listen`, a gRPC health port says SERVING once shipping has
    started and NOT_SERVING from the signal on."""
    from custos.cloud_logging.clients import logging_client

    shipping = config.shipping
    if shipping is None:
        raise ConfigError("the audit configuration has no 'shipping' section")
    with logging_client(shipping.endpoint) as client:
        shipper = Shipper(
            config.spool_dir,
            client,
            shipping.project,
            shipping.log_name,
            shipping.batch_entries,
            shipping.max_backoff_seconds,
        )
        if metrics_listen is not None:
            registry = CollectorRegistry()
            registry.register(ShipperCollector(shipper, config.spool_dir))
            host, _, port = metrics_listen.rpartition(":")
            start_http_server(int(port), host, registry=registry)
        health_servicer = health.HealthServicer()
        # It starts out SERVING, which would be a lie until shipping has started.
        health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        health_server = (
            serve_health_sync(health_servicer, health_listen) if health_listen is not None else None
        )
        # Batch work, off every request's path: under contention the services go first.
        os.nice(10)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if health_server is not None:
            # Not from the signal handler, which may interrupt this thread inside the servicer:
            # NOT_SERVING as soon as the stop is asked for, while the last pass still runs.
            threading.Thread(
                target=_not_serving_once, args=(stop, health_servicer), name="health", daemon=True
            ).start()
        log.info("shipping %s to %s", config.spool_dir, shipper.destination)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        try:
            shipper.run(stop, shipping.poll_seconds)
        finally:
            health_servicer.enter_graceful_shutdown()
            if health_server is not None:
                health_server.stop(grace=1).wait()
            log.info("shipper stopping: %d records shipped", shipper.shipped)


def _not_serving_once(stop: threading.Event, servicer: health.HealthServicer) -> None:
    stop.wait()
    servicer.enter_graceful_shutdown()
