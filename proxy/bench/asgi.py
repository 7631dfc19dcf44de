"""An httpx transport that calls an ASGI app in-process without buffering the answer.

`httpx.ASGITransport` collects the whole body before returning, which hides
chunk timing. This one hands each `http.response.body` message to the
reader as it is sent, so a benchmark running inside the daemon measures time
to first token through the same code path as live traffic, with no socket.
Closing the response early sends `http.disconnect`, like a client leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

import httpx

__all__ = ["ASGIApp", "StreamingASGITransport"]

Message: TypeAlias = MutableMapping[str, Any]
#: An ASGI 3 application: `await app(scope, receive, send)`.
ASGIApp: TypeAlias = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_END = object()


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, queue: asyncio.Queue[Any], task: asyncio.Task[None], gone: asyncio.Event
    ) -> None:
        self._queue = queue
        self._task = task
        self._gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"the app failed mid-response: {item!r}") from item
            yield item

    async def aclose(self) -> None:
        self._gone.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        except BaseException:
            pass


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Send requests to an ASGI app (whose lifespan is already running)."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope: Message = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self.client,
            "server": (request.url.host, request.url.port or 80),
        }
        queue: asyncio.Queue[Any] = asyncio.Queue()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        gone = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if gone.is_set():
                raise OSError("client disconnected")
            if message["type"] == "http.response.start":
                if not started.done():
                    started.set_result((int(message["status"]), list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    queue.put_nowait(bytes(chunk))
                if not message.get("more_body", False):
                    queue.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
                else:
                    queue.put_nowait(exc)
            finally:
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))
                queue.put_nowait(_END)

        task = asyncio.create_task(run(), name="variant-proxy-bench-asgi")
        try:
            status, headers = await started
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                await task
            raise httpx.RemoteProtocolError(f"the app failed: {exc!r}", request=request) from exc
        return httpx.Response(status, headers=headers, stream=_Body(queue, task, gone))
