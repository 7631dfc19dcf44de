"""Regression guards for the hot path, without timing anything.

Timed assertions flake on shared machines; these count work instead:

1. JSON work per request: the request body is parsed at most once and
   serialized at most once per attempt, and streamed chunks are parsed at most
   once per SSE event (zero while no metrics observer reads them). `orjson.loads`
   and `orjson.dumps` are wrapped on the module, which is where `proxy.*` looks
   them up (`import orjson` … `orjson.loads(...)`); the fake upstream uses the
   stdlib `json`, so it does not count.
2. Streams are relayed, never accumulated: no body message the proxy sends is
   bigger than one socket read, and the proxy's Python memory stays flat while
   a 4 MB stream passes through to a client that reads slowly.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.app import create_app
from proxy.config import parse_config
from tests.helpers.config import asgi_scope, make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream, Recorder, run_server

#: httpcore reads at most this much from a socket at once: a relayed body message
#: bigger than this means the proxy joined reads together.
ONE_READ = 64 * 1024


class JsonCounter:
    """Wraps orjson.loads/dumps and keeps what went in (loads) and came out (dumps)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed: list[bytes] = []
        self.serialized: list[bytes] = []
        real_loads, real_dumps = orjson.loads, orjson.dumps

        def loads(data: Any) -> Any:
            raw = data.encode() if isinstance(data, str) else bytes(data)
            self.parsed.append(raw)
            return real_loads(data)

        def dumps(obj: Any, *args: Any, **kwargs: Any) -> bytes:
            out: bytes = real_dumps(obj, *args, **kwargs)
            self.serialized.append(out)
            return out

        monkeypatch.setattr(orjson, "loads", loads)
        monkeypatch.setattr(orjson, "dumps", dumps)

    def parses_of(self, marker: bytes) -> int:
        return sum(marker in raw for raw in self.parsed)

    def serializations_of(self, marker: bytes) -> int:
        return sum(marker in raw for raw in self.serialized)


async def _drive(app: Any, body: bytes) -> Recorder:
    """One request through the ASGI app with hand-written receive/send; lifespan by hand."""
    proxy = app.state.proxy
    await proxy.start()
    sent = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    recorder = Recorder()
    try:
        await asyncio.wait_for(app(asgi_scope(), receive, recorder), timeout=20)
    finally:
        await proxy.stop()
    return recorder


def _bodies(rec: Recorder) -> list[bytes]:
    return [m["body"] for _, m in rec.messages if m["type"] == "http.response.body" and m["body"]]


def _status(rec: Recorder) -> int:
    return next(m["status"] for _, m in rec.messages if m["type"] == "http.response.start")


def _start_headers(rec: Recorder) -> list[tuple[bytes, bytes]]:
    return next(m["headers"] for _, m in rec.messages if m["type"] == "http.response.start")


def _request(model: str, marker: str, **extra: Any) -> bytes:
    # A realistic, largish prompt, so a stray copy through JSON would be worth catching.
    prompt = f"[{marker}] Write a Python function that reverses a string.\n" + "x = 1\n" * 2000
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
    ).encode()


@pytest.mark.parametrize("model", ["instruct", "auto"])
@pytest.mark.parametrize("stream", [False, True])
def test_request_body_parsed_and_serialized_at_most_once(
    fake_server: tuple[FakeUpstream, str],
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    stream: bool,
) -> None:
    _, url = fake_server
    cfg = make_config(url)
    cfg["routes"]["complex"] = ["big"]  # one live candidate per class: exactly one attempt
    app = create_app(parse_config(cfg))
    marker = f"perf-guard-{uuid.uuid4().hex}"
    body = _request(model, marker, stream=stream, fake={"chunks": 20})
    counter = JsonCounter(monkeypatch)
    rec = asyncio.run(_drive(app, body))

    assert _status(rec) == 200
    assert not any(k == b"x-route-fallback-from" for k, _ in _start_headers(rec))
    assert marker in fake.seen[-1].body["messages"][0]["content"], "the request reached upstream"
    parses = counter.parses_of(marker.encode())
    assert parses >= 1, "the counting wrapper is not on the path orjson calls take"
    assert parses <= 1, f"request body parsed {parses} times"
    serializations = counter.serializations_of(marker.encode())
    assert serializations <= 1, f"request body serialized {serializations} times"


def test_streamed_chunks_parsed_at_most_once_per_event(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake_server
    app = create_app(parse_config(make_config(url)))
    n = 200
    body = _request("instruct", "stream-events", stream=True, fake={"chunks": n})
    counter = JsonCounter(monkeypatch)
    rec = asyncio.run(_drive(app, body))

    relayed = b"".join(_bodies(rec))
    events = relayed.count(b"\n\ndata: ") + 1
    assert relayed.endswith(b"data: [DONE]\n\n") and events == n + 2
    chunk_parses = counter.parses_of(b"chat.completion.chunk")
    # Zero while no metrics observer reads the stream; a token meter may decode each event
    # once, never the stream again or per chunk of bytes.
    assert chunk_parses <= events, f"{chunk_parses} parses for {events} SSE events"


# -- streams are relayed, not accumulated ----------------------------------------------------

EVENT = b"data: " + orjson.dumps({"object": "chat.completion.chunk", "pad": "x" * 1000}) + b"\n\n"


def big_stream(n: int) -> Callable[..., Any]:
    """An upstream that streams n events of ~1 KB as fast as flow control lets it."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "GET":  # health probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"object":"list","data":[]}'})
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(n):
            await send({"type": "http.response.body", "body": EVENT, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    return app


@pytest.fixture
def big_stream_proxy(tmp_path: Path) -> Iterator[tuple[str, int]]:
    n = 4000
    with run_server(big_stream(n)) as upstream:
        cfg = make_config(upstream)
        # The relay's idle timer also runs while a send waits on a slow client; keep it out
        # of the way, this test is about memory.
        cfg["backends"]["main"]["timeouts"]["idle"] = 60
        path = write_config(tmp_path, cfg)
        with run_server(create_app(path)) as url:
            yield url, n


def test_stream_through_asgi_is_never_joined(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream
) -> None:
    _, url = fake_server
    app = create_app(parse_config(make_config(url)))
    body = _request("instruct", "no-join", stream=True, fake={"chunks": 3000})
    rec = asyncio.run(_drive(app, body))
    sizes = [len(b) for b in _bodies(rec)]
    assert sum(sizes) > 4 * ONE_READ, "the stream must be bigger than any one read"
    assert max(sizes) <= ONE_READ, f"a body message of {max(sizes)} bytes: reads were joined"


def test_stalled_reader_keeps_proxy_memory_flat(big_stream_proxy: tuple[str, int]) -> None:
    """A 4 MB stream to a client that stops reading after the first bytes: flow control must
    hold the rest back (in socket buffers and the paused upstream), not in the proxy's
    memory. A relay that kept the chunks would hold megabytes of Python objects here."""
    url, n = big_stream_proxy
    host, port = url.removeprefix("http://").split(":")
    body = _request("instruct", "stalled-reader", stream=True)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    tail = b""
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        total = len(first)
        tracemalloc.start()
        try:
            time.sleep(1.0)  # the client reads nothing: everything upstream can push piles up
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        while not tail.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
            data = sock.recv(64 * 1024)
            assert data, f"the stream ended without [DONE]; its last bytes: {tail!r}"
            total += len(data)
            tail = (tail + data)[-300:]
    assert total > n * len(EVENT)
    assert held < 2**20, (
        f"{held / 2**20:.1f} MB of new Python objects alive while the client was not reading: "
        "the relay is holding the stream"
    )
