"""Which models a server holds in memory now: Ollama's `/api/ps`, LM Studio's model state.

Ollama loads models on demand inside one server and unloads them after
`keep_alive`; `GET /api/ps` lists the ones in memory:

    {"models": [{"name": "gemma3:latest", "model": "gemma3:latest", "size": 6591830464,
                 "digest": "…", "details": {…}, "expires_at": "…", "size_vram": 5333539264}]}

A model named without a tag is Ollama's `:latest`, so names are compared with the tag
filled in. LM Studio's REST API (`GET /api/v0/models`, >= 0.3.6) gives every model a
`state`, `"loaded"` or `"not-loaded"`. Other kinds can't say: `fetch_loaded` returns None
for them (and for a server that doesn't answer), which warm-aware routing reads as warm,
as it did before it knew anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import BackendError
from .lmstudio import LMStudioAdapter
from .ollama import OllamaAdapter

__all__ = ["LOADED_KINDS", "fetch_loaded", "lmstudio_loaded", "model_key", "ollama_running"]

#: the kinds that can say which models they hold
LOADED_KINDS = frozenset({"ollama", "lmstudio"})


def model_key(kind: str, model: str) -> str:
    """How a model name is compared with a server's list (Ollama: with its tag)."""
    if kind == "ollama" and ":" not in model.rsplit("/", 1)[-1]:
        return model + ":latest"
    return model


def ollama_running(body: Any) -> frozenset[str] | None:
    """The models in an `/api/ps` answer (both `name` and `model`, tags filled in); None
    when the answer is not such a list."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        return None
    out: set[str] = set()
    for item in models:
        if isinstance(item, dict):
            for key in ("name", "model"):
                value = item.get(key)
                if isinstance(value, str) and value:
                    out.add(model_key("ollama", value))
    return frozenset(out)


def lmstudio_loaded(body: Any) -> frozenset[str] | None:
    """The ids of an `/api/v0/models` answer whose `state` is `loaded`; None when the
    answer is not such a list (an LM Studio before 0.3.6)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return frozenset(
        item["id"]
        for item in data
        if isinstance(item, dict)
        and item.get("state") == "loaded"
        and isinstance(item.get("id"), str)
    )


async def fetch_loaded(
    kind: str, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
) -> frozenset[str] | None:
    """The models `kind`'s server at `base_url` holds now; None when it can't say."""
    try:
        if kind == "ollama":
            body = await OllamaAdapter().get_json(client, base_url, "/api/ps", headers)
            return ollama_running(body)
        if kind == "lmstudio":
            body = await LMStudioAdapter().get_json(client, base_url, "/api/v0/models", headers)
            return lmstudio_loaded(body)
    except BackendError:
        return None
    return None
