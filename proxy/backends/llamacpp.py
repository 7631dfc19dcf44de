"""llama.cpp ``llama-server``.

``GET /health`` answers 200 ``{"status": "ok"}`` once the model is loaded and 503 while it
loads (``{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}``;
older builds sent ``{"status": "loading model"}``). ``GET /v1/models`` lists the one loaded
model with a ``meta`` object (``n_params``, ``size``, ``n_ctx_train``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from .base import BackendAdapter, ModelInfo, error_message, openai_model_list, status_detail

__all__ = ["LlamaCppAdapter"]


class LlamaCppAdapter(BackendAdapter):
    kind = "llamacpp"
    health_path = "/health"

    def interpret_health(self, response: httpx.Response) -> tuple[bool, str]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        status = body.get("status") if isinstance(body, dict) else None
        if response.status_code == 200:
            if status == "ok":
                return True, "ok"
            return False, f"unexpected /health body: {response.text[:200]!r}"
        if response.status_code == 503:
            message = error_message(body) or (status if isinstance(status, str) else None)
            if message is not None:
                # "Loading model" (current) or "loading model" (older builds).
                return False, message.lower() if "loading" in message.lower() else message
        return False, status_detail(response)

    async def list_models(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> list[ModelInfo]:
        body = await self.get_json(client, base_url, "/v1/models", headers)
        return openai_model_list(body, base_url.rstrip("/") + "/v1/models")
