"""`Relay.run` against an in-memory upstream: `httpx.MockTransport`, no sockets.

Each test plays one upstream behaviour (a handler, with an async byte iterator
for streams) and reads what the relay sent to the client (recorded ASGI
messages) and what it raised. The line that matters is the commit: before it a
failure is an `UpstreamError` and nothing was sent (the dispatcher may fall
back); after it the status is fixed and a failure is a final SSE error event.
Timeouts are tenths of a second so the file runs in a couple of seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from proxy.config import Timeouts
from proxy.errors import (
    ClientGone,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from proxy.upstream import KEEPALIVE, AttemptTarget, Observation, Relay

URL = "http://upstream.test/v1/chat/completions"
ROUTE = [(b"x-request-id", b"rid-1"), (b"x-route-variant", b"v")]
SSE = "text/event-stream"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


async def events(
    *parts: bytes, delay: float = 0.0, first_delay: float = 0.0, then: Exception | None = None
) -> AsyncIterator[bytes]:
    """A streamed body: `parts` `delay` seconds apart, then optionally a failure."""
    await asyncio.sleep(first_delay)
    for i, part in enumerate(parts):
        if i and delay:
            await asyncio.sleep(delay)
        yield part
    if then is not None:
        raise then


def reply(status: int = 200, body: bytes = b"", **kw: Any) -> Callable[[], httpx.Response]:
    """A whole answer, read off the wire in two pieces as from a real connection (a
    `bytes` content would reach the relay already read)."""
    half = len(body) // 2
    return lambda: httpx.Response(status, content=events(body[:half], body[half:]), **kw)


def streamed(
    content: AsyncIterator[bytes], content_type: str = SSE
) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(200, headers={"content-type": content_type}, content=content)


@dataclass
class Upstream:
    """A MockTransport handler: answers with `responses` in turn, after `wait` seconds."""

    responses: list[Callable[[], httpx.Response]]
    wait: float = 0.0
    seen: list[httpx.Request] = field(default_factory=list)
    cancelled: bool = False
    #: whether the request was cancelled by the time `Relay.run` returned
    cancelled_on_return: bool | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        try:
            await asyncio.sleep(self.wait)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return self.responses.pop(0)()


@dataclass
class Played:
    sent: list[dict[str, Any]]
    obs: Observation
    error: BaseException | None

    @property
    def start(self) -> dict[str, Any]:
        assert self.sent and self.sent[0]["type"] == "http.response.start"
        return self.sent[0]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.start["headers"])

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent[1:]]

    @property
    def last(self) -> dict[str, Any]:
        return self.sent[-1]


def play(
    upstream: Upstream | Callable[[httpx.Request], Any],
    *,
    stream: bool,
    leave_after: float | None = None,
    keepalive_after: float = 5.0,
    keepalive_interval: float = 0.05,
    max_response_bytes: int = 1 << 20,
    **timeouts: float,
) -> Played:
    """Run one attempt; `leave_after` seconds in, the client disconnects."""
    sent: list[dict[str, Any]] = []
    obs = Observation()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        watch: asyncio.Future[Any] = loop.create_future()
        if leave_after is not None:
            loop.call_later(leave_after, watch.set_result, {"type": "http.disconnect"})
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            relay = Relay(
                client,
                native=None,
                keepalive_after=keepalive_after,
                keepalive_interval=keepalive_interval,
                max_response_bytes=max_response_bytes,
            )
            target = AttemptTarget(
                backend="b",
                variant="v",
                url=URL,
                headers={"content-type": "application/json", "accept-encoding": "identity"},
                timeouts=Timeouts(**{"first_byte": 1.0, "idle": 1.0, **timeouts}),
            )
            try:
                await relay.run(
                    target,
                    b'{"model":"m"}',
                    stream=stream,
                    headers=list(ROUTE),
                    send=send,
                    watch=watch,
                    obs=obs,
                )
            except (Exception, ClientGone) as exc:
                return exc
            finally:
                if isinstance(upstream, Upstream):
                    upstream.cancelled_on_return = upstream.cancelled
                watch.cancel()
        return None

    error = asyncio.run(main())
    return Played(sent, obs, error)


def error_event(body: bytes) -> dict[str, Any]:
    assert body.startswith(b"data: ") and body.endswith(b"\n\n"), body
    event: dict[str, Any] = orjson.loads(body.removeprefix(b"data: "))
    return event["error"]


# -- answers that pass through -------------------------------------------------------------------


def test_non_stream_answer_passes_through_with_content_length() -> None:
    body = b'{"id":"x","choices":[]}'
    up = Upstream([reply(200, body, headers={"content-type": "application/json"})])
    played = play(up, stream=False)
    assert played.error is None
    assert played.start["status"] == 200
    assert played.start["headers"][: len(ROUTE)] == ROUTE
    assert played.headers[b"content-type"] == b"application/json"
    assert played.headers[b"content-length"] == str(len(body)).encode()
    assert played.sent[1:] == [{"type": "http.response.body", "body": body, "more_body": False}]
    assert (played.obs.status, played.obs.committed, played.obs.error) == (200, True, None)
    # the request went out as given: the target's URL, headers and body
    (request,) = up.seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["accept-encoding"] == "identity"
    assert request.content == b'{"model":"m"}'


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [400, 404, 422])
def test_backend_4xx_passes_through(status: int, stream: bool) -> None:
    body = b'{"error":{"message":"context too long"}}'
    played = play(Upstream([reply(status, body)]), stream=stream)
    assert played.error is None
    assert played.start["status"] == status
    assert played.headers[b"content-length"] == str(len(body)).encode()
    assert played.bodies == [body]
    assert played.last["more_body"] is False
    assert played.obs.status == status


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_before_commit_is_an_error_and_nothing_is_sent(status: int, stream: bool) -> None:
    body = b'{"error":{"message":"loading model"}}'
    played = play(Upstream([reply(status, body)]), stream=stream)
    assert isinstance(played.error, UpstreamStatusError)
    assert played.error.upstream_status == status
    assert played.error.message == f"backend 'b' answered {status}: loading model"
    assert played.sent == []
    assert played.obs.committed is False


def test_stream_passes_through_chunk_by_chunk() -> None:
    parts = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]
    up = Upstream([streamed(events(*parts, delay=0.01))])
    played = play(up, stream=True)
    assert played.error is None
    assert played.start["status"] == 200
    assert played.start["headers"] == [
        *ROUTE,
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]
    # one message per upstream chunk, never joined, then the end of the body
    assert played.sent[1:] == [
        *({"type": "http.response.body", "body": p, "more_body": True} for p in parts),
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]
    assert (played.obs.chunks, played.obs.nbytes) == (3, sum(map(len, parts)))


def test_stream_of_another_content_type_keeps_it() -> None:
    up = Upstream([streamed(events(b"{}\n"), "application/x-ndjson")])
    played = play(up, stream=True)
    assert played.headers[b"content-type"] == b"application/x-ndjson"
    assert b"content-length" not in played.headers
    assert played.bodies == [b"{}\n", b""]


def test_slow_stream_is_committed_early_and_kept_alive() -> None:
    up = Upstream([streamed(events(b"data: 1\n\n", first_delay=0.3))])
    played = play(up, stream=True, keepalive_after=0.05, keepalive_interval=0.05)
    assert played.error is None
    assert played.start["status"] == 200
    assert played.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert len([m for m in played.sent if m["type"] == "http.response.start"]) == 1
    keepalives = [b for b in played.bodies if b == KEEPALIVE]
    assert len(keepalives) >= 2
    assert played.bodies[: len(keepalives)] == keepalives  # comments first, then the answer
    assert played.bodies[len(keepalives) :] == [b"data: 1\n\n", b""]
    assert played.last["more_body"] is False


@pytest.mark.parametrize(("status", "message"), [(503, "out of memory"), (400, "too long")])
def test_error_status_after_a_keepalive_commit_is_an_error_event(status: int, message: str) -> None:
    body = b'{"error":{"message":"%s"}}' % message.encode()
    up = Upstream([reply(status, body)], wait=0.2)
    played = play(up, stream=True, keepalive_after=0.05)
    assert played.error is None  # reported in-stream: the status was already sent
    assert played.start["status"] == 200
    assert played.bodies[0] == KEEPALIVE
    error = error_event(played.bodies[-1])
    assert error["code"] == "upstream_status_error"
    assert message in error["message"]
    assert played.last["more_body"] is False
    assert isinstance(played.obs.error, UpstreamStatusError)
    assert played.obs.error.upstream_status == status


# -- failures before the commit ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_first_byte_timeout_before_commit(stream: bool) -> None:
    up = Upstream([reply(200, b"{}")], wait=5.0)
    played = play(up, stream=stream, first_byte=0.1)
    assert isinstance(played.error, UpstreamTimeout)
    assert played.error.message == "backend 'b' sent nothing within 0.1s (timeouts.first_byte)"
    assert played.sent == []
    assert up.cancelled_on_return  # the upstream request does not outlive the attempt


def test_stream_headers_without_a_first_chunk_time_out_too() -> None:
    up = Upstream([streamed(events(b"x", first_delay=5))])
    played = play(up, stream=True, first_byte=0.1)
    assert isinstance(played.error, UpstreamTimeout)
    assert played.sent == []


def test_response_over_max_response_bytes() -> None:
    played = play(Upstream([reply(200, b"x" * 2000)]), stream=False, max_response_bytes=1024)
    assert isinstance(played.error, UpstreamProtocolError)
    assert "server.max_response_bytes (1024 bytes)" in played.error.message
    assert played.sent == []


def test_response_at_max_response_bytes_passes() -> None:
    played = play(Upstream([reply(200, b"x" * 1024)]), stream=False, max_response_bytes=1024)
    assert played.error is None
    assert played.bodies == [b"x" * 1024]


@pytest.mark.parametrize(
    ("raised", "error", "text"),
    [
        (httpx.ConnectError("refused"), UpstreamUnreachable, "is unreachable"),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout, "connect timed out"),
    ],
)
def test_transport_errors_are_translated(
    raised: Exception, error: type[Exception], text: str
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    played = play(handler, stream=False)
    assert type(played.error) is error
    assert text in str(played.error)
    assert played.sent == []


def test_a_connection_lost_before_the_answer_is_not_retried() -> None:
    """Sent once (issue 16, finding 11): the server may have run the request before it
    dropped the connection. A stale pooled connection is the native client's to replace,
    before anything is written (tests/socket/test_upstream_faults.py)."""
    calls: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    played = play(handler, stream=False)
    assert len(calls) == 1
    assert isinstance(played.error, UpstreamProtocolError)
    assert "closed the connection before responding" in played.error.message
    assert played.sent == []


# -- failures after the commit -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "prefix"),
    [
        ([b"data: 1\n\n"], b""),
        ([b'data: {"cho'], b"\n\n"),  # cut mid-event: end it before the error event
    ],
)
def test_error_mid_stream_is_a_final_error_event(parts: list[bytes], prefix: bytes) -> None:
    content = events(*parts, then=httpx.ReadError("connection reset"))
    up = Upstream([streamed(content)])
    played = play(up, stream=True)
    assert played.error is None
    assert played.start["status"] == 200
    assert played.bodies[: len(parts)] == parts
    final = played.last
    assert final["more_body"] is False  # never a silent end
    assert final["body"].startswith(prefix + b"data: ")
    error = error_event(final["body"].removeprefix(prefix))
    assert error["code"] == "upstream_protocol_error"
    assert "closed the connection mid-stream" in error["message"]
    assert isinstance(played.obs.error, UpstreamProtocolError)


def test_stall_mid_stream_is_an_idle_timeout_event() -> None:
    content = events(b"data: 1\n\n", b"data: 2\n\n", delay=5)
    up = Upstream([streamed(content)])
    played = play(up, stream=True, idle=0.1)
    assert played.bodies[0] == b"data: 1\n\n"
    error = error_event(played.last["body"])
    assert (error["code"], played.last["more_body"]) == ("upstream_timeout", False)
    assert "(timeouts.idle)" in error["message"]


def test_total_timeout_mid_stream() -> None:
    content = events(*[b"data: x\n\n"] * 50, delay=0.02)
    up = Upstream([streamed(content)])
    played = play(up, stream=True, total=0.15)
    error = error_event(played.last["body"])
    assert "exceeded timeouts.total (0.15s)" in error["message"]
    assert 2 < len(played.bodies) < 50


# -- the client leaves ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_client_gone_before_the_answer(stream: bool) -> None:
    up = Upstream([reply(200, b"{}")], wait=5.0)
    played = play(up, stream=stream, leave_after=0.05)
    assert isinstance(played.error, ClientGone)
    assert played.sent == []
    assert up.cancelled_on_return


def test_client_gone_mid_stream_sends_nothing_more() -> None:
    content = events(b"data: 1\n\n", b"data: 2\n\n", delay=5)
    up = Upstream([streamed(content)])
    played = play(up, stream=True, leave_after=0.1)
    assert isinstance(played.error, ClientGone)
    assert played.bodies == [b"data: 1\n\n"]  # no error event, no end: nobody to read it
    assert played.obs.error is None
