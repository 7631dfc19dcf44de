"""Responses API translation cost: p50/p99 in microseconds of what a translated
`/v1/responses` request adds to the proxy's own work.

Run: .venv/bin/python benchmarks/responses.py [iterations]

Per request the request is checked once (`check`, at parse) and translated once
(`to_chat`, when it is routed; every attempt sends that translation), so the table
shows `check` and `to_chat` on a small ask and on a 40-step agent conversation (50 KB
of instructions, 20 tool round trips, 15 tools); per streamed event,
`ResponseStream.feed` on one chat delta. Prints a table; asserts nothing. Target:
well under the proxy's ~0.5 ms per request.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.responses import ResponseStream, check, to_chat  # noqa: E402
from tests.helpers.openai_wire import chunk, event  # noqa: E402


def agent() -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "input_text", "text": "fix the bug " * 150}]}
    ]
    for i in range(20):
        call = {"call_id": f"c{i}", "name": "read_file", "arguments": '{"path": "a.py"}'}
        items.append({"type": "function_call", **call})
        items.append({"type": "function_call_output", "call_id": f"c{i}", "output": "x" * 2000})
    tools = [{"type": "function", "name": f"t{i}", "parameters": {}} for i in range(15)]
    return {"model": "auto", "instructions": "s" * 50_000, "input": items, "tools": tools}


def measure(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    small = {"model": "auto", "input": "Write a haiku about rust"}
    big = agent()
    delta = event(chunk(True, "m", "tok ", False, None))
    stream = ResponseStream(small)
    stream.feed(event(chunk(True, "m", "", True, None)))
    rows = [
        ("check, small ask", measure(lambda: check(small), n)),
        ("to_chat, small ask", measure(lambda: to_chat(small), n)),
        ("check, 40-step agent", measure(lambda: check(big), n)),
        ("to_chat, 40-step agent", measure(lambda: to_chat(big), n)),
        ("stream, one chat delta", measure(lambda: stream.feed(delta), n * 10)),
    ]
    print(f"{'what':<26} {'p50 us':>8} {'p99 us':>8}")
    for name, (p50, p99) in rows:
        print(f"{name:<26} {p50:>8.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
