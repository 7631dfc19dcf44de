"""Ollama.

``GET /api/version`` (``{"version": "0.5.7"}``) is the cheapest probe: it loads no model.
``GET /api/tags`` lists the pulled models: ``{"models": [{"name", "model", "modified_at",
"size", "digest", "details": {"format", "family", "parameter_size", "quantization_level",
...}}]}``. The OpenAI routes live under ``/v1`` on the same port.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from .base import BackendAdapter, BackendProtocolError, ModelInfo, join_url, status_detail

__all__ = ["OllamaAdapter"]


class OllamaAdapter(BackendAdapter):
    kind = "ollama"
    health_path = "/api/version"

    def interpret_health(self, response: httpx.Response) -> tuple[bool, str]:
        if response.status_code != 200:
            return False, status_detail(response)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False, f"unexpected /api/version body: {response.text[:200]!r}"
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str):
            return False, f"unexpected /api/version body: {response.text[:200]!r}"
        return True, f"ollama {version}"

    async def list_models(
        self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]
    ) -> list[ModelInfo]:
        url = join_url(base_url, "/api/tags")
        body = await self.get_json(client, base_url, "/api/tags", headers)
        entries = body.get("models") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise BackendProtocolError(f"GET {url}: expected an object with a 'models' list")
        models: list[ModelInfo] = []
        for entry in entries:
            name = (entry.get("name") or entry.get("model")) if isinstance(entry, dict) else None
            if not isinstance(entry, dict) or not isinstance(name, str):
                raise BackendProtocolError(f"GET {url}: model entry without a name: {entry!r}")
            models.append(ModelInfo(id=name, raw=entry))
        return models
