"""One adapter per model-server kind: a cheap health probe and a model listing.

>>> adapter_for("ollama").health_path
'/api/version'

Every kind serves OpenAI's routes under ``base_url + "/v1/..."``; adapters only cover what
differs between kinds. See :mod:`proxy.backends.base` for the types and exception tree.
"""

from __future__ import annotations

from .base import (
    BackendAdapter,
    BackendError,
    BackendProtocolError,
    BackendUnavailableError,
    HealthResult,
    ModelInfo,
)
from .llamacpp import LlamaCppAdapter
from .lmstudio import LMStudioAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter
from .vllm import VLLMAdapter

__all__ = [
    "ADAPTERS",
    "KINDS",
    "BackendAdapter",
    "BackendError",
    "BackendProtocolError",
    "BackendUnavailableError",
    "HealthResult",
    "LMStudioAdapter",
    "LlamaCppAdapter",
    "ModelInfo",
    "OllamaAdapter",
    "OpenAIAdapter",
    "VLLMAdapter",
    "adapter_for",
]

#: One shared, stateless instance per kind.
ADAPTERS: dict[str, BackendAdapter] = {
    adapter.kind: adapter
    for adapter in (
        LlamaCppAdapter(),
        OllamaAdapter(),
        LMStudioAdapter(),
        VLLMAdapter(),
        OpenAIAdapter(),
    )
}
KINDS: tuple[str, ...] = tuple(ADAPTERS)

_ALIASES = {
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "llama-server": "llamacpp",
    "lm-studio": "lmstudio",
    "lm_studio": "lmstudio",
    "openai-compatible": "openai",
    "openai_compatible": "openai",
}


def adapter_for(kind: str) -> BackendAdapter:
    """The adapter for a config ``kind`` (case-insensitive; a few spellings accepted)."""
    key = kind.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return ADAPTERS[key]
    except KeyError:
        raise ValueError(
            f"unknown backend kind {kind!r}; expected one of: {', '.join(KINDS)}"
        ) from None
