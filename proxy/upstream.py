"""Relaying one request to a model server and its answer back, byte for byte.

The relay runs in two phases, each a task raced against the client's
`http.disconnect` so that a client who leaves cancels the upstream at once
(cancelling an httpx request mid-flight closes its connection):

1. *open*: (start a managed backend if needed,) send the request, wait for the
   response headers and, for streams, the first chunk. Until then nothing is
   committed: failures raise an `UpstreamError` the caller may fall back on.
   A stream that waits longer than `keepalive_after` is committed early
   (200 + `text/event-stream`) and kept alive with SSE comments.
2. *pump*: pass chunks through as they arrive (no buffering, no parsing on
   the hot path beyond the optional observer). After the first byte the
   status can't change, so a failure becomes a final SSE `error` event.

Timeouts are enforced here rather than in httpx so that the first byte may
take minutes (a model loading) while the gap between chunks stays short.

Three rules keep failures honest:

* *one try*: a request is sent once. A connection the server closed while
  idle is replaced by the native client before anything is written; any
  later failure fails this attempt (the dispatcher may still fall back),
  because a request that was written may have run (a prompt that crashes a
  model server must not crash it twice).
* *no silent truncation*: a stream that stops without `data: [DONE]`, a
  `finish_reason` or the backend's own error event (cut early, empty, an
  HTML page) ends with an error event, judged by the stream meter that reads
  the stream anyway (`StreamMeter.ended`). So does a stream cut when the
  server's shutdown drain limit cancels the request; a request cut there
  before its commit gets an OpenAI-style 503.
* *scrubbed errors*: what the client reads names the backend, never its URL
  or a Python exception (`expose_upstream_errors` adds them), and quotes at
  most `MESSAGE_LIMIT` characters of a backend's error body, of which at most
  `ERROR_BODY_LIMIT` bytes are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .config import Timeouts
from .errors import (
    ClientGone,
    ProxyError,
    ShuttingDown,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from .errors import render as render_error
from .httpclient import NativeClient, NativeResponse, ResponseHeadersTooLarge

__all__ = [
    "ERROR_BODY_LIMIT",
    "MESSAGE_LIMIT",
    "AttemptTarget",
    "Observation",
    "Relay",
    "sse_error_event",
    "status_error",
]

#: characters of a backend's own error message a client may read
MESSAGE_LIMIT = 500
#: bytes of a 5xx body read to find that message; the rest is never read
ERROR_BODY_LIMIT = 64 * 1024

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]

KEEPALIVE = b": keep-alive\n\n"
_SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class AttemptTarget:
    """Where one attempt goes."""

    backend: str
    variant: str
    url: str
    headers: dict[str, str]
    timeouts: Timeouts
    prepare: Callable[[], Awaitable[None]] | None = None


@dataclass(slots=True)
class Observation:
    """What the relay saw, for metrics and logs. Times are `time.perf_counter()`."""

    started: float = 0.0
    first_byte: float | None = None
    last_byte: float | None = None
    status: int | None = None
    chunks: int = 0
    nbytes: int = 0
    committed: bool = False
    error: ProxyError | None = None
    at_boundary: bool = True
    slot_acquired: bool = False
    sending: bool = False
    meter: Any = None  # a proxy.streammeter.StreamMeter reading the answer, if any
    on_chunk: Callable[[bytes, float], None] | None = None


def sse_error_event(exc: ProxyError) -> bytes:
    return b"data: " + orjson.dumps(exc.body()) + b"\n\n"


def _connect_reason(exc: BaseException) -> str:
    """A short, address-free reason for a failed connect."""
    cause: BaseException | None = exc
    seen: set[int] = set()  # a chain can loop (an exception that is its own context)
    while cause is not None and not isinstance(cause, OSError) and id(cause) not in seen:
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if cause is not None and not isinstance(cause, OSError):
        cause = None
    if isinstance(cause, socket.gaierror):
        return "name not resolved"
    errno_ = cause.errno if isinstance(cause, OSError) else None
    text = str(exc).lower()
    if errno_ == errno.ECONNREFUSED or "refused" in text:
        return "connection refused"
    if errno_ in (errno.EHOSTUNREACH, errno.ENETUNREACH) or "unreachable" in text:
        return "host unreachable"
    if "name" in text and ("resolv" in text or "known" in text):
        return "name not resolved"
    return "connection failed"


def _translate(
    exc: httpx.HTTPError, target: AttemptTarget, phase: str, expose: bool = False
) -> UpstreamError:
    """The client's words for a transport error: the backend's name, not its URL or `exc`."""
    name = f"backend {target.backend!r}"
    cls: type[UpstreamError]
    match exc:
        case httpx.ConnectTimeout() | httpx.PoolTimeout():
            cls, said = UpstreamTimeout, f"{name}: connect timed out"
        case httpx.TimeoutException():
            cls, said = UpstreamTimeout, f"{name} timed out {phase}"
        case httpx.ConnectError():
            cls, said = UpstreamUnreachable, f"{name} is unreachable ({_connect_reason(exc)})"
        case ResponseHeadersTooLarge():
            cls, said = UpstreamProtocolError, f"{name} sent response headers over the limit"
        case httpx.ReadError() | httpx.WriteError():
            cls, said = UpstreamProtocolError, f"{name} closed the connection {phase}"
        case httpx.RemoteProtocolError() if "malformed" in str(exc):
            cls, said = UpstreamProtocolError, f"{name} sent a malformed HTTP response {phase}"
        case httpx.RemoteProtocolError():
            cls, said = UpstreamProtocolError, f"{name} closed the connection {phase}"
        case _:
            cls, said = UpstreamProtocolError, f"{name} failed {phase}"
    detail = f"{said} [{target.url}: {exc!r}]"
    return cls(detail if expose else said, detail=detail, summary=said)


def _upstream_message(body: bytes) -> str:
    """The backend's own error message, cut to `MESSAGE_LIMIT` printable characters."""
    text: str | None = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            text = str(err["message"])
        elif isinstance(err, str):
            text = err
    if text is None:
        text = body[: MESSAGE_LIMIT * 4].decode("utf-8", "replace")
    clean = "".join(ch if ch.isprintable() else " " for ch in text[: MESSAGE_LIMIT + 1]).strip()
    return clean if len(clean) <= MESSAGE_LIMIT else clean[: MESSAGE_LIMIT - 1] + "…"


def status_error(
    target: AttemptTarget, status: int, body: bytes, expose: bool = False
) -> UpstreamStatusError:
    """A backend's error answer: its message (capped) for the client, never for the log."""
    said = f"backend {target.backend!r} answered {status}"
    detail = f"{said} [{target.url}]"
    quoted = _upstream_message(body)
    message = detail if expose else said
    if quoted:
        message = f"{message}: {quoted}"
    return UpstreamStatusError(message, upstream_status=status, detail=detail, summary=said)


#: an answer from either client: same status/headers/aiter_raw/aclose surface
Response = httpx.Response | NativeResponse


@dataclass(slots=True)
class _Opened:
    response: Response
    body: bytes = b""
    chunks: Any = None  # the raw chunk iterator of a stream


class Relay:
    """Runs one attempt: open, then pump, enforcing timeouts and watching the client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        native: NativeClient | None = None,
        *,
        keepalive_after: float,
        keepalive_interval: float,
        max_response_bytes: int,
        expose_errors: bool = False,
    ) -> None:
        self.client = client
        self.native = native
        self.keepalive_after = keepalive_after
        self.keepalive_interval = keepalive_interval
        self.max_response_bytes = max_response_bytes
        #: `server.expose_upstream_errors`: URLs and exceptions in client-visible errors
        self.expose_errors = expose_errors

    async def run(
        self,
        target: AttemptTarget,
        content: bytes,
        *,
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
        obs: Observation,
    ) -> None:
        """Relay one attempt.

        Raises `UpstreamError` only while nothing has been sent to the
        client (the caller may then fall back), `ClientGone` if the client
        left, and returns normally otherwise, errors after the commit having
        been reported in-stream.
        """
        t = target.timeouts
        obs.started = start = time.perf_counter()
        deadline_first = start + t.first_byte
        deadline_total = start + t.total if t.total is not None else math.inf
        opener = asyncio.ensure_future(self._open(target, content, stream))
        opened: _Opened | None = None
        try:
            next_keepalive = start + self.keepalive_after if stream else math.inf
            while True:
                now = time.perf_counter()
                wake = min(deadline_first, deadline_total, next_keepalive)
                done, _ = await asyncio.wait(
                    (opener, watch),
                    timeout=max(0.0, wake - now),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if watch in done:
                    raise ClientGone
                if opener in done:
                    break
                now = time.perf_counter()
                if now >= deadline_first or now >= deadline_total:
                    limit = "first_byte" if now >= deadline_first else "total"
                    seconds = t.first_byte if limit == "first_byte" else t.total
                    raise UpstreamTimeout(
                        f"backend {target.backend!r} sent nothing within {seconds:g}s "
                        f"(timeouts.{limit})"
                    )
                if now >= next_keepalive:
                    if not obs.committed:
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": headers + _SSE_HEADERS,
                            }
                        )
                        obs.committed = True
                        obs.status = 200
                    await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                    next_keepalive = now + self.keepalive_interval
            opened = opener.result()
            await self._answer(target, opened, stream, headers, send, watch, obs, deadline_total)
        except UpstreamError as exc:
            obs.error = exc
            if not obs.committed:
                raise
            await self._fail_in_stream(exc, send, obs)
        except asyncio.CancelledError:
            # The server's shutdown drain limit ran out (uvicorn cancels the request's
            # task): say so in OpenAI's shape instead of a cut stream or a plain-text 500.
            await self._interrupted(target, headers, send, obs)
        finally:
            if not opener.done():
                opener.cancel()
                with contextlib.suppress(BaseException):
                    await opener
            if opened is not None:
                await opened.response.aclose()
            elif opener.done() and not opener.cancelled() and opener.exception() is None:
                await opener.result().response.aclose()

    async def _interrupted(
        self, target: AttemptTarget, headers: Headers, send: Send, obs: Observation
    ) -> None:
        exc = ShuttingDown(
            f"variant-proxy is shutting down: the request to backend {target.backend!r} "
            "was cut at the drain limit (server.drain_timeout); retry it"
        )
        obs.error = exc
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # handled here: the request ends now, cleanly
        if obs.committed:
            await self._fail_in_stream(exc, send, obs)
            return
        status, extra, body = render_error(exc)
        obs.committed, obs.status = True, status
        with contextlib.suppress(OSError, RuntimeError):
            await send(
                {"type": "http.response.start", "status": status, "headers": headers + extra}
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _send_request(self, target: AttemptTarget, content: bytes) -> Response:
        t = target.timeouts
        if self.native is not None and target.url.startswith("http://"):
            return await self.native.send(
                "POST",
                target.url,
                target.headers,
                content,
                connect_timeout=t.connect,
                write_timeout=t.write,
            )
        request = self.client.build_request(
            "POST",
            target.url,
            content=content,
            headers=target.headers,
            timeout=httpx.Timeout(connect=t.connect, read=None, write=t.write, pool=t.connect),
        )
        return await self.client.send(request, stream=True)

    async def _open(self, target: AttemptTarget, content: bytes, stream: bool) -> _Opened:
        if target.prepare is not None:
            await target.prepare()
        try:
            # Sent once: a failure after the request was written fails this attempt (the
            # server may have run it). A pooled connection the server had closed while idle
            # is replaced by the native client before writing, or resent once on a new
            # connection if it closes at that moment without answering anything.
            response = await self._send_request(target, content)
        except httpx.HTTPError as exc:
            raise _translate(exc, target, "before responding", self.expose_errors) from exc
        try:
            if response.status_code >= 500:
                return _Opened(response, await self._error_body(response))
            if stream and response.status_code < 400:
                chunks = response.aiter_raw()
                try:
                    first = await chunks.__anext__()
                except StopAsyncIteration:
                    first = b""
                return _Opened(response, first, chunks)
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise UpstreamProtocolError(
                        f"backend {target.backend!r} sent a response over "
                        f"server.max_response_bytes ({self.max_response_bytes} bytes)"
                    )
            return _Opened(response, bytes(body))
        except httpx.HTTPError as exc:
            await response.aclose()
            raise _translate(exc, target, "mid-response", self.expose_errors) from exc
        except BaseException:
            await response.aclose()
            raise

    @staticmethod
    async def _error_body(response: Response) -> bytes:
        """At most `ERROR_BODY_LIMIT` bytes of an error answer (a 5 MB page is not read)."""
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= ERROR_BODY_LIMIT:
                    break  # the unread rest closes the connection (aclose)
        except httpx.HTTPError:
            pass  # the status says enough
        return bytes(body[:ERROR_BODY_LIMIT])

    async def _answer(
        self,
        target: AttemptTarget,
        opened: _Opened,
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
        obs: Observation,
        deadline_total: float,
    ) -> None:
        response = opened.response
        status = response.status_code
        obs.first_byte = time.perf_counter()
        if status >= 500:
            raise status_error(target, status, opened.body, self.expose_errors)
        content_type = response.headers.get("content-type", "application/json").encode("latin-1")
        if status >= 400 or not stream:
            # The backend's own 4xx and any non-streamed answer pass through unchanged.
            if obs.committed:
                if status >= 400:
                    err = status_error(target, status, opened.body, self.expose_errors)
                    obs.error = err
                    await self._fail_in_stream(err, send, obs)
                    return
                await self._send(send, opened.body, obs, more=False)
                return
            obs.status = status
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        *headers,
                        (b"content-type", content_type),
                        (b"content-length", str(len(opened.body)).encode()),
                    ],
                }
            )
            obs.committed = True
            await self._send(send, opened.body, obs, more=False)
            return
        if not obs.committed:
            obs.status = status
            extra: Headers = (
                _SSE_HEADERS
                if content_type.startswith(b"text/event-stream")
                else [(b"content-type", content_type)]
            )
            await send(
                {"type": "http.response.start", "status": status, "headers": headers + extra}
            )
            obs.committed = True
        if opened.body:
            await self._send(send, opened.body, obs)
        if opened.chunks is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._pump_supervised(target, opened, send, watch, obs, deadline_total)

    async def _pump_supervised(
        self,
        target: AttemptTarget,
        opened: _Opened,
        send: Send,
        watch: asyncio.Future[Any],
        obs: Observation,
        deadline_total: float,
    ) -> None:
        idle = target.timeouts.idle
        pump = asyncio.ensure_future(self._pump(opened.chunks, send, obs))
        try:
            while True:
                now = time.perf_counter()
                # while a slow client holds a send, the idle clock waits too
                last = now if obs.sending else (obs.last_byte or now)
                wake = min(last + idle, deadline_total)
                done, _ = await asyncio.wait(
                    (pump, watch),
                    timeout=max(0.0, wake - time.perf_counter()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if watch in done:
                    raise ClientGone
                if pump in done:
                    break
                now = time.perf_counter()
                if now >= deadline_total:
                    raise UpstreamTimeout(
                        f"backend {target.backend!r} exceeded timeouts.total "
                        f"({target.timeouts.total:g}s)"
                    )
                if not obs.sending and now - (obs.last_byte or now) >= idle:
                    raise UpstreamTimeout(
                        f"backend {target.backend!r} stalled: nothing for {idle:g}s (timeouts.idle)"
                    )
            try:
                pump.result()
            except httpx.HTTPError as exc:
                raise _translate(exc, target, "mid-stream", self.expose_errors) from exc
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(BaseException):
                    await pump
        meter = obs.meter
        if meter is not None and not meter.ended():
            raise UpstreamProtocolError(
                f"backend {target.backend!r} ended the stream without data: [DONE] or a "
                "finish_reason; the answer may be incomplete"
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, chunks: Any, send: Send, obs: Observation) -> None:
        async for chunk in chunks:
            await self._send(send, chunk, obs)

    @staticmethod
    async def _send(send: Send, chunk: bytes, obs: Observation, *, more: bool = True) -> None:
        now = time.perf_counter()
        if chunk:
            if obs.first_byte is None:
                obs.first_byte = now
            obs.last_byte = now
            obs.chunks += 1
            obs.nbytes += len(chunk)
            obs.at_boundary = chunk.endswith((b"\n\n", b"\r\n\r\n"))
            if obs.on_chunk is not None:
                obs.on_chunk(chunk, now)
        # A slow client holds us here (flow control); that is not the backend going idle.
        obs.sending = True
        try:
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            obs.sending = False
        obs.last_byte = time.perf_counter()

    async def _fail_in_stream(self, exc: ProxyError, send: Send, obs: Observation) -> None:
        """After the commit the status is fixed: end the stream with an error event."""
        event = sse_error_event(exc)
        if not obs.at_boundary:
            event = b"\n\n" + event
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": event, "more_body": False})
