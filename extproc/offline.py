"""`custos mask`: the engine run on a saved response, for operators tuning their rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extproc.masking.answer import AnswerMasking
from extproc.masking.engine import MaskReport
from extproc.reloader import load_masker
from extproc.sse import SseRewriter


def mask_document(config_path: Path, raw: bytes) -> tuple[bytes, dict[str, Any]]:
    """A JSON document or an SSE stream, masked, and the report of what was masked."""
    masker = load_masker(config_path)
    report = MaskReport()
    if raw.lstrip()[:1] in (b"{", b"["):
        return masker.mask_body(raw, report), report.as_dict()
    # As ext_proc masks a stream: a value marked in one event is looked for in later ones.
    answer = AnswerMasking(masker, report, streamed=True)
    rewriter = SseRewriter(answer.document, rewrite_other=answer.line)
    masked = rewriter.feed(raw) + rewriter.finish()
    return masked, answer.finish().as_dict()
