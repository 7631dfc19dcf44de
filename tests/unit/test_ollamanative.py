"""Ollama's native `/api/chat` (`proxy.ollamanative`): an OpenAI chat request translated
for it, and its answers (whole, NDJSON streams split anywhere, errors) translated back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from proxy.ollamanative import NativeAnswerSend, NativeStream, chat_request, to_completion

CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}


def test_a_chat_request_in_ollamas_words() -> None:
    payload = {
        "model": "auto",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "stop": ["\n\n"],
        "seed": 7,
        "response_format": {"type": "json_object"},
        "stream": True,
    }
    body = chat_request(payload, "qwen2.5:7b", 16384)
    assert body["model"] == "qwen2.5:7b" and body["stream"] is True
    assert body["options"] == {
        "num_ctx": 16384,
        "num_predict": 100,
        "temperature": 0.2,
        "stop": ["\n\n"],
        "seed": 7,
    }
    assert body["format"] == "json" and body["tools"] == payload["tools"]
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user == {"role": "user", "content": "What is this?", "images": ["iVBORw0K"]}
    assert assistant["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert tool == {"role": "tool", "content": "18C", "tool_name": "get_weather"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert chat_request({"messages": [], "response_format": fmt}, "m", 1)["format"] == schema
    assert chat_request({"messages": []}, "m", 1)["stream"] is False  # Ollama defaults to true


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


STAMP = "2026-04-01T10:00:00Z"
STREAM = ndjson(
    {"model": "m", "created_at": STAMP, "message": {"role": "assistant", "content": "Hi"}},
    {
        "model": "m",
        "created_at": STAMP,
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "f", "arguments": {"a": 1}}},
                {"function": {"name": "g", "arguments": {"b": 2}}},
            ],
        },
        "done": False,
    },
    {
        "model": "m",
        "created_at": STAMP,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 26,
        "eval_count": 5,
    },
)


def chunks(sse: bytes) -> list[Any]:
    events = [e for e in sse.split(b"\n\n") if e.startswith(b"data: ")]
    assert events[-1] == b"data: [DONE]"
    return [orjson.loads(e[6:]) for e in events[:-1]]


@pytest.mark.parametrize("cut", [0, 1, 30, 100, len(STREAM) // 2, len(STREAM) - 1])
def test_a_stream_split_anywhere_comes_out_the_same(cut: int) -> None:
    stream = NativeStream("chatcmpl-1", include_usage=True)
    out = stream.feed(STREAM[:cut]) + stream.feed(STREAM[cut:]) + stream.flush()
    got = chunks(out)
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    calls = got[1]["choices"][0]["delta"]["tool_calls"]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "f", '{"a":1}'),
        (1, "g", '{"b":2}'),
    ]
    assert all(c["id"].startswith("call_") for c in calls)
    assert got[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert got[3]["choices"] == [] and got[3]["usage"]["total_tokens"] == 31
    assert {c["id"] for c in got} == {"chatcmpl-1"} and stream.done


def test_relay_sse_and_error_lines() -> None:
    stream = NativeStream("c", include_usage=False)
    assert stream.feed(b": keep-alive\n\n") == b": keep-alive\n\n"
    out = stream.feed(b'{"error":"model runner crashed"}\n')
    assert orjson.loads(out[6:])["error"]["message"] == "model runner crashed"


def drive(start: dict[str, Any], pieces: list[bytes]) -> tuple[list[dict[str, Any]], bytes]:
    sent: list[dict[str, Any]] = []
    metered: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        answer = NativeAnswerSend(send, include_usage=False, meter=lambda b, _: metered.append(b))
        await answer({"type": "http.response.start", **start})
        for i, piece in enumerate(pieces):
            more = i < len(pieces) - 1
            await answer({"type": "http.response.body", "body": piece, "more_body": more})

    asyncio.run(main())
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"".join(metered) == body  # the meter reads what the client gets
    return sent, body


def test_a_whole_answer_an_error_and_a_stream_through_send() -> None:
    whole = {
        "model": "m",
        "created_at": STAMP,
        "message": {"role": "assistant", "content": "Hello"},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 3,
        "eval_count": 2,
    }
    raw = orjson.dumps(whole)
    json_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    sent, body = drive({"status": 200, "headers": json_headers}, [raw])
    answer = orjson.loads(body)
    assert (
        answer["object"] == "chat.completion" and answer["choices"][0]["finish_reason"] == "length"
    )
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert (b"content-length", str(len(body)).encode()) in sent[0]["headers"]
    error = b'{"error":"model \'x\' not found"}'
    sent, body = drive({"status": 404, "headers": json_headers}, [error])
    assert sent[0]["status"] == 404
    assert orjson.loads(body)["error"] == {
        "message": "model 'x' not found",
        "type": "invalid_request_error",
        "code": "model_not_found",
        "param": None,
    }
    nd = [(b"content-type", b"application/x-ndjson")]
    sent, body = drive({"status": 200, "headers": nd}, [STREAM[:50], STREAM[50:]])
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert chunks(body)[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_to_completion_with_tool_calls() -> None:
    body = {
        "model": "m",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_x", "function": {"name": "f", "arguments": {"a": 1}}}],
        },
        "done": True,
        "done_reason": "stop",
    }
    answer = orjson.loads(to_completion(orjson.dumps(body), "chatcmpl-9"))
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and answer["id"] == "chatcmpl-9"
    assert choice["message"]["tool_calls"][0] == {
        "id": "call_x",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":1}'},
    }
