"""Classifier latency: p50/p99 in microseconds for ~100, ~4k and ~32k-token requests.

Run: .venv/bin/python benchmarks/classify.py [iterations]
Pinned to one core when os.sched_setaffinity exists. Prints a table; asserts nothing.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify import Classifier  # noqa: E402

CHAT = "chat"
COMP = "completions"
SYSTEM = ("You are an expert software developer. Always answer with fenced code blocks. "
          "Respect the project's conventions. ") * 6  # fmt: skip


def code(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        k = rng.randint(1, 10**6)
        chunk = (
            f"def handler_{k}(request, db):\n"
            f"    rows = db.query('SELECT * FROM t WHERE id = ?', (request.id,))\n"
            f"    for row in rows:\n"
            f"        if row.status == 'active' and row.score > {k % 100}:\n"
            f"            yield {{'id': row.id, 'score': row.score * 2}}\n\n"
        )
        out.append(chunk)
        n += len(chunk)
    return "".join(out)


def bodies(tokens: int) -> dict[str, tuple[str, dict[str, Any]]]:
    rng = random.Random(tokens)
    chars = tokens * 4
    src = code(rng, chars)
    prose = ("Please refactor this module so that the handlers share one query helper, "
             "keep the behaviour identical and add type hints. ")  # fmt: skip
    return {
        "chat": (CHAT, {"model": "auto", "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{prose}\n```python\n{src}```\nThanks!"}]}),
        "chat-prose": (CHAT, {"model": "auto", "messages": [
            {"role": "user", "content": (prose * (chars // len(prose) + 1))[:chars]}]}),
        "completions": (COMP, {"model": "auto", "prompt": src[: chars * 3 // 4],
                               "suffix": src[chars * 3 // 4 :], "max_tokens": 64}),
        "completions-fim": (COMP, {"model": "auto", "max_tokens": 64, "prompt":
                                   f"<|fim_prefix|>{src[: chars * 3 // 4]}<|fim_suffix|>"
                                   f"{src[chars * 3 // 4 :]}<|fim_middle|>"}),
    }  # fmt: skip


def measure(classifier: Classifier, endpoint: str, body: dict[str, Any], n: int) -> list[int]:
    for _ in range(min(50, n)):
        classifier.classify(endpoint, body)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        classifier.classify(endpoint, body)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        print(f"pinned to cpu {cpu}")
    classifier = Classifier()
    print(f"{'size':>8} {'kind':<16} {'chars':>8} {'class':<15} {'p50 µs':>9} {'p99 µs':>9}")
    for tokens in (100, 4000, 32000):
        n = iterations if tokens < 32000 else max(200, iterations // 4)
        for kind, (endpoint, body) in bodies(tokens).items():
            samples = sorted(measure(classifier, endpoint, body, n))
            p50 = statistics.median(samples) / 1000
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
            chars = len(str(body))
            cls = classifier.classify(endpoint, body).cls
            print(f"{'~' + str(tokens):>8} {kind:<16} {chars:>8} {cls:<15} {p50:>9.1f} {p99:>9.1f}")


if __name__ == "__main__":
    main()
