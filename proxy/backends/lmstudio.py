"""LM Studio.

``GET /api/v0/models`` (LM Studio >= 0.3.6) lists downloaded and loaded models with
``type``, ``publisher``, ``arch``, ``compatibility_type``, ``quantization``, ``state``
(``"loaded"``/``"not-loaded"``) and ``max_context_length``. Older builds answer that route
with an error, so listing falls back to OpenAI's ``GET /v1/models``, which is also the
health probe (LM Studio has no dedicated health route).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from ._openai_like import OpenAIModelsAdapter
from .base import (
    BackendProtocolError,
    BackendUnavailableError,
    ModelInfo,
    join_url,
    openai_model_list,
)

__all__ = ["LMStudioAdapter"]


class LMStudioAdapter(OpenAIModelsAdapter):
    kind = "lmstudio"

    async def list_models(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> list[ModelInfo]:
        try:
            body = await self.get_json(client, base_url, "/api/v0/models", headers)
            return openai_model_list(body, join_url(base_url, "/api/v0/models"))
        except BackendUnavailableError as exc:
            # No status means the server is unreachable: the fallback would fail the same way.
            if exc.status_code is None:
                raise
        except BackendProtocolError:
            # Older LM Studio answers unknown routes with 200 {"error": "Unexpected endpoint"}.
            pass
        return await super().list_models(client, base_url, headers)
