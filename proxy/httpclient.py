"""A lean HTTP/1.1 client for plain-`http://` model servers on loopback or a LAN.

httpx spends most of the proxy's per-request CPU in httpcore's connection pool,
which walks every pooled connection (a `poll()` and anyio attribute lookups
each) on every request and every close (docs/performance.md). This client
does the least that relaying needs:

* one `asyncio.Protocol` per connection, responses parsed by
  `httptools.HttpResponseParser` (llhttp, in C): `Content-Length`, chunked and
  read-until-close bodies, 1xx interim answers skipped, 204/304 without body;
* per-`(host, port)` LIFO stacks of idle keep-alive connections, capped; a
  connection the server closes is dropped when `connection_lost` fires, so
  taking one from the pool checks only that one connection, with no syscall;
* the request (head and body) written with one `transport.write`;
* body chunks handed over as they arrive (one per `on_body`, never joined),
  with `pause_reading()` above a high-water mark so a slow consumer
  back-pressures the server instead of filling memory;
* cancellation-safe: a request or body read cancelled mid-flight closes its
  connection, which never goes back to the pool;
* no read timeout: the relay races its own first-byte/idle/total deadlines;
* bounded: the status line and headers may take at most `max_header_bytes`
  bytes and `max_headers` fields (endless headers are an error, never memory);
* resending only on a reused connection that answered nothing: a pooled
  connection is checked before it is reused (is the socket readable? an idle
  keep-alive connection has nothing to say unless the server closed it); if the
  server closes it anyway at that moment (llama-server closes a connection right
  after a stream) and no byte of an answer came back, the request goes once more
  on a new connection. A failure on a new connection is never retried: that
  request may have been run.

Its surface mirrors the part of httpx the relay uses, and its errors subclass
httpx's, so `proxy.upstream._translate` maps them unchanged::

    httpx.HTTPError
     └ httpx.TransportError
        ├ httpx.TimeoutException
        │  ├ ConnectTimeout      (httpx.ConnectTimeout)  connecting took too long
        │  └ WriteTimeout        (httpx.WriteTimeout)    the server stopped reading the request
        ├ httpx.NetworkError
        │  ├ ConnectError        (httpx.ConnectError)    refused, unreachable, DNS
        │  ├ ReadError           (httpx.ReadError)       reset while reading the answer
        │  └ WriteError          (httpx.WriteError)      reset while writing the request
        ├ RemoteProtocolError    (httpx.RemoteProtocolError) bad HTTP, or closed mid-message
        │  └ ResponseHeadersTooLarge  over max_header_bytes / max_headers
        └ UnsupportedProtocol    (httpx.UnsupportedProtocol) not an `http://` URL

`Relay` sends relayed requests to plain `http://` backends through this client
(`VARIANT_PROXY_UPSTREAM_CLIENT=native`, the default); health probes, pin
checks, listings and `https://` backends use httpx.
"""

from __future__ import annotations

import asyncio
import collections
import select
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools
import httpx

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "NativeClient",
    "NativeResponse",
    "ReadError",
    "RemoteProtocolError",
    "ResponseHeadersTooLarge",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
]


class ConnectError(httpx.ConnectError):
    """The server could not be reached (refused, unreachable, no such host)."""


class ConnectTimeout(httpx.ConnectTimeout):
    """Connecting took longer than `connect_timeout`."""


class ReadError(httpx.ReadError):
    """The connection failed (reset) while reading the answer."""


class WriteError(httpx.WriteError):
    """The connection failed while writing the request."""


class WriteTimeout(httpx.WriteTimeout):
    """The server did not take the request within `write_timeout`."""


class RemoteProtocolError(httpx.RemoteProtocolError):
    """The server broke HTTP/1.1: a malformed answer, or it closed mid-message."""


class ResponseHeadersTooLarge(RemoteProtocolError):
    """The status line and headers went over `max_header_bytes` or `max_headers`."""


class UnsupportedProtocol(httpx.UnsupportedProtocol):
    """Only plain `http://` URLs are supported."""


_HIGH_WATER = 256 * 1024  # buffered body bytes above which the socket stops being read
_LOW_WATER = 64 * 1024
_NO_BODY_STATUS = frozenset((204, 304))
_JOIN_BELOW = 64 * 1024  # request bodies up to this size go out in one write with the head
_EOF: Any = object()


@dataclass(frozen=True, slots=True)
class _Origin:
    key: tuple[str, int]
    target: str  # path and query, as sent on the request line
    host_header: str


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one request in flight."""

    def __init__(self, client: NativeClient, key: tuple[str, int]) -> None:
        self.client = client
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        # the exchange in flight
        self.response: NativeResponse | None = None
        self.head: asyncio.Future[NativeResponse] | None = None
        self.raw_headers: list[tuple[str, str]] = []
        self.head_bytes = 0  # bytes received before the headers completed
        self.header_count = 0
        self.until_eof = False
        self.drain: asyncio.Future[None] | None = None
        self.write_paused = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.head is None and self.response is None:
            # nothing asked for: a server talking out of turn can't be trusted with the next one
            self.close()
            return
        if self.response is None:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()
            return
        client = self.client
        if self.response is None and (
            self.head_bytes > client.max_header_bytes or self.header_count > client.max_headers
        ):
            # llhttp keeps a header line it has not finished: stop before it grows any further
            self._fail(
                ResponseHeadersTooLarge(
                    f"response headers over the limit ({client.max_header_bytes} bytes, "
                    f"{client.max_headers} fields)"
                )
            )
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client._forget(self)
        response = self.response
        if response is not None and not response._complete and self.until_eof and exc is None:
            response._finish(keep_alive=False)  # a body delimited by the close
            return
        if exc is not None:
            self._fail(ReadError(f"connection lost: {exc!r}"))
        elif self.head is not None and not self.head.done():
            self._fail(RemoteProtocolError("server disconnected without sending a response"))
        else:
            self._fail(RemoteProtocolError("server closed the connection mid-body"))
        if self.drain is not None and not self.drain.done():
            self.drain.set_exception(WriteError("connection lost while writing the request"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count <= self.client.max_headers:
            self.raw_headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        raw, self.raw_headers = self.raw_headers, []
        if status < 200:
            return  # 100 Continue / 103 Early Hints: the real answer follows
        headers: dict[str, str] = {}
        for name, value in raw:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.until_eof = (
            status not in _NO_BODY_STATUS
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        )
        response = NativeResponse(status, headers, self, self.parser.get_http_version())
        self.response = response
        head, self.head = self.head, None
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None:
            return  # the end of a 1xx interim answer
        response._finish(keep_alive=self.parser.should_keep_alive())

    # -- the client's side -----------------------------------------------------------------

    def start(self, raw: bytes, content: bytes = b"") -> asyncio.Future[NativeResponse]:
        """Send the request head `raw` and its body `content`: one write for a small
        request (one segment), two for a large one (joining would copy a 30 MB body
        once more, on the event loop)."""
        assert self.transport is not None
        self.head = self.client._loop().create_future()
        self.response = None
        self.raw_headers = []
        self.head_bytes = self.header_count = 0
        self.until_eof = False
        if len(content) > _JOIN_BELOW:
            self.transport.write(raw)
            self.transport.write(content)
        else:
            self.transport.write(raw + content if content else raw)
        return self.head

    async def drained(self, timeout: float) -> None:
        """Wait until the transport took the request (only when it buffered too much)."""
        if not self.write_paused or self.closed:
            return
        self.drain = self.client._loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self.drain
        except TimeoutError as exc:
            raise WriteTimeout(f"request not sent within {timeout:g}s") from exc
        finally:
            self.drain = None

    def _fail(self, exc: Exception) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
            self.head = None
        elif self.response is not None and not self.response._complete:
            self.response._error(exc)

    def stale(self) -> bool:
        """An idle keep-alive connection the server closed (or wrote to out of turn).

        One non-blocking poll of the socket: the event loop may not have run the
        close yet, and a request written now could not be answered.
        """
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return True
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        head, self.head = self.head, None
        if head is not None and not head.done():
            head.cancel()  # nobody awaits it any more: no "exception never retrieved"
        if not self.closed:
            self.closed = True
            self.client._forget(self)
            if self.transport is not None:
                self.transport.close()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()


class _Body:
    """The answer's body chunks, one per `on_body`, as an async iterator (not a generator,
    so an abandoned iterator needs no finalisation by the event loop)."""

    __slots__ = ("_response",)

    def __init__(self, response: NativeResponse) -> None:
        self._response = response

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._response._next()
        if chunk is _EOF:
            raise StopAsyncIteration
        return chunk  # type: ignore[no-any-return]


class NativeResponse:
    """An answer whose status line and headers have arrived; the body follows on demand.

    `headers` is a dict keyed by lower-case names (repeated fields joined by ", ").
    Close it with `aclose()`: a fully received answer on a keep-alive connection
    returns the connection to the pool, anything else closes it.
    """

    def __init__(
        self, status: int, headers: dict[str, str], conn: _Connection, http_version: str
    ) -> None:
        self.status_code = status
        self.headers = headers
        self.http_version = f"HTTP/{http_version}"
        self._conn: _Connection | None = conn
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._keep_alive = False
        self._exc: Exception | None = None
        self._iterated = False

    def __repr__(self) -> str:
        return f"<NativeResponse [{self.status_code}]>"

    @property
    def is_closed(self) -> bool:
        return self._conn is None

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk, undecoded. Only once per response."""
        if self._iterated:
            raise httpx.StreamConsumed()
        self._iterated = True
        return _Body(self)

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._complete and self._keep_alive and self._exc is None and not conn.closed:
            conn.response = None
            if self._paused:
                conn.resume_reading()
            conn.client._release(conn)
        else:
            conn.close()

    async def __aenter__(self) -> NativeResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- fed by the connection ---------------------------------------------------------------

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER and not self._paused and self._conn is not None:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def _finish(self, *, keep_alive: bool) -> None:
        self._complete = True
        self._keep_alive = keep_alive
        self._wake()

    def _error(self, exc: Exception) -> None:
        self._exc = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _next(self) -> Any:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER and self._conn is not None:
                    self._paused = False
                    self._conn.resume_reading()
                return chunk
            if self._exc is not None:
                raise self._exc
            if self._complete:
                return _EOF
            conn = self._conn
            if conn is None:
                raise httpx.StreamClosed()
            waiter = self._waiter = conn.client._loop().create_future()
            try:
                await waiter
            except BaseException:
                # cancelled mid-body: the rest of the answer would poison the connection
                self._waiter = None
                self._conn = None
                conn.close()
                raise


class NativeClient:
    """Pools of keep-alive connections per `(host, port)`; see the module docstring.

    `max_idle_per_host` caps the idle connections kept per server (extra ones are
    closed on release); an idle connection older than `keepalive_expiry` seconds
    is closed instead of reused: the default stays well under the 5 s idle timeout
    of uvicorn (vLLM) and cpp-httplib (llama-server), with room for a loaded event
    loop, so a request is rarely written to a connection the server is closing at
    that very moment (the request is not retried then: it may have reached the
    server), and one the server has already closed is caught by `_Connection.stale`
    before reuse.
    """

    def __init__(
        self,
        *,
        max_idle_per_host: int = 100,
        keepalive_expiry: float = 2.0,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 100,
    ) -> None:
        self.max_idle_per_host = max_idle_per_host
        self.keepalive_expiry = keepalive_expiry
        #: bounds on an answer's status line and headers (ResponseHeadersTooLarge)
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._origins: dict[str, _Origin] = {}
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._closed = False
        #: connections opened so far, for tests and stats
        self.connects = 0

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref
        if loop is None:
            loop = self._loop_ref = asyncio.get_running_loop()
        return loop

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
        *,
        connect_timeout: float,
        write_timeout: float,
    ) -> NativeResponse:
        """Send one request; return once the status line and headers have arrived."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if method == "HEAD":
            raise UnsupportedProtocol("HEAD is not supported (the parser would expect a body)")
        origin = self._origins.get(url) or self._origin(url)
        raw = _request_head(method, origin, headers, len(content))
        conn = self._acquire(origin.key)
        if conn is not None:
            try:
                return await self._exchange(conn, raw, content, write_timeout)
            except (RemoteProtocolError, ReadError, WriteError):
                # A kept-alive connection the server closed just as it was reused (llama-
                # server closes one right after a stream; the close can race the next
                # request), and nothing came back: the request goes once more, on a new
                # connection. A new connection's failure is never retried.
                pass
        conn = await self._connect(origin.key, connect_timeout)
        return await self._exchange(conn, raw, content, write_timeout)

    async def _exchange(
        self, conn: _Connection, raw: bytes, content: bytes, write_timeout: float
    ) -> NativeResponse:
        self._active.add(conn)
        try:
            head = conn.start(raw, content)
            await conn.drained(write_timeout)
            return await head
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        self._closed = True
        for conn in [*self._active, *(c for stack in self._idle.values() for c in stack)]:
            conn.close()
        self._idle.clear()
        self._active.clear()

    async def __aenter__(self) -> NativeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def idle_connections(self, host: str, port: int) -> int:
        return len(self._idle.get((host, port), ()))

    # -- pool ------------------------------------------------------------------------------

    def _origin(self, url: str) -> _Origin:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UnsupportedProtocol(f"only http:// URLs are supported, not {url!r}")
        port = parts.port or 80
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = _Origin((host, port), target, shown if port == 80 else f"{shown}:{port}")
        if len(self._origins) >= 1024:
            self._origins.clear()
        self._origins[url] = origin
        return origin

    def _acquire(self, key: tuple[str, int]) -> _Connection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                conn.close()
                continue
            if now - conn.idle_since > self.keepalive_expiry or conn.stale():
                conn.close()
                continue
            return conn
        return None

    async def _connect(self, key: tuple[str, int], timeout: float) -> _Connection:
        loop = self._loop()
        conn = _Connection(self, key)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: conn, key[0], key[1])
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting to {key[0]}:{key[1]} took over {timeout:g}s") from exc
        except OSError as exc:
            raise ConnectError(str(exc) or repr(exc)) from exc
        self.connects += 1
        return conn

    def _release(self, conn: _Connection) -> None:
        self._active.discard(conn)
        if self._closed:
            conn.close()
            return
        stack = self._idle.setdefault(conn.key, [])
        if len(stack) >= self.max_idle_per_host:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        stack.append(conn)

    def _forget(self, conn: _Connection) -> None:
        """A connection closed: it must not be handed out again."""
        self._active.discard(conn)
        stack = self._idle.get(conn.key)
        if stack and conn in stack:
            stack.remove(conn)


def _request_head(method: str, origin: _Origin, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {origin.target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("host", "content-length", "transfer-encoding", "connection"):
            continue
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise httpx.LocalProtocolError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}\r\n")
    if length or method not in ("GET", "HEAD"):
        lines.append(f"content-length: {length}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise httpx.LocalProtocolError(f"request head is not latin-1: {exc}") from exc
