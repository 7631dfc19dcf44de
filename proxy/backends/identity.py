"""What model a server is really serving: one identity fetcher per server kind.

``fetch_identity(kind, client, base_url, headers, model)`` asks the server what it has
loaded under ``model`` and returns an :class:`Identity`: a flat ``fields`` mapping of
normalised, comparable values, the URL they came from and when. Field names match
:class:`proxy.config.Pin` where they mean the same thing:

=================  ====================================================================
``sha256``         sha256 of the weights file (Ollama: the GGUF blob's name; llama.cpp,
                   LM Studio: hashed from the local file when it is readable)
``digest``         Ollama's manifest digest (``/api/tags``), what ``ollama pull`` changes
``quantization``   ``Q4_K_M`` (Ollama, LM Studio) or ``Q4_K - Medium`` (llama.cpp)
``family``         ``llama`` (Ollama ``details.family``)
``parameter_size`` ``8.0B`` (Ollama)
``size``           bytes (Ollama: file size; llama.cpp: tensor bytes from ``meta.size``)
``n_params``       parameter count (llama.cpp ``meta.n_params``, Ollama ``model_info``)
``model_path``     the weights path the server reports (llama.cpp ``/props``)
``id``             the model id as the server lists it
=================  ====================================================================

plus extras per kind (``build_info``, ``n_ctx_train``, ``arch``, ``root``,
``max_model_len``, ...). What each server exposes:

* Ollama: ``GET /api/tags`` (``name``, ``model``, ``size``, ``digest``, ``details``) and
  ``POST /api/show {"model": name}`` (``modelfile`` whose ``FROM`` line names the weights
  blob ``.../blobs/sha256-<hex>``, ``model_info`` with ``general.parameter_count``).
* llama.cpp: ``GET /props`` (``model_path``, ``model_ftype``, ``build_info``) and
  ``GET /v1/models`` ``data[].meta`` (``n_params``, ``size``, ``n_ctx_train``, ``ftype``).
* LM Studio: ``GET /api/v0/models`` (``id``, ``arch``, ``quantization``,
  ``compatibility_type``, ``max_context_length``, ``publisher``, ``state``).
* vLLM and generic OpenAI: the ``GET /v1/models`` entry (``id``, ``root``, ``parent``,
  ``max_model_len``, ``owned_by``).

Hashing a multi-gigabyte file is slow, so :class:`FileHashCache` computes each hash once per
``(path, size, mtime)`` in a worker thread (``asyncio.to_thread``), never on the event loop.

Errors::

    IdentityUnavailable   # server unreachable, model not loaded/pulled, unexpected JSON
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ..errors import IdentityUnavailable
from .base import describe_transport_error, error_message, get_bounded, join_url

__all__ = [
    "DEFAULT_HASH_CACHE",
    "FileHashCache",
    "Identity",
    "IdentityUnavailable",
    "fetch_identity",
    "sha256_file",
]

#: Seconds for each identity request; they are all cheap listings.
IDENTITY_TIMEOUT_S = 10.0
_CHUNK = 4 * 1024 * 1024

FieldValue = str | int


@dataclass(frozen=True, slots=True)
class Identity:
    """A model as one server reports it. ``fields`` are normalised and comparable."""

    kind: str
    model: str
    fields: dict[str, FieldValue]
    source: str
    resolved_at: str = field(default_factory=lambda: now_iso())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "source": self.source,
            "resolved_at": self.resolved_at,
            "fields": dict(sorted(self.fields.items())),
        }


def now_iso() -> str:
    """UTC now, to the second: ``2025-01-31T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- file hashes ------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str], chunk_size: int = _CHUNK) -> str:
    """The hex sha256 of a file, read in chunks (blocking: run it in a thread)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class FileHashCache:
    """sha256 of local files, computed once per ``(path, size, mtime_ns)`` in a thread.

    Concurrent requests for the same file share one computation. A replaced or rewritten
    file has a new size or mtime, so it is hashed again.
    """

    def __init__(self) -> None:
        self._done: dict[tuple[str, int, int], str] = {}
        self._running: dict[tuple[str, int, int], asyncio.Future[str]] = {}
        self.computed = 0  # how many hashes were actually computed (for tests and logs)

    async def sha256(self, path: str) -> str | None:
        """The file's hash, or None if it is not a readable regular file."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not Path(path).is_file() or not os.access(path, os.R_OK):
            return None
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if key in self._done:
            return self._done[key]
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(asyncio.to_thread(sha256_file, key[0]))
            self._running[key] = running
            running.add_done_callback(lambda done: self._finish(key, done))
        try:
            # shield: a caller that gives up must not cancel a hash that others share.
            return await asyncio.shield(running)
        except OSError:
            return None

    def _finish(self, key: tuple[str, int, int], done: asyncio.Future[str]) -> None:
        self._running.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return
        # One entry per path: an old (size, mtime) of a replaced file is never asked again.
        for old in [k for k in self._done if k[0] == key[0]]:
            del self._done[old]
        self._done[key] = done.result()
        self.computed += 1


#: Shared by default; tests and callers that want isolation pass their own.
DEFAULT_HASH_CACHE = FileHashCache()


# -- HTTP helpers -----------------------------------------------------------------------------


async def _request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Any = None,
) -> Any:
    try:
        response = await get_bounded(
            client, url, headers, IDENTITY_TIMEOUT_S, method=method, body=body
        )
    except httpx.TransportError as exc:
        raise IdentityUnavailable(f"{method} {url}: {describe_transport_error(exc)}") from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if not response.is_success:
        detail = error_message(data) or response.text[:200].strip() or response.reason_phrase
        raise IdentityUnavailable(f"{method} {url}: HTTP {response.status_code}: {detail}")
    if data is None:
        raise IdentityUnavailable(f"{method} {url}: not JSON: {response.text[:200]!r}")
    return data


def _models_data(body: Any, url: str) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise IdentityUnavailable(f"GET {url}: expected an object with a 'data' list")
    return data


def _put(fields: dict[str, FieldValue], key: str, value: Any) -> None:
    """Keep a field only when the server really reported it (no "", no null)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        fields[key] = value
    elif isinstance(value, float) and value.is_integer():
        fields[key] = int(value)
    elif isinstance(value, str) and value.strip():
        fields[key] = value.strip()


def _meta_fields(fields: dict[str, FieldValue], meta: Any) -> None:
    """llama.cpp's ``meta`` object on a ``/v1/models`` entry."""
    if not isinstance(meta, dict):
        return
    for key in ("n_params", "size", "n_ctx_train", "n_vocab", "n_embd", "vocab_type"):
        _put(fields, key, meta.get(key))
    _put(fields, "ftype", meta.get("ftype"))


# -- per kind ---------------------------------------------------------------------------------


def _ollama_names(model: str) -> set[str]:
    """``codellama`` is ``codellama:latest``; a tag is a ``:`` in the last path segment."""
    names = {model}
    if ":" not in model.rsplit("/", 1)[-1]:
        names.add(f"{model}:latest")
    elif model.endswith(":latest"):
        names.add(model[: -len(":latest")])
    return names


_BLOB = re.compile(r"^FROM\s+\S*?sha256[-:]([0-9a-fA-F]{64})\s*$", re.MULTILINE)


def ollama_blob_sha256(modelfile: str) -> str | None:
    """The weights blob digest from the first ``FROM .../blobs/sha256-<hex>`` line."""
    match = _BLOB.search(modelfile)
    return match.group(1).lower() if match else None


async def _ollama(
    client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str], model: str
) -> tuple[dict[str, FieldValue], str]:
    url = join_url(base_url, "/api/tags")
    body = await _request_json(client, "GET", url, headers)
    entries = body.get("models") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise IdentityUnavailable(f"GET {url}: expected an object with a 'models' list")
    wanted = _ollama_names(model)
    entry = next(
        (e for e in entries if isinstance(e, dict) and ({e.get("name"), e.get("model")} & wanted)),
        None,
    )
    if entry is None:
        raise IdentityUnavailable(f"model {model!r} is not pulled on {base_url} (GET {url})")
    name = str(entry.get("name") or entry.get("model"))
    fields: dict[str, FieldValue] = {}
    _put(fields, "id", name)
    _put(fields, "digest", entry.get("digest"))
    _put(fields, "size", entry.get("size"))
    details = entry.get("details")
    if isinstance(details, dict):
        _put(fields, "quantization", details.get("quantization_level"))
        _put(fields, "family", details.get("family"))
        _put(fields, "parameter_size", details.get("parameter_size"))
        _put(fields, "format", details.get("format"))
        _put(fields, "parent_model", details.get("parent_model"))
    # /api/show adds the weights blob and the exact parameter count; a failure here leaves
    # those fields unreported (a pin on them then reads "not reported"), not the whole id.
    show_url = join_url(base_url, "/api/show")
    try:
        show = await _request_json(client, "POST", show_url, headers, {"model": name})
    except IdentityUnavailable:
        show = None
    if isinstance(show, dict):
        modelfile = show.get("modelfile")
        if isinstance(modelfile, str):
            _put(fields, "sha256", ollama_blob_sha256(modelfile))
        info = show.get("model_info")
        if isinstance(info, dict):
            _put(fields, "n_params", info.get("general.parameter_count"))
            _put(fields, "arch", info.get("general.architecture"))
        details = show.get("details")
        if isinstance(details, dict):
            for key, src in (
                ("quantization", "quantization_level"),
                ("family", "family"),
                ("parameter_size", "parameter_size"),
            ):
                if key not in fields:
                    _put(fields, key, details.get(src))
    return fields, url


async def _llamacpp(
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    model: str,
    hashes: FileHashCache | None,
) -> tuple[dict[str, FieldValue], str]:
    models_url = join_url(base_url, "/v1/models")
    data = _models_data(await _request_json(client, "GET", models_url, headers), models_url)
    # llama-server serves one model whatever the request names; match by id or alias first.
    entry = next(
        (e for e in data if e.get("id") == model or model in (e.get("aliases") or [])), None
    )
    if entry is None and len(data) == 1:
        entry = data[0]
    if entry is None:
        ids = ", ".join(str(e.get("id")) for e in data) or "none"
        raise IdentityUnavailable(f"model {model!r} is not loaded on {base_url} (has: {ids})")
    fields: dict[str, FieldValue] = {}
    _put(fields, "id", entry.get("id"))
    _meta_fields(fields, entry.get("meta"))
    if "ftype" in fields:
        fields["quantization"] = fields.pop("ftype")
    props_url = join_url(base_url, "/props")
    source = models_url
    try:
        props = await _request_json(client, "GET", props_url, headers)
    except IdentityUnavailable:
        props = None
    if isinstance(props, dict):
        source = props_url
        _put(fields, "model_path", props.get("model_path"))
        _put(fields, "quantization", props.get("model_ftype"))
        _put(fields, "build_info", props.get("build_info"))
    path = fields.get("model_path")
    if hashes is not None and isinstance(path, str):
        _put(fields, "sha256", await hashes.sha256(path))
    return fields, source


async def _lmstudio(
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    model: str,
) -> tuple[dict[str, FieldValue], str] | None:
    url = join_url(base_url, "/api/v0/models")
    try:
        body = await _request_json(client, "GET", url, headers)
    except IdentityUnavailable as exc:
        if "HTTP " not in exc.reason:
            raise  # unreachable: falling back to /v1/models would fail the same way
        return None  # LM Studio < 0.3.6 has no /api/v0
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None  # older builds answer 200 {"error": "Unexpected endpoint or method."}
    data = _models_data(body, url)
    entry = next((e for e in data if e.get("id") == model), None)
    if entry is None:
        raise IdentityUnavailable(f"model {model!r} is not downloaded in LM Studio at {base_url}")
    fields: dict[str, FieldValue] = {}
    for key in (
        "id",
        "arch",
        "quantization",
        "compatibility_type",
        "max_context_length",
        "publisher",
        "type",
        "state",
    ):
        _put(fields, key, entry.get(key))
    return fields, url


async def _openai(
    client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str], model: str
) -> tuple[dict[str, FieldValue], str]:
    url = join_url(base_url, "/v1/models")
    data = _models_data(await _request_json(client, "GET", url, headers), url)
    entry = next((e for e in data if e.get("id") == model), None)
    if entry is None:
        ids = ", ".join(str(e.get("id")) for e in data[:20]) or "none"
        raise IdentityUnavailable(f"model {model!r} is not served by {base_url} (has: {ids})")
    fields: dict[str, FieldValue] = {}
    for key in ("id", "root", "parent", "max_model_len", "owned_by"):
        _put(fields, key, entry.get(key))
    _meta_fields(fields, entry.get("meta"))  # a llama.cpp behind kind: openai
    if "ftype" in fields:
        fields["quantization"] = fields.pop("ftype")
    return fields, url


async def fetch_identity(
    kind: str,
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    model: str,
    *,
    local_path: str | None = None,
    hashes: FileHashCache | None = DEFAULT_HASH_CACHE,
) -> Identity:
    """Ask the server of ``kind`` at ``base_url`` what it serves as ``model``.

    ``local_path`` names the weights file when the server does not (LM Studio, vLLM): if it
    is readable it is hashed into ``sha256`` and reported as ``model_path``. ``hashes=None``
    never hashes files. Raises :class:`IdentityUnavailable`.
    """
    resolved_at = now_iso()
    fields: dict[str, FieldValue]
    match kind:
        case "ollama":
            fields, source = await _ollama(client, base_url, headers, model)
        case "llamacpp":
            fields, source = await _llamacpp(client, base_url, headers, model, hashes)
        case "lmstudio":
            found = await _lmstudio(client, base_url, headers, model)
            if found is None:
                fields, source = await _openai(client, base_url, headers, model)
            else:
                fields, source = found
        case "vllm" | "openai":
            fields, source = await _openai(client, base_url, headers, model)
        case _:
            raise IdentityUnavailable(f"unknown backend kind {kind!r}")
    if local_path is not None and "sha256" not in fields and hashes is not None:
        digest = await hashes.sha256(local_path)
        if digest is not None:
            fields["sha256"] = digest
            fields.setdefault("model_path", local_path)
    return Identity(kind=kind, model=model, fields=fields, source=source, resolved_at=resolved_at)
