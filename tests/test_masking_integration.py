"""PHI masking end to end: real Envoy, ext_authz and ext_proc in front of the demo MCP
server, driven by the real MCP SDK client."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from mcp.shared.exceptions import MCPError

from custos.stack import EXAMPLE_MASKING, LocalStack
from tests.extproc.demo_data import PATIENTS
from tests.stack_fixture import mcp_client, post_jsonrpc, running_stack, token, upstream_requests

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    async with running_stack(tmp_path_factory.mktemp("masking")) as running:
        yield running


def leaked(patient_id: str, text: str) -> list[str]:
    record = PATIENTS[patient_id]
    first, last = record.name.split()
    forms = [record.name, first, last, record.ssn, record.ssn[:6], record.mrn]
    street, city, state_zip = record.address.split(", ")
    forms += [record.date_of_birth, record.phone, record.email, street, city, state_zip[-5:]]
    found = [form for form in forms if form in text]
    if re.sub(r"\D", "", record.ssn) in re.sub(r"\D", "", text):
        found.append("ssn digits")
    return found


@pytest.mark.parametrize("patient_id", ["pt-0001", "pt-0004"])
async def test_a_record_reaches_the_client_without_its_phi(
    stack: LocalStack, patient_id: str
) -> None:
    # The SDK's default (legacy) session answers tools/call as an SSE stream.
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer) as client:
        result = await client.call_tool("get_patient_record", {"patient_id": patient_id})
    assert not result.is_error
    seen = json.dumps(result.structured_content) + "".join(
        getattr(block, "text", "") for block in result.content
    )
    assert leaked(patient_id, seen) == []
    assert result.structured_content is not None
    assert result.structured_content["patient_id"] == patient_id  # tools can still use it
    assert result.structured_content["ssn"] == "[SSN]"  # whole: not even the last four


async def test_a_json_response_is_masked_too(stack: LocalStack) -> None:
    # The stateless protocol answers with plain application/json.
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer, mode="auto") as client:
        result = await client.call_tool("get_patient_record", {"patient_id": "pt-0002"})
    assert leaked("pt-0002", json.dumps(result.structured_content)) == []


async def test_search_results_are_masked(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer) as client:
        result = await client.call_tool("search_patients", {"query": ""})
    text = json.dumps(result.structured_content)
    for patient_id in PATIENTS:
        assert PATIENTS[patient_id].name not in text
        assert PATIENTS[patient_id].date_of_birth not in text


async def test_ext_proc_down_means_an_error_and_no_patient_data(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        bearer = await token(stack, "alice", ["phi-readers"])
        await stack.stop_child("ext_proc")
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get_patient_record", "arguments": {"patient_id": "pt-0003"}},
        }
        response = await post_jsonrpc(stack, call, bearer)
        assert response.status_code >= 500
        assert leaked("pt-0003", response.text) == []
        assert upstream_requests(stack) == []  # refused before the MCP server was asked


async def test_tools_list_hides_what_the_callers_policy_refuses(stack: LocalStack) -> None:
    reader = await token(stack, "alice", ["phi-readers"])
    admin = await token(stack, "bob", ["phi-admins"])
    async with mcp_client(stack, reader) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    assert offered == {"search_patients", "get_patient_record"}
    async with mcp_client(stack, admin) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    assert "delete_patient" in offered


async def test_an_exception_lets_unmasked_staff_see_ssns_and_nothing_more(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "carol", ["phi-readers", "phi-unmasked"])
    async with mcp_client(stack, bearer) as client:
        result = await client.call_tool("get_patient_record", {"patient_id": "pt-0005"})
    record = PATIENTS["pt-0005"]
    assert result.structured_content is not None
    assert result.structured_content["ssn"] == record.ssn
    assert result.structured_content["mrn"] == record.mrn
    seen = json.dumps(result.structured_content)
    assert record.name not in seen and record.phone not in seen and record.email not in seen


async def test_metrics_count_what_was_masked_by_entity(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    async with mcp_client(stack, bearer) as client:
        await client.call_tool("get_patient_record", {"patient_id": "pt-0006"})
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{stack.ports.extproc_metrics}/metrics")).text
    assert re.search(r'custos_masked_values_total\{entity="ssn"\} [1-9]', text)
    assert PATIENTS["pt-0006"].ssn not in text


@pytest.mark.parametrize(
    ("mode", "limit", "code"),
    [
        ("auto", "max_body_bytes", "body_too_large"),
        ("legacy", "max_event_bytes", "sse_event_too_large"),
    ],
    ids=["json-answer", "event-stream"],
)
async def test_an_answer_over_the_masking_bound_is_refused_with_the_limit_named(
    tmp_path: Path, mode: str, limit: str, code: str
) -> None:
    masking = tmp_path / "masking.yaml"
    bounds = "max_body_bytes: 1024\nmax_event_bytes: 1024\n"
    masking.write_text(EXAMPLE_MASKING.read_text() + bounds)
    async with running_stack(tmp_path / "run", masking=masking) as small:
        bearer = await token(small, "alice", ["phi-readers"])
        async with mcp_client(small, bearer, mode=mode) as client:
            # The record is ~1.5 KB: over the bound. Whether it comes as a JSON body or as
            # an event of a stream whose 200 is out, the call gets a JSON-RPC error.
            with pytest.raises(MCPError) as refused:
                await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
            assert f"{limit} (1024)" in str(refused.value)
        assert leaked("pt-0001", repr(refused.value)) == []
        metrics = f"http://127.0.0.1:{small.ports.extproc_metrics}/metrics"
        async with httpx.AsyncClient() as http:
            text = (await http.get(metrics)).text
        assert re.search(rf'custos_masking_refusals_total\{{code="{code}"\}} 1', text)


async def test_a_gzip_answer_from_a_misbehaving_upstream_is_still_masked(tmp_path: Path) -> None:
    # The upstream compresses although ext_proc removed Accept-Encoding on the way up.
    async with running_stack(tmp_path, demo_env={"DEMO_MCP_FORCE_GZIP": "1"}) as gzipping:
        bearer = await token(gzipping, "alice", ["phi-readers"])
        async with mcp_client(gzipping, bearer, mode="auto") as client:
            result = await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
        assert result.structured_content is not None
        assert leaked("pt-0001", json.dumps(result.structured_content)) == []
        assert result.structured_content["ssn"] == "[SSN]"
        metrics = f"http://127.0.0.1:{gzipping.ports.extproc_metrics}/metrics"
        async with httpx.AsyncClient() as http:
            text = (await http.get(metrics)).text
        assert re.search(r'custos_masked_values_total\{entity="ssn"\} [1-9]', text)


async def test_with_request_masking_the_server_never_sees_phi_in_arguments(
    tmp_path: Path,
) -> None:
    # The operator lists the surname as a name to mask: a search for it reaches the
    # server masked, so the server finds nobody. Without the setting it finds the patient.
    words = "words:\n  name: [Fakenham]\n"
    found = {}
    for mask_requests in (False, True):
        masking = tmp_path / f"masking-{mask_requests}.yaml"
        setting = f"mask_requests: {str(mask_requests).lower()}\n"
        masking.write_text(EXAMPLE_MASKING.read_text() + words + setting)
        async with running_stack(tmp_path / f"run-{mask_requests}", masking=masking) as stack:
            bearer = await token(stack, "alice", ["phi-readers"])
            async with mcp_client(stack, bearer, mode="auto") as client:
                result = await client.call_tool("search_patients", {"query": "Fakenham"})
            assert result.structured_content is not None
            assert "Fakenham" not in json.dumps(result.structured_content)
            found[mask_requests] = result.structured_content["count"]
    assert found == {False: 1, True: 0}


async def test_a_big_answer_is_masked_whole_and_a_bigger_one_refused_by_name(
    tmp_path: Path,
) -> None:
    # A history of years of notes: about 3 MB as the SDK sends it (the record twice).
    note_bytes = {"DEMO_MCP_NOTE_BYTES": "1500000"}
    masking = tmp_path / "masking.yaml"
    masking.write_text(EXAMPLE_MASKING.read_text() + "mask_timeout_ms: 20000\n")
    async with running_stack(tmp_path / "big", masking=masking, demo_env=note_bytes) as big:
        bearer = await token(big, "alice", ["phi-readers"])
        async with mcp_client(big, bearer, mode="auto") as client:  # a JSON answer
            result = await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
        assert result.structured_content is not None
        assert len(result.structured_content["clinical_note"]) > 1_000_000
        assert leaked("pt-0001", json.dumps(result.structured_content)) == []
    # About 6 MB: over the masking rules' max_body_bytes, under Envoy's buffer.
    twice = {"DEMO_MCP_NOTE_BYTES": "3000000"}
    async with running_stack(tmp_path / "bigger", masking=masking, demo_env=twice) as bigger:
        bearer = await token(bigger, "alice", ["phi-readers"])
        async with mcp_client(bigger, bearer, mode="auto") as client:
            with pytest.raises(MCPError) as refused:
                await client.call_tool("get_patient_record", {"patient_id": "pt-0001"})
        assert "max_body_bytes (4194304)" in str(refused.value)
