"""What the bubblewrap sandbox and the harness cost per scored answer.

Scores every shipped suite's reference answers (all pass) under the harness, once in
bubblewrap and once with `unsafe=True` (only resource limits), one at a time, and
prints the median and p90 wall time per answer by language. Nothing is asserted: these
are figures for docs/benchmark.md and the issue note.

Run: .venv/bin/python benchmarks/bench_sandbox.py [--rounds N]
"""

from __future__ import annotations

import argparse
import time

from proxy.bench.runner import percentile
from proxy.bench.scoring import score, toolchains
from proxy.bench.suite import load_suite
from proxy.classify import CLASSES


def measure(unsafe: bool, rounds: int) -> tuple[dict[str, list[float]], int]:
    tools = toolchains(unsafe=unsafe)
    times: dict[str, list[float]] = {}
    passed = 0
    for _ in range(rounds):
        for name in CLASSES:
            for task in load_suite(name).tasks:
                started = time.perf_counter()
                result = score(task, task.reference or "", tools=tools, unsafe=unsafe)
                times.setdefault(task.language, []).append(time.perf_counter() - started)
                passed += result.passed
    return times, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'mode':<22} {'language':<11} {'n':>4} {'p50 ms':>8} {'p90 ms':>8}")
    for unsafe in (False, True):
        times, passed = measure(unsafe, args.rounds)
        mode = "no sandbox (unsafe)" if unsafe else "bubblewrap"
        for language, values in sorted(times.items()):
            p50 = (percentile(values, 50) or 0) * 1000
            p90 = (percentile(values, 90) or 0) * 1000
            print(f"{mode:<22} {language:<11} {len(values):>4} {p50:>8.1f} {p90:>8.1f}")
        total = sum(len(v) for v in times.values())
        print(f"{mode:<22} passed {passed}/{total}")


if __name__ == "__main__":
    main()
