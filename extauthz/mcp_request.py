"""MCP request phase: the JSON-RPC 2.0 body (single message or batch) as plain calls.

Anything that is not well-formed JSON-RPC is refused here, before policy, with the
JSON-RPC error code a client expects (-32700 parse error, -32600 invalid request).
When the client sends `Mcp-Method` / `Mcp-Name` headers they must agree with the body:
a proxy that routed on the header while the server acted on the body would be fooled.

The same holds inside the body: a JSON object with a key twice is refused, because
parsers disagree on which value wins and the MCP server's parser is not ours. That check
needs the standard library's parser (a few microseconds more than orjson on a typical
call). Batch size and nesting depth are bounded so that one request cannot hold the
single-threaded service for long, nor nest deeper than CEL evaluates."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from custos.policy import McpCall
from custos.policy.environment import MAX_INPUT_DEPTH, too_deep
from extauthz.errors import McpHeaderMismatch, McpRequestInvalid

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

# MCP's method names: words joined by single slashes ("tools/call", "logging/setLevel",
# "notifications/roots/list_changed"; an extension's "com.example/sync"), each opening with
# a letter. No empty or relative segments: "notifications/../tools/call" is no method,
# and a rule or a server that normalised it would read another one. Bounded.
_METHOD = re.compile(r"[A-Za-z][\w.-]*(?:/[A-Za-z][\w.-]*){0,7}", re.ASCII)
_MAX_METHOD = 128

# Methods whose params name their target, and the param that does.
_NAMED_TARGET = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


@dataclass(frozen=True, slots=True)
class McpLimits:
    max_batch_size: int = 32
    max_depth: int = MAX_INPUT_DEPTH


DEFAULT_LIMITS = McpLimits()


@dataclass(frozen=True, slots=True)
class McpRequest:
    calls: tuple[McpCall, ...]
    is_batch: bool

    @property
    def first_id(self) -> str | int | None:
        return self.calls[0].id if self.calls else None


NO_BODY = McpRequest(calls=(), is_batch=False)


def parse_body(body: bytes, limits: McpLimits = DEFAULT_LIMITS) -> McpRequest:
    try:
        # UTF-8, strictly: the stdlib would also read UTF-16 and the surrogates of CESU-8,
        # which the MCP server's parser may read otherwise, or not at all.
        text = body.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError too
        raise McpRequestInvalid("body is not JSON", PARSE_ERROR) from exc
    except _DuplicateKey as exc:
        raise McpRequestInvalid("a JSON object has the same key twice") from exc
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(document):
        raise McpRequestInvalid("a JSON string holds a lone surrogate", PARSE_ERROR)
    if too_deep(document, limits.max_depth):
        raise McpRequestInvalid(f"JSON nested deeper than {limits.max_depth} levels")
    if isinstance(document, list):
        if not document:
            raise McpRequestInvalid("empty JSON-RPC batch")
        if len(document) > limits.max_batch_size:
            raise McpRequestInvalid(f"batch of more than {limits.max_batch_size} messages")
        calls = tuple(_call(m) for m in document)
        # Clients route answers by id, and read 7 and "7" alike: two requests of one batch
        # with one id would get each other's answers.
        ids = [str(c.id) for c in calls if c.method and not c.is_notification]
        if len(set(ids)) != len(ids):
            raise McpRequestInvalid("two requests of a batch with one id")
        return McpRequest(calls, is_batch=True)
    return McpRequest((_call(document),), is_batch=False)


class _DuplicateKey(Exception):
    pass


# An escaped UTF-16 surrogate: a pair of them is one character, one alone is none at all
# (I-JSON, RFC 7493), and cannot be written as UTF-8 for the policy, the MCP server or a
# record.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(document: Any) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _call(message: Any) -> McpCall:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise McpRequestInvalid("not a JSON-RPC 2.0 message")
    has_id = "id" in message
    msg_id = message.get("id")
    if has_id and (isinstance(msg_id, bool) or not isinstance(msg_id, str | int)):
        raise McpRequestInvalid("JSON-RPC id must be a string or an integer")
    method = message.get("method")
    if method is None:
        # A client's answer to a server request (sampling, elicitation): no method.
        if not has_id or ("result" in message) == ("error" in message):
            raise McpRequestInvalid("JSON-RPC response needs an id and one of result/error")
        return McpCall(method="", id=msg_id)
    if not isinstance(method, str) or not method:
        raise McpRequestInvalid("JSON-RPC method must be a non-empty string")
    if len(method) > _MAX_METHOD or not _METHOD.fullmatch(method):
        raise McpRequestInvalid("JSON-RPC method is not an MCP method name")
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise McpRequestInvalid("MCP params must be an object")
    return _with_params(McpCall(method=method, id=msg_id, is_notification=not has_id), params)


def _with_params(call: McpCall, params: Mapping[str, Any]) -> McpCall:
    target_param = _NAMED_TARGET.get(call.method)
    if target_param is None:
        return call
    target = params.get(target_param)
    if not isinstance(target, str) or not target:
        raise McpRequestInvalid(f"{call.method} needs params.{target_param} as a string")
    if call.method == "resources/read":
        return replace(call, uri=target)
    if call.method == "prompts/get":
        return replace(call, name=target)
    arguments = params.get("arguments", {})
    if not isinstance(arguments, dict):
        raise McpRequestInvalid("tools/call params.arguments must be an object")
    return replace(call, tool=target, name=target, arguments=arguments)


def check_headers(request: McpRequest, headers: Mapping[str, str]) -> None:
    """`Mcp-Method` and `Mcp-Name`, when sent, must describe the body exactly."""
    method = headers.get("mcp-method")
    name = headers.get("mcp-name")
    if method is None and name is None:
        return
    if request.is_batch or len(request.calls) != 1:
        raise McpHeaderMismatch("Mcp-Method/Mcp-Name headers need a single JSON-RPC message")
    call = request.calls[0]
    if method is not None and method != call.method:
        raise McpHeaderMismatch("Mcp-Method header does not match the body")
    if name is not None and name != (call.uri or call.name):
        raise McpHeaderMismatch("Mcp-Name header does not match the body")
