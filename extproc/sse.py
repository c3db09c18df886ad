"""Rewriting the data of a Server-Sent Events body (text/event-stream) as it arrives in chunks.

ext_proc streams SSE responses: Envoy hands the body over chunk by chunk, and each event must
reach the client masked as soon as it is complete. `SseRewriter` holds back the incomplete
tail (an event cut anywhere, even inside a UTF-8 character or between the CR and LF of a
CRLF), passes each complete event's data to `rewrite_data` once and each of its other lines
(`id:`, `event:`, comments) to `rewrite_other`, and keeps every other byte as it came.

Parsing follows the WHATWG HTML "event stream interpretation": lines end with CRLF, LF or CR;
a blank line ends an event; a field's name is what precedes the first colon (the whole line
when there is none), so `data`, `data:x` and `data: x` are data lines while `Data:x`,
` data:x` and `:comment` are not; one UTF-8 BOM opening the stream is not part of the first
line.

Fails closed: bytes that are not UTF-8, or an event larger than the limit, raise `SseError`,
and the rewriter then refuses every further call, so nothing passes unmasked. Messages never
carry event contents: they are PHI.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from custos.errors import CustosError, LimitExceeded

__all__ = ["SseError", "SseEventTooLarge", "SseNotUtf8", "SseRewriter"]

_BOM = b"\xef\xbb\xbf"
_LF, _COLON, _SPACE = 0x0A, 0x3A, 0x20
_LINE_END = re.compile(rb"[\r\n]")
_CONTENT = re.compile(rb"[^\r\n]+")  # in a complete event: each line that is not blank
# Cuts rewritten text back into data lines at the terminators a client honours, so a CR
# introduced by the rewrite cannot open a new field. (str.splitlines would also cut at
# U+2028, U+0085..., which a client does not.)
_TEXT_LINE_END = re.compile(r"\r\n|\r|\n")

# A data line of the pending event, as offsets from the event's first byte:
# content [start, content_end), then its terminator [content_end, end).
_Line = tuple[int, int, int]
_Span = tuple[int, int, bytes]  # bytes [start, end) of an event, and what replaces them


class SseError(CustosError):
    """The event stream cannot be rewritten safely: the response must be refused."""

    code = "sse_invalid"


class SseNotUtf8(SseError):
    code = "sse_not_utf8"


class SseEventTooLarge(SseError, LimitExceeded):
    code = "sse_event_too_large"


class SseRewriter:
    """Rewrites the data of every event of one text/event-stream body, fed in chunks."""

    def __init__(
        self,
        rewrite_data: Callable[[str], str],
        max_event_bytes: int = 1_048_576,
        rewrite_other: Callable[[str], str] | None = None,
    ) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be positive")
        self._rewrite = rewrite_data
        self._rewrite_other = rewrite_other or (lambda line: line)
        self._max = max_event_bytes
        self._buf = bytearray()  # the pending event, from its first byte
        self._line_start = 0  # where the pending event's unterminated line starts
        self._scanned = 0  # no line end before this offset is left to handle
        self._data_lines: list[_Line] = []  # the pending event's data lines so far
        self._at_start = True  # a BOM may still open the stream
        self._closed = False  # finished or failed: nothing more goes through

    def feed(self, chunk: bytes) -> bytes:
        """Consume one body chunk; return what may go to the client now: every event
        completed so far, its data rewritten, framing preserved. An incomplete event
        (even one cut inside a UTF-8 character) is held back until its blank line."""
        self._check_open()
        self._buf += chunk
        return self._guarded(final=False)

    @property
    def pending_bytes(self) -> int:
        """The held-back bytes of an event not complete yet."""
        return len(self._buf)

    def finish(self) -> bytes:
        """End of stream: return what is left. A final event without its blank line is
        rewritten too, and goes out without a terminator it did not have."""
        self._check_open()
        try:
            return self._guarded(final=True)
        finally:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise SseError("the event stream is closed")

    def _guarded(self, final: bool) -> bytes:
        try:
            return self._process(final)
        except BaseException:
            # Fail closed: what was held back (unmasked) is dropped, and no later chunk
            # can slip through a rewriter whose state is no longer trustworthy.
            self._closed = True
            self._buf.clear()
            raise

    def _process(self, final: bool) -> bytes:
        buf, out = self._buf, bytearray()
        if self._at_start:
            if not final and len(buf) < len(_BOM) and _BOM.startswith(buf):
                return b""  # maybe a BOM cut short: its other bytes decide
            self._at_start = False
            if buf.startswith(_BOM):
                # A client drops it before parsing, so a "data:" right after it is data.
                out += _BOM
                del buf[: len(_BOM)]
        event_start, line_start, pos = 0, self._line_start, self._scanned
        data_lines = self._data_lines
        size = len(buf)
        # One regex search per line end, resuming at `pos`: each byte is scanned once
        # however many chunks the event takes (a held-back CR is looked at twice).
        while (found := _LINE_END.search(buf, pos)) is not None:
            cut = found.start()
            if buf[cut] == _LF:
                nxt = cut + 1
            elif cut + 1 < size:
                nxt = cut + 2 if buf[cut + 1] == _LF else cut + 1
            elif final or cut == line_start:
                # The stream's last byte, or a blank line ending on a CR: the line is over
                # either way, and the event goes out now rather than with the next one (a
                # CR-only stream would always lag one event). If an LF comes next, it reads
                # as an empty event of its own and passes through as is: same bytes, and a
                # client still reads the two as one CRLF.
                nxt = cut + 1
            else:
                pos = cut  # maybe half a CRLF: decide once the next byte is here
                break
            if cut == line_start:  # a blank line: the event is complete
                self._emit(out, buf, event_start, cut, nxt, data_lines)
                event_start, data_lines = nxt, []
            elif _is_data_line(buf, line_start, cut):
                data_lines.append((line_start - event_start, cut - event_start, nxt - event_start))
            line_start = pos = nxt
        else:  # no break: no line end is left to decide
            pos = size
        if final:
            if line_start < size and _is_data_line(buf, line_start, size):
                data_lines.append(
                    (line_start - event_start, size - event_start, size - event_start)
                )
            if event_start < size:  # the last event never got its blank line
                self._emit(out, buf, event_start, size, size, data_lines)
            event_start = line_start = pos = size
            data_lines = []
        elif size - event_start > self._max:
            # Checked per feed, not only per event: a stream that never ends an event
            # must not grow memory without bound.
            raise SseEventTooLarge(f"an event of the answer exceeds max_event_bytes ({self._max})")
        del buf[:event_start]
        self._line_start = line_start - event_start
        self._scanned = pos - event_start
        self._data_lines = data_lines
        return bytes(out)

    def _emit(
        self,
        out: bytearray,
        buf: bytearray,
        start: int,
        fields_end: int,
        end: int,
        data_lines: list[_Line],
    ) -> None:
        # The size counts the field lines, not the blank line: a pending event (what the
        # per-feed check measures) never holds its blank line, so both checks agree
        # wherever the stream is cut.
        if fields_end - start > self._max:
            raise SseEventTooLarge(f"an event of the answer exceeds max_event_bytes ({self._max})")
        event = bytes(buf[start:end])
        if not _is_utf8(event):
            raise SseNotUtf8("event is not UTF-8")
        out += self._rewrite_event(event, data_lines)

    def _rewrite_event(self, event: bytes, data_lines: list[_Line]) -> bytes:
        spans = self._data_spans(event, data_lines) if data_lines else []
        for match in _CONTENT.finditer(event):
            start, end = match.span()
            if not _is_data_line(event, start, end):
                spans += self._other_span(event, start, end)
        if not spans:
            return event  # nothing changed: the bytes go out exactly as they came
        out, done = bytearray(), 0
        for start, end, replacement in sorted(spans):
            _append(out, event[done:start])
            _append(out, replacement)
            done = end
        _append(out, event[done:])
        return bytes(out)

    def _other_span(self, event: bytes, start: int, end: int) -> list[_Span]:
        """An `id:`, `event:`, comment or unknown line, masked as text: a client may show
        or log it. It must stay one line that is not a data line."""
        original = event[start:end].decode()
        rewritten = self._rewrite_other(original)
        if rewritten == original:
            return []
        encoded = _encode_all([rewritten])
        if (
            encoded is None
            or _LINE_END.search(encoded[0])
            or _is_data_line(encoded[0], 0, len(encoded[0]))
        ):
            raise SseError("a rewritten field line would change the event's framing")
        return [(start, end, encoded[0])]

    def _data_spans(self, event: bytes, data_lines: list[_Line]) -> list[_Span]:
        value_starts = [_value_start(event, s, c) for s, c, _ in data_lines]
        # Valid: the event decodes, and every cut is next to an ASCII byte.
        original = b"\n".join(
            event[v:c] for v, (_, c, _) in zip(value_starts, data_lines, strict=True)
        ).decode()
        rewritten = self._rewrite(original)
        if rewritten == original:
            return []
        values = _encode_all(_TEXT_LINE_END.split(rewritten))
        if values is None:
            raise SseError("rewritten data is not encodable as UTF-8")
        if len(values) == len(data_lines):
            # Line for line: each keeps its own "data:" / "data: " and terminator.
            new = [
                _data_line(event[s:v], value) + event[c:e]
                for (s, c, e), v, value in zip(data_lines, value_starts, values, strict=True)
            ]
        else:
            # One block where the last data line was (where data lines sit among the other
            # fields does not change the event), each line ending like the first data line
            # and the last like the last one, so an unterminated final line stays so...
            (first_s, first_c, first_e), (_, last_c, last_e) = data_lines[0], data_lines[-1]
            separator = event[first_c:first_e] or b"\n"
            block = separator.join(_data_line(b"data: ", value) for value in values)
            new = [b""] * (len(data_lines) - 1) + [block + event[last_c:last_e]]
            if first_s == 0 and not _contiguous(data_lines):
                # ...unless the event opens with data and other fields follow: one of them
                # would open the event, and a BOM leading it, at the stream's start, would
                # be dropped by the client, turning the field into another.
                new = [block + separator] + [b""] * (len(data_lines) - 1)
        return [(s, e, line) for (s, _, e), line in zip(data_lines, new, strict=True)]


def _append(out: bytearray, piece: bytes) -> None:
    """`piece` after `out`, where a lone CR ending `out` never meets an LF it did not
    come before: a client reads CR LF as one line end, so a field line ending in CR
    followed by the blank line would swallow it and merge two events."""
    if piece.startswith(b"\n") and out.endswith(b"\r"):
        out[-1:] = b"\n"
    out += piece


def _contiguous(lines: list[_Line]) -> bool:
    return all(line[2] == after[0] for line, after in itertools.pairwise(lines))


def _is_data_line(buf: bytes | bytearray, start: int, content_end: int) -> bool:
    return buf.startswith(b"data", start, content_end) and (
        content_end == start + 4 or buf[start + 4] == _COLON
    )


def _value_start(event: bytes, start: int, content_end: int) -> int:
    colon = start + 4
    if colon == content_end:
        return content_end  # "data" alone: a data line with an empty value
    if colon + 1 < content_end and event[colon + 1] == _SPACE:
        return colon + 2  # a client strips one space after the colon
    return colon + 1


def _data_line(prefix: bytes, value: bytes) -> bytes:
    if not value:
        return prefix
    if prefix == b"data: " or value.startswith(b" "):
        # Without the space a client would strip the value's own leading space.
        return b"data: " + value
    return b"data:" + value


def _is_utf8(raw: bytes) -> bool:
    # A flag rather than raising from the except block: the UnicodeDecodeError holds the
    # bytes, and must not ride along as the SseError's __context__ into a logged traceback.
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _encode_all(lines: list[str]) -> list[bytes] | None:
    try:
        return [line.encode() for line in lines]
    except UnicodeEncodeError:  # a lone surrogate from the rewrite; same reason as above
        return None
