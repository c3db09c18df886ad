"""SSE rewriting: framing kept byte for byte, data rewritten once per event, the same output
wherever the stream is cut, and fail closed on bytes that are not UTF-8 or events too large."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc.sse import SseError, SseEventTooLarge, SseNotUtf8, SseRewriter

Rewrite = Callable[[str], str]
BOM = "\ufeff"


def identity(text: str) -> str:
    return text


def upper(text: str) -> str:
    return text.upper()


def mask_digits(text: str) -> str:
    return re.sub("[0-9]", "#", text)


def one_line(text: str) -> str:  # fewer lines than the event had
    return text.replace("\n", " ") + "!"


def split_commas(text: str) -> str:  # more lines than the event had
    return text.replace(",", ",\n")


def crlf_commas(text: str) -> str:  # line breaks a client would read as field ends
    return text.replace(",", ",\r\n").replace(":", ":\r")


REWRITES = [identity, upper, mask_digits, one_line, split_commas, crlf_commas]


def run(
    stream: bytes,
    rewrite: Rewrite,
    cuts: Sequence[int] = (),
    max_event_bytes: int = 1_048_576,
) -> bytes:
    """Feeds `stream` cut at `cuts`, then finishes; returns everything the client got."""
    rewriter = SseRewriter(rewrite, max_event_bytes)
    bounds = [0, *sorted(cuts), len(stream)]
    out = b"".join(rewriter.feed(stream[a:b]) for a, b in itertools.pairwise(bounds))
    return out + rewriter.finish()


# --- a non-streaming reference, working on decoded text rather than bytes ----------------

_TERMINATOR = re.compile(r"(\r\n|\r|\n)")


def lines_of(text: str) -> list[tuple[str, str]]:
    """(content, terminator) pairs; a last line without terminator has ""."""
    parts = _TERMINATOR.split(text)
    lines = list(zip(parts[0::2], parts[1::2], strict=False))
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def events_of(stream: bytes) -> tuple[str, list[list[tuple[str, str]]]]:
    text = stream.decode()  # raises UnicodeDecodeError where the rewriter must refuse
    bom = BOM if text.startswith(BOM) else ""
    events: list[list[tuple[str, str]]] = []
    event: list[tuple[str, str]] = []
    for content, terminator in lines_of(text[len(bom) :]):
        event.append((content, terminator))
        if not content:
            events.append(event)
            event = []
    if event:
        events.append(event)
    return bom, events


def field(content: str) -> tuple[str, str]:
    """A line as a client reads it: name before the first colon, one space stripped."""
    name, _, value = content.partition(":")
    return name, value.removeprefix(" ")


def reference(stream: bytes, rewrite: Rewrite) -> bytes:
    bom, events = events_of(stream)
    return (bom + "".join(reference_event(event, rewrite) for event in events)).encode()


def reference_event(event: list[tuple[str, str]], rewrite: Rewrite) -> str:
    lines = list(event)
    data = [i for i, (content, _) in enumerate(lines) if field(content)[0] == "data"]
    original = "\n".join(field(lines[i][0])[1] for i in data)
    new = rewrite(original) if data else original
    if new != original:
        values = re.split(r"\r\n|\r|\n", new)
        if len(values) == len(data):
            for i, value in zip(data, values, strict=True):
                content, terminator = lines[i]
                prefix = content[: len(content) - len(field(content)[1])]
                lines[i] = (reference_data_line(prefix, value), terminator)
        else:
            separator = lines[data[0]][1] or "\n"
            block = separator.join(reference_data_line("data: ", value) for value in values)
            for i in data:
                lines[i] = ("", "")
            if data[0] == 0 and data != list(range(data[0], data[-1] + 1)):
                lines[0] = (block, separator)  # an event opening with data keeps it first
            else:
                lines[data[-1]] = (block, event[data[-1]][1])
    out = ""
    for content, terminator in lines:
        piece = content + terminator
        if piece.startswith("\n") and out.endswith("\r"):  # CR LF would be one line end
            out = out[:-1] + "\n"
        out += piece
    return out


def reference_data_line(prefix: str, value: str) -> str:
    if not value:
        return prefix
    if prefix == "data: " or value.startswith(" "):
        return "data: " + value
    return "data:" + value


def parsed(stream: bytes) -> tuple[str, list[tuple[list[tuple[str, str]], str | None]]]:
    """What a client sees: per event its other fields in order, and its data (None if none)."""
    bom, events = events_of(stream)
    seen = []
    for event in events:
        fields = [field(content) for content, _ in event if content]
        data = [value for name, value in fields if name == "data"]
        others = [(name, value) for name, value in fields if name != "data"]
        seen.append((others, "\n".join(data) if data else None))
    return bom, seen


# --- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [(identity, b'data: {"name": "ada"}\n\n'), (upper, b'data: {"NAME": "ADA"}\n\n')],
)
def test_a_single_event(rewrite: Rewrite, expected: bytes) -> None:
    assert run(b'data: {"name": "ada"}\n\n', rewrite) == expected


@pytest.mark.parametrize("rewrite", [identity, upper])
def test_several_events_in_one_chunk_go_out_together(rewrite: Rewrite) -> None:
    stream = b"data: a\n\nevent: x\ndata: b\n\ndata: c\n\n"
    rewriter = SseRewriter(rewrite)
    expected = b"data: a\n\nevent: x\ndata: b\n\ndata: c\n\n"
    if rewrite is upper:
        expected = b"data: A\n\nevent: x\ndata: B\n\ndata: C\n\n"
    assert rewriter.feed(stream) == expected
    assert rewriter.finish() == b""


def test_multi_line_data_is_rewritten_once_as_one_document() -> None:
    calls: list[str] = []

    def record(text: str) -> str:
        calls.append(text)
        return text.upper()

    stream = b'data: {"ssn":\ndata:  "123"}\nid: 1\ndata:x\n\n'
    assert run(stream, record) == b'data: {"SSN":\ndata:  "123"}\nid: 1\ndata:X\n\n'
    assert calls == ['{"ssn":\n "123"}\nx']


@pytest.mark.parametrize("terminator", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"])
@pytest.mark.parametrize("rewrite", [identity, upper])
def test_line_terminators_are_kept(terminator: bytes, rewrite: Rewrite) -> None:
    t = terminator
    stream = b"event: e" + t + b"data: a" + t + b"data: b" + t + t + b"data: c" + t + t
    expected = stream if rewrite is identity else stream.replace(b": a", b": A")
    expected = expected if rewrite is identity else expected.replace(b": b", b": B")
    expected = expected if rewrite is identity else expected.replace(b": c", b": C")
    assert run(stream, rewrite) == expected
    assert all(run(stream, rewrite, [cut]) == expected for cut in range(len(stream) + 1))


def test_everything_but_data_is_kept_byte_for_byte() -> None:
    # Only the exact field name "data" is data to a client: "Data", " data" and a
    # comment are not, and neither is a BOM anywhere but at the start of the stream.
    stream = (
        b"event: record 1\nid: 42\nretry:1000\n: comment 7\nfoo: 3\nbar\nData: 4\n data: 5\n"
        b"\xef\xbb\xbfdata: 6\nid:7\r\ndata: 89\rretry: 10\n\n"
    )
    expected = stream.replace(b"data: 89", b"data: ##")
    assert run(stream, mask_digits) == expected


@pytest.mark.parametrize("rewrite", [identity, upper])
def test_data_without_a_space_after_the_colon_stays_so(rewrite: Rewrite) -> None:
    stream = b"data:abc\ndata: def\n\n"
    assert run(stream, rewrite) == (stream if rewrite is identity else b"data:ABC\ndata: DEF\n\n")


def test_a_rewritten_value_starting_with_a_space_gets_the_space_a_client_strips() -> None:
    assert run(b"data:a\n\n", lambda text: " " + text) == b"data:  a\n\n"
    assert parsed(run(b"data:a\n\n", lambda text: " " + text))[1] == [([], " a")]


@pytest.mark.parametrize("line", [b"data", b"data:", b"data: "])
def test_an_empty_data_line_is_data(line: bytes) -> None:
    calls: list[str] = []

    def fill(text: str) -> str:
        calls.append(text)
        return text or "X"

    assert run(line + b"\n\n", identity) == line + b"\n\n"
    assert run(line + b"\n\n", fill) == (b"data: X\n\n" if line == b"data: " else b"data:X\n\n")
    assert calls == [""]


def test_an_event_without_data_passes_unchanged_and_is_not_rewritten() -> None:
    def refuse(text: str) -> str:
        raise AssertionError("called for an event without data")

    stream = b": keep-alive\n\nevent: ping\nid: 3\n\n\n"
    assert run(stream, refuse) == stream


def test_a_final_event_without_its_blank_line_is_rewritten_without_adding_one() -> None:
    assert run(b"data: a\n\ndata: b", upper) == b"data: A\n\ndata: B"
    assert run(b"id: 1\ndata: b\n", upper) == b"id: 1\ndata: B\n"
    assert run(b"data: a,b", split_commas) == b"data: a,\ndata: b"
    assert run(b"data: a\r\ndata: b", one_line) == b"data: a b!"
    assert run(b"data: a\r\ndata: b,c", split_commas) == b"data: a\r\ndata: b,\r\ndata: c"


def test_a_changed_line_count_writes_one_block_where_the_last_data_line_was() -> None:
    stream = b"id: 1\ndata: a,b\r\nevent: x\ndata:c\n\n"
    expected = b"id: 1\nevent: x\ndata: a,\r\ndata: b\r\ndata: c\n\n"
    assert run(stream, split_commas) == expected


def test_an_event_opening_with_data_keeps_data_first() -> None:
    # Otherwise "id: 1" would open the event: harmless here, but a BOM-led field opening
    # the stream would lose its BOM at the client and be read as another field.
    stream = b"data: a,b\r\nid: 1\ndata:c\n\n"
    assert run(stream, split_commas) == b"data: a,\r\ndata: b\r\ndata: c\r\nid: 1\n\n"
    assert run(stream, one_line) == b"data: a,b c!\r\nid: 1\n\n"
    with_bom = b"data\n\xef\xbb\xbfdata:\ndata\n\n"
    assert parsed(run(with_bom, one_line)) == ("", [([("\ufeffdata", "")], " !")])


def test_line_breaks_from_the_rewrite_start_data_lines_never_fields() -> None:
    out = run(b"data: x\n\n", lambda _: "a\rid: 666\r\nevent: oops")
    assert out == b"data: a\ndata: id: 666\ndata: event: oops\n\n"
    assert parsed(out)[1] == [([], "a\nid: 666\nevent: oops")]


# --- streaming -----------------------------------------------------------------------------


def test_an_event_is_held_back_until_its_blank_line_then_goes_out_at_once() -> None:
    rewriter = SseRewriter(upper)
    assert rewriter.feed(b"event: e\ndata: a") == b""
    assert rewriter.feed(b"bc\n") == b""
    assert rewriter.feed(b"\ndata: d") == b"event: e\ndata: ABC\n\n"
    assert rewriter.finish() == b"data: D"


def test_a_cr_ending_a_chunk_waits_for_the_next_byte() -> None:
    rewriter = SseRewriter(upper)
    assert rewriter.feed(b"data: a\r") == b""
    assert rewriter.feed(b"\ndata: b\r") == b""
    assert rewriter.feed(b"\n\r\n") == b"data: A\r\ndata: B\r\n\r\n"


def test_an_event_ending_on_a_cr_goes_out_without_waiting_for_the_next_event() -> None:
    rewriter = SseRewriter(upper)
    assert rewriter.feed(b"data: a\r\r") == b"data: A\r\r"
    assert rewriter.feed(b"\n") == b"\n"  # the rest of that CRLF, passed as it is
    assert rewriter.feed(b"data: b\r\r\r") == b"data: B\r\r\r"  # a further CR is a blank line
    assert rewriter.finish() == b""


def test_a_character_cut_anywhere_is_reassembled() -> None:
    stream = "data: é€😀\n\n".encode()
    rewriter = SseRewriter(upper)
    out = [rewriter.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert out[:-1] == [b""] * (len(stream) - 1)
    assert out[-1] == "data: É€😀\n\n".encode()


def test_a_bom_is_kept_and_the_line_after_it_is_data() -> None:
    stream = b"\xef\xbb\xbfdata: 123\n\n"
    expected = b"\xef\xbb\xbfdata: ###\n\n"
    assert all(run(stream, mask_digits, [cut]) == expected for cut in range(len(stream) + 1))


def test_feeding_nothing_gives_nothing() -> None:
    rewriter = SseRewriter(upper)
    assert rewriter.feed(b"") == b""
    assert rewriter.finish() == b""


# --- failing closed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        b"data: 123-45-6789 \xff\n\n",
        b": 123-45-6789 \xc3\n\n",  # a character cut short, in a comment
        b"data: 123-45-6789 \xe2\x82",  # a character cut short by the end of the stream
        b"\xef\xbbdata: 123-45-6789\n\n",  # two thirds of a BOM
    ],
)
def test_bytes_that_are_not_utf8_are_refused_without_echoing_them(stream: bytes) -> None:
    with pytest.raises(SseNotUtf8) as raised:
        run(stream, identity)
    assert str(raised.value) == "event is not UTF-8"
    assert raised.value.code == "sse_not_utf8"
    # No UnicodeDecodeError (which holds the bytes) rides along into a logged traceback.
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_rewritten_text_that_cannot_be_encoded_is_refused() -> None:
    with pytest.raises(SseError, match="not encodable") as raised:
        run(b"data: a\n\n", lambda text: text + "\udc80")
    assert raised.value.__context__ is None


def test_an_event_over_the_limit_is_refused() -> None:
    event = b"data: " + b"1" * 10 + b"\n"  # 17 bytes of fields, then the blank line
    assert run(event + b"\n", identity, max_event_bytes=17) == event + b"\n"
    with pytest.raises(
        SseEventTooLarge, match=r"^an event of the answer exceeds max_event_bytes \(16\)$"
    ):
        run(event + b"\n", identity, max_event_bytes=16)
    with pytest.raises(SseEventTooLarge):
        run(event, identity, max_event_bytes=16)  # unterminated, at finish


def test_an_event_that_never_ends_is_refused_before_the_end_of_the_stream() -> None:
    rewriter = SseRewriter(identity, max_event_bytes=100)
    assert rewriter.feed(b"data: " + b"x" * 50) == b""
    with pytest.raises(SseEventTooLarge):
        rewriter.feed(b"x" * 50)  # a partial line, 106 bytes held


def test_after_a_failure_nothing_more_goes_through() -> None:
    rewriter = SseRewriter(identity, max_event_bytes=8)
    assert rewriter.feed(b"data: 12") == b""  # 8 bytes held: at the limit, not over
    with pytest.raises(SseEventTooLarge):
        rewriter.feed(b"3")
    with pytest.raises(SseError, match="closed"):
        rewriter.feed(b"\n\n")
    with pytest.raises(SseError, match="closed"):
        rewriter.finish()


def test_a_finished_rewriter_takes_no_more() -> None:
    rewriter = SseRewriter(identity)
    rewriter.finish()
    with pytest.raises(SseError, match="closed"):
        rewriter.feed(b"data: a\n\n")


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SseRewriter(identity, max_event_bytes=0)


# --- properties ----------------------------------------------------------------------------

VALUE = st.text(
    alphabet=st.one_of(
        st.sampled_from('0123456789 ,:{}"aé€😀ß\ufeff'),
        st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)),
    ),
    max_size=10,
)
DATA_LINE = st.just("data") | st.builds(str.__add__, st.sampled_from(["data:", "data: "]), VALUE)
OTHER_LINE = st.sampled_from(["retry", "foo"]) | st.builds(
    lambda name, colon, value: name + colon + value,
    st.sampled_from(["event", "id", "retry", "", "foo", "Data", " data", BOM + "data"]),
    st.sampled_from([":", ": "]),
    VALUE,
)
LINE = DATA_LINE | OTHER_LINE
TERMINATOR = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Events of random lines and terminators. Adjacent terminators may merge (a CR line end
    then an LF blank line is one CRLF): the reference re-parses, so that is a feature."""
    parts = [BOM] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 4))):
        for line in draw(st.lists(LINE, max_size=4)):
            parts += (line, draw(TERMINATOR))
        parts.append(draw(TERMINATOR))  # the blank line
    tail = draw(st.lists(LINE, max_size=3))  # a last event without its blank line
    for line in tail:
        parts += (line, draw(TERMINATOR))
    if tail and draw(st.booleans()):
        parts[-1] = ""  # ... and without its last terminator
    return "".join(parts).encode()


def normalized(text: str) -> str:
    return "\n".join(re.split(r"\r\n|\r|\n", text))


@settings(max_examples=150, deadline=None)
@given(streams(), st.sampled_from(REWRITES))
def test_cut_at_every_offset_the_output_is_the_same_as_whole_and_as_the_reference(
    stream: bytes, rewrite: Rewrite
) -> None:
    whole = run(stream, rewrite)
    assert whole == reference(stream, rewrite)
    if rewrite is identity:
        assert whole == stream
    for cut in range(len(stream) + 1):
        assert run(stream, rewrite, [cut]) == whole


@settings(max_examples=150, deadline=None)
@given(streams(), st.sampled_from(REWRITES), st.data())
def test_cut_at_many_offsets_the_output_is_the_same_as_whole(
    stream: bytes, rewrite: Rewrite, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert run(stream, rewrite, cuts) == run(stream, rewrite)


def test_a_line_ending_in_cr_keeps_its_blank_line_when_data_lines_move() -> None:
    # The data lines around "retry\r" become one block: the blank line after them must not
    # end up right after the CR, where a client would read CR LF as one line end.
    stream = b"data\ndata\nretry\rdata\n\ndata: tail\n\n"
    assert parsed(run(stream, one_line)) == (
        "",
        [([("retry", "")], "  !"), ([], "tail!")],
    )


@settings(max_examples=150, deadline=None)
@given(streams(), st.sampled_from(REWRITES), st.data())
def test_a_client_reads_the_rewritten_data_and_every_other_field_unchanged(
    stream: bytes, rewrite: Rewrite, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    bom, events = parsed(stream)
    expected = [
        (others, None if value is None else normalized(rewrite(value))) for others, value in events
    ]
    assert parsed(run(stream, rewrite, cuts)) == (bom, expected)


@settings(max_examples=150, deadline=None)
@given(streams(), st.data())
def test_no_digit_of_a_data_line_gets_through_wherever_the_stream_is_cut(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    out = run(stream, mask_digits, cuts)
    values = [value for _, value in parsed(out)[1] if value is not None]
    assert not any(re.search("[0-9]", value) for value in values)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=80) | streams().map(lambda s: s[:40] + b"\xff" + s[40:]),
    st.data(),
    st.sampled_from([8, 64, 1_048_576]),
)
def test_arbitrary_bytes_raise_nothing_but_sse_error_and_never_pass_unchecked(
    stream: bytes, data: st.DataObject, max_event_bytes: int
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    try:
        got: bytes | None = run(stream, mask_digits, cuts, max_event_bytes)
    except SseError:
        got = None
    try:
        expected: bytes | None = reference(stream, mask_digits)
    except UnicodeDecodeError:
        expected = None
    if expected is None:
        assert got is None  # not UTF-8: refused, whatever the cuts
    elif got is None:
        assert max_event_bytes < len(stream)  # refused only for its size
    else:
        assert got == expected
