"""The HTTP/1.1 server side: uvicorn's httptools protocol with limits it lacks.

uvicorn's httptools protocol (a C parser; h11, the one that bounds a head,
parses in pure Python on the hot path) has no bound on a request's head: the
parser gathers a header value piece by piece (quadratically for a long one),
so a 64 MB header is accepted and one
of 128 MB froze every client for seconds; a connection that never finishes its
headers is never closed; `limit_concurrency` only counts connections once a
request's headers are in, so idle ones pile up until the process runs out of
file descriptors; and an early answer (413, 431, 401) to a client still
sending its body is followed by a close with unread data, which the kernel
turns into a reset that the client sees instead of the status.

`BoundedHttpProtocol` is a small subclass, passed to uvicorn as `http=`, that
adds exactly these, all from the `server:` section of the running config
(read when a connection opens, so a reload applies to new connections):

- **Head size**: bytes that arrive while a request's head is incomplete are
  counted before they reach the parser; past `max_header_bytes` plus 8 KiB for
  the request line the request is answered 431 at once, so the parser never
  sees more than that. A head that completes within the allowance is still
  measured exactly (headers only, as `edge` counts them) and refused with 431.
- **Header timeout**: a head not complete `header_timeout` seconds after the
  connection opened (or after the first byte of the next request on a kept-alive
  connection) is answered 408 and closed (slowloris).
- **Idle keep-alive**: uvicorn's own `timeout_keep_alive`, set to `idle_timeout`.
- **Connection cap**: a connection past `max_connections` open ones is answered
  503 and closed as soon as it is accepted, before anything is read, idle
  connections included.
- **Lingering close**: when an answer goes out before the request body was read
  (the app's 413/401/..., or this module's 431), the connection stops parsing,
  half-closes its side, reads and discards what the client still sends for at
  most `linger_timeout` seconds (and 4 x `max_body_bytes`, and 1 s of silence),
  then closes, as nginx's `lingering_close` does. A client that writes its whole
  body before reading (Python's urllib) then reads the status.

The body timeout is the ASGI edge's (`edge.read_body`): only the reader knows
when it waits. Nothing here copies or parses a body; per request the cost is one
timer armed while the head arrives and one pass over the parsed header list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .config import ServerConfig
from .errors import (
    HeadersTooLarge,
    ProxyError,
    RequestTimeout,
    TooManyConnections,
    render,
)

__all__ = ["HEAD_LINE_ALLOWANCE", "BoundedHttpProtocol", "ServerLimits"]

log = logging.getLogger("variant_proxy.httpserver")

#: bytes a request line may take beyond `max_header_bytes` before the head is refused
HEAD_LINE_ALLOWANCE = 8 * 1024
#: a lingering close ends after this long without a byte from the client
_LINGER_QUIET = 1.0


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one connection is allowed, from `server:` in the config."""

    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_connections: int = 512
    linger_timeout: float = 5.0
    linger_bytes: int = 4 * 32 * 1024 * 1024

    @classmethod
    def of(cls, server: ServerConfig) -> ServerLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            header_timeout=server.header_timeout,
            idle_timeout=server.idle_timeout,
            max_connections=server.max_connections,
            linger_timeout=server.linger_timeout,
            linger_bytes=4 * server.max_body_bytes,
        )


def _limits_of(app: Any) -> ServerLimits:
    """The running config's limits: the app (under any uvicorn middleware) has a `proxy`."""
    for _ in range(8):
        proxy = getattr(app, "proxy", None)
        if proxy is not None:
            return ServerLimits.of(proxy.runtime.cfg.server)
        app = getattr(app, "app", None)
        if app is None:
            break
    return ServerLimits()


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request already answered."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits, timeouts, a connection cap and
    lingering close (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = _limits_of(self.app)
        # uvicorn types it int, but only hands it to call_later: a float is fine
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]
        #: a request's head (line and headers) is being read
        self._in_head = True
        self._head_bytes = 0
        self._head_cap = self.limits.max_header_bytes + HEAD_LINE_ALLOWANCE
        #: the current request's body has been read to its end
        self._message_done = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None
        self._linger_until = 0.0
        self._linger_last = 0.0
        self._discarded = 0

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            cap = self.limits.max_connections
            log.debug("refused a connection: %d open (server.max_connections)", cap)
            # answered before anything was read: closing leaves no unread data, no reset
            self._answer(
                TooManyConnections(
                    f"the proxy has {cap} open connections, its limit (server.max_connections); "
                    "retry shortly"
                )
            )
            self.transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._discard(len(data))
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._lingering or self.transport.is_closing():
                return  # a callback answered the request and stopped the parser
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._in_head and self._head_bytes > self._head_cap:
            self._refuse_head(self._head_bytes)

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        size = 0
        for key, value in self.headers:
            size += len(key) + len(value) + 4
        if size > self.limits.max_header_bytes:
            self._refuse_head(size)
            raise _Refused
        self._message_done = False
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.keep_alive:
            # the cycle closes the transport itself after a `Connection: close` answer; an
            # answer that goes out before the body was read must linger instead
            cycle.transport = cast(asyncio.Transport, _LingerOnClose(self))

    def on_message_complete(self) -> None:
        self._message_done = True
        self._in_head = True
        self._head_bytes = 0
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, _LingerOnClose):
            cycle.transport = self.transport
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._lingering:
            return
        if not self._message_done:
            # answered before the body was read (413, 401...): the rest of the body is not
            # a next request, so this connection can't be kept; drain it, then close
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()

    # -- the head timer -----------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self._in_head or self._lingering or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined head waits behind a running request: not the client's fault yet
            self._arm_head_timer()
            return
        log.debug(
            "closed a connection whose request head took over %ss", self.limits.header_timeout
        )
        self._answer(
            RequestTimeout(
                f"request headers not received within {self.limits.header_timeout:g} seconds "
                "(server.header_timeout)"
            )
        )
        self.transport.close()

    # -- early answers and lingering close ----------------------------------------------------

    def _refuse_head(self, size: int) -> None:
        limit = self.limits.max_header_bytes
        self._answer(
            HeadersTooLarge(
                f"request headers of {size} bytes or more are over the limit of {limit} bytes "
                "(server.max_header_bytes)"
            )
        )
        self._linger()

    def _answer(self, exc: ProxyError) -> None:
        """Write `exc` as a whole `Connection: close` response, unless a response of an
        earlier (pipelined) request is still being written."""
        if self.cycle is not None and not self.cycle.response_complete:
            return
        status, headers, body = render(exc)
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            head += [name, b": ", value, b"\r\n"]
        head += [b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))

    def _linger(self) -> None:
        """Stop reading requests; discard what still comes for a bounded time, then close."""
        if self._lingering:
            return
        self._lingering = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        transport = self.transport
        if transport.is_closing():
            return
        if self.limits.linger_timeout <= 0:
            transport.close()
            return
        with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
            if transport.can_write_eof():
                transport.write_eof()  # the answer is complete; the client may read it now
        transport.resume_reading()
        now = self.loop.time()
        self._linger_until = now + self.limits.linger_timeout
        self._linger_last = now
        self._linger_timer = self.loop.call_later(
            min(_LINGER_QUIET, self.limits.linger_timeout), self._linger_check
        )

    def _discard(self, size: int) -> None:
        self._discarded += size
        self._linger_last = self.loop.time()
        if self._discarded > self.limits.linger_bytes:
            self.transport.close()

    def _linger_check(self) -> None:
        self._linger_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        quiet_until = self._linger_last + _LINGER_QUIET
        if now >= self._linger_until or now >= quiet_until:
            self.transport.close()
            return
        self._linger_timer = self.loop.call_at(
            min(self._linger_until, quiet_until), self._linger_check
        )


class _LingerOnClose:
    """The transport a request cycle writes its answer through while the request body is
    still unread: everything goes to the real transport, except that `close` (after a
    `Connection: close` answer) becomes the protocol's lingering close."""

    def __init__(self, protocol: BoundedHttpProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    def close(self) -> None:
        protocol = self._protocol
        if protocol._message_done:
            self._transport.close()
        else:
            protocol._linger()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
