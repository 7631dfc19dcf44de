"""Swapping real llama-servers: two managed servers of the demo's gemma 3 270M in a
`max_loaded: 1` group, behind variant-proxy on a real socket, driven by the `openai` client.
Alternating requests swap them, never both run (live pids), a stream in flight is not cut
and every request completes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import psutil
import pytest
import yaml

from proxy.app import create_app
from proxy.service import Proxy
from tests.helpers.config import llama_argv, require_real_server
from tests.helpers.fakeupstream import run_server

pytestmark = pytest.mark.real_server


def llama(binary: str, model: str, alias: str) -> dict[str, Any]:
    return {
        "kind": "llamacpp",
        "command": llama_argv(binary, alias=alias, extra=("-t", "2")),
        "model_file": model,
        "start": "lazy",
        "start_timeout": 120,
        "queue_timeout": 180,
        "timeouts": {"first_byte": 180, "idle": 60},
    }  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Proxy]]:
    binary, model = require_real_server()
    tmp = tmp_path_factory.mktemp("swap-real")
    data = {
        "server": {"state_dir": str(tmp / "state"), "health_interval": 30, "keepalive_after": 2},
        "backends": {"one": llama(binary, model, "one"), "two": llama(binary, model, "two")},
        "variants": {
            "gemma-one": {"backend": "one", "model": "one"},
            "gemma-two": {"backend": "two", "model": "two"},
        },
        "routes": {"default": "gemma-one"},
        "groups": {"laptop": {"members": ["one", "two"], "max_loaded": 1}},
    }
    path = tmp / "router.yaml"
    path.write_text(yaml.safe_dump(data))
    app = create_app(path)
    with run_server(app) as url:
        yield url, app.state.proxy


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_alternating_requests_swap_two_real_llama_servers(stack: tuple[str, Proxy]) -> None:
    url, proxy = stack
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=240)
    procs = proxy.managed
    most, stop = 0, threading.Event()

    def watch() -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, sum(alive(p.pid) for p in procs.values()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pids: list[int | None] = []
    try:
        for name in ["one", "two", "one", "two"]:
            reply = client.chat.completions.create(
                model=f"gemma-{name}",
                messages=[{"role": "user", "content": "Say hi"}],
                max_tokens=4,
                temperature=0,
            )
            assert reply.choices[0].message is not None
            other = "two" if name == "one" else "one"
            assert alive(procs[name].pid) and not alive(procs[other].pid)
            pids.append(procs[name].pid)
    finally:
        stop.set()
        watcher.join(5)
    assert most == 1, "both llama-servers ran at once"
    assert len(set(pids)) == 4, "each swap starts a fresh server"
    metrics = httpx.get(url + "/metrics", timeout=10).text
    assert 'variant_proxy_swaps_total{group="laptop"} 4.0' in metrics
    assert 'variant_proxy_evictions_total{group="laptop",reason="max_loaded"} 3.0' in metrics


def test_a_real_stream_in_flight_is_not_cut_by_a_swap(stack: tuple[str, Proxy]) -> None:
    url, proxy = stack
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=240)
    # ignore_eos: exactly max_tokens tokens, so the stream lasts long enough to overlap
    stream = client.chat.completions.create(
        model="gemma-one",
        messages=[{"role": "user", "content": "Count from one to fifty in words."}],
        max_tokens=200,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = iter(stream)
    next(chunks)
    one_pid = proxy.managed["one"].pid
    assert alive(one_pid)
    times: dict[str, float] = {}

    def other() -> None:
        times["sent"] = time.monotonic()
        reply = client.chat.completions.create(
            model="gemma-two", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert reply.choices[0].message is not None
        times["answered"] = time.monotonic()

    thread = threading.Thread(target=other)
    thread.start()
    finish, usage = None, None
    for chunk in chunks:  # read as it comes: the stream ends here when it ends upstream
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
    ended = time.monotonic()
    thread.join(240)
    # evicting "one" mid-stream would have cut it: no finish reason, no usage, an error event
    assert finish == "length" and usage is not None and usage.completion_tokens == 200
    assert times["sent"] < ended, "the request for two did not overlap the stream"
    assert times["answered"] >= ended
    assert not alive(one_pid) and alive(proxy.managed["two"].pid)
