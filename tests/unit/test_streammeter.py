"""StreamMeter: token timings and counts from a stream with known (synthetic) times."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from proxy.metrics import Metrics
from proxy.streammeter import StreamMeter, StreamStats, observe


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat(content: str | None = None, role: bool = False, **delta: Any) -> bytes:
    d: dict[str, Any] = dict(delta)
    if content is not None:
        d["content"] = content
    if role:
        d["role"] = "assistant"
    return event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d}]})


def text(t: str) -> bytes:
    return event({"object": "text_completion", "choices": [{"index": 0, "text": t}]})


def usage(prompt: int, completion: int) -> bytes:
    return event(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


DONE = b"data: [DONE]\n\n"


def run(chunks: list[tuple[bytes, float]], started: float = 100.0) -> StreamStats:
    meter = StreamMeter(started=started, stream=True)
    for chunk, t in chunks:
        meter.feed(chunk, t)
    return meter.result()


def test_ttft_counts_and_rate_from_known_timings() -> None:
    # role-only first chunk at +0.2 s (not a token), then 11 tokens 50 ms apart from +0.5 s
    chunks = [(chat(role=True), 100.2)]
    chunks += [(chat(f"t{i}"), 100.5 + 0.05 * i) for i in range(11)]
    chunks += [(chat(finish_reason="stop") + DONE, 101.1)]
    stats = run(chunks)
    assert stats.ttft == pytest.approx(0.5)
    assert stats.output_tokens == 11
    assert stats.token_events == 11
    assert stats.usage_reported is False
    assert stats.prompt_tokens is None
    assert stats.inter_token_count == 10
    assert stats.inter_token_mean == pytest.approx(0.05)
    assert stats.inter_token_max == pytest.approx(0.05)
    # 10 tokens after the first, over the 0.5 s from the first to the last
    assert stats.tokens_per_second == pytest.approx(20.0)


def test_inter_token_max_and_mean() -> None:
    times = [1.0, 1.1, 1.2, 2.2, 2.3]
    stats = run([(chat("x"), t) for t in times], started=0.0)
    assert stats.ttft == pytest.approx(1.0)
    assert stats.inter_token_max == pytest.approx(1.0)
    assert stats.inter_token_mean == pytest.approx(1.3 / 4)


def test_usage_wins_over_counting() -> None:
    chunks = [(chat("several tokens in one event"), 100.1), (chat("more"), 100.6)]
    chunks += [(usage(7, 21) + DONE, 100.7)]
    stats = run(chunks)
    assert stats.usage_reported is True
    assert stats.output_tokens == 21
    assert stats.prompt_tokens == 7
    assert stats.token_events == 2
    assert stats.tokens_per_second == pytest.approx(20 / 0.5)


def test_completions_text_reasoning_and_tool_calls_count() -> None:
    chunks = [
        (text("def"), 1.0),
        (text(""), 1.1),  # empty text: not a token
        (chat(reasoning_content="hmm"), 1.2),
        (chat(tool_calls=[{"index": 0, "function": {"arguments": "{"}}]), 1.3),
        (chat(""), 1.4),  # empty content: not a token
        (event({"error": {"message": "boom"}}), 1.5),
    ]
    stats = run(chunks, started=0.5)
    assert stats.token_events == 3
    assert stats.ttft == pytest.approx(0.5)


def test_events_split_across_chunks_and_several_per_chunk() -> None:
    body = b"".join(chat(f"t{i}") for i in range(6)) + usage(3, 6) + DONE
    for at in range(len(body)):
        meter = StreamMeter(started=0.0, stream=True)
        meter.feed(body[:at], 1.0)
        meter.feed(body[at:], 2.0)
        stats = meter.result()
        assert stats.output_tokens == 6 and stats.usage_reported
        assert stats.token_events == 6
        assert stats.ttft in (1.0, 2.0)


def test_keepalives_before_the_first_token_do_not_count() -> None:
    stats = run([(b": keep-alive\n\n", 1.0), (b": keep-alive\n\n", 2.0), (chat("a"), 3.0)], 0.0)
    assert stats.ttft == pytest.approx(3.0)
    assert stats.tokens_per_second is None  # one token: no rate
    assert stats.inter_token_mean is None


def test_unterminated_last_event_is_read_at_result() -> None:
    stats = run([(chat("a"), 1.0), (usage(2, 9).rstrip(b"\n"), 2.0)], 0.0)
    assert stats.output_tokens == 9 and stats.prompt_tokens == 2


def test_non_streamed_body_reads_usage() -> None:
    body = json.dumps(
        {
            "object": "chat.completion",
            "choices": [{"message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        }
    ).encode()
    meter = StreamMeter(started=0.0, stream=False)
    meter.feed(body[:10], 1.0)
    meter.feed(body[10:], 1.0)
    stats = meter.result()
    assert (stats.prompt_tokens, stats.output_tokens, stats.usage_reported) == (12, 5, True)
    assert stats.ttft is None and stats.tokens_per_second is None
    other = StreamMeter(started=0.0, stream=False)
    other.feed_body(body)
    assert other.result() == stats


def test_large_non_streamed_body_reads_usage_from_the_tail() -> None:
    vector = [0.123456789] * 300_000
    body = json.dumps(
        {"data": [{"embedding": vector}], "usage": {"prompt_tokens": 42, "total_tokens": 42}}
    ).encode()
    assert len(body) > 2 << 20
    meter = StreamMeter(started=0.0, stream=False)
    for i in range(0, len(body), 65536):
        meter.feed(body[i : i + 65536], 1.0)
    stats = meter.result()
    assert stats.prompt_tokens == 42
    assert len(meter._body) <= (1 << 20) + 65536


def test_bad_usage_values_are_ignored() -> None:
    bad = event({"choices": [], "usage": {"prompt_tokens": "7", "completion_tokens": -1}})
    stats = run([(chat("a"), 1.0), (bad, 2.0)], 0.0)
    assert stats.usage_reported is False and stats.prompt_tokens is None
    assert stats.output_tokens == 1
    flag = event({"choices": [], "usage": {"prompt_tokens": True, "completion_tokens": None}})
    assert run([(flag, 1.0)]).prompt_tokens is None


@pytest.mark.parametrize("stream", [True, False])
def test_garbage_never_raises(stream: bool) -> None:
    rng = random.Random(3)
    pieces = [
        b"data: ",
        b"{",
        b"}",
        b'"choices"',
        b":",
        b"[",
        b"]",
        b"null",
        b'{"choices": 5}',
        b'{"choices": [1, "x", {"delta": 3}, {"delta": {"content": ["a"]}}]}',
        b'{"usage": []}',
        b"\n\n",
        b"\r",
        b"\xff\xfe",
        b"[DONE]",
        b'"usage"',
    ]
    for _ in range(300):
        meter = StreamMeter(started=rng.random(), stream=stream)
        for _ in range(rng.randint(0, 20)):
            meter.feed(b"".join(rng.choices(pieces, k=rng.randint(1, 6))), rng.random() * 10)
        meter.feed_body(b"".join(rng.choices(pieces, k=5)))
        stats = meter.result()
        assert stats.output_tokens >= 0
        assert stats.tokens_per_second is None or stats.tokens_per_second >= 0


def test_feed_never_raises_on_wrong_types() -> None:
    meter = StreamMeter(started=0.0, stream=True)
    meter.feed(None, 1.0)  # type: ignore[arg-type]
    meter.feed(chat("a"), "later")  # type: ignore[arg-type]
    assert isinstance(meter.result(), StreamStats)


def test_observe_records_metrics() -> None:
    metrics = Metrics()
    chunks = [(chat(f"t{i}"), 1.0 + 0.1 * i) for i in range(5)] + [(usage(4, 5), 1.5)]
    stats = run(chunks, started=0.75)
    observe(metrics, "chat", "instruct", stats)
    reg = metrics.registry
    labels = {"endpoint": "chat", "variant": "instruct"}
    ttft = reg.get_sample_value("variant_proxy_time_to_first_token_seconds_sum", labels)
    assert ttft == pytest.approx(0.25)
    itl = reg.get_sample_value("variant_proxy_inter_token_latency_seconds_sum", labels)
    assert itl == pytest.approx(0.1)
    tps = reg.get_sample_value("variant_proxy_output_tokens_per_second_sum", labels)
    assert tps == pytest.approx(10.0)
    assert reg.get_sample_value("variant_proxy_prompt_tokens_total", {"variant": "instruct"}) == 4
    completion = reg.get_sample_value(
        "variant_proxy_completion_tokens_total", {"variant": "instruct"}
    )
    assert completion == 5
    observe(metrics, "chat", "instruct", StreamStats())  # nothing measured: nothing recorded
    count = reg.get_sample_value("variant_proxy_time_to_first_token_seconds_count", labels)
    assert count == 1
