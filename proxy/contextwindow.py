"""How many tokens each backend really serves, and how many a request needs.

A model's *training* context says little about what a server runs with:
llama-server serves `-c` split across its slots, Ollama serves its default
(2,048 tokens before 0.6.4, 4,096 since, unless a Modelfile sets `num_ctx`)
and its OpenAI endpoint can't raise it, LM Studio serves the length the model
was loaded with. A prompt over that window is refused (llama-server: 400) or,
worse, cut from the front without a word (Ollama). So the proxy learns each
backend's serving window, off the request path, and checks a request against
it before sending.

Learning (`learn`, I/O, at health-probe time, the answer cached on the
backend's state until it next comes up again):

| kind      | where the window comes from                                              |
|-----------|--------------------------------------------------------------------------|
| llamacpp  | `GET /props` → `default_generation_settings.n_ctx` (per slot)             |
| ollama    | `GET /api/ps` → `context_length` of the loaded model; else `POST /api/show` |
|           | → `num_ctx` in `parameters`; else the server version's default          |
| lmstudio  | `GET /api/v0/models` → `loaded_context_length` of a loaded model         |
| vllm      | `GET /v1/models` → `max_model_len`                                       |
| openai    | nothing to learn: the variant's `context_window`                          |

A window the variant's config declares (`context_window`) caps what was
learned: the smaller wins.

Counting (`estimate`, pure; `count`, I/O): a calibrated character estimate
(`classify.text.estimate_tokens`, ~3.6 ASCII characters a token) over every
message's text, the tools' schemas and a few tokens of template per message,
plus `ESTIMATE_MARGIN`. Only when that estimate is close to a window
(`borderline`) does the dispatcher ask llama-server's `/tokenize` for the real
count, bounded in size and time; a tokenizer that fails or is slow leaves the
estimate in charge.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .backends.base import get_bounded, join_url
from .classify.text import estimate_tokens

__all__ = [
    "ESTIMATE_MARGIN",
    "OLLAMA_DEFAULT",
    "OLLAMA_PS_SOURCE",
    "Window",
    "borderline",
    "count",
    "estimate",
    "learn",
    "ollama_default",
    "prompt_text",
    "window_from_llamacpp",
    "window_from_lmstudio",
    "window_from_ollama_ps",
    "window_from_ollama_show",
    "window_from_vllm",
]

log = logging.getLogger("variant_proxy")

#: an estimate is this much larger than its character count says (a tokenizer that
#: splits code finer than 3.6 characters a token must not slip a prompt past a window)
ESTIMATE_MARGIN = 1.15
#: template tokens per message (role markers, separators) on top of its text
PER_MESSAGE = 6
#: an estimate within this fraction of a window is worth a real count
BORDER = 0.35
#: the most text sent to `/tokenize`; a longer prompt is judged by its estimate
TOKENIZE_MAX_CHARS = 512 * 1024
#: seconds `/tokenize` may take before the estimate decides
TOKENIZE_TIMEOUT = 2.0
#: Ollama's default window by the version that introduced it (OLLAMA_CONTEXT_LENGTH)
OLLAMA_DEFAULT = ((0, 6, 4), 4096)
_OLLAMA_OLD_DEFAULT = 2048
#: any model a backend serves (llama-server serves one)
ANY = "*"


@dataclass(frozen=True, slots=True)
class Window:
    """A serving window and where it was read."""

    tokens: int
    source: str


# -- parsing what each server says (pure) ------------------------------------------------------


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def window_from_llamacpp(props: Any) -> Window | None:
    """llama-server `/props`: the per-slot `n_ctx` of its default generation settings."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    n_ctx = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    if n_ctx is None:
        n_ctx = _positive(props.get("n_ctx"))
    return Window(n_ctx, "llama-server /props n_ctx") if n_ctx else None


def window_from_vllm(models: Any) -> dict[str, Window]:
    """vLLM `/v1/models`: `max_model_len` of each model id."""
    out: dict[str, Window] = {}
    data = models.get("data") if isinstance(models, dict) else None
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            n = _positive(entry.get("max_model_len"))
            if n:
                out[entry["id"]] = Window(n, "vLLM /v1/models max_model_len")
    return out


def window_from_lmstudio(models: Any) -> dict[str, Window]:
    """LM Studio `/api/v0/models`: the `loaded_context_length` of each loaded model."""
    out: dict[str, Window] = {}
    data = models.get("data") if isinstance(models, dict) else None
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        n = _positive(entry.get("loaded_context_length"))
        if n and entry.get("state", "loaded") == "loaded":
            out[entry["id"]] = Window(n, "LM Studio loaded_context_length")
    return out


#: the source of a window read from Ollama's `/api/ps`: the loaded runner's context, which
#: may be a `num_ctx` some request asked for rather than what the next one gets
OLLAMA_PS_SOURCE = "Ollama /api/ps context_length"


def window_from_ollama_ps(ps: Any) -> dict[str, Window]:
    """Ollama `/api/ps`: the `context_length` each loaded model runs with (newer servers)."""
    out: dict[str, Window] = {}
    data = ps.get("models") if isinstance(ps, dict) else None
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict):
            continue
        n = _positive(entry.get("context_length"))
        for key in ("name", "model"):
            name = entry.get(key)
            if n and isinstance(name, str):
                out[name] = Window(n, OLLAMA_PS_SOURCE)
    return out


_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def window_from_ollama_show(show: Any) -> Window | None:
    """Ollama `/api/show`: a `num_ctx` the model's Modelfile sets (`parameters`)."""
    params = show.get("parameters") if isinstance(show, dict) else None
    found = _NUM_CTX.search(params) if isinstance(params, str) else None
    if found is None:
        return None
    return Window(int(found.group(1)), "Ollama /api/show num_ctx")


def _version(text: str | None) -> tuple[int, ...] | None:
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if found is None:
        return None
    return tuple(int(p or 0) for p in found.groups())


def ollama_default(version: str | None) -> Window:
    """The window Ollama serves a model whose Modelfile sets no `num_ctx`."""
    since, tokens = OLLAMA_DEFAULT
    parsed = _version(version)
    if parsed is None or parsed < since:
        tokens = _OLLAMA_OLD_DEFAULT  # unknown: assume the smaller, older default
    return Window(tokens, f"Ollama {version or '?'} default num_ctx")


# -- learning (I/O, off the request path) ----------------------------------------------------


async def _get(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    body: Any = None,
) -> Any:
    """The JSON answer to a GET (or, with `body`, a POST), read only up to the probe limit
    (past it the read stops: a transport error for the caller); None for an error status."""
    method = "GET" if body is None else "POST"
    response = await get_bounded(client, url, headers, timeout, method=method, body=body)
    if not response.is_success:
        return None
    return orjson.loads(response.content)


async def learn(
    kind: str,
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    models: Iterable[str],
    *,
    version: str | None = None,
    timeout: float = 5.0,
) -> dict[str, Window]:
    """The windows a backend serves, by model name (`ANY` for a one-model server).
    Never raises for a server's failure: what can't be read is simply not learned."""
    try:
        return await _learn(kind, client, base_url, headers, list(models), version, timeout)
    except Exception as exc:  # a probe never fails the health loop; the config's window holds
        log.debug("learning the windows of %s failed: %r", base_url, exc)
        return {}


async def _learn(
    kind: str,
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    models: list[str],
    version: str | None,
    timeout: float,
) -> dict[str, Window]:
    if kind == "llamacpp":
        window = window_from_llamacpp(
            await _get(client, join_url(base_url, "/props"), headers, timeout)
        )
        return {ANY: window} if window else {}
    if kind == "vllm":
        return window_from_vllm(
            await _get(client, join_url(base_url, "/v1/models"), headers, timeout)
        )
    if kind == "lmstudio":
        return window_from_lmstudio(
            await _get(client, join_url(base_url, "/api/v0/models"), headers, timeout)
        )
    if kind != "ollama":
        return {}
    if version is None:
        answer = await _get(client, join_url(base_url, "/api/version"), headers, timeout)
        version = answer.get("version") if isinstance(answer, dict) else None
    found = window_from_ollama_ps(
        await _get(client, join_url(base_url, "/api/ps"), headers, timeout)
    )
    out: dict[str, Window] = {}
    for model in models:
        if model in found:
            out[model] = found[model]
            continue
        show_url = join_url(base_url, "/api/show")
        shown = await _get(client, show_url, headers, timeout, body={"model": model})
        out[model] = window_from_ollama_show(shown) or ollama_default(version)
    return out


# -- counting ----------------------------------------------------------------------------------


def _texts(payload: Mapping[str, Any]) -> list[str]:
    """Every piece of text in a request the model reads."""
    out: list[str] = []
    for key in ("prompt", "suffix", "input"):
        value = payload.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    out.append(part["text"])
        calls = message.get("tool_calls")
        if calls:
            out.append(orjson.dumps(calls).decode())
    tools = payload.get("tools")
    if tools:
        out.append(orjson.dumps(tools).decode())
    return out


def prompt_text(payload: Mapping[str, Any]) -> str:
    """The request's text as one string, for a tokenizer endpoint."""
    return "\n".join(_texts(payload))


def _messages(payload: Mapping[str, Any]) -> int:
    messages = payload.get("messages")
    return len(messages) if isinstance(messages, list) else 1


def estimate(payload: Mapping[str, Any]) -> int:
    """Tokens the prompt will take, estimated from its characters with a safety margin."""
    chars = sum(estimate_tokens(t) for t in _texts(payload))
    return math.ceil(chars * ESTIMATE_MARGIN) + PER_MESSAGE * _messages(payload)


def borderline(tokens: int, windows: Iterable[int], max_tokens: int | None) -> bool:
    """Whether an estimate is close enough to one of `windows` that a real count could
    change the decision."""
    need = tokens + (max_tokens or 0)
    return any(abs(need - w) <= BORDER * w for w in windows)


async def count(
    client: httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    payload: Mapping[str, Any],
    *,
    timeout: float = TOKENIZE_TIMEOUT,
) -> int | None:
    """The prompt's tokens by llama-server's own tokenizer (`POST /tokenize`), plus the
    template's tokens per message; None when it can't say in time."""
    text = prompt_text(payload)
    if len(text) > TOKENIZE_MAX_CHARS:
        return None
    try:
        response = await asyncio.wait_for(
            client.post(
                join_url(base_url, "/tokenize"),
                content=orjson.dumps({"content": text}),
                headers=dict(headers),
                timeout=timeout,
            ),
            timeout,
        )
        tokens = orjson.loads(response.content).get("tokens") if response.is_success else None
    except (httpx.HTTPError, TimeoutError, orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(tokens, list):
        return None
    return len(tokens) + PER_MESSAGE * _messages(payload)
