"""The masking rules are reloaded when their file changes, as the policy is: through the
reloader, through the servicer (an exchange keeps the rules it started with), and through
`custos extproc` itself, on a plain file and on a Kubernetes ConfigMap mount."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc

from custos.children import Supervisor
from custos.net import free_ports
from custos.stack import EXAMPLE_POLICY
from extproc.reloader import MaskingReloader, load_masker
from extproc.servicer import ExternalProcessorServicer
from tests.configmap import ConfigMapMount, rewrite
from tests.extproc.test_servicer import json_headers
from tests.processes import custos

# The same size, so that on a ConfigMap only the new inode tells them apart.
MASK_ALPHA = "detectors: []\nwords:\n  code: [alpha]\n"
MASK_BRAVO = "detectors: []\nwords:\n  code: [bravo]\n"
BROKEN = "detectors: []\nwords:\n  code: [bravo]\nno_such_key: 1\n"
TEXT = "alpha and bravo"
BY_ALPHA = "[CODE] and bravo"
BY_BRAVO = "alpha and [CODE]"
RELOAD_SECONDS = 0.2


def answer_body(text: str) -> ext_proc.ProcessingRequest:
    result = {"content": [{"type": "text", "text": text}]}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    return ext_proc.ProcessingRequest(
        response_body=ext_proc.HttpBody(body=body, end_of_stream=True)
    )


def text_of(response: ext_proc.ProcessingResponse) -> str:
    body = json.loads(response.response_body.response.body_mutation.body)
    return str(body["result"]["content"][0]["text"])


# --- the reloader ------------------------------------------------------------------------


def test_a_broken_file_is_refused_in_one_line_and_the_last_good_rules_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "masking.yaml"
    path.write_text(MASK_ALPHA)
    events: list[bool] = []
    reloader = MaskingReloader(path, on_reload=events.append)
    first = reloader.masker

    rewrite(path, BROKEN)
    with caplog.at_level(logging.INFO, logger="extproc.reloader"):
        assert reloader.check() is False
    assert reloader.masker is first
    assert events == [False]
    (line,) = caplog.records
    assert line.levelno == logging.ERROR and line.exc_info is None  # no traceback
    message = line.getMessage()
    assert "masking rules reload refused" in message
    assert f"{path}: no_such_key: Extra inputs are not permitted" in message

    rewrite(path, MASK_BRAVO)
    assert reloader.check() is True
    assert events == [False, True]
    assert reloader.masker is not first


def test_a_problem_found_past_the_file_is_named_with_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pseudonym key is read when the masker is built; its error does not name the
    # masking file by itself, the log line must.
    monkeypatch.setenv("RELOAD_TEST_KEY", "short")
    path = tmp_path / "masking.yaml"
    path.write_text(MASK_ALPHA)
    reloader = MaskingReloader(path)
    rewrite(path, MASK_ALPHA + "pseudonym_key: {env: RELOAD_TEST_KEY}\n")
    with caplog.at_level(logging.ERROR, logger="extproc.reloader"):
        assert reloader.check() is False
    (line,) = caplog.records
    assert (
        f"{path}: the pseudonym key (environment variable RELOAD_TEST_KEY) must be at least "
        "16 bytes" in line.getMessage()
    )
    assert "short" not in line.getMessage()


# --- the servicer ------------------------------------------------------------------------


async def test_an_exchange_masks_by_the_rules_it_started_with(tmp_path: Path) -> None:
    (tmp_path / "alpha.yaml").write_text(MASK_ALPHA)
    (tmp_path / "bravo.yaml").write_text(MASK_BRAVO)
    in_force = [load_masker(tmp_path / "alpha.yaml")]
    servicer = ExternalProcessorServicer(lambda: in_force[0])

    async def reloaded_mid_exchange() -> AsyncIterator[ext_proc.ProcessingRequest]:
        yield json_headers()
        in_force[0] = load_masker(tmp_path / "bravo.yaml")  # a reload between messages
        yield answer_body(TEXT)

    started = [r async for r in servicer.Process(reloaded_mid_exchange(), None)]  # type: ignore[arg-type]
    assert text_of(started[-1]) == BY_ALPHA

    async def next_exchange() -> AsyncIterator[ext_proc.ProcessingRequest]:
        yield json_headers()
        yield answer_body(TEXT)

    later = [r async for r in servicer.Process(next_exchange(), None)]  # type: ignore[arg-type]
    assert text_of(later[-1]) == BY_BRAVO


# --- custos extproc ----------------------------------------------------------------------


async def masked(port: int) -> str:
    """TEXT as a new exchange through ext_proc on `port` masks it."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stream = ext_proc_grpc.ExternalProcessorStub(channel).Process(timeout=5)
        await stream.write(json_headers())
        await stream.read()
        await stream.write(answer_body(TEXT))
        response = await stream.read()
        await stream.done_writing()
    assert isinstance(response, ext_proc.ProcessingResponse)
    return text_of(response)


async def masked_by(port: int, expected: str) -> str:
    """What TEXT becomes once it is `expected`, or after a few reload intervals."""
    got = ""
    for _ in range(int(4 / RELOAD_SECONDS)):
        got = await masked(port)
        if got == expected:
            break
        await asyncio.sleep(RELOAD_SECONDS / 4)
    return got


async def reloads(metrics_port: int, result: str, of: str = "masking") -> float:
    async with httpx.AsyncClient() as client:
        page = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    prefix = f'custos_{of}_reloads_total{{result="{result}"}} '
    values = [
        float(line.removeprefix(prefix)) for line in page.splitlines() if line.startswith(prefix)
    ]
    return values[0] if values else 0.0


async def counted(metrics_port: int, result: str, of: str = "masking") -> float:
    """The count once there is one, or 0 after a few reload intervals."""
    for _ in range(int(4 / RELOAD_SECONDS)):
        count = await reloads(metrics_port, result, of)
        if count:
            return count
        await asyncio.sleep(RELOAD_SECONDS / 4)
    return 0.0


async def start_extproc(
    supervisor: Supervisor, masking: Path, policy: Path | None = None
) -> tuple[int, int]:
    port, metrics_port = free_ports(2)
    await supervisor.spawn(
        "ext_proc",
        custos(
            "extproc",
            *("--masking", masking),
            *("--listen", f"127.0.0.1:{port}"),
            *("--metrics-listen", f"127.0.0.1:{metrics_port}"),
            *("--reload-seconds", str(RELOAD_SECONDS)),
            *(("--policy", policy) if policy is not None else ()),
        ),
        port,
    )
    return port, metrics_port


async def test_extproc_reloads_a_changed_file_and_refuses_a_broken_one(
    tmp_path: Path, supervisor: Supervisor, child_output: list[str]
) -> None:
    path = tmp_path / "masking.yaml"
    path.write_text(MASK_ALPHA)
    port, metrics_port = await start_extproc(supervisor, path)
    assert await masked(port) == BY_ALPHA

    rewrite(path, MASK_BRAVO)
    assert await masked_by(port, BY_BRAVO) == BY_BRAVO
    assert await reloads(metrics_port, "ok") == 1

    rewrite(path, BROKEN)
    assert await counted(metrics_port, "refused") == 1
    await asyncio.sleep(2 * RELOAD_SECONDS)  # the same broken file is not refused again
    assert await reloads(metrics_port, "refused") == 1
    assert await masked(port) == BY_BRAVO  # the last good rules
    refusals = [line for line in child_output if "reload refused" in line]
    assert len(refusals) == 1, child_output
    assert f"{path}: no_such_key: Extra inputs are not permitted" in refusals[0]
    assert not any("Traceback" in line for line in child_output)


async def test_extproc_follows_a_configmap_update(tmp_path: Path, supervisor: Supervisor) -> None:
    mount = ConfigMapMount(tmp_path / "config", {"masking.yaml": MASK_ALPHA})
    port, metrics_port = await start_extproc(supervisor, mount.path("masking.yaml"))
    assert await masked(port) == BY_ALPHA

    mount.update({"masking.yaml": MASK_BRAVO})  # same size and mtime: a new inode only
    assert await masked_by(port, BY_BRAVO) == BY_BRAVO
    assert await reloads(metrics_port, "ok") == 1


async def test_extproc_counts_its_policy_reloads_too(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    # ext_proc's copy of the policy hides the tools/list entries it refuses; a refused
    # reload there is as worth an alarm as in ext_authz.
    masking, policy = tmp_path / "masking.yaml", tmp_path / "policy.yaml"
    masking.write_text(MASK_ALPHA)
    policy.write_text(EXAMPLE_POLICY.read_text())
    _, metrics_port = await start_extproc(supervisor, masking, policy)
    rewrite(policy, "rules: [")
    assert await counted(metrics_port, "refused", of="policy") == 1
    assert await reloads(metrics_port, "refused") == 0  # the masking rules did not change
