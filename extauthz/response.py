"""Response phase: a verdict becomes Envoy's CheckResponse.

Allowed: the client's token is removed (or overwritten by the sidecar's own upstream
credential), identity headers are set for the MCP server, and the decision goes into
dynamic metadata for the access log and ext_proc. Denied: a JSON-RPC error body that
names no internal detail, only the decision id an operator can look up."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import orjson
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from extauthz.config import IdentityHeaders
from extauthz.pipeline import Verdict

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD

# JSON-RPC error codes for refusals (the implementation-defined server range).
_UNAUTHORIZED = -32001
_FORBIDDEN = -32003
_INTERNAL = -32603

_MESSAGES = {
    401: "Unauthorized: a valid bearer token is required",
    403: "Forbidden: the policy does not allow this request",
    500: "Internal error: the request could not be authorized",
}


class ResponseBuilder:
    def __init__(
        self,
        identity_headers: IdentityHeaders,
        resource_metadata_url: str,
        credential_header: str | None = None,  # None: no upstream credential configured
    ) -> None:
        self._headers = identity_headers
        self._challenge = (
            f'Bearer error="invalid_token", resource_metadata="{resource_metadata_url}"'
        )
        self._credential_header = credential_header

    def build(self, verdict: Verdict) -> authz.CheckResponse:
        if verdict.allowed:
            return authz.CheckResponse(
                status=status_pb2.Status(code=code_pb2.OK),
                ok_response=self._ok(verdict),
                dynamic_metadata=_metadata(verdict),
            )
        return authz.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
            denied_response=self._denied(verdict),
            dynamic_metadata=_metadata(verdict),
        )

    def _ok(self, verdict: Verdict) -> authz.OkHttpResponse:
        set_headers: list[base_pb2.HeaderValueOption] = []
        remove: list[str] = []
        header = self._credential_header
        if header is not None and verdict.upstream_credential:
            set_headers.append(_header(header, verdict.upstream_credential))
        if header != "authorization" or not verdict.upstream_credential:
            remove.append("authorization")
        for name, value in self._identity_values(verdict):
            # A header the client sent under one of our names must never reach upstream.
            if value:
                set_headers.append(_header(name, value))
            else:
                remove.append(name)
        return authz.OkHttpResponse(headers=set_headers, headers_to_remove=remove)

    def _identity_values(self, verdict: Verdict) -> Iterator[tuple[str, str]]:
        identity = verdict.identity
        if identity is None:  # an allow always has one; refuse to guess otherwise
            raise ValueError("an allowed verdict without an identity")
        values = {
            "subject": _header_safe(identity.subject),
            "issuer": _header_safe(identity.issuer),
            "email": _header_safe(identity.email),
            # Each group encoded on its own, so a group named "a,b" stays one group.
            "groups": ",".join(_header_safe(g, also=",") for g in identity.groups),
            "decision_id": verdict.decision_id,
        }
        for field, value in values.items():
            name = getattr(self._headers, field)
            if name:
                yield name, value

    def _denied(self, verdict: Verdict) -> authz.DeniedHttpResponse:
        status = verdict.status
        if status == 400:
            code = getattr(verdict.error, "jsonrpc_code", -32600)
            message = f"Bad request: {verdict.reason}"
        else:
            code = {401: _UNAUTHORIZED, 403: _FORBIDDEN}.get(status, _INTERNAL)
            message = _MESSAGES.get(status, _MESSAGES[500])
        body = {
            "jsonrpc": "2.0",
            "id": verdict.mcp.first_id if not verdict.mcp.is_batch else None,
            "error": {
                "code": code,
                "message": message,
                "data": {"decision_id": verdict.decision_id},
            },
        }
        headers = [_header("content-type", "application/json")]
        if status == 401:
            headers.append(_header("www-authenticate", self._challenge))
        return authz.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=headers,
            body=orjson.dumps(body).decode(),
        )


def _header_safe(value: str, also: str = "") -> str:
    """Claims are the IdP's text, not ours: anything outside printable ASCII (and `%`,
    and `also`) is percent-encoded, so a value can neither break nor forge a header."""
    if value.isascii() and value.isprintable() and "%" not in value and not set(also) & set(value):
        return value
    safe = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%" + also)
    return quote(value, safe=safe)


def _header(name: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=name, value=value), append_action=_OVERWRITE
    )


def _metadata(verdict: Verdict) -> struct_pb2.Struct:
    """Read by the access log as %DYNAMIC_METADATA(envoy.filters.http.ext_authz:…)%."""
    metadata = struct_pb2.Struct()
    identity = verdict.identity
    metadata.update(
        {
            "decision_id": verdict.decision_id,
            "request_id": verdict.request_id,
            "effect": "allow" if verdict.allowed else "deny",
            "code": verdict.code,
            "reason": verdict.reason,
            "rule": verdict.rule,
            "policy": verdict.policy_digest[:12],
            "issuer": identity.issuer if identity else "",
            "subject": identity.subject if identity else "",
            "source_address": verdict.source_address,
            "query": verdict.query,
            # ext_proc masks what these methods return (and passes protocol-only ones).
            "mcp_methods": sorted({call.method for call in verdict.mcp.calls}),
            # For masking exceptions that name a tool or prompt. Not the arguments or a
            # resource's URI: they may hold PHI, and any access log format may read this.
            "mcp_calls": [
                {"method": call.method, "tool": call.tool, "name": call.name}
                for call in verdict.mcp.calls
            ],
        }
    )
    if identity is not None:
        # For ext_proc, which judges tools/list entries with the same policy.
        metadata.update(
            {
                "identity": {
                    "issuer": identity.issuer,
                    "subject": identity.subject,
                    "email": identity.email,
                    "groups": list(identity.groups),
                    "claims": dict(identity.claims),
                }
            }
        )
    return metadata
