"""The OpenAI wire format the fake upstreams speak, in one place.

Chat and text completions as llama.cpp, vLLM and OpenAI send them: whole
objects for non-streamed answers, `chat.completion.chunk` / `text_completion`
chunks as `data: {json}\\n\\n` SSE events for streams, ending in `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def event(obj: Any) -> bytes:
    """One SSE event carrying a JSON object."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chunk(
    chat: bool,
    model: str,
    text: str,
    first: bool,
    finish: str | None,
    *,
    name: str = "fake",
) -> dict[str, Any]:
    """One streamed chunk; the first chat chunk carries the assistant role."""
    if chat:
        delta: dict[str, Any] = {"content": text} if text or not finish else {}
        if first:
            delta["role"] = "assistant"
        return {
            "id": f"chatcmpl-{name}",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "system_fingerprint": name,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    return {
        "id": f"cmpl-{name}",
        "object": "text_completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }


def full(chat: bool, model: str, text: str, *, name: str = "fake") -> dict[str, Any]:
    """A whole, non-streamed answer with usage."""
    if chat:
        return {
            "id": f"chatcmpl-{name}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "system_fingerprint": name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": dict(USAGE),
        }
    return {
        "id": f"cmpl-{name}",
        "object": "text_completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": dict(USAGE),
    }


async def lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI lifespan scope: start up, then shut down when told."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
