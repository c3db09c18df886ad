"""`tools/list` filtering: tools the caller's policy would refuse are taken out of the
list, so an agent is not offered what it cannot call.

A tool stays when the policy allows a `tools/call` of it, with no arguments, by this
caller. A rule that looks at arguments cannot be judged without them; it fails closed
(an erroring allow does not match), so such a tool may be hidden though some calls of
it would be allowed: an agent can still call it by name, and ext_authz decides."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from custos.policy import HttpRequest, Identity, McpCall, PolicyInput, decide
from custos.policy.reloader import PolicyReloader
from extproc.masking import json_codec
from extproc.masking.engine import MaskingError


def identity_from(decision: struct_pb2.Struct | None) -> Identity | None:
    """The caller as ext_authz verified it, from the decision it left in metadata."""
    if decision is None or "identity" not in decision.fields:
        return None
    data: dict[str, Any] = MessageToDict(decision.fields["identity"].struct_value)
    return Identity(
        issuer=str(data.get("issuer", "")),
        subject=str(data.get("subject", "")),
        email=str(data.get("email", "")),
        groups=tuple(str(g) for g in data.get("groups", [])),
        claims=data.get("claims", {}),
    )


class ToolFilter:
    def __init__(self, policy: PolicyReloader) -> None:
        self._policy = policy

    def filter(self, text: str, identity: Identity | None) -> str | None:
        """The listing without the refused tools (each listing of a batch); None when
        `text` holds something else too (an error, a notification on the same stream),
        for the caller to mask whole."""
        try:
            document = json_codec.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MaskingError("tools/list answer is not JSON") from exc
        messages = document if isinstance(document, list) else [document]
        listings = [_tools_of(message) for message in messages]
        if not messages or any(tools is None for tools in listings):
            return None
        for message, tools in zip(messages, listings, strict=True):
            message["result"]["tools"] = [t for t in tools or () if self._allowed(t, identity)]
        return json_codec.dumps(document)

    def _allowed(self, tool: Any, identity: Identity | None) -> bool:
        if identity is None or not isinstance(tool, dict) or not _utf8(tool.get("name")):
            return False  # no verified caller, or no name to judge: show nothing
        call = McpCall(method="tools/call", tool=tool["name"], name=tool["name"])
        request = HttpRequest(method="POST", path="/mcp")
        inp = PolicyInput(identity, request, (call,), is_batch=False)
        return decide(self._policy.policy, inp).allowed


# What a tools/list answer holds, and nothing else: anything more is masked with the rest.
_MESSAGE_KEYS = frozenset({"jsonrpc", "id", "result"})
_RESULT_KEYS = frozenset({"tools", "nextCursor", "_meta"})


def _utf8(name: Any) -> bool:
    """A name the policy can judge: a string that UTF-8 can carry (not a lone surrogate)."""
    if not isinstance(name, str):
        return False
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _tools_of(message: Any) -> list[Any] | None:
    if not isinstance(message, dict) or not message.keys() <= _MESSAGE_KEYS:
        return None
    if not all(isinstance(message.get(k, ""), str | int | None) for k in ("jsonrpc", "id")):
        return None  # an envelope holding more than JSON-RPC's plain values: masked whole
    result = message.get("result")
    if not isinstance(result, dict) or not result.keys() <= _RESULT_KEYS:
        return None
    tools = result.get("tools")
    if not isinstance(result.get("nextCursor"), str | None):  # an opaque string, or none
        return None
    return tools if isinstance(tools, list) else None
