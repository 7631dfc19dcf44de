"""Shared behaviour for servers whose only discovery API is OpenAI's ``GET /v1/models``."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from .base import BackendAdapter, ModelInfo, join_url, openai_model_list, status_detail

__all__ = ["OpenAIModelsAdapter"]


class OpenAIModelsAdapter(BackendAdapter):
    """Health is ``GET /v1/models`` answering 200 with a model list; models come from it too."""

    health_path = "/v1/models"

    def interpret_health(self, response: httpx.Response) -> tuple[bool, str]:
        if response.status_code != 200:
            return False, status_detail(response)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False, f"unexpected {self.health_path} body: {response.text[:200]!r}"
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return False, f"unexpected {self.health_path} body: {response.text[:200]!r}"
        return True, f"ok ({len(data)} models)"

    async def list_models(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> list[ModelInfo]:
        body = await self.get_json(client, base_url, "/v1/models", headers)
        return openai_model_list(body, join_url(base_url, "/v1/models"))
