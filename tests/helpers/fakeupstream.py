"""A fake OpenAI-compatible model server, for faults and timings real servers can't give on demand.

It speaks the exact wire format of llama.cpp's and vLLM's OpenAI endpoints:
`chat.completion` / `text_completion` objects, and for `stream: true`
`text/event-stream` with `data: {chunk}\\n\\n` events ending in `data: [DONE]`,
plus a usage chunk (`choices: []`) when `stream_options.include_usage` is set.

Behaviour is steered by an extra `fake` object in the request body (which
the proxy must forward untouched, being an unknown field):

    {"fake": {"first_delay": 0.5, "chunk_delay": 0.05, "chunks": 20,
              "status": 500, "die_after": 3, "text": "hello",
              "tool_calls": [{"name": "get_weather", "arguments": "{...}"}]}}

`tool_calls` (chat only) answers with those calls, in llama-server's format.

Every request and every stream's fate (completed / client-closed, with
times) is recorded on the instance for tests to inspect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.helpers.openai_wire import (
    chunk,
    event,
    full,
    full_tool_calls,
    lifespan,
    responses_full,
    responses_stream_events,
    tool_call_chunks,
)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    started: float
    first_sent: float | None = None
    last_sent: float | None = None
    finished: float | None = None
    outcome: str = "open"  # open | completed | client-closed | died
    chunks_sent: int = 0


class FakeUpstream:
    def __init__(self, model_ids: tuple[str, ...] = ("fake-model",)) -> None:
        self.model_ids = model_ids
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        path = scope["path"]
        if scope["method"] == "GET":
            if path == "/health":
                return await self._json(send, 200, {"status": "ok"})
            if path == "/v1/models":
                data = [
                    {"id": m, "object": "model", "created": 1, "owned_by": "fake"}
                    for m in self.model_ids
                ]
                return await self._json(send, 200, {"object": "list", "data": data})
            return await self._json(send, 404, {"error": {"message": "not found", "code": 404}})
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw)
        except ValueError:
            return await self._json(send, 400, {"error": {"message": "bad json", "code": 400}})
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen = Seen(path=path, headers=headers, body=body, started=time.monotonic())
        with self.lock:
            self.seen.append(seen)
        fake = body.get("fake") or {}
        watcher = asyncio.ensure_future(receive())  # completes on disconnect
        work = asyncio.ensure_future(self._answer(path, body, fake, seen, send))
        try:
            done, _ = await asyncio.wait((watcher, work), return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()
            else:
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
                seen.outcome = "client-closed"
                seen.finished = time.monotonic()
        finally:
            watcher.cancel()

    async def _answer(
        self, path: str, body: dict[str, Any], fake: dict[str, Any], seen: Seen, send: Any
    ) -> None:
        await asyncio.sleep(float(fake.get("first_delay", 0)))
        status = int(fake.get("status", 200))
        if status >= 400:
            await self._json(
                send,
                status,
                {
                    "error": {
                        "message": f"fake failure {status}",
                        "type": "server_error",
                        "code": status,
                    }
                },
            )
            seen.outcome, seen.finished = "completed", time.monotonic()
            return
        model = body.get("model", "fake-model")
        chat = path.endswith("/chat/completions")
        text = str(fake.get("text", "hello from the fake upstream"))
        if path.endswith("/embeddings"):
            await self._json(
                send,
                200,
                {
                    "object": "list",
                    "model": model,
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )
            seen.outcome, seen.finished = "completed", time.monotonic()
            return
        if path.endswith("/responses"):  # llama-server's own Responses API
            await self._responses(send, model, text, bool(body.get("stream")))
            seen.outcome, seen.finished = "completed", time.monotonic()
            return
        calls = fake.get("tool_calls") if chat else None
        if calls:
            await self._tool_calls(send, model, calls, bool(body.get("stream")))
            seen.outcome, seen.finished = "completed", time.monotonic()
            return
        if not body.get("stream"):
            payload = full(chat, model, text)
            await self._json(send, 200, payload)
            seen.first_sent = seen.last_sent = seen.finished = time.monotonic()
            seen.outcome = "completed"
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        n = int(fake.get("chunks", 5))
        delay = float(fake.get("chunk_delay", 0))
        die_after = fake.get("die_after")
        for i in range(n):
            if die_after is not None and i == int(die_after):
                seen.outcome, seen.finished = "died", time.monotonic()
                raise ConnectionAbortedError("fake upstream dies mid-stream")
            piece = f"tok{i} "
            await send(
                {
                    "type": "http.response.body",
                    "more_body": True,
                    "body": event(chunk(chat, model, piece, i == 0, None)),
                }
            )
            now = time.monotonic()
            seen.first_sent = seen.first_sent or now
            seen.last_sent = now
            seen.chunks_sent += 1
            if delay:
                await asyncio.sleep(delay)
        tail = event(chunk(chat, model, "", False, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            tail += event(
                {
                    **chunk(chat, model, "", False, None),
                    "choices": [],
                    "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n},
                }
            )
        tail += b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        seen.outcome, seen.finished = "completed", time.monotonic()

    async def _tool_calls(
        self, send: Any, model: str, calls: list[dict[str, str]], stream: bool
    ) -> None:
        if not stream:
            return await self._json(send, 200, full_tool_calls(model, calls))
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in tool_call_chunks(model, calls):
            await send({"type": "http.response.body", "body": event(piece), "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    async def _responses(self, send: Any, model: str, text: str, stream: bool) -> None:
        if not stream:
            return await self._json(send, 200, responses_full(model, text))
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in responses_stream_events(model, text):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _json(send: Any, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_server(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a real loopback socket, in a thread."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port or free_port(),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Recorder:
    """Collects ASGI messages sent by an app, with arrival times."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append((time.monotonic(), message))
