"""Reports from a result document: a terminal table, Markdown, HTML with SVG charts,
and the comparison with a previous run that flags regressions. Pure apart from
`write_outputs`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .history import COLORS, load_runs, render_history
from .ranking import figures, rank
from .stats import mcnemar_exact

__all__ = [
    "CompareMismatch",
    "Regression",
    "check_comparable",
    "compare",
    "markdown",
    "render_html",
    "text_table",
    "write_outputs",
]


@dataclass(frozen=True, slots=True)
class Regression:
    variant: str
    suite: str
    metric: str
    before: float
    after: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CompareMismatch(ValueError):
    """Two runs that cannot be compared (settings, limits or suite versions differ)."""


#: settings that change what a pass ratio means; runs differing in one are not compared
_COMPARABLE = ("temperature", "max_tokens", "limit", "repeat", "unsafe_no_sandbox")


def check_comparable(previous: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise `CompareMismatch` naming every setting and suite version that differs."""
    a, b = previous.get("settings") or {}, current.get("settings") or {}
    diff = [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in _COMPARABLE if a.get(k) != b.get(k)]
    va = {n: (i or {}).get("version") for n, i in (previous.get("suites") or {}).items()}
    vb = {n: (i or {}).get("version") for n, i in (current.get("suites") or {}).items()}
    diff += [f"suite {n} v{va[n]} vs v{vb[n]}" for n in sorted(set(va) & set(vb)) if va[n] != vb[n]]
    if diff:
        raise CompareMismatch("runs are not comparable: " + "; ".join(diff))


def _per_task(doc: Mapping[str, Any], variant: str, suite: str) -> dict[str, bool]:
    """Task → passed (a majority of its samples passed), for the paired test."""
    votes: dict[str, list[bool]] = {}
    for t in doc.get("tasks", []):
        if t["variant"] == variant and t["suite"] == suite and t["status"] != "unverified":
            votes.setdefault(str(t["task"]), []).append(t["status"] == "passed")
    return {k: sum(v) * 2 > len(v) for k, v in votes.items()}


def _p50(row: Mapping[str, Any], key: str) -> float | None:
    value = (row.get(key) or {}).get("p50")
    return float(value) if value is not None else None


def _pass_verdict(
    previous: Mapping[str, Any],
    current: Mapping[str, Any],
    old: Mapping[str, Any],
    row: Mapping[str, Any],
    tolerance: float,
    alpha: float,
) -> Regression | str | None:
    """A pass-ratio regression, a note that a drop is within chance, or None."""
    a, b = old.get("pass_ratio"), row.get("pass_ratio")
    if a is None or b is None or a - b <= tolerance + 1e-12:
        return None
    where = f"{row['variant']} on {row['suite']}"
    was = _per_task(previous, row["variant"], row["suite"])
    now = _per_task(current, row["variant"], row["suite"])
    both = set(was) & set(now)
    losses = sum(1 for t in both if was[t] and not now[t])
    gains = sum(1 for t in both if now[t] and not was[t])
    p_value = mcnemar_exact(losses, gains)
    if p_value >= alpha:
        return (
            f"{where}: pass ratio {a:.2f} -> {b:.2f}, but {losses} lost / {gains} gained "
            f"tasks is within chance (exact McNemar p = {p_value:.3f})"
        )
    return Regression(
        row["variant"],
        row["suite"],
        "pass_ratio",
        a,
        b,
        f"{where}: pass ratio {a:.2f} -> {b:.2f} ({losses} tasks lost, {gains} "
        f"gained; exact McNemar p = {p_value:.3f} < {alpha})",
    )


def compare(
    previous: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    pass_tolerance: float = 0.05,
    speed_tolerance: float = 0.20,
    alpha: float = 0.05,
) -> tuple[list[Regression], list[str]]:
    """Regressions of `current` against `previous`, and notes on what couldn't be compared.

    Raises `CompareMismatch` when settings, limits or suite versions differ. A pass-ratio
    regression needs both a drop of more than `pass_tolerance` and a paired per-task
    exact McNemar test (`stats.mcnemar_exact`, one-sided, p < `alpha`) on the tasks
    both runs scored; one flipped task on an 8-task suite is not enough. A median time
    to first token higher, or median output tokens/s lower, by more than
    `speed_tolerance` (relative) is flagged too.
    """
    check_comparable(previous, current)
    before = {(r["variant"], r["suite"]): r for r in previous.get("results", [])}
    found: list[Regression] = []
    notes: list[str] = []
    for row in current.get("results", []):
        key = (row["variant"], row["suite"])
        old = before.get(key)
        where = f"{row['variant']} on {row['suite']}"
        if old is None:
            notes.append(f"{where}: not in the previous run")
            continue
        if old.get("suite_version") != row.get("suite_version"):
            notes.append(
                f"{where}: suite version {old.get('suite_version')} -> "
                f"{row.get('suite_version')}, not compared"
            )
            continue
        verdict = _pass_verdict(previous, current, old, row, pass_tolerance, alpha)
        if isinstance(verdict, Regression):
            found.append(verdict)
        elif verdict is not None:
            notes.append(verdict)
        t0, t1 = _p50(old, "ttft_seconds"), _p50(row, "ttft_seconds")
        if t0 and t1 is not None and (t1 - t0) / t0 > speed_tolerance:
            found.append(
                Regression(
                    row["variant"],
                    row["suite"],
                    "ttft_seconds",
                    t0,
                    t1,
                    f"{where}: median TTFT {t0 * 1000:.0f} ms -> {t1 * 1000:.0f} ms "
                    f"(+{(t1 - t0) / t0:.0%} > {speed_tolerance:.0%})",
                )
            )
        s0 = _p50(old, "output_tokens_per_second")
        s1 = _p50(row, "output_tokens_per_second")
        if s0 and s1 is not None and (s0 - s1) / s0 > speed_tolerance:
            found.append(
                Regression(
                    row["variant"],
                    row["suite"],
                    "output_tokens_per_second",
                    s0,
                    s1,
                    f"{where}: median output {s0:.1f} -> {s1:.1f} tokens/s "
                    f"(-{(s0 - s1) / s0:.0%} > {speed_tolerance:.0%})",
                )
            )
    current_keys = {(r["variant"], r["suite"]) for r in current.get("results", [])}
    for key in before:
        if key not in current_keys:
            notes.append(f"{key[0]} on {key[1]}: not in this run")
    return found, notes


# -- formatting helpers ------------------------------------------------------------------------


def _ratio(x: Any) -> str:
    return "–" if x is None else f"{float(x):.2f}"


def _ms(x: Any) -> str:
    return "–" if x is None else f"{float(x) * 1000:.0f}"


def _num(x: Any, digits: int = 1) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def _mib(x: Any) -> str:
    return "–" if x is None else f"{int(x) / (1 << 20):.0f}"


def _pass_cell(row: Mapping[str, Any]) -> str:
    """pass@1 with its count and 95% Wilson interval, and any unverified tasks."""
    cell = f"{_ratio(row.get('pass_ratio'))} ({row.get('passed', 0)}/{row.get('scored', 0)}"
    ci = row.get("pass_ci95")
    cell += f", CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else ")"
    if row.get("unverified"):
        cell += f" +{row['unverified']} UNVERIFIED"
    return cell


def _speed_cell(row: Mapping[str, Any]) -> str:
    sd = row.get("output_tokens_per_second_sd")
    mean = (row.get("output_tokens_per_second") or {}).get("mean")
    return f"{_num(mean)} ± {_num(sd)}" if sd is not None else _num(mean)


def _pass_k(row: Mapping[str, Any]) -> str:
    ks = row.get("pass_at_k") or {}
    extra = [f"@{k} {_ratio(v)}" for k, v in ks.items() if k != "1"]
    return ", ".join(extra) or "–"


def _rows(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(doc.get("results", []), key=lambda r: (r["suite"], r["variant"]))


def _header(cols: Sequence[str]) -> list[str]:
    return ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]


RESULT_COLUMNS = (
    "variant",
    "suite",
    "protocol",
    "pass@1 (95% CI)",
    "pass@k",
    "TTFT p50/p95 ms",
    "ITL p50 ms",
    "e2e p50 ms",
    "tok/s p50/p95",
    "tok/s mean ± sd",
    "errors",
    "CPU % mean/max",
    "RSS MiB max",
)


def _shared(usage: Mapping[str, Any]) -> str:
    """Marks resource figures of a backend that also serves other benchmarked variants."""
    others = usage.get("shared_with")
    return f" (backend shared with {', '.join(others)})" if others else ""


def _result_cells(row: Mapping[str, Any], doc: Mapping[str, Any]) -> list[str]:
    usage = row.get("usage") or {}
    version = row.get("suite_version")
    return [
        str(row["variant"]),
        f"{row['suite']} v{version}" if version is not None else str(row["suite"]),
        str(row.get("protocol") or "–"),
        _pass_cell(row),
        _pass_k(row),
        f"{_ms(_p50(row, 'ttft_seconds'))}/{_ms((row.get('ttft_seconds') or {}).get('p95'))}",
        _ms(_p50(row, "itl_seconds")),
        _ms(_p50(row, "e2e_seconds")),
        f"{_num(_p50(row, 'output_tokens_per_second'))}/"
        f"{_num((row.get('output_tokens_per_second') or {}).get('p95'))}",
        _speed_cell(row),
        str(row.get("errors", 0)),
        f"{_num(usage.get('cpu_percent_mean'), 0)}/{_num(usage.get('cpu_percent_max'), 0)}",
        _mib(usage.get("rss_bytes_max")) + _shared(usage),
    ]


def _rankings(doc: Mapping[str, Any]) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    figs = figures(doc)
    classes = sorted({str(r["class"]) for r in doc.get("results", [])})
    out: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for cls in classes:
        names = sorted(v for v, per in figs.items() if cls in per)
        out[cls] = [(name, figs[name][cls]) for name in rank(names, cls, figs)]
    return out


def text_table(doc: Mapping[str, Any]) -> str:
    """The summary printed at the end of `variant-proxy bench`."""
    cols = ("variant", "suite", "protocol", "pass@1", "pass@k", "TTFT p50", "tok/s p50", "errors")
    rows = [
        [
            str(r["variant"]),
            str(r["suite"]),
            str(r.get("protocol") or "–"),
            _pass_cell(r),
            _pass_k(r),
            f"{_ms(_p50(r, 'ttft_seconds'))} ms",
            _num(_p50(r, "output_tokens_per_second")),
            str(r.get("errors", 0)),
        ]
        for r in _rows(doc)
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = [_unsafe_line(doc)] if _unsafe_line(doc) else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for skip in doc.get("skipped", []):
        lines.append(f"skipped {skip['variant']} on {skip['suite']}: {skip['reason']}")
    return "\n".join(lines)


def _machine_line(doc: Mapping[str, Any]) -> str:
    m = doc.get("machine", {})
    mem = m.get("memory_bytes")
    gib = f"{mem / (1 << 30):.1f} GiB" if mem else "?"
    gpus = ", ".join(m.get("gpus") or []) or "no GPU seen"
    return (
        f"{m.get('cpu_model') or 'unknown CPU'} × {m.get('cpu_count')}, {gib} RAM, {gpus}; "
        f"{m.get('os')}, Python {m.get('python')}"
    )


def _unsafe_line(doc: Mapping[str, Any]) -> str:
    """The first line of every report when answers ran outside the sandbox."""
    if (doc.get("sandbox") or {}).get("sandbox") != "none":  # bubblewrap, or a pre-v2 file
        return ""
    return "UNSAFE: answers ran WITHOUT the bubblewrap sandbox (--unsafe-no-sandbox)"


def _failures(doc: Mapping[str, Any], limit: int = 200) -> list[tuple[str, str, str, str, str]]:
    """(suite, task, variant, failure kind, reason) of every sample that did not pass."""
    out = []
    for t in doc.get("tasks", []):
        if t["status"] != "passed":
            kind = str(t.get("failure") or t["status"])
            out.append((t["suite"], t["task"], t["variant"], kind, str(t.get("reason"))[:160]))
    return out[:limit]


def _sandbox_line(doc: Mapping[str, Any]) -> str:
    s = doc.get("sandbox", {})
    if s.get("sandbox") == "bubblewrap":
        return f"bubblewrap ({s.get('sandbox_detail', '')})"
    net = "network isolated" if s.get("network") else "NO network isolation"
    user = f"own uid {s['uid']}" if s.get("uid") is not None else "same user as the proxy"
    return f"{net} ({s.get('network_detail', '')}), {user}"


def markdown(
    doc: Mapping[str, Any],
    regressions: Sequence[Regression] = (),
    notes: Sequence[str] = (),
    compared_with: str | None = None,
) -> str:
    """The human report."""
    s = doc.get("settings", {})
    out = [f"**{_unsafe_line(doc)}**", ""] if _unsafe_line(doc) else []
    out += [
        f"# Benchmark {doc.get('run_id', '')}",
        "",
        f"- started {doc.get('started_at')}, took {doc.get('duration_seconds')} s"
        + (" — **INTERRUPTED: partial results**" if doc.get("interrupted") else ""),
        f"- machine: {_machine_line(doc)}",
        f"- sandbox: {_sandbox_line(doc)}",
        f"- settings: repeat {s.get('repeat')}, concurrency {s.get('concurrency')}, "
        f"temperature {s.get('temperature')}, max_tokens cap {s.get('max_tokens')}, "
        f"limit {s.get('limit')}",
        "- suites: "
        + ", ".join(
            f"{name} v{info.get('version')} ({info.get('tasks')} tasks)"
            for name, info in doc.get("suites", {}).items()
        ),
        "",
        "## Ranking by class",
        "",
        "Evidence of this run: variants that passed something, by the 95% Wilson lower "
        "bound of the pass ratio, then median output tokens/s, then median time to first "
        "token; then unmeasured variants; variants that passed nothing last.",
        "",
    ]
    for cls, ranked in _rankings(doc).items():
        out += [f"### {cls}", ""]
        out += _header(("#", "variant", "pass ratio", "lower bound", "tok/s p50", "TTFT p50 ms"))
        for i, (name, fig) in enumerate(ranked, 1):
            out.append(
                f"| {i} | {name} | {_ratio(fig.get('pass_ratio'))} | {_ratio(fig.get('lower'))} | "
                f"{_num(fig.get('output_tokens_per_second'))} | {_ms(fig.get('ttft_seconds'))} |"
            )
        out.append("")
    out += ["## Results", ""]
    out += _protocol_lines(doc)
    out += _header(RESULT_COLUMNS)
    for row in _rows(doc):
        out.append("| " + " | ".join(_result_cells(row, doc)) + " |")
    out.append("")
    for skip in doc.get("skipped", []):
        out.append(f"- skipped {skip['variant']} on {skip['suite']}: {skip['reason']}")
    if compared_with is not None:
        out += ["", f"## Compared with {compared_with}", ""]
        if regressions:
            out += [f"- **regression**: {r.message}" for r in regressions]
        else:
            out.append("No regressions.")
        out += [f"- note: {n}" for n in notes]
    out += ["", "## Tasks", ""]
    for suite, variants, grid in _task_grid(doc):
        out += [f"### {suite}", ""]
        out += _header(("task", *variants))
        for task, cells in grid:
            out.append(f"| {task} | " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "Legend: ✓ passed, ✗ failed, ⏱ timeout, 💥 crashed, ! request error, – skipped, "
        "? unverified (no toolchain: never counted); with several samples, passed/total.",
        "",
        "## Failures",
        "",
    ]
    out += _header(("suite", "task", "variant", "why", "detail"))
    for failure in _failures(doc):
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in failure) + " |")
    out.append("")
    return "\n".join(out)


_PROTOCOLS = {
    "chat": "chat turns on /v1/chat/completions, code taken from the answer's fenced block",
    "completion": "HumanEval's own protocol on /v1/completions: the signature and docstring "
    "are continued until a stop sequence (\\ndef, \\nclass, \\nif __name__, \\nprint(, \\n#)",
    "fim": "fill in the middle on /v1/completions (prompt and suffix)",
}


def _protocol_lines(doc: Mapping[str, Any]) -> list[str]:
    """Which protocol each variant was asked in: a base model is not scored on chat."""
    used: dict[str, set[str]] = {}
    for row in doc.get("results", []):
        for protocol in str(row.get("protocol") or "").split("+"):
            if protocol:
                used.setdefault(str(row["variant"]), set()).add(protocol)
    if not used:
        return []
    out = ["Protocol per variant (`variants.<name>.api`):", ""]
    for variant in sorted(used):
        api = (doc.get("variants", {}).get(variant) or {}).get("api") or "chat"
        out.append(f"- **{variant}** (api: {api}): " + ", ".join(sorted(used[variant])))
    out.append("")
    out += [f"- *{name}*: {text}" for name, text in _PROTOCOLS.items()]
    out.append("")
    return out


_MARK = {
    "passed": "✓",
    "failed": "✗",
    "timeout": "⏱",
    "crashed": "💥",
    "error": "!",
    "skipped": "–",
    "unverified": "?",
}


def _task_grid(
    doc: Mapping[str, Any],
) -> list[tuple[str, list[str], list[tuple[str, list[str]]]]]:
    by_suite: dict[str, dict[str, dict[str, list[str]]]] = {}
    for t in doc.get("tasks", []):
        cell = by_suite.setdefault(t["suite"], {}).setdefault(t["task"], {})
        cell.setdefault(t["variant"], []).append(t["status"])
    out = []
    for suite, tasks in by_suite.items():
        variants = sorted({v for per in tasks.values() for v in per})
        grid = []
        for task, per in tasks.items():
            cells = []
            for v in variants:
                statuses = per.get(v, [])
                if not statuses:
                    cells.append("")
                elif len(statuses) == 1:
                    cells.append(_MARK.get(statuses[0], "?"))
                else:
                    cells.append(f"{statuses.count('passed')}/{len(statuses)}")
            grid.append((task, cells))
        out.append((suite, variants, grid))
    return out


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f4f4f4;text-align:left}td{font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:1em}.bad{color:#b00}
"""

_COLORS = COLORS


def _colors(doc: Mapping[str, Any]) -> dict[str, str]:
    """One colour per variant, the same in every chart (by the variant's sorted position)."""
    names = sorted({str(r["variant"]) for r in doc.get("results", [])})
    return {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(names)}


def _scatter(
    cls: str, points: Sequence[tuple[str, float, float]], colors: Mapping[str, str]
) -> str:
    """Speed (x: median output tokens/s) against accuracy (y: pass ratio)."""
    w, h, left, bottom, top, right = 420, 280, 48, 40, 28, 16
    xmax = max([p[1] for p in points] + [1.0]) * 1.15
    e = html.escape

    def sx(x: float) -> float:
        return left + (w - left - right) * x / xmax

    def sy(y: float) -> float:
        return h - bottom - (h - bottom - top) * y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{e(cls)}: speed against accuracy">',
        f'<text x="{w / 2}" y="16" text-anchor="middle" font-weight="bold">{e(cls)}</text>',
        f'<line x1="{left}" y1="{sy(0)}" x2="{w - right}" y2="{sy(0)}" stroke="#444"/>',
        f'<line x1="{left}" y1="{sy(0)}" x2="{left}" y2="{sy(1)}" stroke="#444"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" y1="{sy(tick):.1f}" x2="{w - right}" y2="{sy(tick):.1f}" '
            'stroke="#eee"/>'
            f'<text x="{left - 6}" y="{sy(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick:.2f}</text>'
        )
    for i in range(5):
        x = xmax * i / 4
        parts.append(
            f'<text x="{sx(x):.1f}" y="{h - bottom + 14}" text-anchor="middle" '
            f'font-size="11">{x:.0f}</text>'
        )
    parts.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 6}" text-anchor="middle" '
        'font-size="12">output tokens/s (median)</text>'
        f'<text x="12" y="{(top + h - bottom) / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 12 {(top + h - bottom) / 2})">pass ratio</text>'
    )
    placed: list[tuple[float, float, float]] = []  # label boxes: left, right, baseline
    for name, x, y in sorted(points, key=lambda p: -p[2]):
        color = colors.get(name, _COLORS[0])
        # labels in the right half go to the left of their dot, so none is clipped
        flip = sx(x) > (left + w - right) / 2
        lx, anchor = (sx(x) - 9, "end") if flip else (sx(x) + 9, "start")
        width = 6.5 * len(name)  # ~11px sans-serif
        x0, x1 = (lx - width, lx) if flip else (lx, lx + width)
        ly = min(max(sy(y) + 4, top + 10), h - bottom - 4)
        # a label that would overlap one already placed moves down a line
        while any(a < x1 and x0 < b and abs(ly - base) < 14 for a, b, base in placed):
            ly += 14
        placed.append((x0, x1, ly))
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="6" fill="{color}">'
            f"<title>{e(name)}: {y:.2f} pass, {x:.1f} tok/s</title></circle>"
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" text-anchor="{anchor}" '
            f'fill="{color}">{e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    doc: Mapping[str, Any],
    regressions: Sequence[Regression] = (),
    notes: Sequence[str] = (),
    compared_with: str | None = None,
) -> str:
    """A single self-contained HTML page: charts (inline SVG), rankings, results, tasks."""
    e = html.escape
    unsafe = _unsafe_line(doc)
    body = [f"<p class=bad id=unsafe><strong>{e(unsafe)}</strong></p>"] if unsafe else []
    body += [
        f"<h1>Benchmark {e(str(doc.get('run_id', '')))}</h1>",
        f"<p>Started {e(str(doc.get('started_at')))}, took {doc.get('duration_seconds')} s.<br>"
        f"Machine: {e(_machine_line(doc))}<br>Sandbox: {e(_sandbox_line(doc))}</p>",
        "<h2 id=charts>Speed against accuracy</h2><div class=charts>",
    ]
    colors = _colors(doc)
    for cls, ranked in _rankings(doc).items():
        points = [
            (
                name,
                float(fig.get("output_tokens_per_second") or 0.0),
                float(fig.get("pass_ratio") or 0.0),
            )
            for name, fig in ranked
        ]
        body.append(_scatter(cls, points, colors))
    body.append("</div><h2 id=ranking>Ranking by class</h2>")
    for cls, ranked in _rankings(doc).items():
        body.append(
            f"<h3>{e(cls)}</h3><table><tr><th>#</th><th>variant</th><th>pass ratio</th>"
            "<th>lower bound (95%)</th><th>tok/s p50</th><th>TTFT p50 ms</th></tr>"
        )
        for i, (name, fig) in enumerate(ranked, 1):
            body.append(
                f"<tr><td>{i}</td><td>{e(name)}</td><td>{_ratio(fig.get('pass_ratio'))}</td>"
                f"<td>{_ratio(fig.get('lower'))}</td><td>{_num(fig.get('output_tokens_per_second'))}</td>"
                f"<td>{_ms(fig.get('ttft_seconds'))}</td></tr>"
            )
        body.append("</table>")
    body.append("<h2 id=results>Results</h2><table><tr>")
    body += [f"<th>{e(c)}</th>" for c in RESULT_COLUMNS]
    body.append("</tr>")
    for row in _rows(doc):
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in _result_cells(row, doc)) + "</tr>")
    body.append("</table>")
    if compared_with is not None:
        body.append(f"<h2>Compared with {e(compared_with)}</h2><ul>")
        if regressions:
            body += [f"<li class=bad>regression: {e(r.message)}</li>" for r in regressions]
        else:
            body.append("<li>No regressions.</li>")
        body += [f"<li>note: {e(n)}</li>" for n in notes]
        body.append("</ul>")
    body.append("<h2 id=tasks>Tasks</h2>")
    for suite, variants, grid in _task_grid(doc):
        body.append(f"<h3>{e(suite)}</h3><table><tr><th>task</th>")
        body += [f"<th>{e(v)}</th>" for v in variants]
        body.append("</tr>")
        for task, cells in grid:
            body.append(
                f"<tr><td>{e(task)}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
            )
        body.append("</table>")
    body.append(
        "<h2 id=failures>Failures</h2><table><tr><th>suite</th><th>task</th><th>variant</th>"
        "<th>why</th><th>detail</th></tr>"
    )
    for failure in _failures(doc):
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in failure) + "</tr>")
    body.append("</table>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>variant-proxy benchmark {e(str(doc.get('run_id', '')))}</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def write_outputs(
    doc: Mapping[str, Any],
    out_dir: Path,
    *,
    regressions: Sequence[Regression] = (),
    notes: Sequence[str] = (),
    compared_with: str | None = None,
) -> dict[str, Path]:
    """Write `<stamp>-<run_id>.json/.md/.html`, `latest.json` and `history.html` (every run
    kept in `out_dir`); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = str(doc.get("started_at", "run")).replace(":", "").replace("+0000", "Z")
    stem = f"bench-{stamp}-{doc.get('run_id', 'run')}"
    if compared_with is not None:
        doc = {
            **doc,
            "comparison": {
                "previous": compared_with,
                "regressions": [r.as_dict() for r in regressions],
                "notes": list(notes),
            },
        }
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "html": out_dir / f"{stem}.html",
        "latest": out_dir / "latest.json",
    }
    paths["json"].write_text(text, encoding="utf-8")
    paths["markdown"].write_text(markdown(doc, regressions, notes, compared_with), encoding="utf-8")
    paths["html"].write_text(render_html(doc, regressions, notes, compared_with), encoding="utf-8")
    tmp = out_dir / ".latest.json.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(paths["latest"])
    paths["history"] = out_dir / "history.html"
    runs = load_runs(sorted(out_dir.glob("bench-*.json")))
    paths["history"].write_text(render_history(runs), encoding="utf-8")
    return paths
