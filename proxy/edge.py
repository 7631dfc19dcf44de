"""The ASGI edge of the OpenAI endpoints: read, bound and authenticate one request.

`OpenAIEndpoint` is a raw ASGI callable (no Starlette on the hot path) so the
relay decides exactly when headers and bytes go out. For each request it
takes a request id, bounds the headers and the body, checks the API key,
parses what routing needs, and hands the request to the `Dispatcher` with the
`Runtime` it started with (a reload mid-request can't mix two configs). Any
error before the commit leaves here, rendered once by `errors.render`; the
request's metrics are recorded here whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .bench.client import BENCH_HEADER
from .dispatch import Outcome
from .errors import (
    ClientGone,
    HeadersTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    ProxyError,
    render,
    status_of,
)
from .runtime import parse_payload
from .upstream import Headers, Receive, Send

if TYPE_CHECKING:
    from .service import Proxy

__all__ = ["OpenAIEndpoint", "read_body", "request_id", "send_error"]

log = logging.getLogger("variant_proxy")

_BENCH_HEADER = BENCH_HEADER.encode()


class OpenAIEndpoint:
    """One OpenAI POST endpoint (`chat`, `completions`, `embeddings`) as raw ASGI."""

    def __init__(self, proxy: Proxy, endpoint: str) -> None:
        self.proxy = proxy
        self.endpoint = endpoint

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        proxy, endpoint = self.proxy, self.endpoint
        rt = proxy.runtime
        rid = request_id(scope)
        headers: Headers = [(b"x-request-id", rid)]
        outcome = Outcome()
        try:
            size, user = _scan_headers(scope)
            if user:
                proxy.last_request = time.monotonic()
            limit = rt.cfg.server.max_header_bytes
            if size > limit:
                raise HeadersTooLarge(
                    f"request headers of {size} bytes are over the limit of {limit} bytes "
                    "(server.max_header_bytes)"
                )
            proxy.keys.check(scope.get("headers", ()))
            body = await read_body(scope, receive, rt.cfg.server.max_body_bytes)
            payload = parse_payload(endpoint, body)
            if rt.cfg.server.log_prompts:
                log.info(
                    "request %s body: %s", rid.decode(), body[:4000].decode("utf-8", "replace")
                )
            watch: asyncio.Future[Any] = asyncio.ensure_future(receive())
            try:
                await proxy.dispatcher.dispatch(
                    rt,
                    endpoint,
                    payload,
                    body,
                    headers=headers,
                    watch=watch,
                    send=send,
                    outcome=outcome,
                )
            finally:
                watch.cancel()
        except ClientGone:
            outcome.status = 499
        except ProxyError as exc:
            outcome.status = status_of(exc)
            await send_error(send, exc, headers)
        except Exception:
            log.exception("request %s failed", rid.decode())
            await send_error(send, ProxyError("internal error in variant-proxy"), headers)
        finally:
            proxy.dispatcher.record(endpoint, outcome, started)


def _scan_headers(scope: Mapping[str, Any]) -> tuple[int, bool]:
    """The headers' size in bytes, and whether the request is a user's (not the scheduled
    benchmark's own traffic, which doesn't make the proxy busy)."""
    size = 0
    user = True
    for key, value in scope.get("headers", ()):
        size += len(key) + len(value) + 4
        if key == _BENCH_HEADER:
            user = False
    return size, user


def request_id(scope: Mapping[str, Any]) -> bytes:
    """The client's `x-request-id` (printable, at most 128 bytes) or a new one."""
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id" and value:
            clean = bytes(b for b in value[:128] if 0x21 <= b <= 0x7E)
            if clean:
                return clean
    return uuid.uuid4().hex.encode()


async def read_body(scope: Mapping[str, Any], receive: Receive, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it is over `limit` bytes."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError as exc:
                raise InvalidRequest("invalid content-length header") from exc
            if declared > limit:
                raise PayloadTooLarge(
                    f"request body of {declared} bytes is over the limit of {limit} bytes "
                    "(server.max_body_bytes)"
                )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body is over the limit of {limit} bytes (server.max_body_bytes)"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_error(send: Send, exc: ProxyError, headers: Headers) -> None:
    """Send `exc` as the whole response (before anything else was sent)."""
    status, extra, body = render(exc)
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": body, "more_body": False})
