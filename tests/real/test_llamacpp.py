"""End to end: the official `openai` client → variant-proxy (uvicorn, real socket) → a real,
managed `llama-server` serving the real gemma-3-270m GGUF. `make test` provides both."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from proxy.app import Proxy, create_app
from tests.helpers.config import ROOT, require_real_server
from tests.helpers.fakeupstream import run_server

pytestmark = pytest.mark.real_server


@pytest.fixture
def needs_llama() -> None:
    require_real_server()


def demo_config(tmp_path: Path, **backend: Any) -> Path:
    data = yaml.safe_load((ROOT / "tests" / "real" / "single-gemma.yaml").read_text())
    data["server"]["state_dir"] = str(tmp_path / "state")
    data["server"]["keepalive_after"] = 1
    data["backends"]["gemma"].update(backend)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Stack:
    def __init__(self, url: str, proxy: Proxy) -> None:
        self.url = url
        self.proxy = proxy
        self.client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)

    @property
    def llama(self) -> str:
        return f"http://127.0.0.1:{self.proxy.ports['gemma']}"

    def busy_slots(self) -> int:
        slots = httpx.get(self.llama + "/slots", timeout=5).json()
        return sum(1 for s in slots if s.get("is_processing"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_real_server()
    tmp = tmp_path_factory.mktemp("real")
    app = create_app(demo_config(tmp))
    with run_server(app) as url:
        yield Stack(url, app.state.proxy)


def wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.usefixtures("needs_llama")
def test_models_lists_the_demo_names(stack: Stack) -> None:
    ids = [m.id for m in stack.client.models.list()]
    assert {"auto", "gemma-instruct", "gemma", "gemma-complete", "complex"} <= set(ids)


@pytest.mark.usefixtures("needs_llama")
def test_chat_non_streaming(stack: Stack) -> None:
    raw = stack.client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a Python function that adds two numbers."}],
        max_tokens=16,
        temperature=0,
    )
    reply = raw.parse()
    assert raw.headers["x-route-variant"] == "gemma-instruct"
    assert raw.headers["x-route-class"] in {"instruction", "complex", "multi-language"}
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 16


@pytest.mark.usefixtures("needs_llama")
def test_chat_streaming_with_usage(stack: Stack) -> None:
    stream = stack.client.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Count from one to five."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.usefixtures("needs_llama")
def test_completions_streaming_and_not(stack: Stack) -> None:
    reply = stack.client.completions.create(
        model="gemma-instruct", prompt="def add(a, b):\n    return", max_tokens=8, temperature=0
    )
    assert reply.choices[0].text is not None
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    stream = stack.client.completions.create(
        model="completion",
        prompt="<PRE> def add(a, b):\n     <SUF>\n\nprint(add(1, 2)) <MID>",
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    pieces = [c.choices[0].text for c in stream if c.choices]
    assert pieces


@pytest.mark.usefixtures("needs_llama")
def test_disconnect_mid_stream_frees_the_slot(stack: Stack) -> None:
    wait_for(lambda: stack.busy_slots() == 0, 30)
    stream = stack.client.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Write a very long story about a robot."}],
        max_tokens=4000,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    next(iter(stream))
    assert stack.busy_slots() == 1
    stream.close()
    closed = time.monotonic()
    wait_for(lambda: stack.busy_slots() == 0, 5)
    assert time.monotonic() - closed < 5


@pytest.mark.usefixtures("needs_llama")
def test_killed_backend_is_restarted_and_serves_again(stack: Stack) -> None:
    proc = stack.proxy.managed["gemma"]
    before = proc.restarts
    pid = proc.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: proc.restarts > before and proc.state == "ready", 60)
    assert proc.pid != pid
    reply = stack.client.chat.completions.create(
        model="gemma", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.choices[0].message is not None


@pytest.mark.usefixtures("needs_llama")
def test_lazy_backend_starts_on_first_request(tmp_path: Path) -> None:
    app = create_app(demo_config(tmp_path, start="lazy"))
    proxy: Proxy = app.state.proxy
    with run_server(app) as url:
        proc = proxy.managed["gemma"]
        assert proc.state == "stopped" and proc.pid is None
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        stream = client.chat.completions.create(
            model="gemma",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=4,
            stream=True,
        )
        assert list(stream)
        assert proc.state == "ready" and proc.pid is not None
    assert proc.pid is None
