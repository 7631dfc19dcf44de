"""Token metrics read from an answer as it passes through. Pure apart from `observe`.

A `StreamMeter` is created per request and fed every chunk the relay sends
to the client (`Observation.on_chunk`), with the time it went out. For a
stream it parses the SSE events incrementally (`proxy.sse`), JSON-decodes
only `data:` events, and counts a *token event* for each chunk whose
`choices[].delta.content` / `reasoning_content` / `reasoning` /
`tool_calls` or `choices[].text` is non-empty. From the token events' times
it derives time to first token, the gaps between tokens (count, sum and
max only: memory stays constant however long the answer) and the decode
speed. A `usage` object, when the backend sends one (OpenAI's
`stream_options.include_usage`, vLLM, llama.cpp), wins over the count.

A non-streamed answer is one JSON body; only its `usage` is read. Large
bodies (embeddings) are not decoded whole: the meter keeps a bounded tail
and decodes just the `usage` object near the end.

A Responses API stream relayed as is (a backend that serves `/v1/responses`)
is read the same way by its event types: `response.*.delta` events with text
are token events, `response.completed` / `.incomplete` / `.failed` and
`error` end it, and the final response's `usage` (`input_tokens`,
`output_tokens`) counts.

The meter also tells the relay whether a stream *ended properly*
(`ended()`): a `data: [DONE]` event, a choice with a `finish_reason`, the
end of a Responses stream, or the backend's own `{"error": …}` event. A
stream that stops without any of them (cut early, empty, an HTML page) must
not reach the client as a normal, shorter answer; the relay then ends it
with an error event. This reuses the parse the meter does anyway: there is
no second parser and nothing is buffered beyond the decoder's bounded line and event.

An event that never ends (data lines with no blank line) grows past the
decoder's `max_event` bound; the meter then stops metering that stream (it
only looks for `[DONE]` in what follows) and the relay goes on unharmed.

Nothing here raises on garbage: a backend that sends nonsense yields empty
statistics, never a failed request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .metrics import Metrics
from .sse import SSEDecoder

__all__ = ["StreamMeter", "StreamStats", "observe"]

#: Non-streamed bodies up to this size are decoded whole; larger ones only near `usage`.
_FULL_DECODE_LIMIT = 1 << 20
_TAIL_KEEP = 64 << 10
_DELTA_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls")
#: Responses API events: the ones that carry generated text, and the ones that end a stream
_RESPONSES_TOKENS = frozenset(
    {
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_text.delta",
        "response.refusal.delta",
    }
)
_RESPONSES_END = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What one answer looked like. Times are seconds; None when not measurable."""

    ttft: float | None = None
    output_tokens: int = 0
    prompt_tokens: int | None = None
    tokens_per_second: float | None = None
    inter_token_mean: float | None = None
    inter_token_max: float | None = None
    inter_token_count: int = 0
    token_events: int = 0
    usage_reported: bool = False
    stream: bool = True


class StreamMeter:
    """Meters one answer. `feed` matches `Observation.on_chunk`'s signature."""

    def __init__(self, started: float, stream: bool) -> None:
        self.started = started
        self.stream = stream
        self._decoder = SSEDecoder()
        self._first_token: float | None = None
        self._last_token: float | None = None
        self._token_events = 0
        self._gap_sum = 0.0
        self._gap_max = 0.0
        self._usage_prompt: int | None = None
        self._usage_completion: int | None = None
        self._body = bytearray()
        self._body_truncated = False
        self._body_parsed = False
        self._flushed = False
        self._done = False  # [DONE], a finish_reason or an error event was seen
        self._stopped = False  # an event overflowed the decoder: metering gave up

    # -- input -----------------------------------------------------------------------------

    def feed(self, chunk: bytes, t: float) -> None:
        """One chunk as sent to the client at `t` (`time.perf_counter()`)."""
        try:
            if not self.stream:
                self._keep_body(chunk)
                return
            if self._stopped:
                if not self._done and b"[DONE]" in chunk:
                    self._done = True
                return
            for event in self._decoder.feed(chunk):
                self._event(event.data, t)
            if self._decoder.overflowed:
                self._stopped = True
                self._decoder = SSEDecoder()  # drop what it held
        except Exception:  # metering must never break a request
            return

    def ended(self) -> bool:
        """Did the stream end properly ([DONE], a finish_reason or an error event)?

        Call at the end of the stream: it finishes an event sent without its blank line.
        """
        try:
            self._flush()
        except Exception:  # never raise
            pass
        return self._done

    def feed_body(self, body: bytes) -> None:
        """A whole non-streamed JSON answer (alternative to `feed` for non-streams)."""
        try:
            self._keep_body(body)
        except Exception:  # same: never raise
            return

    def result(self) -> StreamStats:
        """The statistics so far (finishes a stream that ended without a blank line)."""
        try:
            return self._result()
        except Exception:  # same: never raise
            return StreamStats(stream=self.stream)

    # -- internals ---------------------------------------------------------------------------

    def _keep_body(self, chunk: bytes) -> None:
        self._body += chunk
        self._body_parsed = False
        if len(self._body) > _FULL_DECODE_LIMIT:
            del self._body[:-_TAIL_KEEP]
            self._body_truncated = True

    def _event(self, data: bytes, t: float) -> None:
        if data == b"[DONE]":
            self._done = True
            return
        if not data or data[:1] != b"{":
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        if isinstance(kind, str):
            self._responses_event(kind, obj, t)
            return
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._read_usage(usage)
        choices = obj.get("choices")
        if isinstance(choices, list):
            token = False
            for choice in choices:  # one pass: tokens, and a finish_reason ends the stream
                if isinstance(choice, dict):
                    token = token or _has_token(choice)
                    if choice.get("finish_reason"):
                        self._done = True
            if token:
                self._token(t)
        elif "error" in obj:
            self._done = True  # the backend reported its own failure in-stream

    def _responses_event(self, kind: str, obj: dict[str, Any], t: float) -> None:
        """One Responses API event (a stream relayed from a server that serves the API)."""
        if kind in _RESPONSES_TOKENS:
            if obj.get("delta"):
                self._token(t)
        elif kind in _RESPONSES_END:
            self._done = True
            response = obj.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            if isinstance(usage, dict):
                self._read_usage(usage)

    def _token(self, t: float) -> None:
        if self._last_token is None:
            self._first_token = t
        else:
            gap = max(0.0, t - self._last_token)
            self._gap_sum += gap
            if gap > self._gap_max:
                self._gap_max = gap
        self._last_token = t
        self._token_events += 1

    def _read_usage(self, usage: dict[str, Any]) -> None:
        # chat and completions say prompt/completion; the Responses API input/output
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        if _is_count(prompt):
            self._usage_prompt = prompt
        if _is_count(completion):
            self._usage_completion = completion

    def _parse_body(self) -> None:
        if self._body_parsed:
            return
        self._body_parsed = True
        body = bytes(self._body)
        usage: Any = None
        if not self._body_truncated:
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                usage = obj.get("usage")
        else:
            usage = _usage_near_end(body)
        if isinstance(usage, dict):
            self._read_usage(usage)

    def _flush(self) -> None:
        if self.stream and not self._flushed:
            self._flushed = True
            if not self._stopped:
                for event in self._decoder.flush():
                    self._event(event.data, self._last_token or self.started)

    def _result(self) -> StreamStats:
        if self.stream:
            self._flush()
        else:
            self._parse_body()
        reported = self._usage_completion is not None
        output = self._usage_completion if reported else self._token_events
        assert output is not None
        ttft = tps = mean = gap_max = None
        gaps = max(0, self._token_events - 1)
        if self._first_token is not None and self._last_token is not None:
            ttft = max(0.0, self._first_token - self.started)
            span = self._last_token - self._first_token
            if gaps:
                mean = self._gap_sum / gaps
                gap_max = self._gap_max
            if span > 0 and output > 1:
                tps = (output - 1) / span
        return StreamStats(
            ttft=ttft,
            output_tokens=output,
            prompt_tokens=self._usage_prompt,
            tokens_per_second=tps,
            inter_token_mean=mean,
            inter_token_max=gap_max,
            inter_token_count=gaps,
            token_events=self._token_events,
            usage_reported=reported,
            stream=self.stream,
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _has_token(choice: Any) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    if isinstance(delta, dict):
        for key in _DELTA_KEYS:
            if delta.get(key):
                return True
    return bool(choice.get("text"))


def _usage_near_end(body: bytes) -> Any:
    """The `usage` object of a JSON body, found from the end without decoding it all."""
    at = body.rfind(b'"usage"')
    if at < 0:
        return None
    start = body.find(b"{", at)
    if start < 0:
        return None
    depth = 0
    for i in range(start, min(len(body), start + 4096)):
        c = body[i]
        if c == 0x7B:  # {
            depth += 1
        elif c == 0x7D:  # }
            depth -= 1
            if depth == 0:
                try:
                    return orjson.loads(body[start : i + 1])
                except orjson.JSONDecodeError:
                    return None
    return None


def observe(metrics: Metrics, endpoint: str, variant: str, stats: StreamStats) -> None:
    """Record one answer's statistics. `endpoint` and `variant` must be config/fixed values."""
    if stats.ttft is not None:
        metrics.ttft.labels(endpoint, variant).observe(stats.ttft)
    if stats.inter_token_mean is not None:
        metrics.inter_token.labels(endpoint, variant).observe(stats.inter_token_mean)
    if stats.tokens_per_second is not None:
        metrics.tokens_per_second.labels(endpoint, variant).observe(stats.tokens_per_second)
    if stats.prompt_tokens:
        metrics.prompt_tokens.labels(variant).inc(stats.prompt_tokens)
    if stats.output_tokens:
        metrics.completion_tokens.labels(variant).inc(stats.output_tokens)
