"""The incremental SSE parser: the same events however the bytes are split."""

from __future__ import annotations

import random

import pytest

from proxy.sse import Event, SSEDecoder


def parse(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


STREAM = (
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    b"event: ping\r\nid: 7\r\ndata: x\r\n\r\n"
    b"data: line1\rdata: line2\r\r"
    b"data\n\n"
    b"data:  two spaces\n: a comment inside\nretry: 1500\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event(b'{"choices":[{"delta":{"content":"a"}}]}'),
    Event(b"x", event="ping", id="7"),
    Event(b"line1\nline2", id="7"),
    Event(b"", id="7"),
    Event(b" two spaces", id="7", retry=1500),
    Event(b"[DONE]", id="7"),
]


def test_whole_stream() -> None:
    assert parse(STREAM) == EXPECTED


@pytest.mark.parametrize("at", range(len(STREAM) + 1))
def test_split_at_every_byte(at: int) -> None:
    assert parse(STREAM[:at], STREAM[at:]) == EXPECTED


def test_split_at_every_pair_of_positions() -> None:
    n = len(STREAM)
    for i in range(0, n + 1, 3):
        for j in range(i, n + 1, 5):
            assert parse(STREAM[:i], STREAM[i:j], STREAM[j:]) == EXPECTED, (i, j)


def test_one_byte_at_a_time() -> None:
    assert parse(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_random_splits() -> None:
    rng = random.Random(6)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert parse(*pieces) == EXPECTED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data: a\n\n", [Event(b"a")]),
        (b"data: a\r\n\r\n", [Event(b"a")]),
        (b"data: a\r\r", [Event(b"a")]),
        (b"data: a\ndata: b\n\n", [Event(b"a\nb")]),
        (b"data:a\n\n", [Event(b"a")]),
        (b"data: a\n", [Event(b"a")]),  # flush() dispatches an unterminated event
        (b"data: a", [Event(b"a")]),
        (b": only a comment\n\n", []),
        (b"event: x\n\n", []),  # no data, no event
        (b"event: x\n\ndata: y\n\n", [Event(b"y")]),  # event type resets
        (b"id: 1\0\ndata: y\n\n", [Event(b"y")]),  # an id with NUL is ignored
        (b"retry: soon\ndata: y\n\n", [Event(b"y")]),
        (b"unknown: field\ndata: y\n\n", [Event(b"y")]),
        (b"\xef\xbb\xbfdata: bom\n\n", [Event(b"bom")]),
        (b"", []),
    ],
)
def test_table(raw: bytes, expected: list[Event]) -> None:
    assert parse(raw) == expected
    assert parse(*(raw[i : i + 1] for i in range(len(raw)))) == expected


def test_bom_split_across_chunks() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [Event(b"x")]
    assert parse(b"\xef\xbb") == []


def test_events_come_out_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [Event(b"a")]
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\n\r\n") == [Event(b"b")]
    assert decoder.flush() == []


def test_overlong_lines_are_dropped_with_bounded_memory() -> None:
    decoder = SSEDecoder(max_line=64)
    events = decoder.feed(b"data: " + b"x" * 50)
    events += decoder.feed(b"y" * 1000)
    events += decoder.feed(b"z" * 1000 + b"\n\ndata: ok\n\n")
    assert events == [Event(b"ok")]
    assert len(decoder._partial) <= 64
    assert decoder.feed(b"data: " + b"q" * 100 + b"\n\n") == []


def test_garbage_never_raises() -> None:
    rng = random.Random(1)
    alphabet = b"data:\r\n \x00\xff{}:event id retry"
    for _ in range(300):
        decoder = SSEDecoder(max_line=32)
        for _ in range(rng.randint(1, 10)):
            decoder.feed(bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        decoder.flush()


def test_an_openai_stream_split_mid_line_and_mid_event() -> None:
    """The benchmark client's stream: CRLF inside an event, a comment-only event."""
    stream = b'data: {"a":1}\n\n: comment\n\ndata: {"b"\r\ndata: :2}\n\ndata: [DONE]\n\n'
    for size in (1, 3, 7, len(stream)):
        dec = SSEDecoder()
        events: list[str] = []
        for i in range(0, len(stream), size):
            events += [e.data.decode() for e in dec.feed(stream[i : i + size])]
        events += [e.data.decode() for e in dec.flush()]
        assert events == ['{"a":1}', '{"b"\n:2}', "[DONE]"]
