"""Chat through Ollama's native `/api/chat`, so the proxy can set the context window.

Ollama runs a model with a 2,048- or 4,096-token window unless told otherwise,
and its OpenAI-compatible endpoint can't be told (it ignores `options` and
`num_ctx` there; its docs say to bake `num_ctx` into a Modelfile). Its native
API takes `options.num_ctx` per request. So for a variant with `num_ctx`, a
chat request is translated to `/api/chat` and the answer back to OpenAI's
shape, streams included; the client never sees the difference.

`chat_request` (pure) translates the request:

* messages: text parts joined, `image_url` data URLs as `images` (base64), an
  assistant's `tool_calls` with their arguments as JSON objects, a `tool`
  message with the `tool_name` its `tool_call_id` names;
* `tools` as they are; `stream` always explicit (Ollama's default is to stream);
* options: `num_ctx`, and `max_tokens`/`max_completion_tokens` → `num_predict`,
  `temperature`, `top_p`, `seed`, `stop`, `frequency_penalty`,
  `presence_penalty`; `response_format` → `format` (`"json"` or the schema).

`NativeAnswerSend` stands in for the ASGI `send` (as `adapt.ChatAnswerSend`
does) and translates the answer: NDJSON lines (`{"message": …, "done": false}`
… `{"done": true, "done_reason", "prompt_eval_count", "eval_count"}`) become
`chat.completion.chunk` events, each tool call its own index, the last with
`finish_reason` (`tool_calls` after tool calls), a usage chunk when
`stream_options.include_usage` asks, then `[DONE]`; a whole answer becomes a
`chat.completion`; Ollama's `{"error": "…"}` becomes OpenAI's error shape
(mid-stream: an SSE error event). What the relay itself writes into the
stream (keep-alive comments, its error events) is already SSE and passes.
The stream meter is fed what the client gets, so its `[DONE]` check and its
token counts read the translated stream.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import orjson

from .adapt import Send, send_whole

__all__ = ["NATIVE_PATH", "NativeAnswerSend", "NativeStream", "chat_request", "to_completion"]

NATIVE_PATH = "/api/chat"

_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


def _text(content: Any) -> tuple[str, list[str]]:
    """A message's text and its images (base64, from `data:` URLs)."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        url = (part.get("image_url") or {}).get("url") if part.get("type") == "image_url" else None
        if isinstance(url, str) and url.startswith("data:") and "," in url:
            images.append(url.split(",", 1)[1])
    return "\n".join(texts), images


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return raw
    return raw if raw is not None else {}


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id → function name
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role", "user")
        text, images = _text(message.get("content"))
        item: dict[str, Any] = {"role": "system" if role == "developer" else role}
        item["content"] = text
        if images:
            item["images"] = images
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {} if isinstance(call, dict) else {}
            name = function.get("name", "")
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                names[call["id"]] = name
            calls.append(
                {"function": {"name": name, "arguments": _arguments(function.get("arguments"))}}
            )
        if calls:
            item["tool_calls"] = calls
        if role == "tool" and message.get("tool_call_id") in names:
            item["tool_name"] = names[message["tool_call_id"]]
        out.append(item)
    return out


def chat_request(payload: Mapping[str, Any], model: str, num_ctx: int) -> dict[str, Any]:
    """An OpenAI chat request as Ollama's `/api/chat` takes it, with `options.num_ctx`."""
    options: dict[str, Any] = {"num_ctx": num_ctx}
    for key, option in _OPTIONS.items():
        if payload.get(key) is not None:
            options[option] = payload[key]
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if isinstance(limit, int):
        options["num_predict"] = limit
    body: dict[str, Any] = {
        "model": model,
        "messages": _messages(list(payload.get("messages") or [])),
        "stream": bool(payload.get("stream", False)),
        "options": options,
    }
    if payload.get("tools"):
        body["tools"] = payload["tools"]
    fmt = payload.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        body["format"] = "json"
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        body["format"] = (fmt.get("json_schema") or {}).get("schema", "json")
    return body


def _finish(done_reason: Any, tool_calls: bool) -> str:
    if tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _usage(line: Mapping[str, Any]) -> dict[str, int]:
    prompt = int(line.get("prompt_eval_count") or 0)
    answer = int(line.get("eval_count") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}


def _calls(message: Mapping[str, Any], first: int) -> list[dict[str, Any]]:
    out = []
    for n, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments", {})
        out.append(
            {
                "index": first + n,
                "id": call.get("id") or "call_" + secrets.token_hex(6),
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": arguments
                    if isinstance(arguments, str)
                    else orjson.dumps(arguments).decode(),
                },
            }
        )
    return out


def _error_body(body: bytes, status: int) -> bytes:
    """Ollama's `{"error": "…"}` in OpenAI's shape."""
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        found = None
    message = found.get("error") if isinstance(found, dict) else None
    if not isinstance(message, str):
        message = body[:500].decode("utf-8", "replace")
    kind = "invalid_request_error" if status < 500 else "server_error"
    code = "model_not_found" if status == 404 else None
    error = {"message": message, "type": kind, "code": code, "param": None}
    return orjson.dumps({"error": error})


def to_completion(body: bytes, chat_id: str) -> bytes:
    """A whole `/api/chat` answer as a `chat.completion`."""
    answer = orjson.loads(body)
    message = answer.get("message") or {}
    calls = [{k: v for k, v in c.items() if k != "index"} for c in _calls(message, 0)]
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content", "")}
    if calls:
        out["tool_calls"] = calls
    return orjson.dumps(
        {
            "id": chat_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": out,
                    "finish_reason": _finish(answer.get("done_reason"), bool(calls)),
                }
            ],
            "usage": _usage(answer),
        }
    )


class NativeStream:
    """NDJSON lines in, SSE chunk events out. Pure: bytes in, bytes out."""

    def __init__(self, chat_id: str, include_usage: bool) -> None:
        self.chat_id = chat_id
        self.include_usage = include_usage
        self._partial = b""
        self._calls = 0
        self._role_sent = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        return b"".join(self._line(line + b"\n") for line in lines)

    def flush(self) -> bytes:
        line, self._partial = self._partial, b""
        return self._line(line) if line else b""

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
        obj = {
            "id": self.chat_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def _line(self, raw: bytes) -> bytes:
        stripped = raw.strip()
        if not stripped.startswith(b"{"):
            return raw  # what the relay wrote (a keep-alive, its error event) is SSE already
        try:
            line = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(line, dict):
            return b""
        if isinstance(line.get("error"), str):
            error = {"message": line["error"], "type": "server_error", "code": None}
            self.done = True
            return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        model = str(line.get("model", ""))
        message = line.get("message") or {}
        delta: dict[str, Any] = {}
        if not self._role_sent:
            delta["role"] = "assistant"
            self._role_sent = True
        for key in ("content", "thinking"):
            if message.get(key):
                delta["content" if key == "content" else "reasoning_content"] = message[key]
        calls = _calls(message, self._calls)
        self._calls += len(calls)
        if calls:
            delta["tool_calls"] = calls
        out = self._chunk(model, delta, None) if delta else b""
        if line.get("done"):
            self.done = True
            out += self._chunk(model, {}, _finish(line.get("done_reason"), self._calls > 0))
            if self.include_usage:
                usage = {
                    "id": self.chat_id,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [],
                    "usage": _usage(line),
                }
                out += b"data: " + orjson.dumps(usage) + b"\n\n"
            out += b"data: [DONE]\n\n"
        return out


class NativeAnswerSend:
    """An ASGI `send` that turns an `/api/chat` answer into OpenAI's chat answer.

    `meter` (the request's `StreamMeter.feed`) reads what goes out, translated."""

    def __init__(
        self,
        send: Send,
        *,
        include_usage: bool,
        meter: Callable[[bytes, float], None] | None = None,
    ) -> None:
        self._send = send
        self._meter = meter
        self._id = "chatcmpl-" + secrets.token_hex(8)
        self._stream = NativeStream(self._id, include_usage)
        self._mode: Literal["stream", "whole", "error"] = "whole"
        self._start: dict[str, Any] | None = None
        self._held = bytearray()

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length")
            ]
            ctype = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] >= 400:
                self._mode = "error"
            elif ctype.startswith((b"application/x-ndjson", b"text/event-stream")):
                self._mode = "stream"
                sse = [(b"content-type", b"text/event-stream; charset=utf-8")]
                if not ctype.startswith(b"text/event-stream"):
                    sse += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
                await self._send({**message, "headers": headers + sse})
                return
            self._start = {**message, "headers": headers}
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self._mode != "stream":
            self._held += body
            if not more:
                await self._send_whole()
            return
        out = self._stream.feed(body)
        if not more:
            out += self._stream.flush()
        if out and self._meter is not None:
            self._meter(out, time.perf_counter())
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    async def _send_whole(self) -> None:
        start = self._start or {"type": "http.response.start", "status": 200, "headers": []}
        body = bytes(self._held)
        if self._mode == "error":
            body = _error_body(body, start["status"])
        else:
            try:
                body = to_completion(body, self._id)
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                body = _error_body(b'{"error": "Ollama sent an answer that is not JSON"}', 502)
                start = {**start, "status": 502}
        if self._meter is not None:
            self._meter(body, time.perf_counter())
        json_type = (b"content-type", b"application/json")
        await send_whole(self._send, {**start, "headers": [*start["headers"], json_type]}, body)
