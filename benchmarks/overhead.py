"""What the proxy adds: the same load straight at a fast upstream and through the proxy.

Three kinds of process, all on loopback: the fast fake upstream
(`fast_upstream.py`), `variant-proxy serve` in front of it (one variant, `fast`,
so the request is relayed without classification), and load generator
processes (`loadgen.py`). On a machine with two or more CPUs the proxy is
pinned to one and the upstream and the generators to the others, for the
direct runs too, so "proxy minus direct" is the proxy's own cost.

Scenarios: chat completions non-streaming and streaming (50 SSE chunks), with a
small and a large (32k-token, ~128 KB) body, each at fixed open-loop rates
(latency from each request's due time, so stalls are not hidden by coordinated
omission); then a closed-loop ramp of concurrency to find the highest rate
sustained. Each point runs `--repeat` times, direct and proxy alternating; the
figures are medians over the repeats.

Reports per point: added latency p50/p99 (proxy minus direct), added time to
the first chunk, the rate sustained, proxy CPU seconds per 1,000 requests,
proxy resident memory, and the generator's own CPU (to show it was not the
bottleneck). Targets are printed as PASS/MISS beside the figures; nothing is
asserted. Writes benchmarks/results/overhead.json and overhead.md.

Run: .venv/bin/python benchmarks/overhead.py [--quick] [--repeat N] [--no-pin]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from loadgen import make_body  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    large: bool
    rates: tuple[int, ...]
    quick_rates: tuple[int, ...]
    #: "fast" names the variant (relayed without classification); "auto" is classified
    model: str = "fast"


SCENARIOS = (
    Scenario("chat", stream=False, large=False, rates=(200, 500, 1000), quick_rates=(200, 1000)),
    Scenario(
        "chat-auto", stream=False, large=False, rates=(200,), quick_rates=(200,), model="auto"
    ),
    Scenario("chat-stream", stream=True, large=False, rates=(100, 200), quick_rates=(200,)),
    # classified, and the variant's name written into every chunk (server.show_variant)
    Scenario(
        "chat-stream-auto", stream=True, large=False, rates=(200,), quick_rates=(200,), model="auto"
    ),
    Scenario("chat-large", stream=False, large=True, rates=(100, 200), quick_rates=(200,)),
    Scenario("chat-stream-large", stream=True, large=True, rates=(100,), quick_rates=()),
)
RAMP = (1, 4, 16, 64)
QUICK_RAMP = (4, 16)


def _nan_median(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return float(statistics.median(clean)) if clean else float("nan")


def _summary(run: dict[str, Any]) -> dict[str, float]:
    lat, ttfc = run["latency_ms"], run["ttfc_ms"]
    wall = run["wall_s"] or float("nan")
    return {
        "p50_ms": h.percentile(lat, 50),
        "p99_ms": h.percentile(lat, 99),
        "ttfc_p50_ms": h.percentile(ttfc, 50),
        "ttfc_p99_ms": h.percentile(ttfc, 99),
        "rps": run["completed"] / wall,
        "errors": run["errors"],
        "gen_cpu_pct": 100 * run["cpu_s"] / wall,
        "gen_lag_p99_ms": h.percentile(run["lag_ms"], 99),
    }


def _measure(
    target: str, spec: dict[str, Any], args: argparse.Namespace, px: h.ProxyProcess | None
) -> dict[str, float]:
    cpu0 = px.cpu_seconds() if px else 0.0
    wall0 = time.monotonic()
    run = h.run_load(target, spec, procs=args.gen_procs, cpus=args.placement.others)
    out = _summary(run)
    if px is not None:
        n = run["completed"] + run["warmup_completed"] + run["errors"]
        cpu = px.cpu_seconds() - cpu0
        out["proxy_cpu_s_per_1000"] = 1000 * cpu / max(1, n)
        # Busy share of one core while loaded (includes generator start-up, so a slight
        # underestimate); far below 100 % at saturation means other processes had the CPU.
        out["proxy_cpu_pct"] = 100 * cpu / (time.monotonic() - wall0)
        # What one whole core would sustain at this CPU cost: robust to a contended machine.
        out["capacity_rps_est"] = 1000 / max(1e-9, out["proxy_cpu_s_per_1000"])
        out["proxy_rss_mb"] = px.rss_bytes() / 2**20
        out["proxy_requests"] = n
    if run["error_examples"]:
        out["error_examples"] = run["error_examples"]  # type: ignore[assignment]
    return out


def _median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {k: _nan_median([float(r[k]) for r in runs]) for k in keys}


def run_point(
    up: str, px: h.ProxyProcess, spec: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    direct_runs, proxy_runs, added_runs = [], [], []
    for _ in range(args.repeat):
        d = _measure(up, spec, args, None)
        p = _measure(px.url, spec, args, px)
        direct_runs.append(d)
        proxy_runs.append(p)
        added_runs.append(
            {
                "p50_ms": p["p50_ms"] - d["p50_ms"],
                "p99_ms": p["p99_ms"] - d["p99_ms"],
                "ttfc_p50_ms": p["ttfc_p50_ms"] - d["ttfc_p50_ms"],
                "ttfc_p99_ms": p["ttfc_p99_ms"] - d["ttfc_p99_ms"],
            }
        )
    return {
        "direct": _median_of(direct_runs),
        "proxy": _median_of(proxy_runs),
        "added": _median_of(added_runs),
        "repeats": args.repeat,
    }


def ramp(up: str, px: h.ProxyProcess, args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop, growing concurrency until the rate stops growing; both targets."""
    steps = QUICK_RAMP if args.quick else RAMP
    out: dict[str, Any] = {}
    for name, url, proc in (("direct", up, None), ("proxy", px.url, px)):
        rows = []
        for conns in steps:
            spec = {"mode": "closed", "conns": conns, "duration": args.ramp_duration, "warmup": 0.3}
            runs = [_measure(url, spec, args, proc) for _ in range(args.repeat)]
            row = {"conns": conns, **_median_of(runs)}
            rows.append(row)
            _progress(f"ramp {name:<6} conns={conns:<3} {row['rps']:7.0f} req/s")
            if len(rows) > 1 and row["rps"] < 1.05 * rows[-2]["rps"]:
                break
        out[name] = {"steps": rows, "max_rps": max(r["rps"] for r in rows)}
    return out


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def targets(points: list[dict[str, Any]], ramp_result: dict[str, Any]) -> list[dict[str, Any]]:
    def find(scenario: str, rate: int) -> dict[str, Any] | None:
        return next((p for p in points if p["scenario"] == scenario and p["rate"] == rate), None)

    out: list[dict[str, Any]] = []

    def add(what: str, value: float | None, limit: float, unit: str, higher: bool = False) -> None:
        if value is None or value != value:
            out.append({"target": what, "value": None, "status": "NOT RUN"})
            return
        ok = value >= limit if higher else value <= limit
        out.append(
            {
                "target": what,
                "value": round(value, 3),
                "unit": unit,
                "status": "PASS" if ok else "MISS",
            }
        )

    def added(point: dict[str, Any] | None, key: str) -> float | None:
        return None if point is None else float(point["added"][key])

    p200, p1000 = find("chat", 200), find("chat", 1000)
    s200 = find("chat-stream", 200)
    add("added p50 ≤ 1 ms at 200 req/s (non-streaming)", added(p200, "p50_ms"), 1.0, "ms")
    add("added p99 ≤ 3 ms at 200 req/s (non-streaming)", added(p200, "p99_ms"), 3.0, "ms")
    add("added TTFC p50 ≤ 1 ms at 200 req/s (streaming)", added(s200, "ttfc_p50_ms"), 1.0, "ms")
    add("added p99 ≤ 10 ms at 1,000 req/s (non-streaming)", added(p1000, "p99_ms"), 10.0, "ms")
    auto = find("chat-auto", 200)
    gap = None
    if auto is not None and p200 is not None:
        gap = float(auto["added"]["p50_ms"]) - float(p200["added"]["p50_ms"])
    add("model auto within 0.1 ms of a named variant (added p50, 200 req/s)", gap, 0.1, "ms")
    cpu_gap = None
    if auto is not None and p200 is not None:
        cpu_gap = float(auto["proxy"]["proxy_cpu_s_per_1000"]) - float(
            p200["proxy"]["proxy_cpu_s_per_1000"]
        )
    add("model auto costs ≤ 0.1 ms more proxy CPU per request", cpu_gap, 0.1, "ms")
    best = ramp_result["proxy"]["max_rps"] if ramp_result else None
    add("≥ 1,500 non-streaming req/s sustained", best, 1500, "req/s", higher=True)
    soak = RESULTS / "soak.json"
    rss = None
    if soak.exists():
        data = orjson.loads(soak.read_bytes())
        if data.get("requests", 0) >= 100_000:
            rss = data["rss_mb_end"]
    add("RSS ≤ 100 MB after 100,000 requests (soak.py)", rss, 100, "MB")
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Proxy overhead — last run",
        "",
        f"{result['finished']} · {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"{m['os']}, Python {m['python']}, uvicorn {m['uvicorn']}, httpx {m['httpx']} · "
        f"{result['placement']} · load average {m['load_avg_at_start']} at start, "
        f"{result['load_avg_at_end']} at end · "
        f"{result['settings']['repeat']} repeat(s) of {result['settings']['duration_s']:g} s "
        "per point, medians · proxy log level "
        f"`{result['settings']['proxy_log_level']}`, access log off (the default).",
        "",
        "Open loop, latency from each request's due time. *added* = proxy − direct.",
        "",
        "| scenario | req/s offered | direct p50 / p99 ms | proxy p50 / p99 ms | "
        "added p50 / p99 ms | added TTFC p50 / p99 ms | proxy req/s | "
        "proxy CPU s / 1k req | proxy busy % | proxy RSS MB | generator CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["points"]:
        d, x, a = p["direct"], p["proxy"], p["added"]
        ttfc = f"{_fmt(a['ttfc_p50_ms'])} / {_fmt(a['ttfc_p99_ms'])}" if p["stream"] else "n/a"
        lines.append(
            f"| {p['scenario']} | {p['rate']} | {_fmt(d['p50_ms'])} / {_fmt(d['p99_ms'])} | "
            f"{_fmt(x['p50_ms'])} / {_fmt(x['p99_ms'])} | "
            f"**{_fmt(a['p50_ms'])} / {_fmt(a['p99_ms'])}** | {ttfc} | {x['rps']:.0f} | "
            f"{_fmt(x['proxy_cpu_s_per_1000'])} | {x['proxy_cpu_pct']:.0f} | "
            f"{x['proxy_rss_mb']:.0f} | "
            f"{d['gen_cpu_pct']:.0f} / {x['gen_cpu_pct']:.0f} |"
        )
    r = result.get("ramp")
    if r:
        lines += [
            "",
            "Closed-loop ramp (chat, small body, non-streaming): requests/s by concurrency.",
            "",
            "| target | " + " | ".join(f"c={s['conns']}" for s in r["proxy"]["steps"]) + " | max |",
            "|---|" + "---:|" * (len(r["proxy"]["steps"]) + 1),
        ]
        for name in ("direct", "proxy"):
            steps = {s["conns"]: s for s in r[name]["steps"]}
            cells = [
                f"{steps[s['conns']]['rps']:.0f}" if s["conns"] in steps else "–"
                for s in r["proxy"]["steps"]
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | **{r[name]['max_rps']:.0f}** |")
        top = max(r["proxy"]["steps"], key=lambda s: s["rps"])
        lines.append("")
        lines.append(
            f"At the proxy's best step: {_fmt(top['proxy_cpu_s_per_1000'])} proxy CPU s per "
            f"1,000 requests, so one whole core would sustain about "
            f"{top['capacity_rps_est']:.0f} req/s; the proxy was busy "
            f"{top['proxy_cpu_pct']:.0f} % of its core (well under 100 % at saturation means "
            f"other processes on the machine took the rest); generator CPU "
            f"{top['gen_cpu_pct']:.0f} % of a core."
        )
    lines += ["", "| target | value | |", "|---|---:|---|"]
    for t in result["targets"]:
        value = "–" if t["value"] is None else f"{t['value']:g} {t['unit']}"
        lines.append(f"| {t['target']} | {value} | **{t['status']}** |")
    lines += [
        "",
        "Generator CPU is direct / proxy run, % of one core. A shared 2-core machine is noisy: "
        "compare medians, and re-run before trusting a single point.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, ~1 minute")
    parser.add_argument("--repeat", type=int, default=None, help="runs per point (median)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per point")
    parser.add_argument("--gen-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--conns", type=int, default=32, help="connections per open-loop run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--no-ramp", action="store_true", help="skip the closed-loop ramp")
    parser.add_argument(
        "--proxy-log-level", default="info", help="the proxy's --log-level (info logs access)"
    )
    parser.add_argument(
        "--serve-cmd",
        default=None,
        help="run this instead of `variant-proxy serve` (gets --config/--port/--log-level)",
    )
    parser.add_argument("--only", default=None, help="comma-separated scenario names")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.duration = args.duration or (2.0 if args.quick else 3.0)
    args.ramp_duration = 1.5 if args.quick else 2.0
    args.placement = h.Placement.choose(not args.no_pin)
    only = set(args.only.split(",")) if args.only else None
    serve_cmd = shlex.split(args.serve_cmd) if args.serve_cmd else None

    machine = h.machine()
    _progress(f"{machine['cpu']}, {machine['cores']} cores; {args.placement.describe()}")
    started = time.monotonic()
    points: list[dict[str, Any]] = []
    ramp_result: dict[str, Any] = {}
    with (
        h.fast_upstream(args.placement.others) as up,
        h.proxy(up, args.placement.proxy, args.proxy_log_level, serve_cmd) as px,
    ):
        rss_start = px.rss_bytes() / 2**20
        for sc in SCENARIOS:
            if only and sc.name not in only:
                continue
            for rate in sc.quick_rates if args.quick else sc.rates:
                spec = {
                    "mode": "open",
                    "rate": rate,
                    "duration": args.duration,
                    "warmup": 0.5,
                    "conns": args.conns,
                    "stream": sc.stream,
                    "large": sc.large,
                    "chunks": 50,
                    "model": sc.model,
                }
                point = run_point(up, px, spec, args)
                point.update(scenario=sc.name, rate=rate, stream=sc.stream, large=sc.large)
                points.append(point)
                a, x = point["added"], point["proxy"]
                _progress(
                    f"{sc.name:<18} {rate:>5}/s  added p50 {_fmt(a['p50_ms'])} "
                    f"p99 {_fmt(a['p99_ms'])} ms  ttfc p50 {_fmt(a['ttfc_p50_ms'])} ms  "
                    f"proxy {x['rps']:.0f}/s  cpu {_fmt(x['proxy_cpu_s_per_1000'])} s/1k  "
                    f"rss {x['proxy_rss_mb']:.0f} MB  gen {x['gen_cpu_pct']:.0f}%"
                )
        if not args.no_ramp and (only is None or "chat" in only):
            ramp_result = ramp(up, px, args)
        rss_end = px.rss_bytes() / 2**20

    result = {
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "placement": args.placement.describe(),
        "settings": {
            "quick": args.quick,
            "repeat": args.repeat,
            "duration_s": args.duration,
            "gen_procs": args.gen_procs,
            "conns": args.conns,
            "proxy_log_level": args.proxy_log_level,
            "serve_cmd": args.serve_cmd or "variant-proxy serve",
            "stream_chunks": 50,
            "large_body_bytes": len(make_body(large=True)),
        },
        "proxy_rss_mb": {"start": rss_start, "end": rss_end},
        "points": points,
        "ramp": ramp_result,
    }
    result["targets"] = targets(points, ramp_result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    text = markdown(result)
    (args.out / "overhead.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
