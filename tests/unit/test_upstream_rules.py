"""Pure rules behind issue 16's upstream findings: the SSE event bound, the meter's
verdict on how a stream ended, and the breaker's faults vs request-specific errors."""

from __future__ import annotations

import tracemalloc

from proxy.breaker import CircuitBreaker
from proxy.sse import SSEDecoder
from proxy.streammeter import StreamMeter


def test_an_event_that_never_ends_stays_bounded() -> None:
    decoder = SSEDecoder(max_event=1 << 20)
    line = b"data: " + b"z" * 1000 + b"\n"
    tracemalloc.start()
    for _ in range(8000):  # 8 MB of data lines, no blank line
        decoder.feed(line)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert decoder.overflowed
    assert peak < 3 << 20
    assert decoder.feed(b"\ndata: after\n\n")[-1].data == b"after"  # the next event parses


def test_the_meter_stops_metering_after_an_overflow_but_still_sees_done() -> None:
    meter = StreamMeter(started=0.0, stream=True)
    meter._decoder = SSEDecoder(max_event=4096)
    meter.feed(b"data: " + b"z" * 8000 + b"\n", 1.0)
    assert meter._stopped and not meter.ended()
    meter2 = StreamMeter(started=0.0, stream=True)
    meter2._decoder = SSEDecoder(max_event=4096)
    meter2.feed(b"data: " + b"z" * 8000 + b"\n", 1.0)
    meter2.feed(b"\n\ndata: [DONE]\n\n", 2.0)
    assert meter2.ended()


def test_stream_endings() -> None:
    def ended(*chunks: bytes) -> bool:
        meter = StreamMeter(started=0.0, stream=True)
        for chunk in chunks:
            meter.feed(chunk, 1.0)
        return meter.ended()

    assert ended(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n', b"data: [DONE]\n\n")
    assert ended(b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n')
    assert ended(b"data: [DONE]")  # no final blank line: flushed
    assert ended(b'data: {"error": {"message": "backend says no"}}\n\n')
    assert not ended(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n')
    assert not ended()
    assert not ended(b"<!doctype html><h1>It works!</h1>")


def test_request_specific_errors_open_only_across_distinct_requests() -> None:
    b = CircuitBreaker(threshold=3, cooldown=10, request_errors=3)
    for _ in range(5):
        b.request_failure(0.0, fingerprint=1, cause="backend 'x' answered 500")
    assert b.state(0.0) == "closed"
    b.request_failure(0.0, fingerprint=2)
    b.request_failure(0.0, fingerprint=3)
    assert b.state(0.0) == "open"
    assert b.describe() == "circuit open after 3 failures: backend 'x' answered 500"


def test_a_success_forgets_request_errors_and_faults_open_with_their_cause() -> None:
    b = CircuitBreaker(threshold=2, cooldown=10, request_errors=2)
    b.request_failure(0.0, fingerprint=1)
    b.success()
    b.request_failure(0.0, fingerprint=2)
    assert b.state(0.0) == "closed"
    b.failure(0.0, "backend 'x' is unreachable (connection refused)")
    b.failure(0.0, "backend 'x' is unreachable (connection refused)")
    assert b.state(0.0) == "open" and "connection refused" in b.describe()


def test_a_500_to_a_half_open_trial_gives_the_trial_back() -> None:
    b = CircuitBreaker(threshold=1, cooldown=1, request_errors=5)
    b.failure(0.0, "refused")
    assert b.allow(2.0)  # the trial
    b.request_failure(2.0, fingerprint=9)
    assert b.state(2.0) == "half-open" and b.allow(2.0)


def test_connect_reason_ends_on_a_looping_exception_chain() -> None:
    from proxy.upstream import _connect_reason

    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert _connect_reason(first) == "connection failed"
