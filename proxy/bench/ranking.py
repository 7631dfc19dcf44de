"""Ordering variants on evidence: benchmark figures → a route's candidate order. Pure.

`figures(doc)` condenses a result document into
`{variant: {class: {"pass_ratio", "output_tokens_per_second", "ttft_seconds"}}}`
(suites of the same class are pooled), and `rank` orders candidates by pass
ratio for the class first, then output tokens per second (higher first), then
time to first token (lower first). Candidates without figures keep their
relative order after the measured ones, so an unbenchmarked variant never
jumps ahead of a measured one and a route without any results stays as
configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Figures", "figures", "rank"]

Figures = Mapping[str, Mapping[str, Mapping[str, Any]]]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def rank(candidates: list[str], cls: str, results: Figures) -> list[str]:
    """`candidates` ordered by the evidence in `results` for request class `cls`."""
    measured: list[tuple[tuple[float, float, float, int], str]] = []
    unmeasured: list[str] = []
    for position, name in enumerate(candidates):
        entry = results.get(name, {}).get(cls)
        ratio = _num(entry.get("pass_ratio")) if entry else None
        if entry is None or ratio is None:
            unmeasured.append(name)
            continue
        tps = _num(entry.get("output_tokens_per_second"))
        ttft = _num(entry.get("ttft_seconds"))
        key = (
            -ratio,
            -(tps if tps is not None else 0.0),
            ttft if ttft is not None else float("inf"),
            position,
        )
        measured.append((key, name))
    measured.sort()
    return [name for _, name in measured] + unmeasured


def figures(doc: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per variant and class: pooled pass ratio, median output tokens/s and TTFT."""
    pooled: dict[tuple[str, str], dict[str, Any]] = {}
    for row in doc.get("results", []):
        key = (str(row["variant"]), str(row["class"]))
        acc = pooled.setdefault(key, {"passed": 0, "scored": 0, "tps": [], "ttft": []})
        acc["passed"] += int(row.get("passed") or 0)
        acc["scored"] += int(row.get("scored") or 0)
        tps = (row.get("output_tokens_per_second") or {}).get("p50")
        ttft = (row.get("ttft_seconds") or {}).get("p50")
        if tps is not None:
            acc["tps"].append(float(tps))
        if ttft is not None:
            acc["ttft"].append(float(ttft))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (variant, cls), acc in pooled.items():
        out.setdefault(variant, {})[cls] = {
            "pass_ratio": acc["passed"] / acc["scored"] if acc["scored"] else None,
            "output_tokens_per_second": sum(acc["tps"]) / len(acc["tps"]) if acc["tps"] else None,
            "ttft_seconds": sum(acc["ttft"]) / len(acc["ttft"]) if acc["ttft"] else None,
        }
    return out
