"""Ordering variants on evidence: benchmark results → a route's candidate order. Pure.

`figures(docs)` pools result documents (one or many runs) into
`{variant: {class: {"passed", "scored", "pass_ratio", "lower", "upper",
"output_tokens_per_second", "ttft_seconds", "runs"}}}`. Evidence accumulates across
runs: rows are pooled per (variant, suite) when the suite version and the settings
that change answers (temperature, max_tokens, the sandbox) match the newest run of
that suite, so an older suite version or a different temperature never mixes in.

`rank` orders candidates in three tiers:

1. measured with at least one pass, by the Wilson lower bound of the pass ratio
   (`stats.wilson`), then output tokens/s (higher first), then TTFT (lower first) —
   a lucky 1/1 (lower bound 0.21) stays behind a 19/20 (0.76);
2. not measured for the class, in configured order;
3. measured and never passed (0/n), in configured order — a measured 0% is never
   preferred, not even to an unmeasured variant.

A route without any results therefore stays as configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .stats import wilson

__all__ = ["Figures", "figures", "rank"]

Figures = Mapping[str, Mapping[str, Mapping[str, Any]]]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def rank(candidates: list[str], cls: str, results: Figures) -> list[str]:
    """`candidates` ordered by the evidence in `results` for request class `cls`."""
    measured: list[tuple[tuple[float, float, float, int], str]] = []
    unmeasured: list[str] = []
    never: list[str] = []
    for position, name in enumerate(candidates):
        entry = results.get(name, {}).get(cls)
        scored = int(entry.get("scored") or 0) if entry else 0
        if entry is None or scored == 0:
            unmeasured.append(name)
            continue
        passed = int(entry.get("passed") or 0)
        if passed == 0:
            never.append(name)
            continue
        lower = wilson(passed, scored)[0]
        tps = _num(entry.get("output_tokens_per_second"))
        ttft = _num(entry.get("ttft_seconds"))
        key = (
            -lower,
            -(tps if tps is not None else 0.0),
            ttft if ttft is not None else float("inf"),
            position,
        )
        measured.append((key, name))
    measured.sort()
    return [name for _, name in measured] + unmeasured + never


def _signature(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    s = doc.get("settings") or {}
    sandbox = (doc.get("sandbox") or {}).get("sandbox")
    return (s.get("temperature"), s.get("max_tokens"), sandbox)


def figures(docs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant and class: pooled passes, Wilson bounds, mean tokens/s and TTFT."""
    runs = [docs] if isinstance(docs, Mapping) else list(docs)
    runs.sort(key=lambda d: str(d.get("finished_at") or ""))
    newest: dict[str, tuple[Any, ...]] = {}
    for doc in runs:
        for name, suite in (doc.get("suites") or {}).items():
            newest[name] = (suite.get("version"), *_signature(doc))
    pooled: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in runs:
        sig = _signature(doc)
        for row in doc.get("results", []):
            suite = str(row.get("suite"))
            if newest.get(suite, (row.get("suite_version"), *sig)) != (
                row.get("suite_version"),
                *sig,
            ):
                continue
            key = (str(row["variant"]), str(row["class"]))
            acc = pooled.setdefault(
                key, {"passed": 0, "scored": 0, "tps": [], "ttft": [], "runs": set()}
            )
            acc["passed"] += int(row.get("passed") or 0)
            acc["scored"] += int(row.get("scored") or 0)
            acc["runs"].add(doc.get("run_id"))
            tps = (row.get("output_tokens_per_second") or {}).get("p50")
            ttft = (row.get("ttft_seconds") or {}).get("p50")
            if tps is not None:
                acc["tps"].append(float(tps))
            if ttft is not None:
                acc["ttft"].append(float(ttft))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (variant, cls), acc in pooled.items():
        lower, upper = wilson(acc["passed"], acc["scored"])
        out.setdefault(variant, {})[cls] = {
            "passed": acc["passed"],
            "scored": acc["scored"],
            "runs": len(acc["runs"]),
            "pass_ratio": acc["passed"] / acc["scored"] if acc["scored"] else None,
            "lower": lower if acc["scored"] else None,
            "upper": upper if acc["scored"] else None,
            "output_tokens_per_second": sum(acc["tps"]) / len(acc["tps"]) if acc["tps"] else None,
            "ttft_seconds": sum(acc["ttft"]) / len(acc["ttft"]) if acc["ttft"] else None,
        }
    return out
