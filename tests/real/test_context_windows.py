"""Serving windows against real llama-servers: learned from `/props`, counted with
`/tokenize`, and a prompt that doesn't fit moved to a bigger window or refused with
OpenAI's `context_length_exceeded`, driven by the official `openai` client.

Two managed llama-servers serve the same gemma 3 270M GGUF: `small` with `-c 1024`,
`large` with `-c 8192` (one slot each, so the slot's `n_ctx` is the whole window).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from proxy.app import Proxy, create_app
from proxy.contextwindow import PER_MESSAGE
from tests.helpers.config import llama_argv, require_real_server
from tests.helpers.fakeupstream import run_server

pytestmark = pytest.mark.real_server

PROSE = (
    "The committee met on Tuesday to review the quarterly budget, and after a long "
    "discussion about travel costs it agreed to postpone the new office until spring. "
)


def server(ctx: int) -> dict[str, Any]:
    return {
        "kind": "llamacpp",
        "command": llama_argv("${VARIANT_PROXY_LLAMA_SERVER}", ctx=ctx),
        "model_file": "${VARIANT_PROXY_MODEL}",
        "start": "eager",
        "start_timeout": 120,
        "timeouts": {"first_byte": 120, "idle": 60},
    }


class Stack:
    def __init__(self, url: str, proxy: Proxy) -> None:
        self.url = url
        self.proxy = proxy
        self.client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)

    def llama(self, name: str) -> str:
        return f"http://127.0.0.1:{self.proxy.ports[name]}"

    def explain(self, replay_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/route/explain/{replay_id}", timeout=10)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_real_server()
    tmp = tmp_path_factory.mktemp("windows")
    data = {
        "server": {"state_dir": str(tmp / "state"), "health_interval": 1},
        "backends": {"small": server(1024), "large": server(8192)},
        "variants": {
            "gemma-small": {"backend": "small", "model": "gemma3-270m"},
            "gemma-large": {"backend": "large", "model": "gemma3-270m"},
        },
        "routes": {
            "instruction": ["gemma-small", "gemma-large"],
            "complex": ["gemma-small", "gemma-large"],
            "multi-language": ["gemma-small", "gemma-large"],
            "completion": ["gemma-small", "gemma-large"],
            "default": "gemma-small",
        },
    }
    path = tmp / "windows.yaml"
    path.write_text(yaml.safe_dump(data))
    app = create_app(path)
    with run_server(app) as url:
        stack = Stack(url, app.state.proxy)
        deadline_ok = _wait_learned(url)
        assert deadline_ok, httpx.get(url + "/backends", timeout=5).text
        yield stack
        stack.client.close()


def _wait_learned(url: str, timeout: float = 180.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(url + "/backends", timeout=5).json()["backends"]
        if all(b["context_windows"] for b in status.values()):
            return True
        time.sleep(0.2)
    return False


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text + "\nSummarise this in one sentence."}]


def test_windows_are_learned_from_props(stack: Stack) -> None:
    status = httpx.get(stack.url + "/backends", timeout=5).json()["backends"]
    assert status["small"]["context_windows"] == {
        "*": {"tokens": 1024, "source": "llama-server /props n_ctx"}
    }
    assert status["large"]["context_windows"]["*"]["tokens"] == 8192
    props = httpx.get(stack.llama("small") + "/props", timeout=5).json()
    assert props["default_generation_settings"]["n_ctx"] == 1024


def test_tokenize_decides_a_prompt_near_the_window(stack: Stack) -> None:
    # ~3,600 characters: the estimate says over 1,024 tokens, the tokenizer says it fits
    text = PROSE * 23
    messages = ask(text)
    raw = stack.client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, max_tokens=8
    )
    reply = raw.parse()
    why = stack.explain(raw.headers["x-route-replay"])
    tokens = httpx.post(
        stack.llama("small") + "/tokenize", json={"content": messages[0]["content"]}, timeout=10
    ).json()["tokens"]
    context = why["context"]
    assert context["counted_by"] == "llama-server /tokenize (small)"
    assert context["prompt_tokens"] == len(tokens) + PER_MESSAGE
    assert context["prompt_tokens"] + 8 <= 1024
    assert raw.headers["x-route-variant"] == "gemma-small" and why["served_by"] == "gemma-small"
    # /route/explain counts the same way, sending nothing
    body = {"model": "auto", "messages": messages, "max_tokens": 8}
    explained = httpx.post(stack.url + "/route/explain", json=body, timeout=30).json()
    assert explained["context"] == context and explained["variant"] == "gemma-small"
    assert reply.model == "gemma-small"  # the variant, not "gemma3-270m"
    assert (reply.model_extra or {})["x_route"]["replay_id"] == raw.headers["x-route-replay"]


def test_a_prompt_over_the_small_window_moves_to_the_large_one(stack: Stack) -> None:
    text = PROSE * 80  # ~12,600 characters, ~2,500 tokens
    raw = stack.client.chat.completions.with_raw_response.create(
        model="auto", messages=ask(text), max_tokens=8, stream=True
    )
    chunks = list(raw.parse())
    why = stack.explain(raw.headers["x-route-replay"])
    assert raw.headers["x-route-variant"] == "gemma-large"
    assert why["skipped"]["gemma-small"].startswith("context window 1024 tokens <")
    assert why["served_by"] == "gemma-large"
    assert {c.model for c in chunks} == {"gemma-large"}
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (finishing[-1].model_extra or {})["x_route"]["variant"] == "gemma-large"


def test_a_prompt_no_window_holds_is_context_length_exceeded(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as named:
        stack.client.chat.completions.create(model="gemma-small", messages=ask(PROSE * 80))
    with pytest.raises(openai.BadRequestError) as routed:
        stack.client.chat.completions.create(model="auto", messages=ask(PROSE * 300))
    small, both = named.value.body, routed.value.body
    assert isinstance(small, dict) and isinstance(both, dict)
    assert small["code"] == both["code"] == "context_length_exceeded"
    assert small["context_window"] == 1024 and small["prompt_tokens"] > 1024
    assert both["context_window"] == 8192 and both["prompt_tokens"] > 8192
    assert named.value.status_code == routed.value.status_code == 400
