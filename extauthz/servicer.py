"""The gRPC adapter: Envoy's CheckRequest → plain data → pipeline → CheckResponse."""

from __future__ import annotations

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

from custos.audit.writer import AuditWriter
from custos.policy import HttpRequest
from custos.policy.inputs import CLIENT_HEADER
from extauthz.audit import record_refusal
from extauthz.pipeline import Authorizer
from extauthz.response import ResponseBuilder


def http_request(check: authz.CheckRequest) -> tuple[HttpRequest, bytes]:
    attributes = check.attributes
    http = attributes.request.http
    # The client as Envoy settled it, counting the operator's trusted proxies (Envoy sets
    # this header on every request it does not deem internal, and drops a client's own);
    # else the peer.
    address = http.headers.get(CLIENT_HEADER) or attributes.source.address.socket_address.address
    request = HttpRequest(
        method=http.method,
        path=http.path,
        headers=dict(http.headers),
        source_address=address,
        # `http.id` is Envoy's stream counter; the id that links records is the header.
        id=http.headers.get("x-request-id", ""),
    )
    return request, http.raw_body or http.body.encode()


class AuthorizationServicer(authz_grpc.AuthorizationServicer):
    def __init__(
        self,
        authorizer: Authorizer,
        responses: ResponseBuilder,
        audit: AuditWriter | None = None,
    ) -> None:
        self._authorizer = authorizer
        self._responses = responses
        self._audit = audit

    async def Check(
        self, request: authz.CheckRequest, context: grpc.aio.ServicerContext
    ) -> authz.CheckResponse:
        http, body = http_request(request)
        verdict = await self._authorizer.authorize(http, body)
        response = self._responses.build(verdict)
        if self._audit is not None and not verdict.allowed:
            await record_refusal(self._audit, verdict, http, body, response)
        return response
