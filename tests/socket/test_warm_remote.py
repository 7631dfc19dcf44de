"""Warm-aware routing for servers that load models themselves: a fake Ollama answering
`/api/ps` and a fake LM Studio answering `/api/v0/models` with each model's `state`,
in their exact wire formats (Ollama's API docs, LM Studio's REST API v0), on real sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxy.app import create_app
from tests.helpers.config import write_config
from tests.helpers.fakeupstream import run_server
from tests.helpers.openai_wire import full, lifespan
from tests.helpers.server_samples import LMSTUDIO_V0_MODELS

BIG, SMALL = "qwen2.5-coder:14b", "qwen2.5-coder:1.5b"


class FakeLoader:
    """A model server that loads a model when asked for it; `loaded` is what it holds."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.loaded: set[str] = {SMALL}

    def _ps(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "size": 6591830464,
                    "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "qwen2",
                        "families": ["qwen2"],
                        "parameter_size": "14.8B",
                        "quantization_level": "Q4_K_M",
                    },
                    "expires_at": "2026-12-02T16:47:07.93355-07:00",
                    "size_vram": 0,
                    "context_length": 4096,
                }
                for name in sorted(self.loaded)
            ]
        }

    def _v0(self) -> dict[str, Any]:
        template = LMSTUDIO_V0_MODELS["data"][1]
        return {
            "object": "list",
            "data": [
                {**template, "id": name, "state": "loaded" if name in self.loaded else "not-loaded"}
                for name in (BIG, SMALL)
            ],
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        path = scope["path"]
        body: Any
        if path == "/api/version":
            body = {"version": "0.6.2"}
        elif path == "/api/ps" and self.kind == "ollama":
            body = self._ps()
        elif path == "/api/v0/models" and self.kind == "lmstudio":
            body = self._v0()
        elif path == "/v1/models":
            body = {"object": "list", "data": [{"id": BIG, "object": "model"}]}
        elif path == "/v1/chat/completions":
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            model = orjson.loads(raw)["model"]
            self.loaded.add(model)  # loaded on demand, as Ollama and LM Studio do
            body = full(True, model, f"{self.kind} {model}")
        else:
            body = {"error": "not found"}
        data = orjson.dumps(body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@pytest.fixture(params=["ollama", "lmstudio"])
def stack(request: Any, tmp_path: Path) -> Iterator[tuple[str, FakeLoader]]:
    fake = FakeLoader(request.param)
    with run_server(fake) as upstream:
        data = {
            "server": {"state_dir": str(tmp_path / "state"), "health_interval": 0.1},
            "backends": {"local": {"kind": request.param, "url": upstream}},
            "variants": {
                "big": {"backend": "local", "model": BIG},
                "small": {"backend": "local", "model": SMALL},
            },
            "routes": {
                "completion": {"candidates": ["big", "small"], "max_cold_start": 0.5},
                "instruction": ["big", "small"],
                "default": "small",
            },
        }
        app = create_app(write_config(tmp_path, data))
        with run_server(app) as url:
            yield url, fake


def ask(url: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def loaded_seen(url: str) -> list[str] | None:
    return httpx.get(url + "/backends", timeout=10).json()["backends"]["local"].get("loaded_models")


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_model_the_server_does_not_hold_is_cold(stack: tuple[str, FakeLoader]) -> None:
    url, fake = stack
    wait_for(lambda: loaded_seen(url) == [SMALL])
    answer = ask(url, "completion")
    assert answer.headers["x-route-variant"] == "small"
    assert "skipped big: cold, load time unknown > 0.5 s budget" in answer.headers["x-route-reason"]
    # without a budget the best candidate serves, and the server loads it
    answer = ask(url, "instruction")
    assert answer.headers["x-route-variant"] == "big"
    assert answer.json()["choices"][0]["message"]["content"] == f"{fake.kind} {BIG}"
    # it answered, so it is loaded (before the next poll says so too)
    answer = ask(url, "completion")
    assert answer.headers["x-route-variant"] == "big"
    wait_for(lambda: loaded_seen(url) == sorted([BIG, SMALL]))
    # the server unloads it (keep_alive ran out): cold again at the next look
    fake.loaded = {SMALL}
    wait_for(lambda: loaded_seen(url) == [SMALL])
    assert ask(url, "completion").headers["x-route-variant"] == "small"
