"""Classifier latency: p50/p99 in microseconds.

Three tables: synthetic requests of ~100, ~4k and ~32k tokens; real clients' envelopes
of 40-60 KB (the largest request of each client in tests/corpus/clients/clients.jsonl
within that range: aider, Cline, Roo, Continue, Zed, Open WebUI, tool loops); and the
cost of `model: auto` over naming a variant for a small chat (`Runtime.decide`).

Run: .venv/bin/python benchmarks/classify.py [iterations]
Pinned to one core when os.sched_setaffinity exists. Prints tables; asserts nothing.
Targets: p99 ≤ 1 ms for the 40-60 KB envelopes; auto within 0.1 ms of a named variant.
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

import json  # noqa: E402

from proxy.classify import Classifier  # noqa: E402
from proxy.config import parse_config  # noqa: E402
from proxy.runtime import PATH_TO_ENDPOINT, Runtime  # noqa: E402

CLIENTS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "clients" / "clients.jsonl"

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


def envelopes() -> dict[str, tuple[str, dict[str, Any]]]:
    """Per client, its largest 40-60 KB request of the client corpus."""
    best: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for line in CLIENTS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        size = len(json.dumps(row["body"]))
        if 40_000 <= size <= 60_000 and size > best.get(row["client"], (0, "", {}))[0]:
            best[row["client"]] = (size, PATH_TO_ENDPOINT[row["endpoint"]], row["body"])
    return {client: (endpoint, body) for client, (_, endpoint, body) in sorted(best.items())}


def percentiles(samples: list[int]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples) / 1000, p99 / 1000


def auto_versus_named(n: int) -> None:
    cfg = parse_config(
        {
            "backends": {"b": {"kind": "openai", "url": "http://127.0.0.1:9"}},
            "variants": {"v": {"backend": "b", "model": "m"}},
            "routes": {"default": "v"},
        }
    )
    rt = Runtime(cfg, "<bench>", {})
    chat = [
        {"role": "system", "content": "You are a helpful coding assistant."},
        {"role": "user", "content": "Write a Python function that reverses a string."},
    ]
    print(f"\n{'model':<8} {'p50 µs':>9} {'p99 µs':>9}   (Runtime.decide, small chat)")
    medians = {}
    for model in ("v", "auto"):
        body = {"model": model, "messages": chat}
        for _ in range(min(50, n)):
            rt.decide("chat", body)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            rt.decide("chat", body)
            samples.append(time.perf_counter_ns() - t0)
        p50, p99 = percentiles(samples)
        medians[model] = p50
        print(f"{model:<8} {p50:>9.1f} {p99:>9.1f}")
    print(f"auto costs {medians['auto'] - medians['v']:.1f} µs more (target ≤ 100 µs)")


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
    print(f"\n{'client':<16} {'bytes':>8} {'class':<15} {'p50 µs':>9} {'p99 µs':>9}   (≤ 1000)")
    for client, (endpoint, body) in envelopes().items():
        p50, p99 = percentiles(measure(classifier, endpoint, body, iterations))
        cls = classifier.classify(endpoint, body).cls
        print(f"{client:<16} {len(json.dumps(body)):>8} {cls:<15} {p50:>9.1f} {p99:>9.1f}")
    auto_versus_named(iterations)


if __name__ == "__main__":
    main()
