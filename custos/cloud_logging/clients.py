"""The real Cloud Logging API clients (google-cloud-logging's GAPIC layer).

Without an endpoint: Google's endpoint, TLS and Application Default Credentials (on GKE,
the Workload Identity service account bound to the pod's Kubernetes service account).
With `endpoint` ("host:port"): the local emulator, over an insecure channel with no
credentials at all; the transport ignores credentials when handed a channel, so no ADC
lookup happens and a laptop without a Google account works.

Each client owns its channel: use it as a context manager, whose exit closes it."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.auth import exceptions as auth_exceptions
from google.cloud.logging_v2.services.config_service_v2 import ConfigServiceV2Client
from google.cloud.logging_v2.services.config_service_v2.transports import (
    ConfigServiceV2GrpcTransport,
)
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.services.logging_service_v2.transports import (
    LoggingServiceV2GrpcTransport,
)

from custos.errors import CloudLoggingError

__all__ = ["config_client", "logging_client"]

_Client = TypeVar("_Client", LoggingServiceV2Client, ConfigServiceV2Client)

# As the library's own channels: a batch of audit records may exceed gRPC's 4 MB default.
_CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def logging_client(endpoint: str | None = None) -> LoggingServiceV2Client:
    """A client for writing and listing log entries."""
    if endpoint:
        channel = grpc.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=channel))
    return _with_adc(LoggingServiceV2Client)


def config_client(endpoint: str | None = None) -> ConfigServiceV2Client:
    """A client for log buckets and sinks."""
    if endpoint:
        channel = grpc.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        return ConfigServiceV2Client(transport=ConfigServiceV2GrpcTransport(channel=channel))
    return _with_adc(ConfigServiceV2Client)


def _with_adc(kind: type[_Client]) -> _Client:
    try:
        return kind()
    except auth_exceptions.DefaultCredentialsError as exc:
        raise CloudLoggingError(
            "no Application Default Credentials for Cloud Logging: on GKE bind a Workload "
            "Identity service account; elsewhere run `gcloud auth application-default "
            "login`, or pass --endpoint for the local emulator"
        ) from exc
