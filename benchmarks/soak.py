"""Soak: many requests through one proxy process, its resident memory sampled as they go.

Same processes as `overhead.py` (fast upstream, `variant-proxy serve`, load
generator), loopback only. Closed-loop batches rotate through a mix (small
JSON, 50-chunk streams, ~128 KB bodies) until `--requests` have been answered
or `--max-seconds` have passed, whichever comes first; the proxy's RSS is
read after every batch. A leak shows as RSS that keeps climbing after the
first batches (allocator warm-up and the connection pool are a one-off).

Writes benchmarks/results/soak.json (read by `overhead.py` for its RSS target).

Run: .venv/bin/python benchmarks/soak.py [--requests 100000] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MIX: tuple[dict[str, Any], ...] = (
    {"stream": False, "large": False},
    {"stream": True, "large": False},
    {"stream": False, "large": False},
    {"stream": False, "large": True},
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--batch-seconds", type=float, default=5.0)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    placement = h.Placement.choose(True)
    samples: list[dict[str, float]] = []
    done = errors = 0
    started = time.monotonic()
    with h.fast_upstream(placement.others) as up, h.proxy(up, placement.proxy) as px:
        rss_start = px.rss_bytes() / 2**20
        cpu0 = px.cpu_seconds()
        batch = 0
        while done < args.requests and time.monotonic() - started < args.max_seconds:
            spec = {
                "mode": "closed",
                "conns": args.conns,
                "duration": args.batch_seconds,
                "warmup": 0,
                **MIX[batch % len(MIX)],
            }
            run = h.run_load(px.url, spec, cpus=placement.others)
            done += run["completed"]
            errors += run["errors"]
            batch += 1
            rss = px.rss_bytes() / 2**20
            elapsed = time.monotonic() - started
            samples.append({"t_s": round(elapsed, 1), "requests": done, "rss_mb": round(rss, 1)})
            print(f"{elapsed:6.0f} s  {done:>7} requests  rss {rss:6.1f} MB", file=sys.stderr)
        cpu = px.cpu_seconds() - cpu0
        rss_end = px.rss_bytes() / 2**20
    half = [s["rss_mb"] for s in samples[len(samples) // 2 :]]
    result = {
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": h.machine(),
        "requests": done,
        "errors": errors,
        "elapsed_s": round(time.monotonic() - started, 1),
        "proxy_cpu_s_per_1000": round(1000 * cpu / max(1, done), 3),
        "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "rss_mb_growth_second_half": round(max(half) - min(half), 1) if half else None,
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    verdict = "PASS" if done >= 100_000 and rss_end <= 100 else "MISS"
    if done < 100_000:
        verdict = "NOT REACHED"
    print(
        f"{done} requests ({errors} errors) in {result['elapsed_s']:g} s; RSS {rss_start:.1f} → "
        f"{rss_end:.1f} MB (max {result['rss_mb_max']:.1f}); target RSS ≤ 100 MB after "
        f"100,000 requests: {verdict}"
    )


if __name__ == "__main__":
    main()
