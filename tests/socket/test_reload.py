"""Hot reload under traffic, file watching, SIGHUP, and graceful shutdown on SIGTERM.

A reload is all-or-nothing: a valid config is swapped in between requests,
an invalid one is counted, logged and ignored, and requests in flight never
notice either. `serve` reloads on SIGHUP and, on SIGTERM, lets streams in
flight finish (up to `server.drain_timeout`) before it exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.app import create_app
from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.service import Proxy
from tests.helpers.fakeupstream import Recorder, free_port, run_server
from tests.helpers.faultyupstream import FaultyUpstream, LoopCapture

VENV_BIN = Path(sys.executable).parent


def base_config(url: str, *, extra: bool = False, **server: Any) -> dict[str, Any]:
    """Variants `instruct` and `big` always exist; `extra` (and its backend) come and go."""
    cfg: dict[str, Any] = {
        "server": {"health_interval": 3600, "keepalive_after": 5, **server},
        "backends": {
            "main": {"kind": "openai", "url": url},
            "spare": {"kind": "openai", "url": url},
        },
        "variants": {
            "instruct": {"backend": "main", "model": "up-instruct"},
            "big": {"backend": "spare", "model": "up-big"},
        },
        "routes": {"complex": ["big", "instruct"], "default": "instruct"},
    }
    if extra:
        cfg["backends"]["other"] = {"kind": "openai", "url": url}
        cfg["backends"]["main"]["timeouts"] = {"idle": 60}  # a changed backend gets fresh state
        cfg["variants"]["extra"] = {"backend": "other", "model": "up-extra"}
        cfg["routes"]["multi-language"] = ["extra"]
    return cfg


INVALID: list[Callable[[str], str]] = [
    lambda url: "backends: [unclosed\n",
    lambda url: yaml.safe_dump({**base_config(url), "surprise": 1}),
    lambda url: yaml.safe_dump({**base_config(url), "routes": {"default": "nonexistent"}}),
    lambda url: yaml.safe_dump(
        {**base_config(url), "backends": {"main": {"kind": "openai", "url": "${VP_UNSET_VAR}"}}}
    ),
    lambda url: "",
    lambda url: yaml.safe_dump({**base_config(url), "server": {"max_body_bytes": "lots"}}),
]


def write(path: Path, text: str) -> None:
    """Write atomically, as editors and deploy tools do, so nobody reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def model_ids(url: str) -> set[str]:
    r = httpx.get(url + "/v1/models", timeout=5)
    assert r.status_code == 200
    return {m["id"] for m in r.json()["data"]}


def reload_counts(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    found = re.findall(r'variant_proxy_config_reloads_total\{result="(\w+)"\} ([0-9.e+]+)', text)
    return {result: float(value) for result, value in found}


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream(record=False) as up:
        yield up


# -- reloads under traffic --------------------------------------------------------------------


class Traffic:
    """Client threads sending a mix of requests until stopped; every failure is kept."""

    def __init__(self, url: str, clients: int = 6) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _run(self, i: int) -> None:
        models = ["instruct", "big", "auto", "complex"]
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = 0
            while not self.stop.is_set() and n < 5000:
                n += 1
                stream = (i + n) % 2 == 0
                body = {
                    "model": models[(i + n) % len(models)],
                    "messages": [{"role": "user", "content": f"hello {n}"}],
                    "stream": stream,
                }
                try:
                    r = client.post("/v1/chat/completions", json=body)
                    good = r.status_code == 200 and (
                        r.text.endswith("data: [DONE]\n\n") if stream else "choices" in r.json()
                    )
                    problem = "" if good else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = repr(exc)
                with self.lock:
                    if problem:
                        self.failures.append(problem)
                    else:
                        self.ok += 1


def test_100_reloads_half_invalid_under_traffic(upstream: FaultyUpstream, tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    write(path, yaml.safe_dump(base_config(upstream.url, watch_config=False)))
    app = create_app(path)
    proxy: Proxy = app.state.proxy
    capture = LoopCapture(app)
    with run_server(capture) as url, Traffic(url) as traffic:
        wait_for(lambda: traffic.ok > 20)
        expected = model_ids(url)
        for i in range(100):
            if i % 2 == 0:
                extra = i % 4 == 0
                write(
                    path, yaml.safe_dump(base_config(upstream.url, extra=extra, watch_config=False))
                )
            else:
                write(path, INVALID[(i // 2) % len(INVALID)](upstream.url))
            if i % 4 < 2:
                r = httpx.post(url + "/admin/reload", timeout=5)
                assert r.status_code == (200 if i % 2 == 0 else 400), r.text
                if i % 2:
                    body = r.json()
                    assert body["reloaded"] is False and body["error"]["issues"]
            else:
                assert capture.loop is not None
                future = asyncio.run_coroutine_threadsafe(_reload(proxy), capture.loop)
                assert future.result(5) == (i % 2 == 0)
            ids = model_ids(url)
            if i % 2 == 0:
                assert ("extra" in ids) == (i % 4 == 0)
                expected = ids
            else:
                assert ids == expected  # the running config is kept
            time.sleep(0.01)  # let some traffic through between reloads
        counts = reload_counts(url)
    assert traffic.failures == []
    assert traffic.ok > 200
    assert counts == {"ok": 50.0, "error": 50.0}
    print(f"\nreload under traffic: {traffic.ok} requests ok, 0 failed, 100 reloads")


async def _reload(proxy: Proxy) -> bool:
    try:
        proxy.reload()
    except ConfigError:
        return False
    return True


def test_request_in_flight_keeps_its_config_when_a_reload_removes_its_backend(
    upstream: FaultyUpstream, tmp_path: Path
) -> None:
    """Reload lands while a request's body is still arriving: it must finish on the old config."""
    path = tmp_path / "router.yaml"
    write(path, yaml.safe_dump(base_config(upstream.url, extra=True, watch_config=False)))
    body = json.dumps({"model": "multi-language", "messages": [{"role": "user", "content": "x"}]})

    async def main() -> int:
        app = create_app(path)
        proxy: Proxy = app.state.proxy
        await proxy.start()
        arrived = asyncio.Event()
        sent = Recorder()

        async def receive() -> dict[str, Any]:
            if not arrived.is_set():
                await asyncio.sleep(0.05)  # the body is slow to arrive ...
                arrived.set()
                return {"type": "http.request", "body": body.encode(), "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8780),
        }
        try:
            task = asyncio.ensure_future(app(scope, receive, sent))
            await asyncio.sleep(0.01)
            # ... and meanwhile a reload drops `extra` and its backend
            write(path, yaml.safe_dump(base_config(upstream.url, watch_config=False)))
            proxy.reload()
            await asyncio.wait_for(task, 10)
        finally:
            await proxy.stop()
        start = next(m for _, m in sent.messages if m["type"] == "http.response.start")
        return int(start["status"])

    assert asyncio.run(main()) == 200


def test_reloaded_server_breaker_applies_to_unchanged_backends(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    write(path, yaml.safe_dump(base_config("http://127.0.0.1:9")))
    proxy = Proxy(parse_config(yaml.safe_load(path.read_text())), source=str(path))
    assert proxy.backends["main"].breaker.threshold == 3
    write(path, yaml.safe_dump(base_config("http://127.0.0.1:9", breaker={"failures": 1})))
    proxy.reload()
    assert proxy.backends["main"].breaker.threshold == 1


# -- reload on file change --------------------------------------------------------------------


def test_file_change_is_picked_up_and_a_bad_edit_is_ignored(
    upstream: FaultyUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(base_config(upstream.url)))  # watch_config: default true
    with run_server(create_app(path)) as url:
        assert "extra" not in model_ids(url)
        started = time.monotonic()
        path.write_text(yaml.safe_dump(base_config(upstream.url, extra=True)))
        wait_for(lambda: "extra" in model_ids(url), timeout=5)
        picked_up = time.monotonic() - started
        path.write_text("variants: {broken\n")
        wait_for(lambda: reload_counts(url).get("error", 0) >= 1, timeout=5)
        assert "extra" in model_ids(url)
        time.sleep(1.8)  # a failed file is not retried until it changes again
        counts = reload_counts(url)
        post = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "extra", "messages": [{"role": "user", "content": "x"}]},
            timeout=5,
        )
    assert 1.0 <= picked_up < 4.0
    assert counts == {"ok": 1.0, "error": 1.0}
    assert post.status_code == 200


# -- the real process: SIGHUP, SIGTERM --------------------------------------------------------


class Serve:
    """`variant-proxy serve` as a subprocess on a free loopback port."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = config.parent / "serve.log"
        self._log = self.stderr.open("wb")
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "variant-proxy"),
                "serve",
                "--config",
                str(config),
                "--port",
                str(self.port),
                "--log-level",
                "info",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=config.parent,
        )
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)

    def log(self) -> str:
        self._log.flush()
        return self.stderr.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Serve]]:
    started: list[Serve] = []

    def start(cfg: dict[str, Any]) -> Serve:
        path = tmp_path / "router.yaml"
        path.write_text(yaml.safe_dump(cfg))
        started.append(Serve(path))
        return started[-1]

    yield start
    for s in started:
        s.close()


def test_sighup_reloads_and_survives_a_bad_config(
    upstream: FaultyUpstream, serve: Callable[[dict[str, Any]], Serve], tmp_path: Path
) -> None:
    proc = serve(base_config(upstream.url, watch_config=False))
    assert "extra" not in model_ids(proc.url)
    path = tmp_path / "router.yaml"
    write(path, yaml.safe_dump(base_config(upstream.url, extra=True, watch_config=False)))
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "extra" in model_ids(proc.url), timeout=5)
    write(path, "backends: [unclosed\n")
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in proc.log(), timeout=5)
    assert proc.proc.poll() is None
    assert "extra" in model_ids(proc.url)
    r = httpx.post(
        proc.url + "/v1/chat/completions",
        json={"model": "extra", "messages": [{"role": "user", "content": "x"}]},
        timeout=5,
    )
    assert r.status_code == 200


def _stream_in_background(url: str, chunks: int) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {"first": threading.Event(), "text": "", "error": None}
    body = {
        "model": "instruct",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "fault": {"mode": "ok", "chunks": chunks, "chunk_delay": 0.2},
    }

    def run() -> None:
        try:
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
                out["status"] = r.status_code
                for piece in r.iter_text():
                    out["text"] += piece
                    out["first"].set()
        except httpx.HTTPError as exc:
            out["error"] = exc
        out["first"].set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_sigterm_lets_the_stream_in_flight_finish(
    upstream: FaultyUpstream, serve: Callable[[dict[str, Any]], Serve]
) -> None:
    proc = serve(base_config(upstream.url, watch_config=False, drain_timeout=10))
    thread, out = _stream_in_background(proc.url, chunks=10)  # ~2 s of tokens
    assert out["first"].wait(10)
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.HTTPError):  # no new connections while draining
        httpx.get(proc.url + "/health", timeout=1)
    thread.join(15)
    proc.proc.wait(15)
    elapsed = time.monotonic() - started
    assert out["error"] is None and out["status"] == 200
    assert out["text"].endswith("data: [DONE]\n\n")
    assert out["text"].count('"content":"tok') == 10
    assert elapsed < 10
    assert proc.proc.returncode in (0, -signal.SIGTERM)


def test_sigterm_cuts_streams_at_drain_timeout(
    upstream: FaultyUpstream, serve: Callable[[dict[str, Any]], Serve]
) -> None:
    proc = serve(base_config(upstream.url, watch_config=False, drain_timeout=1))
    thread, out = _stream_in_background(proc.url, chunks=100)  # ~20 s of tokens
    assert out["first"].wait(10)
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    proc.proc.wait(15)
    thread.join(10)
    assert time.monotonic() - started < 5
    assert not out["text"].endswith("data: [DONE]\n\n")


def test_sigterm_exits_0(
    upstream: FaultyUpstream, serve: Callable[[dict[str, Any]], Serve]
) -> None:
    proc = serve(base_config(upstream.url, watch_config=False))
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(15) == 0
