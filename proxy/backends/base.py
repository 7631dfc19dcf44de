"""What every model-server adapter provides: a cheap health probe and a model listing.

Each server kind (llama.cpp, Ollama, LM Studio, vLLM, generic OpenAI-compatible) has one
module in this package with a :class:`BackendAdapter` subclass. Adapters hold no state and
no client: the caller passes the shared ``httpx.AsyncClient``, the server root
(``http://127.0.0.1:11434``, no ``/v1``) and any headers (e.g. ``Authorization``).

A health probe never runs a generation and never raises: transport errors, bad status codes
and bad JSON all come back as ``HealthResult(ok=False, detail=...)``.

``list_models`` raises from a small exception tree::

    BackendError
    ├── BackendUnavailableError   # connect/read errors, timeouts, non-2xx status
    └── BackendProtocolError      # the server answered, but not with the JSON we expect
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import BackendError, BackendProtocolError, BackendUnavailableError

__all__ = [
    "BackendAdapter",
    "BackendError",
    "BackendProtocolError",
    "BackendUnavailableError",
    "HealthResult",
    "ModelInfo",
]

#: Health probes are cheap; a server that can't answer one in this long is not healthy.
DEFAULT_PROBE_TIMEOUT_S = 5.0
#: The most a probe reads of an answer (a model list of thousands of entries fits): a
#: backend answering an endless or huge body can't make every `/ready` call hold it.
MAX_PROBE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HealthResult:
    """Outcome of one health probe. ``detail`` is human-readable (``"ok"``, ``"loading model"``,
    ``"connection refused: ..."``); ``status_code`` is None when no response arrived."""

    ok: bool
    detail: str
    latency_s: float
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model as a server lists it. ``raw`` is the server's own JSON object for the model,
    untouched, so that callers can extract identity (digest, path, size, ...) from it."""

    id: str
    raw: dict[str, Any] = field(default_factory=dict)


def join_url(base_url: str, path: str) -> str:
    """``join_url("http://h:1/", "/v1/models") == "http://h:1/v1/models"``."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def describe_transport_error(exc: httpx.TransportError) -> str:
    """A short, stable description of a transport error for logs and health details."""
    kind = {
        httpx.ConnectError: "connection failed",
        httpx.ConnectTimeout: "connect timeout",
        httpx.ReadTimeout: "read timeout",
        httpx.WriteTimeout: "write timeout",
        httpx.PoolTimeout: "pool timeout",
        httpx.RemoteProtocolError: "protocol error",
    }.get(type(exc), type(exc).__name__)
    text = str(exc)
    return f"{kind}: {text}" if text else kind


async def get_bounded(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    limit: int = MAX_PROBE_BYTES,
    *,
    method: str = "GET",
    body: Any = None,
) -> httpx.Response:
    """GET `url` (or `method` with `body` as JSON), reading at most `limit` bytes of the
    answer; over that the connection is dropped and :class:`httpx.ReadError` says why (a
    transport error to every caller). Every probe and identity read goes through here."""
    async with client.stream(method, url, headers=headers, json=body, timeout=timeout) as response:
        data = bytearray()
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) > limit:
                raise httpx.ReadError(
                    f"answer over {limit} bytes, the most a probe reads", request=response.request
                )
    # a plain response over the bytes read (decoded as the headers say, like any other)
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=bytes(data),
        request=response.request,
        extensions=response.extensions,
    )


def parse_json(response: httpx.Response) -> Any:
    """The response body as JSON, or :class:`BackendProtocolError` naming the URL."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        snippet = response.text[:200] if response.content else "<empty body>"
        raise BackendProtocolError(
            f"{response.request.method} {response.request.url} returned invalid JSON: {snippet!r}"
        ) from exc


def error_message(body: Any) -> str | None:
    """The message from the error bodies these servers send (OpenAI style
    ``{"error": {"message": ...}}``, or ``{"error": "..."}``), else None."""
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        return str(msg) if msg is not None else None
    if isinstance(err, str):
        return err
    return None


def openai_model_list(body: Any, url: str) -> list[ModelInfo]:
    """Models from an OpenAI ``{"object": "list", "data": [{"id": ...}, ...]}`` body."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise BackendProtocolError(f"GET {url}: expected an object with a 'data' list")
    models: list[ModelInfo] = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise BackendProtocolError(f"GET {url}: model entry without a string 'id': {entry!r}")
        models.append(ModelInfo(id=entry["id"], raw=entry))
    return models


class BackendAdapter(ABC):
    """How to talk to one kind of model server, beyond the OpenAI ``/v1/...`` routes that the
    proxy forwards unchanged."""

    #: The config ``kind`` this adapter serves, e.g. ``"llamacpp"``.
    kind: str
    #: Path probed by :meth:`health`, relative to the server root.
    health_path: str
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S

    async def health(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> HealthResult:
        """Probe ``health_path`` without generating anything. Never raises for transport
        errors, bad statuses or bad bodies; those return ``ok=False`` with a detail."""
        url = join_url(base_url, self.health_path)
        start = time.perf_counter()
        try:
            response = await get_bounded(client, url, headers, self.probe_timeout_s)
        except httpx.TransportError as exc:
            return HealthResult(False, describe_transport_error(exc), time.perf_counter() - start)
        latency = time.perf_counter() - start
        ok, detail = self.interpret_health(response)
        return HealthResult(ok, detail, latency, response.status_code)

    @abstractmethod
    def interpret_health(self, response: httpx.Response) -> tuple[bool, str]:
        """Map the probe's response to ``(ok, detail)``. Pure: no I/O."""

    @abstractmethod
    async def list_models(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> list[ModelInfo]:
        """The models the server offers, with the server's own JSON for each in ``raw``.
        Raises :class:`BackendUnavailableError` or :class:`BackendProtocolError`."""

    async def get_json(
        self, client: httpx.AsyncClient, base_url: str, path: str, headers: Mapping[str, str]
    ) -> Any:
        """GET ``base_url + path`` and return the parsed JSON body (2xx only)."""
        url = join_url(base_url, path)
        try:
            response = await get_bounded(client, url, headers, self.probe_timeout_s)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"GET {url}: {describe_transport_error(exc)}") from exc
        if not response.is_success:
            raise BackendUnavailableError(
                f"GET {url}: {status_detail(response)}", response.status_code
            )
        return parse_json(response)


def status_detail(response: httpx.Response) -> str:
    """``"HTTP 500: <error message or body>"`` for a failed probe."""
    try:
        msg = error_message(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        msg = None
    reason = msg or response.text[:200].strip() or response.reason_phrase
    return f"HTTP {response.status_code}: {reason}"
