"""`tools/list` filtering on its own: the policy judges each tool for this caller."""

from __future__ import annotations

import json

from google.protobuf import struct_pb2

from custos.policy import Identity
from custos.policy.reloader import PolicyReloader
from custos.stack import EXAMPLE_POLICY
from extproc.tool_filter import ToolFilter, identity_from

LISTING = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {
            "tools": [
                {"name": "search_patients", "inputSchema": {"type": "object"}},
                {"name": "get_patient_record", "inputSchema": {"type": "object"}},
                {"name": "delete_patient", "inputSchema": {"type": "object"}},
                {"description": "a tool without a name"},
            ]
        },
    }
)
FILTER = ToolFilter(PolicyReloader(EXAMPLE_POLICY))


def names(text: str) -> list[str]:
    return [tool["name"] for tool in json.loads(text)["result"]["tools"]]


def test_readers_are_not_offered_delete() -> None:
    reader = Identity("https://idp.example", "alice", groups=("phi-readers",))
    assert names(FILTER.filter(LISTING, reader)) == ["search_patients", "get_patient_record"]


def test_admins_are_offered_every_named_tool() -> None:
    admin = Identity("https://idp.example", "bob", groups=("phi-admins",))
    assert "delete_patient" in names(FILTER.filter(LISTING, admin))


def test_each_listing_of_a_batch_is_filtered() -> None:
    reader = Identity("https://idp.example", "alice", groups=("phi-readers",))
    batch = f"[{LISTING},{LISTING}]"
    filtered = FILTER.filter(batch, reader)
    assert filtered is not None
    for message in json.loads(filtered):
        assert [t["name"] for t in message["result"]["tools"]] == [
            "search_patients",
            "get_patient_record",
        ]
    # A batch that holds anything else is not the filter's: it is masked whole.
    error = '{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"nope"}}'
    assert FILTER.filter(f"[{LISTING},{error}]", reader) is None


def test_no_verified_caller_is_offered_nothing() -> None:
    assert names(FILTER.filter(LISTING, None)) == []


def test_what_is_not_a_listing_is_left_to_the_masker() -> None:
    # An error answer, or a notification on the same SSE stream: not filtered here, so the
    # exchange masks it like any other answer.
    error = '{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}'
    assert FILTER.filter(error, None) is None
    # A listing may carry `_meta` and a byte order mark, as any answer may.
    with_meta = json.loads(LISTING)
    with_meta["result"]["_meta"] = {"served-by": "a"}
    assert FILTER.filter("\ufeff" + json.dumps(with_meta), None) is not None
    # Not a listing whose id is an object: no JSON-RPC id is, so it could carry anything.
    odd_id = json.loads(LISTING) | {"id": {"ssn": "900-12-3456"}}
    assert FILTER.filter(json.dumps(odd_id), None) is None


def test_the_caller_comes_from_ext_authz_metadata() -> None:
    decision = struct_pb2.Struct()
    decision.update(
        {
            "mcp_methods": ["tools/list"],
            "identity": {
                "issuer": "https://idp.example",
                "subject": "alice",
                "email": "alice@example.com",
                "groups": ["phi-readers"],
                "claims": {"sub": "alice", "acr": "mfa"},
            },
        }
    )
    identity = identity_from(decision)
    assert identity is not None
    assert (identity.subject, identity.groups) == ("alice", ("phi-readers",))
    assert identity.claims["acr"] == "mfa"
    assert identity_from(struct_pb2.Struct()) is None
