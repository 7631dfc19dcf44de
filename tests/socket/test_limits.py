"""Resource limits on a real socket (issue 16, findings 4, 5, 7, 8 and 9).

The proxy runs as `variant-proxy serve` (its own process: uvicorn with
`proxy.httpserver.BoundedHttpProtocol`, glibc tuned as `serve` tunes it) in
front of a `FaultyUpstream` that records what reached it. The server's limits
are set small (1 s header timeout, 40 connections) so the tests are quick; the
clients are raw sockets, urllib and httpx, because what is tested is below
what an HTTP library lets a caller do wrong.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import uvicorn
import yaml

from proxy.app import create_app
from proxy.config import parse_config
from proxy.httpserver import BoundedHttpProtocol
from tests.helpers.config import make_config
from tests.helpers.fakeupstream import free_port
from tests.helpers.faultyupstream import FaultyUpstream

VENV_BIN = Path(sys.executable).parent
KEY = "sk-limits-test-4c1e9a"
AUTH = {"authorization": f"Bearer {KEY}"}
MIB = 1024 * 1024
HEADER_TIMEOUT = 3.0  # room for 16 concurrent 31 MiB uploads on a busy 2-core machine
IDLE_TIMEOUT = 1.0
MAX_CONNECTIONS = 40


@dataclass
class Served:
    url: str
    port: int
    process: psutil.Process
    upstream: FaultyUpstream

    def fds(self) -> int:
        return int(self.process.num_fds())

    def rss(self) -> int:
        return int(self.process.memory_info().rss)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("limits")
    with FaultyUpstream() as upstream:
        cfg: dict[str, Any] = {
            "server": {
                "health_interval": 3600,
                "watch_config": False,
                "header_timeout": HEADER_TIMEOUT,
                "idle_timeout": IDLE_TIMEOUT,
                "body_timeout": 60.0,
                "max_connections": MAX_CONNECTIONS,
                # explain needs the key even so (finding 4)
                "auth": {"api_keys_env": "VP_LIMITS_KEYS", "protect_admin": False},
            },
            "backends": {"main": {"kind": "openai", "url": upstream.url}},
            "variants": {"instruct": {"backend": "main", "model": "up-instruct"}},
            "routes": {"default": "instruct"},
        }
        path = tmp / "router.yaml"
        path.write_text(yaml.safe_dump(cfg))
        port = free_port()
        log = (tmp / "serve.log").open("wb")
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "variant-proxy"),
                *("serve", "--config", str(path), "--port", str(port), "--log-level", "warning"),
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "VP_LIMITS_KEYS": KEY},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (tmp / "serve.log").read_text()
                assert time.monotonic() < deadline
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            yield Served(url, port, psutil.Process(proc.pid), upstream)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=10)


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """The status and body of one response (read until the connection closes or the
    declared length is in)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (whatever it sends first)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "instruct", "messages": [{"role": "user", "content": content}], **extra}


def wait_fds(served: Served, at_most: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while True:
        fds = served.fds()
        if fds <= at_most or time.monotonic() > deadline:
            return fds
        time.sleep(0.1)


# -- finding 4: /route/explain has a body limit and needs the key ------------------------------


def test_explain_needs_the_key_even_without_protect_admin(served: Served) -> None:
    r = httpx.post(served.url + "/route/explain", json=chat(), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(served.url + "/route/explain", json=chat(), headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.json()["variant"] == "instruct"


@pytest.mark.parametrize("path", ["/route/explain", "/admin/reload"])
def test_bodies_over_the_limit_are_refused_everywhere(served: Served, path: str) -> None:
    rss = served.rss()

    def body() -> Iterator[bytes]:  # chunked: no content-length to refuse up front
        block = b"x" * MIB
        for _ in range(40):
            yield block

    r = httpx.post(
        served.url + path,
        content=body(),
        headers={**AUTH, "content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413, r.text
    assert "server.max_body_bytes" in r.json()["error"]["message"]
    assert served.rss() - rss < 150 * MIB


@pytest.fixture
def quick_body_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The same proxy in-process (uvicorn in a thread, the bounded protocol) with a body
    timeout of half a second."""
    monkeypatch.setenv("VP_LIMITS_KEYS", KEY)
    with FaultyUpstream() as upstream:
        cfg = make_config(upstream.url, body_timeout=0.5, auth={"api_keys_env": "VP_LIMITS_KEYS"})
        config = uvicorn.Config(
            create_app(parse_config(cfg)),
            host="127.0.0.1",
            port=free_port(),
            log_level="warning",
            http=BoundedHttpProtocol,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.01)
        try:
            url = f"http://127.0.0.1:{config.port}"
            yield Served(url, config.port, psutil.Process(), upstream)
        finally:
            server.should_exit = True
            thread.join(10)


def test_a_body_that_never_finishes_gets_408(quick_body_timeout: Served) -> None:
    served = quick_body_timeout
    with connect(served) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + KEY.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
        )
        started = time.monotonic()
        status, body = read_response(sock, timeout=10)
        assert status == 408 and b"server.body_timeout" in body
        assert time.monotonic() - started < 5


# -- finding 5: header size before parsing, header/idle timeouts, connection cap ---------------


def _timed_health(served: Served, out: list[float], stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            status = client.get(served.url + "/health").status_code
            out.append(time.monotonic() - started if status == 200 else 99.0)
            time.sleep(0.01)


@pytest.mark.parametrize("path", ["/health", "/v1/models"])
def test_a_64mb_header_gets_431_and_nobody_waits(served: Served, path: str) -> None:
    times: list[float] = []
    stop = threading.Event()
    others = threading.Thread(target=_timed_health, args=(served, times, stop))
    others.start()
    try:
        while not times:  # the other client is being answered before the flood starts
            time.sleep(0.01)
        count = len(times)
        with connect(served) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".encode())
            sent = 0
            block = b"a" * MIB
            try:
                while sent < 64 * MIB:
                    sock.sendall(block)
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close once it has drained enough; the answer is in
            status, body = read_response(sock)
        assert status == 431, body
        assert json.loads(body)["error"]["code"] == "request_header_fields_too_large"
    finally:
        stop.set()
        others.join()
    assert len(times) > count, "no concurrent request was answered during the flood"
    # before: one 128 MB header froze every client for up to 16 s
    assert max(times) < 1.0, f"a concurrent request waited {max(times):.2f}s"


def test_a_header_just_over_the_limit_gets_431(served: Served) -> None:
    r = httpx.get(served.url + "/health", headers={"x-big": "a" * 17_000}, timeout=10)
    assert r.status_code == 431
    assert httpx.get(served.url + "/health", headers={"x-ok": "a" * 8_000}).status_code == 200


def test_slowloris_connections_are_closed_after_the_header_timeout(served: Served) -> None:
    base = wait_fds(served, 0, seconds=0)
    socks = [connect(served) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)
        for sock in socks:  # trickle: each byte in time, the head never complete
            sock.sendall(b"X-A: b\r\n")
        assert served.fds() >= base + 20
        started = time.monotonic()
        assert all(closed_within(sock, HEADER_TIMEOUT + 3) for sock in socks)
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
    finally:
        for sock in socks:
            sock.close()
    assert wait_fds(served, base) <= base
    assert httpx.get(served.url + "/health", timeout=5).status_code == 200


def test_an_idle_keepalive_connection_is_closed(served: Served) -> None:
    with connect(served) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _ = read_response(sock)
        assert status == 200
        started = time.monotonic()
        assert closed_within(sock, IDLE_TIMEOUT + 3)
        assert time.monotonic() - started >= IDLE_TIMEOUT * 0.8


def test_connections_past_the_cap_get_503_and_idle_ones_count(served: Served) -> None:
    # the server's own count is what matters: wait until earlier tests' sockets are gone
    wait_fds(served, 0, seconds=2)
    idle = [connect(served) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with connect(served) as extra:
            status, body = read_response(extra, timeout=5)
        assert status == 503 and json.loads(body)["error"]["code"] == "too_many_connections"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the closed ones leave the count as soon as the server sees them go
        try:
            if httpx.get(served.url + "/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)


# -- finding 7: large bodies don't stay in memory; /ready shares one probe ---------------------


def test_concurrent_large_bodies_leave_rss_near_baseline(served: Served) -> None:
    served.upstream.record = False
    try:
        payload = json.dumps(chat("x" * (31 * MIB - 200))).encode()
        with httpx.Client(timeout=60) as warm:  # one round first: the baseline is warm
            warm.post(served.url + "/v1/chat/completions", content=payload, headers=AUTH)
        time.sleep(0.5)
        base = served.rss()

        def send(_: int) -> int:
            with httpx.Client(timeout=60) as client:
                return client.post(
                    served.url + "/v1/chat/completions",
                    content=payload,
                    headers={**AUTH, "content-type": "application/json"},
                ).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            assert set(pool.map(send, range(16))) == {200}
        time.sleep(1.0)
        held = served.rss() - base
    finally:
        served.upstream.record = True
    assert held < 200 * MIB, f"{held / MIB:.0f} MiB still held after 16 x 31 MiB bodies"


def test_ready_calls_share_one_probe(served: Served) -> None:
    def probes() -> int:
        with served.upstream.lock:
            return sum(1 for h in served.upstream.hits if h.method == "GET")

    time.sleep(1.1)  # out of any earlier call's window
    before = probes()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: httpx.get(served.url + "/ready").status_code, range(40)))
    assert codes == [200] * 40
    assert probes() - before <= 2  # one round (two if the window ran out mid-burst)


# -- finding 8: JSON depth and big integers ----------------------------------------------------


@pytest.mark.parametrize("depth", [254, 300, 1100])
def test_deep_json_is_a_400_with_the_reason(served: Served, depth: int) -> None:
    body = json.dumps(chat())[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    r = httpx.post(
        served.url + "/v1/chat/completions",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "deep" in message or "depth" in message


@pytest.mark.parametrize("elsewhere", ["", ', "f": 1.5e+30, "note": "e+ in text"'])
def test_integers_beyond_64_bits_reach_the_upstream_exact(served: Served, elsewhere: str) -> None:
    """Exact with or without `e+` elsewhere in the body (with it, the float was sent)."""
    big = 2**70
    body = json.dumps(chat())[:-1] + f', "seed": {big}{elsewhere}}}'
    r = httpx.post(
        served.url + "/v1/chat/completions",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    sent = served.upstream.posts()[-1].raw_body
    assert str(big).encode() in sent
    assert json.loads(sent)["seed"] == big


# -- finding 9: early answers are read, not reset ----------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({**AUTH, "Content-Type": "application/json"}, 413),
        ({"Content-Type": "application/json"}, 401),
    ],
)
def test_a_client_that_sends_the_whole_body_first_reads_the_answer(
    served: Served, headers: dict[str, str], status: int
) -> None:
    body = b"x" * (64 * MIB)
    request = urllib.request.Request(
        served.url + "/v1/chat/completions", data=body, headers=headers, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == status
    assert json.loads(caught.value.read())["error"]["type"]
