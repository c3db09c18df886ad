"""The gRPC adapter: Envoy's CheckRequest → plain data → pipeline → CheckResponse."""

from __future__ import annotations

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

from custos.policy import HttpRequest
from extauthz.pipeline import Authorizer
from extauthz.response import ResponseBuilder


def http_request(check: authz.CheckRequest) -> tuple[HttpRequest, bytes]:
    attributes = check.attributes
    http = attributes.request.http
    address = attributes.source.address.socket_address.address
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
    def __init__(self, authorizer: Authorizer, responses: ResponseBuilder) -> None:
        self._authorizer = authorizer
        self._responses = responses

    async def Check(
        self, request: authz.CheckRequest, context: grpc.aio.ServicerContext
    ) -> authz.CheckResponse:
        verdict = await self._authorizer.authorize(*http_request(request))
        return self._responses.build(verdict)
