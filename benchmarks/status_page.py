"""What the status page costs: its one hook on the request path, and one read of its JSON.

1. The hook: what `edge.OpenAIEndpoint` does per request for the page — build one
   `activity.Entry` from values it already has and append it to the bounded ring —
   timed over many iterations (ns per request), beside the same loop without it.
2. A read: `statuspage.status_document` over a full ring (`server.status_page.history`
   entries spread over the chart window, 4 variants), the work a poll of
   `GET /status.json` makes (ms per read); only paid while someone has the page open.

The end-to-end figure (added latency with the page closed) is benchmarks/overhead.py run
before and after; see docs/status-page.md#what-it-costs.

Run: .venv/bin/python benchmarks/status_page.py [iterations]
Pinned to one core when os.sched_setaffinity exists. Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.activity import ActivityLog, Entry  # noqa: E402
from proxy.app import create_app  # noqa: E402
from proxy.config import parse_config  # noqa: E402
from proxy.dispatch import Outcome  # noqa: E402
from proxy.edge import activity_entry  # noqa: E402
from proxy.statuspage import status_document  # noqa: E402
from proxy.streammeter import StreamStats  # noqa: E402

VARIANTS = ("instruct", "code", "big", "multi")


def _config(history: int) -> dict[str, object]:
    up = "http://127.0.0.1:9"
    return {
        "server": {"status_page": {"history": history}, "watch_config": False},
        "backends": {"main": {"kind": "openai", "url": up}},
        "variants": {v: {"backend": "main", "model": f"up-{v}"} for v in VARIANTS},
        "routes": {
            "completion": ["code"],
            "instruction": ["instruct"],
            "complex": ["big"],
            "multi-language": ["multi"],
            "default": "instruct",
        },
    }


def hook(iterations: int) -> tuple[float, float]:
    """ns per request: the edge's append, and the empty loop around it."""
    log = ActivityLog(2000)
    outcome = Outcome(cls="instruction", variant="instruct", status=200, rule="r", reason="x")
    outcome.tried.append("instruct")
    outcome.stats = StreamStats(ttft=0.1, output_tokens=10, tokens_per_second=50.0)
    rid = b"0123456789abcdef0123456789abcdef"
    runs, empty = [], []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            log.append(activity_entry("chat", outcome, rid, False))
        runs.append((time.perf_counter_ns() - t0) / iterations)
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            pass
        empty.append((time.perf_counter_ns() - t0) / iterations)
    return statistics.median(runs), statistics.median(empty)


def read(history: int, reads: int) -> float:
    """ms per `status_document` over a full ring of `history` entries."""
    app = create_app(parse_config(_config(history)))
    proxy = app.proxy
    now = time.time()
    for i in range(history):
        proxy.activity.append(
            Entry(
                now - 600 + 600 * i / history,
                "chat",
                "instruction",
                "r",
                VARIANTS[i % len(VARIANTS)],
                [VARIANTS[i % len(VARIANTS)]],
                500 if i % 50 == 0 else 200,
                0.8,
                f"id-{i}",
                StreamStats(ttft=0.05 + (i % 7) / 100, output_tokens=64, tokens_per_second=40.0),
            )
        )
    times = []
    for _ in range(reads):
        t0 = time.perf_counter()
        status_document(proxy, None, now=now)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    per, empty = hook(iterations)
    print(f"hook on the request path: {per - empty:.0f} ns per request (loop {empty:.0f} ns)")
    for history in (2000, 20000):
        print(f"GET /status.json work, full ring of {history}: {read(history, 20):.2f} ms")


if __name__ == "__main__":
    main()
