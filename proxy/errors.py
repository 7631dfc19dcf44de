"""The exceptions variant-proxy raises, and the one place they become HTTP.

    ProxyError                        any error a client can be told about
    ├── RequestError                  the client's request is wrong (4xx)
    │   ├── InvalidRequest            400 bad JSON, missing or mistyped field
    │   │   └── ContextLengthExceeded 400 the prompt fits no candidate's serving window
    │   ├── Unauthorized              401 missing or wrong API key
    │   ├── ForbiddenOrigin           403 a cross-origin browser request (`server.cors_origins`)
    │   ├── ModelNotFound             404 unknown model name
    │   ├── EndpointNotFound          404 no such path
    │   ├── MethodNotAllowed          405
    │   ├── VersionMismatch           409 pinned model version drifted
    │   ├── BackendInUse              409 `/admin/unload` of a backend with requests in flight
    │   ├── InvalidConfig             400 `/admin/reload` of an invalid config
    │   ├── RequestTimeout            408 headers or body not received in time (server.*_timeout)
    │   ├── PayloadTooLarge           413 body over `server.max_body_bytes`
    │   ├── UnsupportedMediaType      415 a POST body that is not `application/json`
    │   ├── MisdirectedHost           421 `Host` not this proxy (`server.allowed_hosts`)
    │   └── HeadersTooLarge           431 headers over `server.max_header_bytes`
    ├── Unavailable                   503 no eligible variant
    │   ├── ShuttingDown              503 cut at the shutdown drain limit (server.drain_timeout)
    │   └── TooManyConnections        503 over `server.max_connections` open client connections
    └── UpstreamError                 the model server failed us (5xx)
        ├── UpstreamBusy              503 backend at max_concurrency, queue full or timed out
        ├── UpstreamUnreachable       502 connection refused / reset / DNS / failed to start
        ├── UpstreamProtocolError     502 the server spoke nonsense or died mid-body
        ├── UpstreamStatusError       502 the server answered 5xx
        └── UpstreamTimeout           504 connect, first byte, idle or total timeout

An `UpstreamError`'s `message` is what the client reads: it names the backend,
never its URL or a Python exception, and quotes at most 500 characters of the
backend's own error text. `detail` (URL, exception) is for the log, and `summary`
(the message without the backend's text, which may echo another client's
prompt) is what a circuit breaker remembers as its cause.

`ConfigError` is separate: it is raised at load or reload, never per request
(`/admin/reload` answers it as `InvalidConfig`).

Internal errors never reach a client as they are; the layer that catches them
translates them (`raise ... from exc`) or reports them in its own words:

    ClientGone                        the client disconnected (edge: status 499, nothing sent)
    QueueFull, QueueTimeout           no concurrency slot (dispatch → UpstreamBusy)
    BackendStartError                 a managed backend never got healthy (→ UpstreamUnreachable)
    BackendError                      a status or identity probe failed (adapters)
    ├── BackendUnavailableError       unreachable, timed out or non-2xx
    └── BackendProtocolError          answered, but not in the shape expected
    IdentityUnavailable               a model's identity could not be read (pins: unverifiable)
    LockfileError                     an unreadable lockfile (CLI exit 1; serve: ignored, logged)
    SuiteError                        a benchmark suite can't be read (CLI exit 1)
    BenchInterrupted                  a scheduled benchmark run gave way to user traffic

The native relay client's errors (`httpclient.ConnectError`, …) subclass httpx's
own, so one translation (`upstream._translate`) serves both clients.

Every `ProxyError` renders as an OpenAI-style body
`{"error": {"message", "type", "code", "param"}}`; `status_of` is the single
mapping from error kind to HTTP status.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "BackendError",
    "BackendInUse",
    "BackendProtocolError",
    "BackendStartError",
    "BackendUnavailableError",
    "BenchInterrupted",
    "ClientGone",
    "IdentityUnavailable",
    "LockfileError",
    "QueueFull",
    "QueueTimeout",
    "ConfigError",
    "ContextLengthExceeded",
    "ConfigIssue",
    "EndpointNotFound",
    "ForbiddenOrigin",
    "HeadersTooLarge",
    "InvalidConfig",
    "InvalidRequest",
    "MethodNotAllowed",
    "MisdirectedHost",
    "ModelNotFound",
    "PayloadTooLarge",
    "ProxyError",
    "RequestError",
    "RequestTimeout",
    "ShuttingDown",
    "SuiteError",
    "TooManyConnections",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UpstreamBusy",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "VersionMismatch",
    "error_body",
    "render",
    "status_of",
]


class ProxyError(Exception):
    """An error the client is told about, as an OpenAI-style JSON error.

    `retry_after` (seconds), when set, becomes a `Retry-After` header.
    """

    type: str = "server_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.extra = extra or {}
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "param": self.param,
        }
        error.update(self.extra)
        return {"error": error}


class RequestError(ProxyError):
    type = "invalid_request_error"
    code = "invalid_request"


class InvalidRequest(RequestError):
    pass


class ContextLengthExceeded(InvalidRequest):
    """OpenAI's `context_length_exceeded`, with the numbers in `extra`; `variants` are
    the ones whose windows were too small (for a second look with a real count)."""

    code = "context_length_exceeded"

    def __init__(self, variants: tuple[str, ...], message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.variants = variants


class Unauthorized(RequestError):
    type = "authentication_error"
    code = "invalid_api_key"


class ForbiddenOrigin(RequestError):
    """A web page's request (cross-origin `Origin` or `Sec-Fetch-Site`): browser defence."""

    code = "forbidden_origin"


class UnsupportedMediaType(RequestError):
    """A POST body not sent as JSON: the types a page can send without a preflight."""

    code = "unsupported_media_type"


class MisdirectedHost(RequestError):
    """A `Host` header that doesn't name this proxy: DNS-rebinding defence."""

    code = "misdirected_host"


class ModelNotFound(RequestError):
    code = "model_not_found"


class EndpointNotFound(RequestError):
    code = "not_found"


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"


class VersionMismatch(RequestError):
    code = "model_version_mismatch"


class BackendInUse(RequestError):
    code = "backend_in_use"


class PayloadTooLarge(RequestError):
    code = "request_too_large"


class HeadersTooLarge(RequestError):
    code = "request_header_fields_too_large"


class RequestTimeout(RequestError):
    code = "request_timeout"


class InvalidConfig(RequestError):
    """A reload was asked for and the new config is invalid: 400 with every issue."""

    code = "invalid_config"

    def __init__(self, error: ConfigError) -> None:
        super().__init__(
            "invalid config; the running config is kept",
            extra={"issues": [str(i) for i in error.issues]},
        )


class Unavailable(ProxyError):
    type = "server_error"
    code = "no_backend_available"


class ShuttingDown(Unavailable):
    """The request was still running when the shutdown drain limit ran out."""

    code = "server_shutting_down"


class TooManyConnections(Unavailable):
    code = "too_many_connections"


class UpstreamError(ProxyError):
    """The model server failed. `message` is for the client, `detail` for the log
    (it may name the URL and the exception), `summary` for a breaker's cause."""

    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self, message: str, *, detail: str | None = None, summary: str | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.detail = detail or message
        self.summary = summary or message


class UpstreamBusy(UpstreamError):
    code = "backend_busy"


class UpstreamUnreachable(UpstreamError):
    code = "upstream_unreachable"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamStatusError(UpstreamError):
    code = "upstream_status_error"

    def __init__(self, message: str, *, upstream_status: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"


def status_of(exc: ProxyError) -> int:
    """The HTTP status for an error kind: the only place this is decided."""
    match exc:
        case Unauthorized():
            return 401
        case ForbiddenOrigin():
            return 403
        case ModelNotFound() | EndpointNotFound():
            return 404
        case MethodNotAllowed():
            return 405
        case VersionMismatch() | BackendInUse():
            return 409
        case PayloadTooLarge():
            return 413
        case UnsupportedMediaType():
            return 415
        case MisdirectedHost():
            return 421
        case HeadersTooLarge():
            return 431
        case RequestTimeout():
            return 408
        case RequestError():
            return 400
        case Unavailable():
            return 503
        case UpstreamBusy():
            return 503
        case UpstreamTimeout():
            return 504
        case UpstreamError():
            return 502
        case _:
            return 500


def error_body(exc: ProxyError) -> bytes:
    return orjson.dumps(exc.body())


def render(
    exc: ProxyError, extra: dict[str, Any] | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The one rendering of an error as HTTP: status, headers and the JSON body.

    `extra` adds top-level keys beside `error` (`/admin/reload` says `"reloaded": false`).
    Every error response leaves through here: the ASGI edge, the app's handlers and the CLI.
    """
    document = exc.body() if extra is None else {**extra, **exc.body()}
    body = orjson.dumps(document)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if exc.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    return status_of(exc), headers, body


class ConfigIssue:
    """One problem in a config file: where (`backends.local.url`) and why."""

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __repr__(self) -> str:
        return f"ConfigIssue({self.path!r}, {self.reason!r})"


class ConfigError(Exception):
    """A config file that cannot be used; `issues` lists every problem found."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid config {source}:\n{lines}")


# -- internal errors: translated where they are caught, never shown as they are -------------


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent to it."""


class QueueFull(Exception):
    """No concurrency slot, and the backend's queue is full."""


class QueueTimeout(Exception):
    """No concurrency slot within the backend's `queue_timeout`."""


class BackendStartError(RuntimeError):
    """A managed backend did not become healthy. ``log_path`` and ``log_tail`` say why."""

    def __init__(
        self, name: str, reason: str, log_path: Path, log_tail: Sequence[str], limit: int
    ) -> None:
        self.name = name
        self.reason = reason
        self.log_path = log_path
        self.log_tail = list(log_tail)
        tail = "\n".join(self.log_tail) if self.log_tail else "<log is empty>"
        super().__init__(
            f"backend {name!r} failed to start: {reason}. "
            f"See its log {log_path}; last {limit} lines:\n{tail}"
        )


class BackendError(Exception):
    """A model server could not be queried."""


class BackendUnavailableError(BackendError):
    """The server could not be reached, timed out, or answered with a non-2xx status."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class BackendProtocolError(BackendError):
    """The server answered, but the body was not the JSON shape this adapter expects."""


class IdentityUnavailable(Exception):
    """The identity of a model could not be read. ``reason`` says why, for humans."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LockfileError(Exception):
    """A lockfile that cannot be read; the message names the file and the key."""


class SuiteError(Exception):
    """A benchmark suite that can't be found or doesn't match the format."""


class BenchInterrupted(Exception):
    """A benchmark run was stopped (user traffic arrived, or the caller said so)."""
