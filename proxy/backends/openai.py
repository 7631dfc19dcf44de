"""A generic OpenAI-compatible server: only ``/v1/...`` is assumed."""

from __future__ import annotations

from ._openai_like import OpenAIModelsAdapter

__all__ = ["OpenAIAdapter"]


class OpenAIAdapter(OpenAIModelsAdapter):
    kind = "openai"
