"""Exact JSON the model servers send, shared by the adapter and identity tests.

LM Studio: the REST API v0 `GET /api/v0/models` and the OpenAI-compatible
`GET /v1/models`, as in LM Studio's documentation.
"""

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
