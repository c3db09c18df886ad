"""One answer's masking, as whoever reads the answer drives it (the exchange, `custos mask`):
started once its headers say what comes (one JSON document, or a stream of events) and
what the caller may see; fed its documents, events and lines as they arrive, each body
message under the masking time limit; finished when the answer ends.

A stream's values marked in one event are looked for in its later events and lines; they
are the answer's own, and are let go when it finishes."""

from __future__ import annotations

import time

from extproc.masking.engine import Carried, Masker, MaskingError, MaskReport


class AnswerMasking:
    def __init__(
        self,
        masker: Masker,
        report: MaskReport,
        *,
        keep: frozenset[str] = frozenset(),
        handshake: bool = False,
        streamed: bool = False,
    ) -> None:
        """`report`: where what is masked is counted (the exchange's, which its request
        and headers add to). `keep`: the entities this caller may see. `handshake`: the
        answer to a protocol method, whose results' protocol members pass as they are."""
        self._masker = masker
        self.report = report
        self._keep = keep
        self._handshake = handshake
        # A buffered answer is one document: nothing comes after it to look for its values.
        self._carried = Carried() if streamed else None
        self._deadline: float | None = None
        self._finished = False

    def message(self) -> None:
        """A body message is in hand: what it holds is masked within the time limit, from
        now."""
        self._deadline = time.monotonic() + self._masker.config.mask_timeout_ms / 1000

    def document(self, text: str) -> str:
        """JSON text: a buffered body, or an event's data (empty in a priming event)."""
        self._open()
        if not text.strip():
            return text
        return self._masker.mask_json_text(
            text,
            self.report,
            self._keep,
            handshake=self._handshake,
            deadline=self._deadline,
            carried=self._carried,
        )

    def listing(self, text: str) -> str:
        """A `tools/list` answer, as the tool filter left it."""
        self._open()
        return self._masker.mask_tool_listing(
            text, self.report, self._keep, deadline=self._deadline, carried=self._carried
        )

    def line(self, line: str) -> str:
        """A stream's line that is no event's data. An event's type is the protocol's
        ("message"): a marked value that happens to spell it must not rename it, or the
        client drops the event."""
        return self.text(line, carrying=not line.startswith("event:"))

    def text(self, text: str, *, carrying: bool = True) -> str:
        """Free text: a text/plain body, a header's value. `carrying`: whether a stream's
        marked values are looked for in it, and its own added to them."""
        self._open()
        carried = self._carried if carrying else None
        return self._masker.mask_text(text, self.report, self._deadline, carried)

    def finish(self) -> MaskReport:
        """The answer is over: its marked values are let go, and nothing more is masked
        as part of it."""
        self._finished = True
        self._carried = None
        return self.report

    def _open(self) -> None:
        if self._finished:
            raise MaskingError("masking an answer that has finished")
