"""Envelope reading latency: p50/p99 of ``read_envelope`` in microseconds.

Run: taskset -c 1 .venv/bin/python benchmarks/envelope.py [iterations]
(pins itself to the last CPU when run without taskset). The requests are the client
skeletons of tests/unit/test_envelope.py: a small chat and 40-60 KB Cline, aider,
Continue and Zed envelopes. Prints a table; asserts nothing. Target: p99 well under
0.2 ms for the large envelopes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.envelope import read_envelope  # noqa: E402
from tests.unit.test_envelope import (  # noqa: E402
    aider_body,
    cline_body,
    continue_body,
    one,
    source,
    webui,
    zed_body,
)


def cases() -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "small chat": ("chat", one("You are helpful.", "Write a haiku about rust")),
        "open-webui title": (
            "chat",
            webui("Generate a concise title summarizing the chat history."),
        ),
        "cline 1st turn": ("chat", cline_body("Fix the typo 'recieve' in README")),
        "cline step 4": ("chat", cline_body("Fix the login bug", steps=4, system_chars=48_000)),
        "cline native 6": (
            "chat",
            cline_body("Rename foo", steps=6, native=True, system_chars=25_000),
        ),
        "aider": (
            "chat",
            aider_body("Add logging", done=("a", "b"), files=source(24_000), map_chars=14_000),
        ),
        "continue": ("chat", continue_body("why does this throw?", 48_000, selection="f()")),
        "zed": ("chat", zed_body("why does this crash?", source(45_000))),
        "completion": ("completions", {"prompt": source(50_000), "max_tokens": 64}),
    }


def measure(endpoint: str, body: dict[str, Any], n: int) -> list[int]:
    for _ in range(min(100, n)):
        read_envelope(endpoint, body)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        read_envelope(endpoint, body)
        samples.append(time.perf_counter_ns() - t0)
    return sorted(samples)


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    if hasattr(os, "sched_getaffinity"):
        print(f"cpus {sorted(os.sched_getaffinity(0))}")
    print(f"{'request':<18} {'KB':>6} {'client':<13} {'ask':>5} {'p50 µs':>8} {'p99 µs':>8}")
    for name, (endpoint, body) in cases().items():
        samples = measure(endpoint, body, iterations)
        p50 = statistics.median(samples) / 1000
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
        kb = len(json.dumps(body, ensure_ascii=False)) / 1000
        e = read_envelope(endpoint, body)
        print(f"{name:<18} {kb:>6.1f} {e.client:<13} {e.ask_chars:>5} {p50:>8.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
