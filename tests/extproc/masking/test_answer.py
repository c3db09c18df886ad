"""One answer's masking as the exchange and `custos mask` drive it: started with what the
caller may see and how the answer comes, fed its documents, events and lines, finished."""

from __future__ import annotations

import json
import time

import pytest

from extproc.masking.answer import AnswerMasking
from extproc.masking.config import MaskingConfig
from extproc.masking.engine import Masker, MaskingError, MaskReport

MASKER = Masker(MaskingConfig())
NOTICE = json.dumps({"jsonrpc": "2.0", "method": "notify", "params": {"name": "Zed Quux"}})
LATER = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"note": "the Quux file"}})


def test_a_stream_looks_for_what_an_event_marked_in_its_later_events_and_lines() -> None:
    answer = AnswerMasking(MASKER, MaskReport(), streamed=True)
    answer.message()
    answer.document(NOTICE)
    assert "Quux" not in answer.document(LATER)
    assert "Quux" not in answer.line(": about Quux")
    assert answer.line("event: Quux") == "event: Quux"  # the event's type keeps its name
    assert answer.text("Quux", carrying=False) == "Quux"  # a header's value, say
    assert answer.finish().counts["name"] == 3


def test_a_buffered_answer_carries_nothing_beyond_its_one_document() -> None:
    answer = AnswerMasking(MASKER, MaskReport())
    answer.document(NOTICE)
    assert "Quux" in answer.document(LATER)


def test_the_caller_sees_what_it_may_and_a_handshake_keeps_its_protocol_members() -> None:
    result = {"protocolVersion": "2025-06-18", "note": "seen 2024-03-05, SSN 123-45-6789"}
    text = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result})
    answer = AnswerMasking(MASKER, MaskReport(), keep=frozenset({"ssn"}), handshake=True)
    masked = json.loads(answer.document(text))["result"]
    assert masked["protocolVersion"] == "2025-06-18"
    assert "123-45-6789" in masked["note"] and "2024-03-05" not in masked["note"]


def test_an_empty_event_passes_as_it_is() -> None:
    assert AnswerMasking(MASKER, MaskReport(), streamed=True).document("  ") == "  "


def test_a_finished_answer_masks_nothing_more() -> None:
    answer = AnswerMasking(MASKER, MaskReport(), streamed=True)
    answer.document(NOTICE)
    answer.finish()
    for feed in (answer.document, answer.line, answer.text):
        with pytest.raises(MaskingError):
            feed(LATER)


def test_each_body_message_is_masked_within_the_time_limit_from_its_arrival() -> None:
    config = MaskingConfig(mask_timeout_ms=10)
    answer = AnswerMasking(Masker(config), MaskReport(), streamed=True)
    answer.message()
    time.sleep(0.02)
    with pytest.raises(MaskingError):
        answer.line(": SSN 123-45-6789")
    answer.message()  # the next message has its own time
    assert answer.line(": SSN 123-45-6789") == ": SSN [SSN]"
