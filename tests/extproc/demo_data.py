"""The demo MCP server's fake patients, and the exact JSON-RPC result the MCP SDK sends
for `get_patient_record`, for tests of masking that need no running server."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType

from custos.stack import DEMO_SERVER


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_mcp_server", DEMO_SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_mcp_server", module)
    spec.loader.exec_module(module)
    return module


DEMO = _demo()
PATIENTS = DEMO.fake_patients()


def record_response(patient_id: str, call_id: int = 2) -> bytes:
    """Byte for byte the shape the MCP SDK gives a tool returning a pydantic model."""
    record = PATIENTS[patient_id]
    result = {
        "content": [{"text": record.model_dump_json(indent=2), "type": "text"}],
        "isError": False,
        "structuredContent": record.model_dump(),
    }
    return json.dumps({"jsonrpc": "2.0", "id": call_id, "result": result}).encode()
