"""A fast fake OpenAI upstream for the overhead benchmark: as little work per request as possible.

Raw ASGI on uvicorn with uvloop and httptools, no access log. It speaks the same
wire format as `tests/helpers/fakeupstream.py` (and llama.cpp / vLLM):

* `POST /v1/chat/completions` → a `chat.completion` object, or with `"stream": true`
  `text/event-stream` with `data: {chunk}\\n\\n` events, a `finish_reason: "stop"`
  chunk and `data: [DONE]`, each event its own ASGI message (its own write);
* `POST /v1/completions` → the `text_completion` equivalents;
* `GET /v1/models` and `GET /health` for the proxy's health probe.

The number of stream chunks comes from the request body's `fake.chunks`
(default 50), a field the proxy forwards untouched. Events are pre-encoded per
model name so a request costs one `orjson.loads` and a few writes.

Run: .venv/bin/python benchmarks/fast_upstream.py --port 9100
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.*
from tests.helpers.openai_wire import DONE, chunk, event, full, lifespan  # noqa: E402

DEFAULT_CHUNKS = 50
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@functools.lru_cache(maxsize=64)
def full_answer(chat: bool, model: str) -> bytes:
    return orjson.dumps(full(chat, model, "hello from the fast upstream", name="fast"))


@functools.lru_cache(maxsize=64)
def stream_events(chat: bool, model: str, n: int) -> tuple[bytes, ...]:
    events = [event(chunk(chat, model, f"tok{i} ", i == 0, None, name="fast")) for i in range(n)]
    events.append(event(chunk(chat, model, "", False, "stop", name="fast")) + DONE)
    return tuple(events)


async def _reply(send: Any, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if scope["method"] == "GET":
        if path == "/v1/models":
            models = {"object": "list", "data": [{"id": "fast-model", "object": "model"}]}
            return await _reply(send, 200, orjson.dumps(models))
        if path == "/health":
            return await _reply(send, 200, b'{"status":"ok"}')
        return await _reply(send, 404, b'{"error":{"message":"not found","code":404}}')
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    try:
        body = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        return await _reply(send, 400, b'{"error":{"message":"bad json","code":400}}')
    chat = path.endswith("/chat/completions")
    model = str(body.get("model", "fast-model"))
    if not body.get("stream"):
        return await _reply(send, 200, full_answer(chat, model))
    n = int((body.get("fake") or {}).get("chunks", DEFAULT_CHUNKS))
    await send({"type": "http.response.start", "status": 200, "headers": _SSE})
    events = stream_events(chat, model, n)
    last = len(events) - 1
    for i, data in enumerate(events):
        await send({"type": "http.response.body", "body": data, "more_body": i < last})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
