"""A fake Ollama server speaking its exact wire format, for the quirks a real one shows.

Shapes follow ollama/ollama's own code (`middleware/openai.go`, `openai/openai.go`,
`server/routes.go`):

* `GET /api/version` → `{"version": "0.20.4"}`; `GET /api/tags`; `GET /api/ps` →
  `{"models": [...]}` (with `context_length` when `loaded_context` is set);
* `POST /api/show {"model"}` → `parameters` (the Modelfile's `PARAMETER` lines as
  text, where a `num_ctx` would be), `model_info` (`<arch>.context_length`, the
  *training* context), `details`, `capabilities`;
* `POST /v1/chat/completions`: chunks `data: {json}\\n\\n` with
  `"system_fingerprint":"fp_ollama"` and `data: [DONE]\\n\\n`, compact JSON (Go's
  `json.Marshal`). Each tool call arrives whole in one chunk with `"index":0`
  (ollama/ollama#15457; before 0.4.7 without any `index`, #7881); servers that predate
  `ChatWriter.toolCallSent` end a tool-call turn with `finish_reason: "stop"`.
* `POST /api/chat` (native): `options.num_ctx` sets the window; NDJSON lines
  `{"model", "created_at", "message": {"role", "content"[, "tool_calls"]}, "done": false}`
  then `{"done": true, "done_reason", "prompt_eval_count", "eval_count", ...}`
  (`application/x-ndjson`), tool calls whole with `arguments` as an object;
* silent truncation: a prompt over the serving window (`num_ctx`, default 4096 since
  0.6.4) is cut from the front and answered 200, as Ollama does; `truncated` records
  every request that was (the proxy must never let one through).

The fake counts a prompt's tokens as its characters / 4 (English text through a
BPE tokenizer); a test only needs it to be in the same range as the real one.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.helpers.openai_wire import lifespan


class FakeOllama:
    def __init__(
        self,
        version: str = "0.20.4",
        models: tuple[str, ...] = ("qwen2.5:7b",),
        num_ctx: int | None = None,
        loaded_context: int | None = None,
    ) -> None:
        self.version = version
        self.models = models
        self.num_ctx = num_ctx  # a Modelfile's PARAMETER num_ctx
        self.loaded_context = loaded_context  # what /api/ps shows for a loaded model
        self.requests: list[dict[str, Any]] = []
        self.truncated: list[int] = []
        self.native: list[dict[str, Any]] = []  # /api/chat requests
        self.shown: list[str] = []
        self.lock = threading.Lock()

    @property
    def window(self) -> int:
        if self.num_ctx is not None:
            return self.num_ctx
        return 4096 if tuple(int(p) for p in self.version.split(".")) >= (0, 6, 4) else 2048

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        path, method = scope["path"], scope["method"]
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if method == "GET" and path == "/api/version":
            return await _json(send, 200, {"version": self.version})
        if method == "GET" and path == "/api/tags":
            return await _json(send, 200, {"models": [self._tag(m) for m in self.models]})
        if method == "GET" and path == "/api/ps":
            loaded = []
            if self.loaded_context is not None:
                loaded = [{**self._tag(self.models[0]), "context_length": self.loaded_context}]
            return await _json(send, 200, {"models": loaded})
        if method == "POST" and path == "/api/show":
            return await self._show(send, json.loads(raw))
        if method == "POST" and path == "/v1/chat/completions":
            return await self._chat(send, json.loads(raw))
        if method == "POST" and path == "/api/chat":
            return await self._native(send, json.loads(raw))
        await _json(send, 404, {"error": "404 page not found"})

    def _tag(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": "2026-04-01T10:00:00.000000000Z",
            "size": 4683087332,
            "digest": "845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "qwen2",
                "families": ["qwen2"],
                "parameter_size": "7.6B",
                "quantization_level": "Q4_K_M",
            },
        }

    async def _show(self, send: Any, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name")
        with self.lock:
            self.shown.append(str(name))
        if name not in self.models:
            return await _json(send, 404, {"error": f"model '{name}' not found"})
        stops = ("<|im_start|>", "<|im_end|>")
        params = "\n".join(f'stop                           "{s}"' for s in stops)
        if self.num_ctx is not None:
            params = f"num_ctx                        {self.num_ctx}\n" + params
        await _json(
            send,
            200,
            {
                "license": "Apache License 2.0",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n',
                "parameters": params,
                "template": "{{- if .Messages }}...{{ end }}",
                "details": self._tag(str(name))["details"],
                "model_info": {
                    "general.architecture": "qwen2",
                    "general.parameter_count": 7615616512,
                    "qwen2.context_length": 32768,
                    "qwen2.embedding_length": 3584,
                },
                "capabilities": ["completion", "tools"],
                "modified_at": "2026-04-01T10:00:00.000000000Z",
            },
        )

    async def _chat(self, send: Any, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(body)
        text = "\n".join(
            m["content"] for m in body.get("messages", []) if isinstance(m.get("content"), str)
        )
        tokens = len(text) // 4
        if tokens > self.window:
            with self.lock:
                self.truncated.append(tokens)  # Ollama: "truncating input prompt", then 200
        model = body["model"]
        base = {
            "id": "chatcmpl-317",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_ollama",
        }
        indexed = tuple(int(p) for p in self.version.split(".")) >= (0, 4, 7)
        calls = []
        if body.get("tools"):
            calls = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
        if not body.get("stream"):
            return await self._whole(send, base, calls, indexed, tokens)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        events: list[dict[str, Any]] = []
        for i, (name, args) in enumerate(calls):
            call: dict[str, Any] = {"id": f"call_{i}x7k2q", "type": "function"}
            if indexed:
                call["index"] = 0  # every call: ollama/ollama#15457
            call["function"] = {"name": name, "arguments": json.dumps(args, separators=(",", ":"))}
            delta = {"role": "assistant", "content": "", "tool_calls": [call]}
            events.append(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            )
        if not calls:
            for piece in ("Hello", " there", "!"):
                delta = {"role": "assistant", "content": piece}
                events.append(
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                )
        # servers before ChatWriter.toolCallSent said "stop" after tool calls
        modern = tuple(int(p) for p in self.version.split(".")) >= (0, 5, 0)
        reason = "tool_calls" if calls and modern else "stop"
        delta = {"role": "assistant", "content": ""}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]})
        for ev in events:
            data = b"data: " + json.dumps(ev, separators=(",", ":")).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _native(self, send: Any, body: dict[str, Any]) -> None:
        """`POST /api/chat`: `options.num_ctx` sets the window; NDJSON when streaming
        (`stream` defaults to true), tool calls whole with arguments as objects."""
        with self.lock:
            self.native.append(body)
        model = body.get("model")
        if model not in self.models:
            return await _json(
                send, 404, {"error": f"model '{model}' not found, try pulling it first"}
            )
        window = (body.get("options") or {}).get("num_ctx") or self.window
        text = "\n".join(
            m["content"] for m in body.get("messages", []) if isinstance(m.get("content"), str)
        )
        tokens = len(text) // 4
        if tokens > window:
            with self.lock:
                self.truncated.append(tokens)
        stamp = "2026-04-01T10:00:00.000000000Z"
        calls = []
        if body.get("tools"):
            calls = [
                {"function": {"name": "get_weather", "arguments": {"city": city}}}
                for city in ("Paris", "Tokyo")
            ]
        final = {
            "model": model,
            "created_at": stamp,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": min(tokens, window),
            "prompt_eval_duration": 342546000,
            "eval_count": 3,
            "eval_duration": 4535599000,
        }
        if not body.get("stream", True):
            message = {"role": "assistant", "content": "" if calls else "Hello there!"}
            if calls:
                message["tool_calls"] = calls
            return await _json(send, 200, {**final, "message": message})
        lines: list[dict[str, Any]] = []
        if calls:
            message = {"role": "assistant", "content": "", "tool_calls": calls}
            lines.append({"model": model, "created_at": stamp, "message": message, "done": False})
        else:
            for piece in ("Hello", " there", "!"):
                message = {"role": "assistant", "content": piece}
                lines.append(
                    {"model": model, "created_at": stamp, "message": message, "done": False}
                )
        await _ndjson(send, [*lines, final])

    async def _whole(
        self,
        send: Any,
        base: dict[str, Any],
        calls: list[tuple[str, dict[str, Any]]],
        indexed: bool,
        tokens: int,
    ) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": "Hello there!"}
        if calls:
            message["content"] = ""
            message["tool_calls"] = [
                {
                    "id": f"call_{i}x7k2q",
                    **({"index": i} if indexed else {}),
                    "type": "function",
                    "function": {"name": n, "arguments": json.dumps(a, separators=(",", ":"))},
                }
                for i, (n, a) in enumerate(calls)
            ]
        answer = {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": min(tokens, self.window),
                "completion_tokens": 3,
                "total_tokens": min(tokens, self.window) + 3,
            },
        }
        await _json(send, 200, answer)


async def _ndjson(send: Any, lines: list[dict[str, Any]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/x-ndjson")],
        }
    )
    for line in lines:
        data = json.dumps(line, separators=(",", ":")).encode() + b"\n"
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _json(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
