"""A tool's typed output stays valid for the client: the real MCP SDK client, which checks
`structuredContent` against the tool's listed `outputSchema`, calls a real SDK server whose
answers pass through the masking engine, as ext_proc masks them (listings with
`mask_tool_listing`, other answers with `mask_json_text`)."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client._memory import InMemoryTransport
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import BaseModel, Field

from extproc.exchange import PROTOCOL_METHODS
from extproc.masking import Masker, MaskingConfig, MaskReport
from extproc.masking.schemas import widened


class Chart(BaseModel):
    mrn: int
    age: int
    ssn: str = Field(pattern=r"^\d{3}-\d{2}-\d{4}$")
    date_of_birth: datetime.date
    name: str
    visits: dict[str, int]  # keyed by date: the keys are PHI too
    status: str = Field(pattern=r"^(active|inactive)$")


def chart_server() -> MCPServer:
    server = MCPServer("charts")

    @server.tool()
    def get_chart(patient_id: str) -> Chart:
        return Chart(
            mrn=48213377,
            age=93,
            ssn="078-05-1120",
            date_of_birth=datetime.date(1931, 3, 4),
            name="Ada Okafor",
            visits={"2024-03-05": 2, "2024-04-11": 1},
            status="active",
        )

    return server


class MaskingTransport:
    """The in-memory transport with the engine between server and client: each answer
    masked as ext_proc masks it, the listing of tools by its own rules."""

    def __init__(self, server: MCPServer, masker: Masker, widen: bool = True) -> None:
        self._inner = InMemoryTransport(server)
        self._masker = masker
        self._widen = widen
        self._cm: Any = None

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[Any]:
        to_client_send, to_client = anyio.create_memory_object_stream[Any](16)
        from_client, from_client_receive = anyio.create_memory_object_stream[Any](16)
        methods: dict[Any, str] = {}
        async with self._inner as (inner_read, inner_write), anyio.create_task_group() as tg:

            async def upward() -> None:
                async for message in from_client_receive:
                    if hasattr(message.message, "method") and hasattr(message.message, "id"):
                        methods[message.message.id] = message.message.method
                    await inner_write.send(message)
                await inner_write.aclose()

            async def downward() -> None:
                async for message in inner_read:
                    if isinstance(message, SessionMessage):
                        message = SessionMessage(self._masked(message.message, methods))
                    await to_client_send.send(message)
                await to_client_send.aclose()

            tg.start_soon(upward)
            tg.start_soon(downward)
            yield to_client, from_client
            await from_client.aclose()

    def _masked(self, message: Any, methods: dict[Any, str]) -> Any:
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
        method = methods.get(getattr(message, "id", None))
        if method in PROTOCOL_METHODS:
            masked = self._masker.mask_json_text(text, MaskReport(), handshake=True)
        elif method == "tools/list" and self._widen:
            masked = self._masker.mask_tool_listing(text, MaskReport())
        elif method == "tools/list":  # what the client saw before schemas were widened
            masked = text
        else:
            masked = self._masker.mask_json_text(text, MaskReport())
        return jsonrpc_message_adapter.validate_json(masked, by_name=False)

    async def __aenter__(self) -> Any:
        self._cm = self._connect()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(*exc)


@pytest.mark.asyncio
async def test_the_sdk_client_accepts_a_masked_typed_answer() -> None:
    async with Client(MaskingTransport(chart_server(), Masker(MaskingConfig()))) as client:
        tools = await client.list_tools()
        result = await client.call_tool("get_chart", {"patient_id": "pt-1"})
    assert not result.is_error
    chart = result.structured_content
    assert chart is not None
    seen = json.dumps(chart)
    for phi in ("48213377", "078-05-1120", "1931-03-04", "Okafor", "2024-03-05"):
        assert phi not in seen
    assert chart["age"] != 93 and chart["status"] == "active"
    schema = tools.tools[0].output_schema
    assert schema is not None and schema["properties"]["mrn"]["type"] == ["integer", "string"]
    assert schema["type"] == "object"  # MCP requires it of an output schema


@pytest.mark.asyncio
async def test_without_widening_the_client_refuses_the_masked_answer() -> None:
    # The check that the test above passes for the widened schema, not by luck.
    masker = Masker(MaskingConfig())
    async with Client(MaskingTransport(chart_server(), masker, widen=False)) as client:
        await client.list_tools()
        with pytest.raises(RuntimeError, match="Invalid structured content"):
            await client.call_tool("get_chart", {"patient_id": "pt-1"})


def test_a_dropped_member_is_no_longer_required() -> None:
    schema = {"type": "object", "properties": {"ssn": {"type": "string"}}, "required": ["ssn"]}
    assert "required" in widened(schema, dropping=False)
    assert "required" not in widened(schema, dropping=True)


def test_one_of_becomes_any_of_and_keeps_an_any_of_of_its_own() -> None:
    schema = {
        "oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^x"}],
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "not": {"type": "boolean"},
    }
    assert widened({"properties": {"x": schema}}, dropping=False)["properties"]["x"] == {
        "anyOf": [{"type": ["integer", "string"]}, {"type": ["null", "string"]}],
        "allOf": [{"anyOf": [{"type": ["integer", "string"]}, {"type": "string"}]}],
    }


def test_nested_definitions_and_items_are_widened_and_the_rest_kept() -> None:
    schema = {
        "$defs": {"Phone": {"type": "string", "format": "phone", "description": "home"}},
        "type": "object",
        "properties": {
            "phones": {"type": "array", "items": {"$ref": "#/$defs/Phone"}, "minItems": 1},
            "ages": {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0}]},
        },
        "additionalProperties": False,
    }
    assert widened(schema, dropping=False) == {
        "$defs": {"Phone": {"type": "string", "description": "home"}},
        "type": "object",
        "properties": {
            "phones": {
                "type": ["array", "string"],
                "items": {"$ref": "#/$defs/Phone"},
                "minItems": 1,
            },
            "ages": {
                "type": ["array", "string"],
                "prefixItems": [{"type": ["integer", "string"], "minimum": 0}],
            },
        },
    }
