"""The parts of an exchange record that both services fill alike, from the plain data
the policy already works with."""

from __future__ import annotations

from collections.abc import Iterable

from custos.audit.audit_pb2 import Call, Principal
from custos.policy import Identity, McpCall

# In the decision's dynamic metadata: ext_authz has recorded its refusal itself, so
# ext_proc, which sees Envoy's reply to it, does not record it a second time.
AUDITED = "audited_by"


def principal(identity: Identity | None) -> Principal | None:
    if identity is None:
        return None
    return Principal(
        issuer=identity.issuer,
        subject=identity.subject,
        email=identity.email,
        groups=list(identity.groups),
    )


def calls(mcp_calls: Iterable[McpCall]) -> list[Call]:
    """Method and tool or prompt name: what was asked, not with what (the arguments are
    in the request body, kept or not as the configuration says)."""
    return [Call(method=c.method, tool=c.tool, name=c.name) for c in mcp_calls]
