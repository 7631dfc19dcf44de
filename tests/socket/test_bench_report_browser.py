"""The HTML report of a real benchmark run, opened in a real headless Chromium.

A real `variant-proxy bench` run (fake upstream that knows the answers, real proxy, real
sandbox) writes the page; a same-origin checker page loads it in an iframe and, in the
browser, lists its sections, measures every chart label against its chart's box
(`getBoundingClientRect`) and collects each variant's colour in every chart. A screenshot is taken
too. Needs Debian's `chromium` (skipped without it, like the other browser tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.fakeupstream import run_server
from tests.socket.test_bench import AnsweringUpstream, bench, bench_config
from tests.socket.test_origin_browser import _chromium, browse

HISTORY_CHECKER = b"""<!doctype html><html><body><pre id="out"></pre>
<iframe id="page" src="/history.html" width="1300" height="900"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {
  const doc = document.getElementById("page").contentDocument;
  const out = {sections: [...doc.querySelectorAll("h2")].map(h => h.textContent), lines: {},
               rows: doc.querySelectorAll("tr").length, clipped: 0};
  for (const svg of doc.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const b = text.getBoundingClientRect();
      if (b.left < box.left - 0.5 || b.right > box.right + 0.5) out.clipped += 1;
    }
    const title = svg.getAttribute("aria-label");
    out.lines[title] = [...svg.querySelectorAll("polyline")].map(
      l => [l.getAttribute("stroke"), l.points.numberOfItems]);
  }
  out.done = true;
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>"""

CHECKER = b"""<!doctype html><html><body><pre id="out"></pre>
<iframe id="report" src="/report.html" width="1300" height="900"></iframe>
<script>
document.getElementById("report").addEventListener("load", () => {
  const doc = document.getElementById("report").contentDocument;
  const out = {sections: [...doc.querySelectorAll("h1, h2")].map(h => h.textContent),
               clipped: [], colours: {}, charts: 0, headers: [], overlapping: 0};
  for (const svg of doc.querySelectorAll("svg")) {
    out.charts += 1;
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const b = text.getBoundingClientRect();  // after transforms (the rotated axis title)
      if (b.left < box.left - 0.5 || b.top < box.top - 0.5 || b.right > box.right + 0.5
          || b.bottom > box.bottom + 0.5) {
        out.clipped.push(text.textContent);
      }
    }
    const labels = [...svg.querySelectorAll("text[fill]")].map(t => t.getBoundingClientRect());
    labels.forEach((a, i) => labels.slice(i + 1).forEach(b => {
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
        out.overlapping += 1;
      }
    }));
    for (const dot of svg.querySelectorAll("circle")) {
      const name = dot.querySelector("title").textContent.split(":")[0];
      (out.colours[name] = out.colours[name] || []).push(dot.getAttribute("fill"));
    }
  }
  out.headers = [...doc.querySelectorAll("th")].map(th => th.textContent);
  out.failures = [...doc.querySelectorAll("#failures + table td:nth-child(4)")]
    .map(td => td.textContent);
  out.done = true;
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>"""


class Site:
    """Serves the checker page and the report from one origin."""

    def __init__(self, report: bytes, history: bytes) -> None:
        self.pages = {
            "/": CHECKER,
            "/report.html": report,
            "/history": HISTORY_CHECKER,
            "/history.html": history,
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            for _ in range(2):
                message = await receive()
                await send({"type": message["type"] + ".complete"})
            return
        body = self.pages.get(scope["path"], b"not found")
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_the_report_in_a_real_browser(tmp_path: Path) -> None:
    _chromium()
    fake = AnsweringUpstream()
    with run_server(fake) as url:
        out_dir = tmp_path / "out"
        code, out, err = bench(
            "--config", str(bench_config(tmp_path, url)), "--variants", "good,bad,chat-only",
            "--limit", "2", "--out", str(out_dir), "--no-progress",
        )  # fmt: skip
        assert code == 0, out + err
        report = next(out_dir.glob("bench-*.html"))
        # a second, later run: the history page shows both
        code, out, err = bench(
            "--config", str(bench_config(tmp_path, url)), "--variants", "good,bad",
            "--limit", "1", "--out", str(out_dir), "--no-progress",
        )  # fmt: skip
        assert code == 0, out + err
    history = (out_dir / "history.html").read_bytes()
    with run_server(Site(report.read_bytes(), history)) as site:
        dom = browse(site + "/", tmp_path / "profile")
        past = _seen(browse(site + "/history", tmp_path / "profile3"))
        shot = tmp_path / "report.png"
        browse(
            site + "/report.html",
            tmp_path / "profile2",
            f"--screenshot={shot}",
            "--window-size=1300,1000",
        )
    seen = _seen(dom)
    sections = seen["sections"]
    assert sections[0].startswith("Benchmark ")
    assert sections[1:] == [
        "Speed against accuracy",
        "Ranking by class",
        "Results",
        "Tasks",
        "Failures",
    ]
    assert seen["charts"] == 4  # one per class
    assert seen["clipped"] == [], f"labels outside their chart: {seen['clipped']}"
    assert seen["overlapping"] == 0  # variants with close figures keep readable labels
    # one colour per variant, the same in every chart it appears in
    assert set(seen["colours"]) == {"good", "bad", "chat-only"}
    assert all(len(set(c)) == 1 for c in seen["colours"].values()), seen["colours"]
    assert len({c[0] for c in seen["colours"].values()}) == 3
    assert "pass@1 (95% CI)" in seen["headers"] and "lower bound (95%)" in seen["headers"]
    assert set(seen["failures"]) == {"compile-error"}  # `bad` answers prose, not code
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    # history: per class, pass@1 and tokens/s over both runs, each variant one colour
    assert past["sections"] == ["completion", "complex", "instruction", "multi-language"]
    assert past["clipped"] == 0
    lines = past["lines"]["complex: pass@1"]
    assert sorted(n for _, n in lines) == [1, 2, 2]  # chat-only ran once, good and bad twice
    assert len({colour for colour, _ in lines}) == 3


def _seen(dom: str) -> dict[str, Any]:
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    seen: dict[str, Any] = json.loads(dom[start : dom.index("</pre>", start)])
    assert seen["done"] is True
    return seen
