"""The shipper as a process (`custos shipper`): its metrics, and shipping until a signal,
then a last, bounded pass."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from custos.audit.config import AuditConfig
from custos.audit.shipper import Shipper
from custos.audit.spool import SUFFIX
from custos.errors import ConfigError

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
            sum(p.stat().st_size for p in self._root.glob(f"*/*{SUFFIX}")),
        )


def serve(config: AuditConfig, metrics_listen: str | None = None) -> None:
    """Ships until SIGTERM or SIGINT, then once more, for at most FINAL_PASS_SECONDS (see
    `Shipper.run`)."""
    from custos.cloud_logging.clients import close, logging_client

    shipping = config.shipping
    if shipping is None:
        raise ConfigError("the audit configuration has no 'shipping' section")
    client = logging_client(shipping.endpoint)
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
    # Batch work, off every request's path: under contention the services go first.
    os.nice(10)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("shipping %s to %s", config.spool_dir, shipper.destination)
    try:
        shipper.run(stop, shipping.poll_seconds)
    finally:
        close(client)
        log.info("shipper stopping: %d records shipped", shipper.shipped)
