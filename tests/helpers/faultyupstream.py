"""A misbehaving OpenAI-compatible model server on a real loopback socket.

`FaultyUpstream` is a raw `asyncio.start_server` HTTP/1.1 responder running
its own event loop in a thread. Raw, because the faults worth testing live
below what an ASGI server lets an app do: a TCP reset before the status line,
a reset in the middle of a chunked body, bytes that are not SSE at all.

When it behaves it speaks the exact wire format of llama.cpp's and vLLM's
OpenAI endpoints: `chat.completion` / `text_completion` JSON with a
`Content-Length`, and for `stream: true` a chunked `text/event-stream` of
`data: {chunk}\\n\\n` events ending in `data: [DONE]`. `GET /v1/models` and
`GET /health` always answer (a server whose completions fail can still look
healthy), unless the server is `pause()`d, in which case nothing listens on
its port and connections are refused.

What it does with a `POST` is steered per server (`upstream.mode`,
`upstream.options`, so two backends on two ports can fail differently) or
per request by a `fault` object in the body, which the proxy forwards
untouched as an unknown field:

    {"fault": {"mode": "reset_mid_stream", "after": 3}}

    ok                    behave; options: chunks, chunk_delay, first_delay, text
    reset_before_headers  read the request, then RST (SO_LINGER 0)
    close_before_headers  read the request, then close cleanly (FIN) without answering
    reset_mid_stream      200 + `after` SSE events, then RST
    status                answer `status` (default 500) with an OpenAI-style JSON error;
                          `pad` adds that many bytes to its message, `echo` quotes the request
    slow_first_byte       wait `delay` seconds (or until the peer leaves), then behave
    stall                 200 + `after` SSE events, then silence for `stall` seconds
    malformed_sse         200 text/event-stream of garbage bytes without blank lines
    html                  200 text/html, whatever was asked for
    huge                  200 application/json of `size` bytes
    endless_headers       200 status line, then header lines (up to `size` bytes) and never a body
    endless_event         200 text/event-stream: `size` bytes of `data:` lines, no blank line
    close_framed          200 text/event-stream framed by the close: `after` events, then FIN
    empty_stream          200 text/event-stream, chunked, with no chunk at all

`options["idle_close"]` (seconds) makes the server close a keep-alive connection
that stays idle that long, as llama-server and uvicorn do after 5 s.

Everything that arrives is recorded (`hits`), with each answer's outcome,
and the server counts its open connections and concurrent requests so tests
can check that nothing leaks and that limits hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.openai_wire import chunk, event, full

__all__ = ["FaultyUpstream", "Hit", "closed_port", "free_port"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    411: "Length Required",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused."""
    return free_port()


@dataclass
class Hit:
    """One request that reached the server, and what became of its answer."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    raw_body: bytes
    body: Any
    started: float
    mode: str = "ok"
    finished: float | None = None
    outcome: str = "open"  # open | completed | reset | closed | client-closed
    events_sent: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None = None


@dataclass
class FaultyUpstream:
    """A fault-injecting HTTP/1.1 model server; use as a context manager."""

    mode: str = "ok"
    options: dict[str, Any] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    model_ids: tuple[str, ...] = ("fake-model",)
    record: bool = True

    def __post_init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.open_connections = 0
        self.total_connections = 0
        self.active = 0
        self.max_active = 0
        self.served = 0
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- lifecycle (called from the test's thread) -----------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultyUpstream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="faulty")
        self._thread.start()
        self._call(self._listen())

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop.close()
        self._loop = None

    def pause(self) -> None:
        """Go down: stop listening (connects are refused) and drop every open connection."""
        self._call(self._shutdown())

    def resume(self) -> None:
        """Come back on the same port."""
        self._call(self._listen())

    def reset_stats(self) -> None:
        with self.lock:
            self.hits.clear()
            self.max_active = self.active
            self.served = 0

    def posts(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.method == "POST"]

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, reuse_address=True, limit=1 << 20
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        tasks = [c.task for c in self._conns if c.task is not None]
        for conn in list(self._conns):
            _abort(conn.writer)  # every wait in a handler is a read or a drain: they end now
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()

    # -- HTTP/1.1 ---------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer, asyncio.current_task())  # type: ignore[arg-type]
        self._conns.add(conn)
        with self.lock:
            self.open_connections += 1
            self.total_connections += 1
        try:
            while True:
                idle = self.options.get("idle_close")
                try:
                    request = await asyncio.wait_for(_read_request(reader), idle)
                except TimeoutError:
                    break  # idle too long: close, as a real server's keep-alive timeout does
                if request is None:
                    break
                keep_open = await self._respond(reader, writer, *request)
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down
        finally:
            self._conns.discard(conn)
            with self.lock:
                self.open_connections -= 1
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        raw: bytes,
    ) -> bool:
        close = any(k == "connection" and v.lower() == "close" for k, v in headers)
        if method == "GET":
            if path in ("/health", "/v1/health"):
                await _send_json(writer, 200, {"status": "ok"})
            elif path == "/v1/models":
                data = [
                    {"id": m, "object": "model", "created": 1, "owned_by": "faulty"}
                    for m in self.model_ids
                ]
                await _send_json(writer, 200, {"object": "list", "data": data})
            else:
                await _send_json(writer, 404, _error("not found", 404))
            return not close
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fault = body.get("fault") if isinstance(body, dict) else None
        if isinstance(fault, dict):
            mode = str(fault.get("mode", "ok"))
            opts: dict[str, Any] = {**self.options, **fault}
        else:
            mode, opts = self.mode, dict(self.options)
        hit = Hit(method, path, headers, raw, body, time.monotonic(), mode=mode)
        with self.lock:
            if self.record:
                self.hits.append(hit)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            keep = await self._fault(reader, writer, mode, opts, path, body, hit)
        except (ConnectionError, OSError):
            hit.outcome = "client-closed"
            keep = False
        finally:
            hit.finished = time.monotonic()
            with self.lock:
                self.active -= 1
                self.served += 1
        return keep and not close

    async def _fault(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        mode: str,
        opts: dict[str, Any],
        path: str,
        body: Any,
        hit: Hit,
    ) -> bool:
        payload = body if isinstance(body, dict) else {}
        stream = bool(payload.get("stream"))
        model = str(payload.get("model", "fake-model"))
        chat = path.endswith("/chat/completions")
        match mode:
            case "reset_before_headers":
                _abort(writer)
                hit.outcome = "reset"
                return False
            case "close_before_headers":
                writer.close()
                hit.outcome = "closed"
                return False
            case "status":
                code = int(opts.get("status", 500))
                message = f"faulty upstream says {code}"
                if opts.get("echo"):
                    message += " while answering " + json.dumps(body)
                message += "x" * int(opts.get("pad", 0))
                await _send_json(writer, code, _error(message, code))
                hit.outcome = "completed"
                return True
            case "endless_headers":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                line = b"X-Pad: " + b"y" * 1000 + b"\r\n"
                for _ in range(int(opts.get("size", 1 << 30)) // len(line)):
                    writer.write(line)
                    await writer.drain()
                writer.write(b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
                hit.outcome = "completed"
                return False
            case "endless_event":
                await _start_chunked(writer, "text/event-stream")
                line = b"data: " + b"z" * 4090 + b"\n"
                piece = line * 16
                for _ in range(int(opts.get("size", 1 << 30)) // len(piece)):
                    await _chunk(writer, piece)
                await _end_chunked(writer)
                hit.outcome = "completed"
                return True
            case "close_framed":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Connection: close\r\n\r\n"
                )
                for i in range(int(opts.get("after", 2))):
                    writer.write(event(chunk(chat, model, f"tok{i} ", i == 0, None, name="faulty")))
                    hit.events_sent += 1
                await writer.drain()
                writer.close()
                hit.outcome = "closed"
                return False
            case "empty_stream":
                await _start_chunked(writer, "text/event-stream")
                await _end_chunked(writer)
                hit.outcome = "completed"
                return True
            case "html":
                page = b"<!doctype html><html><body><h1>It works!</h1></body></html>"
                await _send(writer, 200, "text/html; charset=utf-8", page)
                hit.outcome = "completed"
                return True
            case "huge":
                size = int(opts.get("size", 1 << 20))
                filler = b'{"pad": "' + b"x" * max(0, size - 11) + b'"}'
                await _send(writer, 200, "application/json", filler)
                hit.outcome = "completed"
                return True
            case "malformed_sse":
                await _start_chunked(writer, "text/event-stream")
                for piece in (b"\x00\xff\xfegarbage", b"data: {not json", b"\r\r\r", b"data:"):
                    await _chunk(writer, piece)
                    hit.events_sent += 1
                await _end_chunked(writer)
                hit.outcome = "completed"
                return True
            case "reset_mid_stream" | "stall":
                await _start_chunked(writer, "text/event-stream")
                for i in range(int(opts.get("after", 2))):
                    await _chunk(
                        writer, event(chunk(chat, model, f"tok{i} ", i == 0, None, name="faulty"))
                    )
                    hit.events_sent += 1
                if mode == "reset_mid_stream":
                    await asyncio.sleep(0.05)  # let the events leave before the reset
                    _abort(writer)
                    hit.outcome = "reset"
                    return False
                gone = await _sleep_or_gone(reader, float(opts.get("stall", 30)))
                hit.outcome = "client-closed" if gone else "stalled"
                return False
            case "slow_first_byte":
                if await _sleep_or_gone(reader, float(opts.get("delay", 30))):
                    hit.outcome = "client-closed"
                    return False
            case "ok":
                pass
            case _:
                await _send_json(writer, 400, _error(f"unknown fault mode {mode!r}", 400))
                return True
        if opts.get("first_delay"):
            if await _sleep_or_gone(reader, float(opts["first_delay"])):
                hit.outcome = "client-closed"
                return False
        text = str(opts.get("text", "hello from the faulty upstream"))
        if path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
            usage = {"prompt_tokens": 3, "total_tokens": 3}
            await _send_json(
                writer, 200, {"object": "list", "model": model, "data": data, "usage": usage}
            )
        elif not stream:
            await _send_json(writer, 200, full(chat, model, text, name="faulty"))
        else:
            await _start_chunked(writer, "text/event-stream")
            chunks, delay = int(opts.get("chunks", 3)), float(opts.get("chunk_delay", 0))
            for i in range(chunks):
                await _chunk(
                    writer, event(chunk(chat, model, f"tok{i} ", i == 0, None, name="faulty"))
                )
                hit.events_sent += 1
                if delay and await _sleep_or_gone(reader, delay):
                    hit.outcome = "client-closed"
                    return False
            await _chunk(
                writer, event(chunk(chat, model, "", False, "stop", name="faulty")) + _DONE
            )
            await _end_chunked(writer)
        hit.outcome = "completed"
        return True


# -- wire format -------------------------------------------------------------------------------

_DONE = b"data: [DONE]\n\n"


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the peer closed an idle keep-alive connection
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    if "content-length" in fields:
        raw = await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raw = b"".join(parts)
    else:
        raw = b""
    return method, target.split("?", 1)[0], headers, raw


async def _send(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()


async def _send_json(writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
    await _send(writer, status, "application/json", json.dumps(payload).encode())


async def _start_chunked(writer: asyncio.StreamWriter, ctype: str) -> None:
    writer.write(
        f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode("latin-1")
    )
    await writer.drain()


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def _end_chunked(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _sleep_or_gone(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Sleep up to `seconds`; True as soon as the peer closes the connection."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            data = await asyncio.wait_for(reader.read(1), left)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        if not data:
            return True
    return False


def _error(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "code": code}}


@contextlib.contextmanager
def faulty(mode: str = "ok", **options: Any) -> Iterator[FaultyUpstream]:
    """`with faulty("status", status=503) as up: ...`"""
    with FaultyUpstream(mode, dict(options)) as up:
        yield up


class LoopCapture:
    """ASGI wrapper remembering the event loop the app runs in (uvicorn's, in its thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def tasks(self) -> int:
        """How many asyncio tasks are alive in the app's loop (not counting this probe)."""

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(5)
