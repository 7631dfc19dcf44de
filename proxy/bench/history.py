"""The history page: pass@1 and output tokens/s per variant over the kept runs.

`load_runs` reads the result documents of a state dir (the one I/O helper here, shared
with the scheduler); `render_history` turns them into one self-contained HTML page
(inline SVG, no scripts): per request class, a chart of pass@1 over runs and one of
median output tokens/s, each variant in the same colour as in the run reports, and a
table with every run's figures and 95% Wilson interval. Runs of different suite
versions are all shown, with the version in the table, since this is a record of what
happened rather than pooled evidence (that is `ranking.figures`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COLORS", "load_runs", "render_history"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def load_runs(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The benchmark result documents among `paths` (others and unreadable ones skipped)."""
    docs = []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("schema") == 1 and "results" in doc:
            docs.append(doc)
    return docs


def _series(
    runs: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, list[tuple[int, Mapping[str, Any]]]]]:
    """class → variant → [(run index, result row)]."""
    out: dict[str, dict[str, list[tuple[int, Mapping[str, Any]]]]] = {}
    for i, doc in enumerate(runs):
        for row in doc.get("results", []):
            per = out.setdefault(str(row["class"]), {})
            per.setdefault(str(row["variant"]), []).append((i, row))
    return out


def _chart(
    title: str,
    points: Mapping[str, list[tuple[int, float]]],
    runs: int,
    ymax: float,
    colors: Mapping[str, str],
) -> str:
    w, h, left, bottom, top, right = 420, 220, 48, 30, 26, 110
    e = html.escape

    def sx(i: float) -> float:
        return left + (w - left - right) * (i / max(1, runs - 1))

    def sy(y: float) -> float:
        return h - bottom - (h - bottom - top) * (y / ymax if ymax else 0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{e(title)}">',
        f'<text x="{(left + w - right) / 2}" y="16" text-anchor="middle" '
        f'font-weight="bold">{e(title)}</text>',
        f'<line x1="{left}" y1="{sy(0)}" x2="{w - right}" y2="{sy(0)}" stroke="#444"/>',
        f'<text x="{left - 6}" y="{sy(0) + 4}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{left - 6}" y="{sy(ymax) + 4}" text-anchor="end" font-size="11">'
        f"{ymax:.3g}</text>",
        f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle" '
        f'font-size="11">run (oldest → newest)</text>',
    ]
    for n, (name, pts) in enumerate(sorted(points.items())):
        color = colors.get(name, COLORS[0])
        path = " ".join(f"{sx(i):.1f},{sy(y):.1f}" for i, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{sx(i):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
            f"<title>{e(name)}: {y:.3g}</title></circle>"
            for i, y in pts
        ]
        parts.append(
            f'<text x="{w - right + 8}" y="{top + 12 + 14 * n}" font-size="11" '
            f'fill="{color}">{e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_history(runs: Sequence[Mapping[str, Any]]) -> str:
    """One HTML page of pass@1 and tokens/s per variant over `runs` (oldest first)."""
    runs = sorted(runs, key=lambda d: str(d.get("finished_at") or ""))
    e = html.escape
    names = sorted({str(r["variant"]) for d in runs for r in d.get("results", [])})
    colors = {name: COLORS[i % len(COLORS)] for i, name in enumerate(names)}
    body = [f"<h1>Benchmark history</h1><p>{len(runs)} runs kept.</p>"]
    for cls, per in sorted(_series(runs).items()):
        passes = {
            v: [(i, float(r["pass_ratio"])) for i, r in rows if r.get("pass_ratio") is not None]
            for v, rows in per.items()
        }
        speeds = {
            v: [
                (i, float(r["output_tokens_per_second"]["p50"]))
                for i, r in rows
                if (r.get("output_tokens_per_second") or {}).get("p50") is not None
            ]
            for v, rows in per.items()
        }
        top_speed = max([y for pts in speeds.values() for _, y in pts] + [1.0]) * 1.1
        body.append(f"<h2>{e(cls)}</h2><div class=charts>")
        body.append(_chart(f"{cls}: pass@1", passes, len(runs), 1.0, colors))
        body.append(_chart(f"{cls}: tokens/s (median)", speeds, len(runs), top_speed, colors))
        body.append(
            "</div><table><tr><th>run</th><th>finished</th><th>variant</th><th>suite</th>"
            "<th>pass@1 (95% CI)</th><th>tok/s p50</th></tr>"
        )
        for variant, rows in sorted(per.items()):
            for i, r in rows:
                ci = r.get("pass_ci95")
                ratio = r.get("pass_ratio")
                cell = "–" if ratio is None else f"{float(ratio):.2f} ({r.get('passed')}/"
                if ratio is not None:
                    cell += f"{r.get('scored')}" + (f", {ci[0]:.2f}–{ci[1]:.2f})" if ci else ")")
                tps = (r.get("output_tokens_per_second") or {}).get("p50")
                body.append(
                    f"<tr><td>{e(str(runs[i].get('run_id', i)))}</td>"
                    f"<td>{e(str(runs[i].get('finished_at')))}</td><td>{e(variant)}</td>"
                    f"<td>{e(str(r.get('suite')))} v{e(str(r.get('suite_version')))}</td>"
                    f"<td>{e(cell)}</td><td>{'–' if tps is None else f'{float(tps):.1f}'}</td></tr>"
                )
        body.append("</table>")
    css = (
        "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;"
        "padding:3px 8px}th{background:#f4f4f4;text-align:left}.charts{display:flex;gap:1em}"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>variant-proxy benchmark history</title><style>{css}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
