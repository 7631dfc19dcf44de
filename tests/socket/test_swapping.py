"""Groups and swapping with real processes: variant-proxy on a real socket managing
`tests/helpers/fake_llama.py` servers (llama-server's wire format), driven by the real
`openai` client and httpx. Liveness assertions read /proc, never timings."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from proxy.app import ProxyApp, create_app
from proxy.service import Proxy
from tests.helpers.config import write_config
from tests.helpers.fakeupstream import run_server

FAKE = str(Path(__file__).resolve().parents[1] / "helpers" / "fake_llama.py")


def fake_backend(name: str, *extra: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "llamacpp",
        "command": [sys.executable, FAKE, "--port", "{port}", "--name", name, *extra],
        "start": "lazy",
        "start_timeout": 30,
        "queue_timeout": 60,
        "timeouts": {"first_byte": 60, "idle": 30},
        **spec,
    }


def config(tmp_path: Path, backends: dict[str, Any], **extra: Any) -> Path:
    data: dict[str, Any] = {
        "server": {
            "state_dir": str(tmp_path / "state"),
            "keepalive_after": 0.5,
            "keepalive_interval": 0.5,
            "health_interval": 30,
            "watch_config": False,
        },
        "backends": backends,
        "variants": {f"v{name}": {"backend": name, "model": name} for name in backends},
        "routes": {"default": f"v{next(iter(backends))}"},
        **extra,
    }
    return write_config(tmp_path, data)


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def fakes_running(tag: str) -> dict[str, int]:
    """The members of this test with a live fake server (`--name` → pid); their command
    lines carry `tag`."""
    out = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if FAKE in cmd and tag in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            out[cmd[cmd.index("--name") + 1]] = proc.pid
    return out


class Watch:
    """Samples the live fake servers in a thread: the most ever running at once."""

    def __init__(self, tag: str) -> None:
        self.tag, self.most, self._stop = tag, 0, threading.Event()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            found = fakes_running(self.tag)
            if len(found) > self.most:
                self.most, self.seen = len(found), sorted(found)
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def served() -> Iterator[Callable[[Path], tuple[str, Proxy]]]:
    stack: list[Any] = []

    def serve(path: Path) -> tuple[str, Proxy]:
        app: ProxyApp = create_app(path)
        ctx = run_server(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return url, app.state.proxy

    yield serve
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def chat(url: str, model: str, **kw: Any) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=90)
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kw
    )


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(p in line for p in want.split(",")):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + " ") and not labels:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_max_loaded_1_swaps_alternating_requests(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-alt-{id(tmp_path)}"
    backends = {
        "a": fake_backend("a", "--load-seconds", "0.3", "--tag", tag, start="eager"),
        "b": fake_backend("b", "--load-seconds", "0.3", "--tag", tag, start="eager"),
    }
    groups = {"laptop": {"members": ["a", "b"], "max_loaded": 1}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    a, b = proxy.managed["a"], proxy.managed["b"]
    # both are eager, but only the first fits at startup
    assert a.state == "ready" and b.state == "stopped"
    with Watch(tag) as watch:
        for i, name in enumerate(["b", "a", "b", "a"]):
            reply = chat(url, f"v{name}")
            proc = proxy.managed[name]
            other = proxy.managed["a" if name == "b" else "b"]
            assert reply.choices[0].message.content == f"{name} pid {proc.pid}", i
            assert alive(proc.pid) and not alive(other.pid)
            assert other.pid is None and other.state == "stopped"
    assert watch.most == 1, f"two members of a max_loaded 1 group ran at once: {watch.seen}"
    assert metric(url, "variant_proxy_swaps_total", group="laptop") == 4
    assert metric(url, "variant_proxy_evictions_total", group="laptop", reason="max_loaded") == 4
    listing = httpx.get(url + "/backends", timeout=10).json()
    assert listing["groups"]["laptop"]["loaded"] == ["a"]
    assert listing["groups"]["laptop"]["swaps"] == 4
    info = listing["backends"]["b"]["managed"]
    assert info["group"] == "laptop" and info["last_eviction"] == "max_loaded"
    assert info["loads"] == 2 and info["expected_load_seconds"] > 0
    # swapped out on purpose: down, and marked stopped so the BackendDown alert stays quiet
    httpx.get(url + "/ready", timeout=30)
    assert metric(url, "variant_proxy_backend_up", backend="b") == 0
    assert metric(url, "variant_proxy_backend_stopped", backend="b") == 1
    assert metric(url, "variant_proxy_backend_stopped", backend="a") == 0


def test_a_member_streaming_is_not_evicted_and_every_request_completes(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-stream-{id(tmp_path)}"
    backends = {
        "a": fake_backend(
            "a", "--chunks", "15", "--chunk-delay", "0.1", "--tag", tag, start="eager"
        ),
        "b": fake_backend("b", "--tag", tag),
    }
    groups = {"laptop": {"members": ["a", "b"], "max_loaded": 1}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    a_pid = proxy.managed["a"].pid
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=90)
    events: list[tuple[str, float]] = []
    with Watch(tag) as watch:
        stream = client.chat.completions.create(
            model="va", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        first = next(iter(stream))
        assert first.choices[0].delta.content == f"a pid {a_pid}"
        # a request for b now needs a's place; a is busy streaming
        with ThreadPoolExecutor(2) as pool:
            other = pool.submit(lambda: (chat(url, "vb"), time.monotonic()))
            pieces = [first.choices[0].delta.content]
            for chunk in stream:
                assert alive(a_pid), "a was stopped mid-stream"
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
            events.append(("stream done", time.monotonic()))
            reply, answered = other.result(timeout=60)
    assert len(pieces) == 15, "the stream was cut"
    assert reply.choices[0].message.content == f"b pid {proxy.managed['b'].pid}"
    assert answered >= events[0][1], "b answered while a was still streaming"
    assert not alive(a_pid)
    assert watch.most == 1


def test_no_room_until_queue_timeout_is_a_clear_503(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-full-{id(tmp_path)}"
    backends = {
        "a": fake_backend(
            "a", "--chunks", "40", "--chunk-delay", "0.1", "--tag", tag, start="eager"
        ),
        "b": fake_backend("b", "--tag", tag, queue_timeout=0.5),
    }
    groups = {"laptop": {"members": ["a", "b"], "max_loaded": 1}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    body = {"model": "va", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", url + "/v1/chat/completions", json=body) as streaming,
    ):
        lines = streaming.iter_lines()
        assert next(lines).startswith("data: ")
        answer = http.post(
            url + "/v1/chat/completions",
            json={"model": "vb", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "backend_busy"
        assert "group 'laptop' has no room" in error["message"]
        assert "a: 1 in flight" in error["message"]
        assert answer.headers["retry-after"]
        # nor can an admin cut the stream
        busy = http.post(url + "/admin/unload/a")
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "backend_in_use"
        rest = list(lines)
    assert "data: [DONE]" in rest, "the stream in flight was cut"
    assert proxy.managed["b"].state == "stopped"


def test_memory_budget_evicts_by_measured_rss(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-mem-{id(tmp_path)}"
    small, medium = tmp_path / "small.gguf", tmp_path / "medium.gguf"
    with small.open("wb") as f:
        f.truncate(1024 * 1024)  # 1 MB: a's estimate before it ever ran
    with medium.open("wb") as f:
        f.truncate(30 * 1024 * 1024)
    backends = {
        # a's file says 1 MB, but the process holds ~100 MB once it runs
        "a": fake_backend(
            "a", "--rss-mb", "90", "--tag", tag, start="eager", model_file=str(small)
        ),
        "b": fake_backend("b", "--tag", tag, model_file=str(medium)),
        "c": fake_backend("c", "--tag", tag, model_file=str(small)),
    }
    groups = {"box": {"members": ["a", "b", "c"], "memory_mb": 120}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    a_pid = proxy.managed["a"].pid
    # by the estimates a (1 MB) and b (30 MB) fit in 120 MB; by a's measured RSS they don't
    assert chat(url, "vb").choices[0].message.content.startswith("b pid")
    assert not alive(a_pid)
    assert metric(url, "variant_proxy_evictions_total", group="box", reason="memory") == 1
    listing = httpx.get(url + "/backends", timeout=10).json()
    assert listing["backends"]["a"]["managed"]["resident_mb"] > 90
    assert listing["backends"]["a"]["managed"]["last_eviction"] == "memory"
    # c fits beside b: nothing is stopped
    assert chat(url, "vc").choices[0].message.content.startswith("c pid")
    assert alive(proxy.managed["b"].pid) and alive(proxy.managed["c"].pid)
    assert sorted(listing["groups"]["box"]["members"]) == ["a", "b", "c"]
    after = httpx.get(url + "/backends", timeout=10).json()["groups"]["box"]
    assert sorted(after["loaded"]) == ["b", "c"]
    assert after["loaded_mb"] <= 120


def test_persistent_member_is_never_evicted(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-persist-{id(tmp_path)}"
    backends = {
        "keep": fake_backend("keep", "--tag", tag, start="eager"),
        "a": fake_backend("a", "--tag", tag),
        "b": fake_backend("b", "--tag", tag),
    }
    members = [{"backend": "keep", "persistent": True}, "a", "b"]
    groups = {"g": {"members": members, "max_loaded": 2}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    keep_pid = proxy.managed["keep"].pid
    for name in ["a", "b", "a"]:
        assert chat(url, f"v{name}").choices[0].message.content.startswith(f"{name} pid")
        assert proxy.managed["keep"].pid == keep_pid and alive(keep_pid)
    assert sorted(fakes_running(tag)) == ["a", "keep"]


def test_a_stream_waiting_for_a_swap_gets_keepalives_then_its_answer(
    tmp_path: Path, served: Callable[[Path], tuple[str, Proxy]]
) -> None:
    tag = f"swap-keepalive-{id(tmp_path)}"
    backends = {
        "a": fake_backend(
            "a", "--chunks", "25", "--chunk-delay", "0.1", "--tag", tag, start="eager"
        ),
        "b": fake_backend("b", "--tag", tag),
    }
    groups = {"laptop": {"members": ["a", "b"], "max_loaded": 1}}
    url, proxy = served(config(tmp_path, backends, groups=groups))
    chat_body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.Client(timeout=60) as http:
        with http.stream(
            "POST", url + "/v1/chat/completions", json={"model": "va", **chat_body}
        ) as first:
            lines = first.iter_lines()
            assert next(lines).startswith("data: ")
            with ThreadPoolExecutor(1) as pool:
                rest = pool.submit(lambda: list(lines))
                with http.stream(
                    "POST", url + "/v1/chat/completions", json={"model": "vb", **chat_body}
                ) as waiting:
                    assert waiting.status_code == 200
                    text = "".join(waiting.iter_text())
                assert "data: [DONE]" in rest.result(60)
    # committed early (200, text/event-stream) and kept alive while a finished its stream
    assert text.startswith(": keep-alive\n\n")
    assert f"b pid {proxy.managed['b'].pid}" in text and text.endswith("data: [DONE]\n\n")
