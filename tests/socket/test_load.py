"""Load: 10,000+ requests at concurrency 64 through the real `serve` process.

The proxy runs as `variant-proxy serve` (uvicorn, its own process and core)
in front of a fast `FaultyUpstream` on a real socket. The client is a lean
raw-asyncio HTTP/1.1 client with 64 keep-alive connections, so the test
measures the proxy rather than an HTTP library. Half the requests stream.
Afterwards: zero unexpected errors, nothing left in flight, and the
proxy's RSS grew by less than `RSS_GROWTH_LIMIT` after a warm-up.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.helpers.fakeupstream import free_port
from tests.helpers.faultyupstream import FaultyUpstream

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
CONCURRENCY = 64
WARMUP = 2_000
REQUESTS = 10_000
RSS_GROWTH_LIMIT = 50 * 1024 * 1024
TIME_LIMIT = 90.0


@pytest.fixture
def proxy_process(tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    with FaultyUpstream(record=False, options={"chunks": 4}) as upstream:
        cfg: dict[str, Any] = {
            "server": {"health_interval": 3600, "watch_config": False},
            "backends": {
                "main": {"kind": "openai", "url": upstream.url},
                "spare": {"kind": "openai", "url": upstream.url},
            },
            "variants": {
                "instruct": {"backend": "main", "model": "up-instruct"},
                "code": {"backend": "spare", "model": "up-code", "fim": "starcoder"},
            },
            "routes": {"completion": ["code"], "instruction": ["instruct"], "default": "instruct"},
        }
        path = tmp_path / "router.yaml"
        path.write_text(yaml.safe_dump(cfg))
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "variant-proxy"),
                *("serve", "--config", str(path), "--port", str(port), "--log-level", "warning"),
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            yield url, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()


# -- a lean HTTP/1.1 client ----------------------------------------------------------------------


def _requests() -> list[tuple[str, bytes, bool]]:
    """A repeating mix: chat and completions, streamed and not, auto-classified and named."""
    mix: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/chat/completions",
            {"model": "instruct", "messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            "/v1/chat/completions",
            {
                "model": "auto",
                "messages": [
                    {"role": "user", "content": "Write a Python function that adds two numbers."}
                ],
            },
        ),  # noqa: E501
        (
            "/v1/completions",
            {"model": "auto", "prompt": "<fim_prefix>def f(<fim_suffix>)<fim_middle>"},
        ),  # noqa: E501
        ("/v1/completions", {"model": "code", "prompt": "import os\n"}),
    ]
    out = []
    for path, body in mix:
        for stream in (False, True):
            out.append((path, json.dumps({**body, "stream": stream}).encode(), stream))
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    assert headers.get("transfer-encoding") == "chunked", headers
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _drive(url: str, total: int) -> tuple[int, list[str], float]:
    host, port = url.removeprefix("http://").split(":")
    mix = _requests()
    counter = iter(range(total))
    errors: list[str] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in counter:
                path, body, stream = mix[i % len(mix)]
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status, data = await _read_response(reader)
                if status != 200:
                    errors.append(f"{path} stream={stream}: {status} {data[:200]!r}")
                elif stream and not data.endswith(b"data: [DONE]\n\n"):
                    errors.append(f"{path} stream: truncated {data[-200:]!r}")
                elif not stream and b'"choices"' not in data:
                    errors.append(f"{path}: unexpected {data[:200]!r}")
                done += 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(CONCURRENCY))), timeout=TIME_LIMIT
    )
    return done, errors, time.perf_counter() - started


def test_10k_requests_at_concurrency_64(proxy_process: tuple[str, psutil.Process]) -> None:
    url, proc = proxy_process
    done, errors, warm_s = asyncio.run(_drive(url, WARMUP))
    assert errors == [] and done == WARMUP
    rss_before = proc.memory_info().rss
    done, errors, elapsed = asyncio.run(_drive(url, REQUESTS))
    rss_after = proc.memory_info().rss
    status = httpx.get(url + "/backends", timeout=5).json()["backends"]
    metrics = httpx.get(url + "/metrics", timeout=5).text
    growth = rss_after - rss_before
    print(
        f"\nload: warm-up {WARMUP} in {warm_s:.1f}s; {done} requests at concurrency "
        f"{CONCURRENCY} in {elapsed:.1f}s = {done / elapsed:.0f} req/s; proxy RSS "
        f"{rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB "
        f"(growth {growth / 2**20:+.1f} MiB, limit {RSS_GROWTH_LIMIT / 2**20:.0f} MiB)"
    )
    assert errors == [], errors[:5]
    assert done == REQUESTS
    assert all(s["in_flight"] == 0 and s["queued"] == 0 for s in status.values())
    assert "variant_proxy_requests_total" in metrics
    assert growth < RSS_GROWTH_LIMIT
