"""Interleaved requests to three members of a `max_loaded: 2` group: failures, swaps, waits.

    .venv/bin/python benchmarks/swap_load.py [--requests 60] [--concurrency 6]
                                             [--load-seconds 0.5] [--max-loaded 2]

Starts variant-proxy in-process on a loopback socket with three managed
`tests/helpers/fake_llama.py` servers (each takes `--load-seconds` to become
healthy, as a model server loading its weights), sends the requests in a
round-robin over the three members (half of them streamed) from
`--concurrency` threads, and prints the failures, the swaps the group made,
how long requests waited for a member to load (the proxy's
`variant_proxy_swap_wait_seconds`) and the most members seen running at
once. `tests/socket/test_swap_load.py` runs a small round and asserts on it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the fakes live in tests/helpers
    sys.path.insert(0, str(ROOT))

from proxy.app import create_app  # noqa: E402
from tests.helpers.fakeupstream import run_server  # noqa: E402

FAKE = str(ROOT / "tests" / "helpers" / "fake_llama.py")
MEMBERS = ("a", "b", "c")


@dataclass
class Result:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    most_running: int = 0
    swaps: float = 0.0
    evictions: float = 0.0
    wait_count: float = 0.0
    wait_sum: float = 0.0
    elapsed: float = 0.0


def _config(state: Path, tag: str, load_seconds: float, max_loaded: int) -> dict[str, Any]:
    backends = {
        name: {
            "kind": "llamacpp",
            "command": [
                sys.executable, FAKE, "--port", "{port}", "--name", name, "--tag", tag,
                "--load-seconds", str(load_seconds), "--chunks", "4", "--chunk-delay", "0.02",
            ],
            "start": "lazy",
            "start_timeout": 60,
            "queue_timeout": 120,
            "timeouts": {"first_byte": 120, "idle": 30},
        }
        for name in MEMBERS
    }  # fmt: skip
    return {
        "server": {
            "state_dir": str(state),
            "health_interval": 30,
            "watch_config": False,
            "keepalive_after": 1,
            "keepalive_interval": 1,
        },
        "backends": backends,
        "variants": {f"v{n}": {"backend": n, "model": n} for n in MEMBERS},
        "routes": {"default": "va"},
        "groups": {"box": {"members": list(MEMBERS), "max_loaded": max_loaded}},
    }


def _running(tag: str) -> int:
    """How many members have a live server (by `--name`: one server may briefly be two
    processes while it starts, e.g. behind a pyenv shim)."""
    names = set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if FAKE in cmd and tag in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            names.add(cmd[cmd.index("--name") + 1])
    return len(names)


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def _one(url: str, i: int) -> tuple[bool, float, str]:
    name = MEMBERS[i % len(MEMBERS)]
    stream = i % 2 == 1
    body = {"model": f"v{name}", "messages": [{"role": "user", "content": "hi"}]}
    began = time.monotonic()
    with httpx.Client(timeout=180) as client:
        if stream:
            with client.stream(
                "POST", url + "/v1/chat/completions", json={**body, "stream": True}
            ) as r:
                text = "".join(r.iter_text())
                ok = r.status_code == 200 and "data: [DONE]" in text and f"{name} pid" in text
                why = f"{r.status_code} {text[-200:]}"
        else:
            r = client.post(url + "/v1/chat/completions", json=body)
            ok = r.status_code == 200 and f"{name} pid" in r.text
            why = f"{r.status_code} {r.text[:200]}"
    return ok, time.monotonic() - began, "" if ok else f"request {i} to {name}: {why}"


def run(requests: int, concurrency: int, load_seconds: float, max_loaded: int) -> Result:
    result = Result()
    tag = f"swap-load-{time.time_ns()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "router.yaml"
        path.write_text(yaml.safe_dump(_config(Path(tmp) / "state", tag, load_seconds, max_loaded)))
        app = create_app(path)
        with run_server(app) as url:
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    result.most_running = max(result.most_running, _running(tag))
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            began = time.monotonic()
            with ThreadPoolExecutor(concurrency) as pool:
                for ok, seconds, why in pool.map(lambda i: _one(url, i), range(requests)):
                    result.latencies.append(seconds)
                    if ok:
                        result.ok += 1
                    else:
                        result.failed.append(why)
            result.elapsed = time.monotonic() - began
            stop.set()
            watcher.join(5)
            text = httpx.get(url + "/metrics", timeout=10).text
            result.swaps = _metric(text, "variant_proxy_swaps_total")
            result.evictions = _metric(text, "variant_proxy_evictions_total")
            result.wait_count = _metric(text, "variant_proxy_swap_wait_seconds_count")
            result.wait_sum = _metric(text, "variant_proxy_swap_wait_seconds_sum")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--load-seconds", type=float, default=0.5)
    parser.add_argument("--max-loaded", type=int, default=2)
    args = parser.parse_args()
    r = run(args.requests, args.concurrency, args.load_seconds, args.max_loaded)
    lat = sorted(r.latencies)
    mean_wait = r.wait_sum / r.wait_count if r.wait_count else 0.0
    print(f"requests       {args.requests} ({args.concurrency} at a time, 3 members, "
          f"max_loaded {args.max_loaded}, load {args.load_seconds:g} s)")  # fmt: skip
    print(f"succeeded      {r.ok}, failed {len(r.failed)}")
    print(f"swaps          {r.swaps:.0f} (evictions {r.evictions:.0f})")
    print(f"waited for a swap  {r.wait_count:.0f} requests, mean {mean_wait:.2f} s")
    print(f"latency        p50 {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s")
    print(f"most running   {r.most_running}")
    print(f"elapsed        {r.elapsed:.1f} s")
    for why in r.failed[:5]:
        print("  failed:", why)


if __name__ == "__main__":
    main()
