"""What the benchmark runs against: the grown policy, the two front Envoy bootstraps (the
real one and the same one without ext_authz), the trivial upstream Envoy and the
request every load generator sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from custos.envoy_config import EnvoySettings, render_bootstrap
from custos.policy import load_policy
from custos.stack import EXAMPLE_POLICY

EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
EXT_PROC_FILTER = "envoy.filters.http.ext_proc"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
MIN_RULES = 10
DIRECT_RESPONSE_DEFAULT_MAX = 4096  # Envoy's default max_direct_response_body_size_bytes

# The call every request makes: allowed for alice (phi-readers) by readers-read-patients,
# after every deny rule has been evaluated and found not to match.
TOOL_CALL: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "search_patients", "arguments": {"query": "smith", "limit": 10}},
}
TOOL_CALL_BODY = orjson.dumps(TOOL_CALL)

# What the upstream answers: a small but realistic tools/call result.
UPSTREAM_RESULT = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"content": [{"type": "text", "text": "[]"}], "isError": False},
    }
).decode()

# Rules a real deployment would add to the example policy. Deny rules are all evaluated
# for every allowed call, so these are the expensive kind; none of them matches alice's
# search, which is what the benchmark wants (a valid, allowed call).
EXTRA_RULES: list[dict[str, str]] = [
    {
        "name": "export-arguments-denied",
        "description": "No tool may be asked to export data in bulk.",
        "when": "mcp.method == 'tools/call' && 'export' in mcp.arguments",
        "effect": "deny",
    },
    {
        "name": "tools-outside-business-hours",
        "description": "Tool calls only in business hours; the bench window is all day, so "
        "the timestamp arithmetic runs but never matches.",
        "when": "mcp.method == 'tools/call' "
        "&& (now.getHours('UTC') < 0 || now.getHours('UTC') > 23)",
        "effect": "deny",
    },
    {
        "name": "staff-email-domain",
        "description": "Only accounts of the organisation's own domain.",
        "when": "!identity.email.endsWith('@example.com')",
        "effect": "deny",
    },
    {
        "name": "oversized-batch",
        "description": "Batches beyond 20 calls are refused outright.",
        "when": "mcp.batch_size > 20",
        "effect": "deny",
    },
    {
        "name": "long-search-query",
        "description": "Search queries are bounded, so a query cannot smuggle a dump.",
        "when": "mcp.tool == 'search_patients' && has(mcp.arguments.query) "
        "&& size(string(mcp.arguments.query)) > 256",
        "effect": "deny",
    },
    {
        "name": "pod-network-only",
        "description": "Callers reach the sidecar from loopback only.",
        "when": "!(request.source_address.startsWith('127.') || request.source_address == '::1')",
        "effect": "deny",
    },
    {
        "name": "readers-read-resources",
        "description": "PHI readers may read patient resources.",
        "when": "mcp.method == 'resources/read' && mcp.uri.startsWith('patients://') "
        "&& identity.groups.exists(g, g in ['phi-readers', 'phi-admins'])",
        "effect": "allow",
    },
]


def write_policy(path: Path) -> int:
    """The example policy's rules plus EXTRA_RULES, checked by the real loader; returns
    the number of rules so the report can say how big the policy was."""
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["rules"] = [*document["rules"], *EXTRA_RULES]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    count = len(load_policy(path).rules)
    if count < MIN_RULES:
        raise ValueError(f"the benchmark policy needs at least {MIN_RULES} rules, has {count}")
    return count


def authz_bootstrap(settings: EnvoySettings) -> str:
    """The bootstrap the project ships, with ext_proc taken out: this benchmark measures
    what ext_authz costs (masking gets its own measurement)."""
    return _without(settings, {EXT_PROC_FILTER})


def bare_bootstrap(settings: EnvoySettings) -> str:
    """The same bootstrap without ext_authz either, nothing else changed, so the two runs
    differ only by ext_authz. The routes' per-filter "disabled" entries stay: Envoy
    ignores configuration for a filter that is not in the chain."""
    return _without(settings, {EXT_PROC_FILTER, EXT_AUTHZ_FILTER})


def _without(settings: EnvoySettings, filters: set[str]) -> str:
    document = yaml.safe_load(render_bootstrap(settings))
    removed: set[str] = set()
    for listener in document["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] != HCM_FILTER:
                    continue
                http_filters = network_filter["typed_config"]["http_filters"]
                removed |= {f["name"] for f in http_filters if f["name"] in filters}
                kept = [f for f in http_filters if f["name"] not in filters]
                network_filter["typed_config"]["http_filters"] = kept
    if removed != filters:
        raise ValueError(f"the bootstrap lacks {sorted(filters - removed)}")
    return yaml.safe_dump(document, sort_keys=False)


def upstream_bootstrap(port: int, body: str = UPSTREAM_RESULT) -> str:
    """An Envoy that answers every request itself: an upstream that costs almost nothing
    and behaves the same in both runs. No access log, no admin: nothing to slow it."""
    route_config: dict[str, Any] = {
        "name": "upstream",
        "virtual_hosts": [
            {
                "name": "upstream",
                "domains": ["*"],
                "routes": [
                    {
                        "match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": body}},
                        "response_headers_to_add": [
                            {"header": {"key": "content-type", "value": "application/json"}}
                        ],
                    }
                ],
            }
        ],
    }
    if len(body.encode()) > DIRECT_RESPONSE_DEFAULT_MAX:
        # Envoy refuses a direct_response body over 4 KB unless the route table allows it.
        route_config["max_direct_response_body_size_bytes"] = len(body.encode())
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "upstream",
        "route_config": route_config,
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    listener = {
        "name": "upstream",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": HCM_FILTER, "typed_config": hcm}]}],
    }
    return yaml.safe_dump({"static_resources": {"listeners": [listener]}}, sort_keys=False)


def request_headers(token: str) -> dict[str, str]:
    """What an MCP client sends with a tools/call (streamable HTTP transport). Both runs
    send the token; only the ext_authz run looks at it."""
    return {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
        "authorization": f"Bearer {token}",
    }


def wrk_script(path: Path, headers: dict[str, str], body: bytes) -> None:
    """A wrk Lua script that sends the tools/call POST with the headers above."""
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the request body would end the Lua long string early")
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{text}]==]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    path.write_text("\n".join(lines) + "\n")
