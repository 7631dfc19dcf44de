"""Backend quirks fixed in one place, over real sockets, against a fake that speaks
Ollama's exact wire format (`tests/helpers/fakeollama.py`), driven by the openai SDK.

* parallel tool calls streamed with `index: 0` each arrive as separate, whole calls;
* a prompt over Ollama's serving window (learned from `/api/version`, `/api/ps`,
  `/api/show`) never reaches it: it moves to a variant whose window fits, or gets
  OpenAI's 400 `context_length_exceeded`; the fake records any silent truncation;
* `model` names the routed variant in every chunk, `x_route` the class and variant in
  the finishing chunk, and the replay id explains the decision;
* each rewrite turns off (`server.repairs_off`, `server.show_variant: off`), and then
  the answer is the backend's bytes.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from proxy.app import create_app
from tests.helpers.config import write_config
from tests.helpers.fakeollama import FakeOllama
from tests.helpers.fakeupstream import run_server

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "What's the weather in Paris and in Tokyo right now?"}]


def config(small: str, large: str | None = None, **server: Any) -> dict[str, Any]:
    backends: dict[str, Any] = {"small": {"kind": "ollama", "url": small}}
    variants: dict[str, Any] = {"qwen": {"backend": "small", "model": "qwen2.5:7b"}}
    route = ["qwen"]
    if large is not None:
        backends["large"] = {"kind": "ollama", "url": large}
        variants["qwen-long"] = {"backend": "large", "model": "qwen2.5:7b-32k"}
        route.append("qwen-long")
    return {
        "server": {"health_interval": 0.5, **server},
        "backends": backends,
        "variants": variants,
        "routes": {"instruction": route, "complex": route, "default": "qwen"},
    }


@contextlib.contextmanager
def proxy_for(
    tmp_path: Path, data: dict[str, Any], backends: int = 1, keyed: bool = False
) -> Iterator[str]:
    """The proxy on a real socket, once it has learned every backend's windows."""
    path = write_config(tmp_path, data)
    auth = {"authorization": "Bearer sk-quirk-one"} if keyed else {}
    with run_server(create_app(path)) as url:
        deadline = time.monotonic() + 20
        while True:
            status = httpx.get(url + "/backends", headers=auth, timeout=5).json()["backends"]
            learned = [b for b in status.values() if b["context_windows"]]
            if len(learned) == backends:
                break
            assert time.monotonic() < deadline, f"windows never learned: {status}"
            time.sleep(0.05)
        yield url


@pytest.fixture
def ollama() -> Iterator[tuple[FakeOllama, str]]:
    fake = FakeOllama()
    with run_server(fake) as url:
        yield fake, url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20)


def merged_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    """Tool calls as the openai SDK's users merge stream deltas: by `index`."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.id or ""
                slot["name"] += (call.function and call.function.name) or ""
                slot["arguments"] += (call.function and call.function.arguments) or ""
    return calls


def test_parallel_tool_calls_arrive_whole_with_the_variant_shown(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    fake, upstream = ollama
    with proxy_for(tmp_path, config(upstream)) as url:
        raw = client(url).chat.completions.with_raw_response.create(
            model="auto", messages=ASK, tools=TOOLS, stream=True
        )
        chunks = list(raw.parse())
        replay = raw.headers["x-route-replay"]
        explained = httpx.get(f"{url}/route/explain/{replay}", timeout=5)
    calls = merged_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert {c["arguments"] for c in calls.values()} == {'{"city":"Paris"}', '{"city":"Tokyo"}'}
    assert all(c["name"] == "get_weather" and c["id"] for c in calls.values())
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # the variant, not the backend's name, in every chunk; the route in the finishing one
    assert {c.model for c in chunks} == {"qwen"}
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    route = (finishing[-1].model_extra or {})["x_route"]
    assert route["variant"] == "qwen" and route["replay_id"] == replay
    assert route["class"] in ("instruction", "complex")
    # the replay id explains the decision
    assert explained.status_code == 200
    why = explained.json()
    assert why["replay_id"] == replay and why["variant"] == "qwen" and why["served_by"] == "qwen"
    assert why["class"] == route["class"] and why["status"] == 200
    assert fake.requests[-1]["model"] == "qwen2.5:7b"


def test_an_old_ollama_without_indexes_or_tool_calls_finish_is_repaired(tmp_path: Path) -> None:
    fake = FakeOllama(version="0.3.14")
    with run_server(fake) as upstream, proxy_for(tmp_path, config(upstream)) as url:
        chunks = list(
            client(url).chat.completions.create(
                model="qwen", messages=ASK, tools=TOOLS, stream=True
            )
        )
    calls = merged_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert calls[1]["arguments"] == '{"city":"Tokyo"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # a request that named its variant keeps the backend's `model` (show_variant: auto)
    assert {c.model for c in chunks} == {"qwen2.5:7b"}


def test_each_rewrite_turns_off_and_the_stream_is_the_backends_bytes(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    _, upstream = ollama
    data = config(upstream, show_variant="off", repairs_off=["tool_call_index", "finish_reason"])
    body = {"model": "auto", "messages": ASK, "tools": TOOLS, "stream": True}
    with proxy_for(tmp_path, data) as url:
        via_proxy = httpx.post(url + "/v1/chat/completions", json=body, timeout=20)
        chunks = list(
            client(url).chat.completions.create(
                model="auto", messages=ASK, tools=TOOLS, stream=True
            )
        )
    direct = httpx.post(upstream + "/v1/chat/completions", json={**body, "model": "qwen2.5:7b"})

    def timeless(body: bytes) -> bytes:
        return re.sub(rb'"created":\d+', b'"created":0', body)

    assert timeless(via_proxy.content) == timeless(direct.content)  # byte for byte
    assert b'"model":"qwen2.5:7b"' in via_proxy.content
    # what the quirk does to SDK users when it is left alone: one call, arguments run together
    calls = merged_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["arguments"] == '{"city":"Paris"}{"city":"Tokyo"}'


def test_an_over_window_prompt_never_reaches_ollama(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    fake, upstream = ollama
    long_text = "Summarise the following log.\n" + "the quick brown fox jumps over it. " * 700
    with proxy_for(tmp_path, config(upstream)) as url:
        status = httpx.get(url + "/backends", timeout=5).json()["backends"]
        window = status["small"]["context_windows"]["qwen2.5:7b"]
        with client(url) as sdk:
            with pytest.raises(openai.BadRequestError) as caught:
                sdk.chat.completions.create(
                    model="qwen", messages=[{"role": "user", "content": long_text}]
                )
            with pytest.raises(openai.BadRequestError) as routed:
                sdk.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": long_text}]
                )
            fits = sdk.chat.completions.create(model="qwen", messages=ASK)
    assert window == {"tokens": 4096, "source": "Ollama 0.20.4 default num_ctx"}
    for exc in (caught.value, routed.value):
        error = exc.body
        assert isinstance(error, dict)
        assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
        assert error["context_window"] == 4096 and error["prompt_tokens"] > 4096
        assert "4096" in error["message"]
    assert fits.choices[0].message.content == "Hello there!"
    assert len(fake.requests) == 1 and fake.truncated == []


def test_a_long_prompt_moves_to_the_variant_whose_window_fits(tmp_path: Path) -> None:
    small, large = FakeOllama(), FakeOllama(models=("qwen2.5:7b-32k",), num_ctx=32768)
    long_text = "Explain what this log says.\n" + "the quick brown fox jumps over it. " * 700
    with (
        run_server(small) as small_url,
        run_server(large) as large_url,
        proxy_for(tmp_path, config(small_url, large_url), backends=2) as url,
    ):
        status = httpx.get(url + "/backends", timeout=5).json()["backends"]
        raw = client(url).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": long_text}]
        )
        reply = raw.parse()
        why = httpx.get(f"{url}/route/explain/{raw.headers['x-route-replay']}", timeout=5).json()
    assert status["large"]["context_windows"]["qwen2.5:7b-32k"] == {
        "tokens": 32768,
        "source": "Ollama /api/show num_ctx",
    }
    assert raw.headers["x-route-variant"] == "qwen-long"
    assert reply.model == "qwen-long"
    assert (reply.model_extra or {})["x_route"]["variant"] == "qwen-long"
    assert small.requests == [] and len(large.requests) == 1 and large.truncated == []
    assert why["skipped"]["qwen"].startswith("context window 4096 tokens")
    assert why["context"]["windows"]["qwen-long"]["tokens"] == 32768
    assert why["context"]["counted_by"] == "estimate"


def test_a_replay_id_nobody_was_given_is_a_404(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    _, upstream = ollama
    with proxy_for(tmp_path, config(upstream)) as url:
        answer = httpx.get(url + "/route/explain/rpl_0000000000000000", timeout=5)
        foreign = httpx.get(
            url + "/route/explain/rpl_0000000000000000",
            headers={"origin": "https://evil.example"},
            timeout=5,
        )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert foreign.status_code == 403


def test_replays_need_a_key_when_keys_are_set_and_a_local_host(
    ollama: tuple[FakeOllama, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, upstream = ollama
    monkeypatch.setenv("VP_QUIRK_KEYS", "sk-quirk-one")
    data = config(upstream, auth={"api_keys_env": "VP_QUIRK_KEYS", "protect_admin": False})
    with proxy_for(tmp_path, data, keyed=True) as url:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="sk-quirk-one", max_retries=0)
        with sdk:
            raw = sdk.chat.completions.with_raw_response.create(model="auto", messages=ASK)
        where = f"{url}/route/explain/{raw.headers['x-route-replay']}"
        anonymous = httpx.get(where, timeout=5)
        keyed = httpx.get(where, headers={"authorization": "Bearer sk-quirk-one"}, timeout=5)
        rebound = httpx.get(
            where,
            headers={"authorization": "Bearer sk-quirk-one", "host": "rebind.evil"},
            timeout=5,
        )
    assert anonymous.status_code == 401
    assert keyed.status_code == 200 and keyed.json()["served_by"] == "qwen"
    assert rebound.status_code == 421


def native_config(upstream: str) -> dict[str, Any]:
    data = config(upstream)
    data["variants"]["qwen-32k"] = {"backend": "small", "model": "qwen2.5:7b", "num_ctx": 32768}
    data["routes"]["instruction"] = data["routes"]["complex"] = ["qwen", "qwen-32k"]
    return data


def test_num_ctx_goes_through_ollamas_native_api_and_back(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    fake, upstream = ollama
    long_text = "Explain what this log says.\n" + "the quick brown fox jumps over it. " * 700
    with proxy_for(tmp_path, native_config(upstream)) as url, client(url) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": long_text}], max_tokens=64
        )
        reply = raw.parse()
        chunks = list(
            sdk.chat.completions.create(
                model="qwen-32k",
                messages=ASK,
                tools=TOOLS,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        short = sdk.chat.completions.create(model="qwen", messages=ASK)
    # the long prompt skipped Ollama's 4096 default for the variant that asks for 32768
    assert raw.headers["x-route-variant"] == "qwen-32k"
    assert raw.headers["x-route-chat"] == "ollama-native"
    assert reply.choices[0].message.content == "Hello there!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "qwen-32k" and reply.usage is not None
    sent = fake.native[0]
    assert sent["options"] == {"num_ctx": 32768, "num_predict": 64}
    assert sent["stream"] is False and sent["model"] == "qwen2.5:7b"
    assert fake.truncated == []
    # streamed tool calls through the native API: NDJSON in, OpenAI chunks out
    calls = merged_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert {c["arguments"] for c in calls.values()} == {'{"city":"Paris"}', '{"city":"Tokyo"}'}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert fake.native[1]["tools"] == TOOLS and fake.native[1]["stream"] is True
    # a variant without num_ctx still uses the OpenAI endpoint
    assert short.choices[0].message.content == "Hello there!" and len(fake.requests) == 1


def test_a_native_error_comes_back_in_openais_shape(tmp_path: Path) -> None:
    fake = FakeOllama(models=("qwen2.5:7b", "other:1b"))
    data = {
        "server": {"health_interval": 0.5},
        "backends": {"small": {"kind": "ollama"}},
        "variants": {"gone": {"backend": "small", "model": "missing:7b", "num_ctx": 8192}},
        "routes": {"default": "gone"},
    }
    with run_server(fake) as upstream:
        data["backends"]["small"]["url"] = upstream
        with proxy_for(tmp_path, data) as url, client(url) as sdk:
            with pytest.raises(openai.NotFoundError) as caught:
                sdk.chat.completions.create(model="gone", messages=ASK)
    error = caught.value.body
    assert isinstance(error, dict) and "missing:7b" in error["message"]
    assert error["code"] == "model_not_found"
