"""Processes for the proxy benchmarks: the fast upstream, the proxy, load generator shards.

Each runs in its own process, on loopback, optionally pinned to CPUs so that on
a small machine the proxy has a core of its own and the upstream and the load
generator share the other; the direct baseline runs with the same placement,
so "proxy minus direct" is what the proxy adds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
PYTHON = sys.executable
PROXY_BIN = Path(PYTHON).with_name("variant-proxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def _pin(pid: int, cpus: Sequence[int] | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, set(cpus))


@dataclass
class Placement:
    """Which CPUs each process may use (None: anywhere)."""

    proxy: list[int] | None
    others: list[int] | None

    @classmethod
    def choose(cls, pin: bool) -> Placement:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not pin or len(cpus) < 2:
            return cls(None, None)
        return cls([cpus[0]], cpus[1:])

    def describe(self) -> str:
        if self.proxy is None:
            return "not pinned"
        return f"proxy on CPU {self.proxy}, upstream and load generator on CPU {self.others}"


@contextlib.contextmanager
def fast_upstream(cpus: Sequence[int] | None) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, str(BENCH / "fast_upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    _pin(proc.pid, cpus)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def proxy_config(upstream_url: str) -> str:
    return (
        "server:\n"
        "  health_interval: 10\n"
        "backends:\n"
        "  up:\n"
        "    kind: openai\n"
        f"    url: {upstream_url}\n"
        "variants:\n"
        "  fast:\n"
        "    backend: up\n"
        "    model: fast-model\n"
        "routes:\n"
        "  default: fast\n"
    )


@dataclass
class ProxyProcess:
    url: str
    proc: subprocess.Popen[bytes]
    ps: psutil.Process

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss_bytes(self) -> int:
        return int(self.ps.memory_info().rss)


@contextlib.contextmanager
def proxy(
    upstream_url: str,
    cpus: Sequence[int] | None,
    log_level: str = "info",
    command: Sequence[str] | None = None,
) -> Iterator[ProxyProcess]:
    """`variant-proxy serve` in its own process (access log off, the default), its log going
    to a file.

    `command` replaces `variant-proxy serve` (it gets the same `--config`, `--port` and
    `--log-level` arguments), to measure a candidate change before making it."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
        config = Path(tmp) / "router.yaml"
        config.write_text(proxy_config(upstream_url))
        log = (Path(tmp) / "proxy.log").open("wb")
        argv = [*(command or [str(PROXY_BIN), "serve"])]
        argv += ["--config", str(config), "--port", str(port)]
        argv += ["--log-level", log_level]
        proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=tmp)
        _pin(proc.pid, cpus)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/health", proc)
            yield ProxyProcess(url, proc, psutil.Process(proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()


def _one_shard(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, str(BENCH / "loadgen.py"), orjson.dumps(spec).decode()],
        capture_output=True,
        check=False,
        timeout=float(spec["duration"]) + float(spec.get("warmup", 0.5)) + 120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout)
    return result


def run_load(url: str, spec: dict[str, Any], procs: int = 1, cpus: Sequence[int] | None = None):
    """Run the load in `procs` generator processes (the rate and connections split between them)
    and merge their samples."""
    host, port = url.removeprefix("http://").split(":")
    shards = []
    for i in range(procs):
        shard = dict(spec, host=host, port=int(port), cpu=list(cpus) if cpus else None)
        if "rate" in spec:
            shard["rate"] = spec["rate"] / procs
            shard["phase"] = i / procs
        shard["conns"] = max(1, int(spec.get("conns", 32)) // procs)
        shards.append(shard)
    with ThreadPoolExecutor(procs) as pool:
        results = list(pool.map(_one_shard, shards))
    merged: dict[str, Any] = {
        "latency_ms": [],
        "ttfc_ms": [],
        "lag_ms": [],
        "completed": 0,
        "errors": 0,
        "error_examples": [],
        "wall_s": 0.0,
        "cpu_s": 0.0,
        "warmup_completed": 0,
    }
    for r in results:
        for key in ("latency_ms", "ttfc_ms", "lag_ms", "error_examples"):
            merged[key] += r[key]
        for key in ("completed", "errors", "cpu_s", "warmup_completed"):
            merged[key] += r[key]
        merged["wall_s"] = max(merged["wall_s"], r["wall_s"])
        merged["body_bytes"] = r["body_bytes"]
        merged["response_bytes"] = r["response_bytes"]
    return merged


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[k])


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import uvicorn

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
