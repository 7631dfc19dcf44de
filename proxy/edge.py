"""The ASGI edge of the OpenAI endpoints: read, bound and authenticate one request.

`OpenAIEndpoint` is a raw ASGI callable (no Starlette on the hot path) so the
relay decides exactly when headers and bytes go out. For each request it
takes a request id, bounds the headers and the body, checks the API key,
parses what routing needs, and hands the request to the `Dispatcher` with the
`Runtime` it started with (a reload mid-request can't mix two configs). Any
error before the commit leaves here, rendered once by `errors.render`; the
request's metrics are recorded here whatever happened, and one `activity.Entry`
is appended to the status page's ring (values already at hand, nothing computed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .activity import Entry, prompt_excerpt
from .bench.client import BENCH_HEADER
from .dispatch import Outcome
from .errors import (
    ClientGone,
    HeadersTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    ProxyError,
    RequestTimeout,
    render,
    status_of,
)
from .runtime import parse_payload
from .upstream import Headers, Receive, Send

if TYPE_CHECKING:
    from .service import Proxy

__all__ = ["OpenAIEndpoint", "activity_entry", "read_body", "request_id", "send_error"]

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
        user, prompt = True, None
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
            server = rt.cfg.server
            body = await read_body(scope, receive, server.max_body_bytes, server.body_timeout)
            payload = parse_payload(endpoint, body)
            if rt.cfg.server.log_prompts:
                log.info(
                    "request %s body: %s", rid.decode(), body[:4000].decode("utf-8", "replace")
                )
                prompt = prompt_excerpt(payload)
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
            # the status page's one hook: an append to a bounded ring, nothing computed
            reason = outcome.reason if rt.cfg.server.log_prompts else None
            proxy.activity.append(activity_entry(endpoint, outcome, rid, not user, reason, prompt))


def activity_entry(
    endpoint: str,
    outcome: Outcome,
    rid: bytes,
    bench: bool,
    reason: str | None = None,
    prompt: str | None = None,
) -> Entry:
    """What the status page keeps of a finished request (`benchmarks/status_page.py`
    times exactly this)."""
    return Entry(
        time.time(),
        endpoint,
        outcome.cls,
        outcome.rule,
        outcome.variant,
        outcome.tried,
        outcome.status,
        outcome.duration,
        rid.decode("ascii"),
        outcome.stats,
        bench,
        reason,
        prompt,
    )


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


async def read_body(
    scope: Mapping[str, Any], receive: Receive, limit: int, timeout: float | None = None
) -> bytes:
    """The whole request body, refused with 413 as soon as it is over `limit` bytes and
    with 408 when it has not all arrived `timeout` seconds after the first read.

    Every endpoint that reads a body reads it here. A body that came in one message (the
    usual small request) is returned as is, with no timer and no copy; a longer one is
    gathered into one buffer that grows in place (no list of chunks joined at the end,
    which held the body twice).
    """
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
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    first: bytes = message.get("body", b"")
    _check_size(len(first), limit)
    if not message.get("more_body", False):
        return first
    try:
        async with asyncio.timeout(timeout):
            return await _read_rest(receive, first, limit)
    except TimeoutError as exc:
        raise RequestTimeout(
            f"request body not received within {timeout:g} seconds (server.body_timeout)"
        ) from exc


async def _read_rest(receive: Receive, first: bytes, limit: int) -> bytes:
    body = bytearray(first)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        _check_size(len(body), limit)
        if not message.get("more_body", False):
            return bytes(body)


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise PayloadTooLarge(
            f"request body is over the limit of {limit} bytes (server.max_body_bytes)"
        )


async def send_error(send: Send, exc: ProxyError, headers: Headers) -> None:
    """Send `exc` as the whole response (before anything else was sent)."""
    status, extra, body = render(exc)
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": body, "more_body": False})
