"""Exact JSON the model servers send, shared by the adapter and identity tests.

vLLM: `GET /v1/models`. LM Studio: the REST API v0 `GET /api/v0/models` and the OpenAI-compatible
`GET /v1/models`, as in LM Studio's documentation.
"""

from __future__ import annotations

from typing import Any

LMSTUDIO_V0_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "qwen2-vl-7b-instruct",
            "object": "model",
            "type": "vlm",
            "publisher": "mlx-community",
            "arch": "qwen2_vl",
            "compatibility_type": "mlx",
            "quantization": "4bit",
            "state": "not-loaded",
            "max_context_length": 32768,
        },
        {
            "id": "meta-llama-3.1-8b-instruct",
            "object": "model",
            "type": "llm",
            "publisher": "lmstudio-community",
            "arch": "llama",
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "loaded",
            "max_context_length": 131072,
        },
    ],
}
LMSTUDIO_V1_MODELS = {
    "data": [
        {"id": "meta-llama-3.1-8b-instruct", "object": "model", "owned_by": "organization_owner"}
    ],
    "object": "list",
}


def vllm_models(model_id: str, root: str) -> dict[str, Any]:
    """vLLM's `GET /v1/models`: one ModelCard (vllm/entrypoints/openai/protocol.py)."""
    return {
        "object": "list",
        "data": [
            {
                "id": model_id,
                "object": "model",
                "created": 1764101234,
                "owned_by": "vllm",
                "root": root,
                "parent": None,
                "max_model_len": 32768,
                "permission": [
                    {
                        "id": "modelperm-5f1c0b5c1b2a4a8e9d3f7e6a5b4c3d2e",
                        "object": "model_permission",
                        "created": 1764101234,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
        ],
    }
