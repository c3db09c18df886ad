"""The CEL environment of policy rules: typed variables and how inputs bind to them.

Variables are protobuf messages (protos/policy_context.proto) so the type checker knows
every field: `identity.grups` fails when the policy loads, not at request time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cel_expr_python import cel

from custos.policy import policy_context_pb2 as pb
from custos.policy.inputs import McpCall, PolicyInput

VARIABLES: dict[str, str] = {
    "identity": "custos.policy.v1.Identity",
    "request": "custos.policy.v1.Request",
    "mcp": "custos.policy.v1.Mcp",
}

# CEL cannot bind an activation nested much deeper than this (rules then fail to
# evaluate), so inputs from clients and IdPs are bounded by it before they get here.
MAX_INPUT_DEPTH = 32

ENV = cel.NewEnv(
    variables={
        **{name: cel.Type(type_name) for name, type_name in VARIABLES.items()},
        "now": cel.Type.TIMESTAMP,
    }
)


def _identity(inp: PolicyInput) -> pb.Identity:
    ident = inp.identity
    message = pb.Identity(
        issuer=ident.issuer, subject=ident.subject, email=ident.email, groups=ident.groups
    )
    message.claims.update(ident.claims)
    return message


def _request(inp: PolicyInput) -> pb.Request:
    req = inp.request
    return pb.Request(
        method=req.method,
        path=req.path,
        headers=req.headers,
        source_address=req.source_address,
        id=req.id,
    )


def _mcp(call: McpCall | None, batch_size: int) -> pb.Mcp:
    if call is None:
        return pb.Mcp(batch_size=batch_size)
    message = pb.Mcp(
        method=call.method,
        tool=call.tool,
        uri=call.uri,
        name=call.name,
        batch_size=batch_size,
        is_notification=call.is_notification,
    )
    message.arguments.update(call.arguments)
    return message


def activations(inp: PolicyInput) -> Iterator[cel.Activation]:
    """One activation per MCP call (rules judge each call of a batch on its own);
    a single one with an empty `mcp` when the request carries no JSON-RPC body."""
    identity = _identity(inp)
    request = _request(inp)
    batch_size = len(inp.calls)
    calls: tuple[McpCall | None, ...] = inp.calls or (None,)
    for call in calls:
        yield ENV.Activation(
            {
                "identity": identity,
                "request": request,
                "mcp": _mcp(call, batch_size),
                "now": inp.now,
            }
        )


def too_deep(document: Any, limit: int) -> bool:
    """True when lists and objects nest more than `limit` levels deep."""
    level: list[Any] = [document]
    for _ in range(limit):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return False
    return any(isinstance(value, dict | list) for value in level)
