"""Assembling and running the ext_authz gRPC service from its configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable

import grpc
import httpx
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from custos.audit.config import AuditConfig
from custos.audit.writer import open_writer
from custos.envoy_config import MAX_BODY_BYTES
from custos.health import not_serving_yet, set_status
from custos.policy.reloader import PolicyReloader
from extauthz.config import AuthzConfig
from extauthz.identity import TokenCache, TokenVerifier
from extauthz.jwks import IssuerKeys
from extauthz.mcp_request import McpLimits
from extauthz.metrics import AuthzMetrics
from extauthz.pipeline import Authorizer
from extauthz.response import ResponseBuilder
from extauthz.servicer import AuthorizationServicer
from extauthz.upstream_credential import CredentialSource

log = logging.getLogger(__name__)

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
# Above the largest body Envoy may forward, with room for headers: a smaller limit would
# turn a big request into a 503 instead of a decision.
MAX_CHECK_REQUEST_BYTES = MAX_BODY_BYTES + 1_048_576


async def serve(config: AuthzConfig, audit: AuditConfig | None = None) -> None:
    metrics = AuthzMetrics()
    writer = await open_writer(audit, "extauthz", metrics.registry, "refusals")
    reloader = PolicyReloader(config.policy, metrics.record_policy_reload)
    credential = (
        CredentialSource(config.upstream_credential) if config.upstream_credential else None
    )
    async with httpx.AsyncClient(follow_redirects=False) as client:
        issuers = {
            i.issuer: IssuerKeys(i, client, on_fetch=metrics.record_jwks_fetch)
            for i in config.issuers
        }
        verifier = TokenVerifier(issuers, TokenCache(config.token_cache_size))
        authorizer = Authorizer(
            verifier,
            reloader,
            config.max_token_bytes,
            McpLimits(config.max_batch_size, config.max_json_depth),
            credential,
            metrics.record_verdict,
        )
        responses = ResponseBuilder(
            config.identity_headers,
            config.resource_metadata_url,
            credential.config.header if credential else None,
        )
        health_servicer = health.aio.HealthServicer()
        # Until the keys are fetched and the port is open.
        servers = await not_serving_yet(health_servicer, SERVICE_NAME, config.health_listen)
        # Envoy sends the whole body (up to its own bound) inside one CheckRequest.
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", MAX_CHECK_REQUEST_BYTES)]
        )
        authz_grpc.add_AuthorizationServicer_to_server(
            AuthorizationServicer(authorizer, responses, writer), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        port = server.add_insecure_port(config.listen)
        await _warm(issuers.values())
        metrics_host, _, metrics_port = config.metrics_listen.rpartition(":")
        start_http_server(int(metrics_port), metrics_host, registry=metrics.registry)
        await server.start()
        await set_status(health_servicer, SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        servers.append(server)
        host = config.listen.rpartition(":")[0]
        log.info("ext_authz listening on %s:%d (metrics on %s)", host, port, config.metrics_listen)
        if config.health_listen is not None:
            log.info("ext_authz health checks on %s", config.health_listen)
        watcher = asyncio.create_task(reloader.watch(config.policy_reload_seconds))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("ext_authz stopping")
        await set_status(health_servicer, SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.gather(*(s.stop(grace=5) for s in servers))
        await verifier.aclose()
        if writer is not None:
            await writer.close()


async def _warm(issuers: Iterable[IssuerKeys]) -> None:
    """Fetch every issuer's keys before serving, so the first request is not the one that
    waits; an unreachable IdP here is logged, not fatal (it may come up later)."""
    await asyncio.gather(*(keys.warm() for keys in issuers))
