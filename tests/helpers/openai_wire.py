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


def tool_call_chunks(model: str, calls: list[dict[str, str]], *, name: str = "fake") -> list[Any]:
    """A streamed chat answer that calls tools, as llama-server sends it
    (`server_chat_msg_diff_to_json_oaicompat`): the role with `content: null`, then per
    call a header delta (index, id, type, name) and its arguments in fragments, then
    `finish_reason: tool_calls`."""

    def wrap(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
            "created": 1700000000,
            "id": f"chatcmpl-{name}",
            "model": model,
            "system_fingerprint": name,
            "object": "chat.completion.chunk",
        }

    out = [wrap({"role": "assistant", "content": None})]
    for i, call in enumerate(calls):
        head = {"index": i, "id": f"call{i}-{name}", "type": "function"}
        out.append(wrap({"tool_calls": [{**head, "function": {"name": call["name"]}}]}))
        args = call["arguments"]
        for start in range(0, len(args), 7):
            fragment = {"index": i, "function": {"arguments": args[start : start + 7]}}
            out.append(wrap({"tool_calls": [fragment]}))
    out.append(wrap({}, "tool_calls"))
    return out


def full_tool_calls(model: str, calls: list[dict[str, str]], *, name: str = "fake") -> Any:
    """A whole chat answer that calls tools, as llama-server sends it."""
    answer = full(True, model, "", name=name)
    answer["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
                "id": f"call{i}-{name}",
            }
            for i, c in enumerate(calls)
        ],
    }
    answer["choices"][0]["finish_reason"] = "tool_calls"
    return answer


def responses_full(model: str, text: str) -> dict[str, Any]:
    """A whole Responses answer as llama-server's own `/v1/responses` sends it."""
    return {
        "completed_at": 1700000000,
        "created_at": 1700000000,
        "id": "resp_fake",
        "model": model,
        "object": "response",
        "output": [
            {
                "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
                ],
                "id": "msg_fake",
                "role": "assistant",
                "status": "completed",
                "type": "message",
            }
        ],
        "status": "completed",
        "usage": {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9},
    }


def responses_stream_events(model: str, text: str) -> list[bytes]:
    """A streamed Responses answer as llama-server's own `/v1/responses` sends it (no
    `sequence_number` or `output_index`: it is relayed as is, whatever it says)."""

    def sse(kind: str, **data: Any) -> bytes:
        return (
            b"event: "
            + kind.encode()
            + b"\ndata: "
            + orjson.dumps({"type": kind, **data})
            + b"\n\n"
        )

    shell = {"id": "resp_fake", "object": "response", "status": "in_progress"}
    item = {"content": [], "id": "msg_fake", "role": "assistant", "status": "in_progress"}
    out = [
        sse("response.created", response=shell),
        sse("response.in_progress", response=shell),
        sse("response.output_item.added", item={**item, "type": "message"}),
    ]
    for word in text.split(" "):
        out.append(sse("response.output_text.delta", item_id="msg_fake", delta=word + " "))
    whole = responses_full(model, text)
    out.append(sse("response.completed", response=whole))
    return out


async def lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI lifespan scope: start up, then shut down when told."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
