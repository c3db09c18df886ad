"""What a policy decides on, as plain data: who, which HTTP request, which MCP calls.

ext_authz builds these from Envoy's CheckRequest; `custos policy test` builds them from
YAML cases. Neither needs to know about CEL or protobuf."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    issuer: str
    subject: str
    email: str = ""
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)


# Where Envoy puts the client it settled on (the peer, or the address X-Forwarded-For
# holds past the operator's trusted proxies): what `source_address` is, in the policy, the
# audit records and what the MCP server is told.
CLIENT_HEADER = "x-envoy-external-address"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    source_address: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class McpCall:
    """One JSON-RPC message of an MCP request."""

    method: str
    id: str | int | None = None
    tool: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    uri: str = ""
    name: str = ""
    is_notification: bool = False


@dataclass(frozen=True, slots=True)
class PolicyInput:
    identity: Identity
    request: HttpRequest
    # Empty for requests without a JSON-RPC body (GET for the SSE stream, DELETE).
    calls: tuple[McpCall, ...] = ()
    is_batch: bool = False
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
