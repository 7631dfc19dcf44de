"""One benchmark request, streamed, with its timings.

Every request streams (`stream: true` with usage), so the time to the first
token and the gaps between tokens are seen as the client sees them. Times are
`time.perf_counter()` differences from just before the request is sent:

* `ttft_s`: until the first chunk carrying generated text of any kind — answer
  or reasoning — which is what the server's own timing measures;
* `ttft_answer_s`, `ttft_reasoning_s`: until the first *answer* text and the
  first *reasoning* text, separately. Reasoning is a delta's
  `reasoning_content` (llama-server, DeepSeek, vLLM) or `reasoning` field, or
  text inside `<think>…</think>` in the content; it is kept out of the answer
  that is scored;
* `itl_s`: mean gap between consecutive text-carrying chunks (both kinds);
* `e2e_s`: until the stream ended;
* `tokens_per_s`: decode speed, output tokens after the first over the time
  from the first to the last text chunk of either kind, so the reasoning a
  model's usage counts is also inside the time window (falls back to tokens /
  e2e when there is only one chunk).

Output tokens come from the usage chunk when the backend sends one, else
from the number of text chunks; `reasoning_tokens` from the usage's
`completion_tokens_details.reasoning_tokens`, else the number of reasoning
chunks. The stream is parsed by `proxy.sse`, the same
parser that meters relayed streams.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from ..sse import SSEDecoder
from .suite import Task

__all__ = ["BENCH_HEADER", "Sample", "request_body", "run_request"]

#: Sent with every benchmark request so the proxy can tell them from user traffic.
BENCH_HEADER = "x-variant-proxy-bench"


@dataclass(slots=True)
class Sample:
    """What one request produced and how fast."""

    text: str = ""
    status_code: int | None = None
    error: str | None = None
    ttft_s: float | None = None
    ttft_answer_s: float | None = None
    ttft_reasoning_s: float | None = None
    reasoning_tokens: int | None = None
    itl_s: float | None = None
    e2e_s: float | None = None
    output_tokens: int | None = None
    tokens_per_s: float | None = None
    finish_reason: str | None = None
    served_by: str | None = None
    gaps: list[float] = field(default_factory=list, repr=False)
    #: parsing state: inside a `<think>` block of the content
    thinking: bool = field(default=False, repr=False)
    reasoning_chunks: int = field(default=0, repr=False)
    answer_at: float | None = field(default=None, repr=False)
    reasoning_at: float | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("gaps", "thinking", "reasoning_chunks", "answer_at", "reasoning_at"):
            del out[key]
        return out


def request_body(
    variant: str, task: Task, *, max_tokens: int, temperature: float, seed: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The endpoint path and JSON body for one task, naming the variant directly."""
    body: dict[str, Any] = {
        "model": variant,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if seed is not None:
        body["seed"] = seed
    if task.stop:
        body["stop"] = list(task.stop)
    if task.messages is not None:
        body["messages"] = [m.model_dump() for m in task.messages]
        return "/v1/chat/completions", body
    body["prompt"] = task.prompt
    if task.suffix:
        body["suffix"] = task.suffix
    return "/v1/completions", body


def _error_text(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
        message = data.get("error", {}).get("message") if isinstance(data, dict) else None
        if isinstance(message, str):
            return message[:300]
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return raw[:300].decode("utf-8", "replace")


async def run_request(
    client: httpx.AsyncClient,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> Sample:
    """Send one streaming request and measure it. Never raises for HTTP or protocol errors."""
    sample = Sample()
    pieces: list[str] = []
    token_times: list[float] = []
    chunks = 0
    decoder = SSEDecoder()
    send_headers = {"content-type": "application/json", BENCH_HEADER: "1", **(headers or {})}
    started = time.perf_counter()
    try:
        request = client.build_request(
            "POST", path, content=orjson.dumps(body), headers=send_headers, timeout=timeout
        )
        response = await client.send(request, stream=True)
        try:
            sample.status_code = response.status_code
            sample.served_by = response.headers.get("x-route-variant")
            if response.status_code != 200:
                raw = await response.aread()
                sample.error = f"HTTP {response.status_code}: {_error_text(raw)}"
                return sample
            async for raw_chunk in response.aiter_raw():
                now = time.perf_counter()
                for event in decoder.feed(raw_chunk):
                    chunks += _handle(_text(event.data), sample, pieces, token_times, now)
            now = time.perf_counter()
            for event in decoder.flush():
                chunks += _handle(_text(event.data), sample, pieces, token_times, now)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        sample.error = f"{type(exc).__name__}: {exc}"[:300]
    finished = time.perf_counter()
    sample.text = "".join(pieces)
    sample.e2e_s = finished - started
    if sample.answer_at is not None:
        sample.ttft_answer_s = sample.answer_at - started
    if sample.reasoning_at is not None:
        sample.ttft_reasoning_s = sample.reasoning_at - started
    if sample.reasoning_tokens is None and sample.reasoning_chunks:
        sample.reasoning_tokens = sample.reasoning_chunks
    if token_times:
        sample.ttft_s = token_times[0] - started
        sample.gaps = [b - a for a, b in zip(token_times, token_times[1:], strict=False)]
        if sample.gaps:
            sample.itl_s = sum(sample.gaps) / len(sample.gaps)
    if sample.output_tokens is None and chunks:
        sample.output_tokens = chunks
    tokens = sample.output_tokens or 0
    if tokens and len(token_times) >= 2 and token_times[-1] > token_times[0]:
        sample.tokens_per_s = max(tokens - 1, 1) / (token_times[-1] - token_times[0])
    elif tokens and sample.e2e_s:
        sample.tokens_per_s = tokens / sample.e2e_s
    return sample


def _text(data: bytes) -> str:
    # decoded leniently, so a stray invalid byte costs that character, not the chunk
    return data.decode("utf-8", "replace")


def _handle(
    data: str, sample: Sample, pieces: list[str], token_times: list[float], now: float
) -> int:
    if data.strip() == "[DONE]":
        return 0
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(event, dict):
        return 0
    if "error" in event:
        err = event["error"]
        message = err.get("message") if isinstance(err, dict) else err
        sample.error = f"stream error: {message}"[:300]
        return 0
    usage = event.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            sample.output_tokens = usage["completion_tokens"]
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
            sample.reasoning_tokens = details["reasoning_tokens"]
    found = 0
    for choice in event.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(delta, dict):
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                _reasoned(sample, now)
                found = 1
        if isinstance(text, str) and text:
            answer = _split_think(sample, text, now)
            if answer:
                pieces.append(answer)
                if sample.answer_at is None and answer.strip():
                    sample.answer_at = now
            found = 1
        if choice.get("finish_reason"):
            sample.finish_reason = str(choice["finish_reason"])
    if found:
        token_times.append(now)
    return found


def _reasoned(sample: Sample, now: float) -> None:
    sample.reasoning_chunks += 1
    if sample.reasoning_at is None:
        sample.reasoning_at = now


def _split_think(sample: Sample, text: str, now: float) -> str:
    """The answer part of a content delta; text inside `<think>…</think>` is reasoning."""
    answer: list[str] = []
    while text:
        if sample.thinking:
            end = text.find("</think>")
            thought, text = (text, "") if end < 0 else (text[:end], text[end + 8 :])
            if thought.strip():
                _reasoned(sample, now)
            if end >= 0:
                sample.thinking = False
        else:
            start = text.find("<think>")
            if start < 0:
                answer.append(text)
                break
            answer.append(text[:start])
            text = text[start + 7 :]
            sample.thinking = True
    return "".join(answer)
