"""Serving windows (`proxy.contextwindow`): read from each server's own answer shape,
the prompt's size estimated, and the runtime's decision when a prompt doesn't fit:
skip to a variant whose window holds it, or OpenAI's 400 `context_length_exceeded`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy import contextwindow as cw
from proxy.config import parse_config
from proxy.errors import ConfigError, ContextLengthExceeded, render
from proxy.runtime import Runtime

# llama-server b6xxx `/props` with `-c 2048 -np 2` (trimmed; measured on the provisioned build)
LLAMA_PROPS = {
    "default_generation_settings": {"n_ctx": 1024, "params": {"seed": 4294967295}},
    "total_slots": 2,
    "model_path": "/models/gemma-3-270m-q4_k_m.gguf",
    "build_info": "b0-unknown",
}
VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "Qwen/Qwen2.5-7B-Instruct",
            "object": "model",
            "owned_by": "vllm",
            "root": "Qwen/Qwen2.5-7B-Instruct",
            "parent": None,
            "max_model_len": 16384,
        }
    ],
}
LMSTUDIO_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "qwen2.5-7b-instruct",
            "object": "model",
            "type": "llm",
            "state": "loaded",
            "max_context_length": 32768,
            "loaded_context_length": 4096,
        },
        {"id": "other", "type": "llm", "state": "not-loaded", "max_context_length": 8192},
    ],
}


def test_each_servers_window() -> None:
    assert cw.window_from_llamacpp(LLAMA_PROPS) == cw.Window(1024, "llama-server /props n_ctx")
    assert cw.window_from_llamacpp({"n_ctx": 512}) == cw.Window(512, "llama-server /props n_ctx")
    assert cw.window_from_llamacpp({"default_generation_settings": {}}) is None
    assert cw.window_from_vllm(VLLM_MODELS)["Qwen/Qwen2.5-7B-Instruct"].tokens == 16384
    assert cw.window_from_lmstudio(LMSTUDIO_MODELS) == {
        "qwen2.5-7b-instruct": cw.Window(4096, "LM Studio loaded_context_length")
    }
    ps = {"models": [{"name": "qwen2.5:7b", "model": "qwen2.5:7b", "context_length": 8192}]}
    assert cw.window_from_ollama_ps(ps)["qwen2.5:7b"].tokens == 8192
    assert cw.window_from_ollama_ps({"models": [{"name": "old"}]}) == {}
    show = {"parameters": 'num_ctx                        16384\nstop "<|im_end|>"'}
    assert cw.window_from_ollama_show(show) == cw.Window(16384, "Ollama /api/show num_ctx")
    assert cw.window_from_ollama_show({"parameters": 'stop "<|im_end|>"'}) is None
    assert cw.window_from_ollama_show({}) is None


@pytest.mark.parametrize(
    ("version", "tokens"),
    [("0.20.4", 4096), ("0.6.4", 4096), ("0.6.3", 2048), ("0.3.14", 2048), (None, 2048)],
)
def test_ollamas_default_window_by_version(version: str | None, tokens: int) -> None:
    assert cw.ollama_default(version).tokens == tokens


def test_the_estimate_counts_every_part_the_model_reads() -> None:
    plain = {"messages": [{"role": "user", "content": "x" * 3600}]}
    assert cw.estimate(plain) == round(1000 * cw.ESTIMATE_MARGIN) + cw.PER_MESSAGE
    tools = {**plain, "tools": [{"type": "function", "function": {"name": "f" * 360}}]}
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 3600}]}]}
    assert cw.estimate(tools) > cw.estimate(plain)
    assert cw.estimate(parts) == cw.estimate(plain)
    assert cw.estimate({"prompt": "x" * 36}) == round(10 * cw.ESTIMATE_MARGIN) + cw.PER_MESSAGE


def test_borderline() -> None:
    assert cw.borderline(1100, [1024], None)
    assert cw.borderline(900, [1024], 100)
    assert not cw.borderline(5000, [1024, 32768], None)
    assert not cw.borderline(100, [1024], None)


def runtime(learned: dict[str, dict[str, cw.Window]] | None = None) -> Runtime:
    rt = Runtime(
        parse_config(
            {
                "backends": {
                    "ol": {"kind": "ollama", "url": "http://127.0.0.1:1"},
                    "big": {"kind": "llamacpp", "url": "http://127.0.0.1:2"},
                },
                "variants": {
                    "small": {"backend": "ol", "model": "qwen2.5:7b", "context_window": 32768},
                    "large": {"backend": "big", "model": "m"},
                },
                "routes": {"instruction": ["small", "large"], "default": "small"},
            }
        ),
        "<test>",
        {},
    )
    for backend, windows in (learned or {}).items():
        rt.backends[backend].windows = windows
    return rt


def chat(text: str, model: str = "instruction", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


OLLAMA = {"ol": {"qwen2.5:7b": cw.ollama_default("0.20.4")}}
BOTH = {**OLLAMA, "big": {cw.ANY: cw.Window(16384, "llama-server /props n_ctx")}}


def test_the_learned_window_caps_the_declared_one() -> None:
    assert runtime().windows(["small", "large"]) == {
        "small": cw.Window(32768, "config context_window")
    }
    assert runtime(OLLAMA).windows(["small"])["small"].tokens == 4096
    assert runtime(BOTH).windows(["large"])["large"].tokens == 16384


def test_a_prompt_over_the_window_moves_to_a_variant_it_fits() -> None:
    decision = runtime(BOTH).decide("chat", chat("word " * 4000))
    assert decision.candidates == ("large",)
    assert decision.skipped["small"].startswith("context window 4096 tokens < ~")
    assert decision.context is not None and decision.context["counted_by"] == "estimate"
    short = runtime(BOTH).decide("chat", chat("hello"))
    assert short.candidates == ("small", "large")


def test_max_tokens_counts_towards_the_window() -> None:
    decision = runtime(BOTH).decide("chat", chat("hello", max_tokens=5000))
    assert decision.candidates == ("large",)


def test_a_prompt_no_window_holds_is_context_length_exceeded() -> None:
    with pytest.raises(ContextLengthExceeded) as caught:
        runtime(BOTH).decide("chat", chat("word " * 20000))
    status, _, body = render(caught.value)
    assert status == 400
    assert caught.value.variants == ("small", "large")
    error = orjson.loads(body)["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["type"] == "invalid_request_error"
    assert error["context_window"] == 16384 and error["prompt_tokens"] > 16384
    with pytest.raises(ContextLengthExceeded) as named:
        runtime(OLLAMA).decide("chat", chat("word " * 4000, model="small"))
    assert named.value.extra["context_window"] == 4096


def test_a_real_count_replaces_the_estimate() -> None:
    text = "word " * 4000  # ~6,400 estimated: over Ollama's 4096
    decision = runtime(BOTH).decide("chat", chat(text), counted=(3000, "llama-server /tokenize"))
    assert decision.candidates == ("small", "large")
    assert decision.context is not None
    assert decision.context["prompt_tokens"] == 3000
    assert decision.context["counted_by"] == "llama-server /tokenize"


def test_embeddings_never_wait_on_a_window() -> None:
    decision = runtime(BOTH).decide("embeddings", {"model": "auto", "input": "word " * 20000})
    assert decision.cls == "embeddings"


@pytest.mark.parametrize("value", [["tool_call_index"], ["ollama-finish-reason"], ["all"]])
def test_repairs_off_takes_known_names(value: list[str]) -> None:
    cfg = parse_config(
        {
            "server": {"repairs_off": value, "show_variant": "off", "replay_size": 0},
            "backends": {"b": {"kind": "ollama", "url": "http://127.0.0.1:1"}},
            "variants": {"v": {"backend": "b", "model": "m"}},
            "routes": {"default": "v"},
        }
    )
    assert cfg.server.repairs_off == value


def test_an_unknown_repair_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "server": {"repairs_off": ["tool_index"]},
                "backends": {"b": {"kind": "ollama", "url": "http://127.0.0.1:1"}},
                "variants": {"v": {"backend": "b", "model": "m"}},
                "routes": {"default": "v"},
            }
        )
    assert "repairs_off" in str(caught.value) and "tool_index" in str(caught.value)


def test_num_ctx_is_the_window_for_chat_and_goes_native() -> None:
    data = {
        "backends": {"ol": {"kind": "ollama", "url": "http://127.0.0.1:1"}},
        "variants": {
            "long": {
                "backend": "ol",
                "model": "qwen2.5:7b",
                "num_ctx": 32768,
                "caps": {"max_tokens": 50},
            }
        },
        "routes": {"default": "long"},
    }
    rt = Runtime(parse_config(data), "<test>", {})
    rt.backends["ol"].windows = OLLAMA["ol"]  # the server's own 4096 without num_ctx
    assert rt.windows(["long"])["long"] == cw.Window(32768, "num_ctx sent to Ollama /api/chat")
    assert rt.windows(["long"], "completions")["long"].tokens == 4096
    # /api/ps reports the 32768 a chat just loaded; a completion still gets the default
    rt.backends["ol"].windows = {"qwen2.5:7b": cw.Window(32768, "Ollama /api/ps context_length")}
    rt.backends["ol"].version = "0.20.4"
    assert rt.windows(["long"], "completions")["long"] == cw.ollama_default("0.20.4")
    upstream = rt.upstream_for("long", "chat", chat("hi", model="long"))
    assert upstream.path == "/api/chat" and upstream.adaptation == "ollama-native"
    sent = orjson.loads(upstream.body)
    assert sent["options"] == {"num_ctx": 32768, "num_predict": 50}
    assert upstream.headers() == [(b"x-route-chat", b"ollama-native")]
    assert rt.upstream_for("long", "completions", {"model": "long", "prompt": "x"}).path == (
        "/v1/completions"
    )


def test_num_ctx_only_for_ollama() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "backends": {"b": {"kind": "llamacpp", "url": "http://127.0.0.1:1"}},
                "variants": {"v": {"backend": "b", "model": "m", "num_ctx": 8192}},
                "routes": {"default": "v"},
            }
        )
    assert "variants.v.num_ctx" in str(caught.value)
