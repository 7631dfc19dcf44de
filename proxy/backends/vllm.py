"""vLLM's OpenAI server.

``GET /health`` answers 200 with an empty body when the engine is alive (and 500/503 when
it is dead or sleeping). ``GET /v1/models`` entries carry ``root`` (the weights path or hub
id), ``parent`` (the base model for a LoRA) and ``max_model_len``.
"""

from __future__ import annotations

import httpx

from ._openai_like import OpenAIModelsAdapter
from .base import status_detail

__all__ = ["VLLMAdapter"]


class VLLMAdapter(OpenAIModelsAdapter):
    kind = "vllm"
    health_path = "/health"

    def interpret_health(self, response: httpx.Response) -> tuple[bool, str]:
        if response.status_code == 200:
            return True, "ok"
        return False, status_detail(response)
