"""Issue 22 in a real browser: headless Chromium opens the status page of a proxy with API
keys while real requests flow through it to the fake upstream.

The proxy runs under uvicorn on a real socket; requests (streamed and not, one that falls
back from a dead backend, one the upstream fails) go through it first, then Chromium loads
`/#key=…`: the page's own script takes the key from the fragment, polls `/status.json`
with it as a Bearer header and draws the tables and SVG charts, and `--dump-dom` prints the
result. Without the key the page shows its key form and nothing else; under a
DNS-rebinding name it is refused like every other endpoint. The same page against a real
llama-server (and a drifted pin) is in tests/real/test_status_page.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.config import make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream
from tests.helpers.statusdom import StatusDom
from tests.socket.test_origin import proxy_at
from tests.socket.test_origin_browser import _chromium, browse

KEY = "sk-status-page-7d1e"


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    _chromium()
    return tmp_path / "chromium-profile"


def _bench_result(state: Path) -> None:
    """A benchmark result where the scheduler looks for one, with its HTML report."""
    bench = state / "bench"
    bench.mkdir(parents=True)
    row = {
        "variant": "instruct",
        "suite": "instruction",
        "class": "instruction",
        "scored": 20,
        "pass_ratio": 0.65,
        "pass_at_k": {"1": 0.65},
        "output_tokens_per_second": {"p50": 42.0},
        "ttft_seconds": {"p50": 0.2},
    }
    doc = {"schema": 1, "run_id": "feedc0ffee12", "finished_at": "2026-12-01T10:00:00Z"}
    (bench / "latest.json").write_text(json.dumps({**doc, "results": [row]}))
    (bench / "bench-20261201T100000Z-feedc0ffee12.html").write_text("<h1>report</h1>")


@pytest.fixture
def keyed(
    tmp_path: Path,
    fake_server: tuple[FakeUpstream, str],
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    monkeypatch.setenv("STATUS_PAGE_TEST_KEYS", KEY)
    auth = {"api_keys_env": "STATUS_PAGE_TEST_KEYS"}
    _bench_result(tmp_path / "state")
    # make_config: `complex` routes to ghost (a dead backend) first, then big
    cfg = make_config(
        fake_server[1],
        watch_config=False,
        health_interval=3600,
        auth=auth,
        state_dir=str(tmp_path / "state"),
    )
    with proxy_at(write_config(tmp_path, cfg)) as url:
        yield url


def _traffic(url: str) -> list[str]:
    """Requests through the proxy; returns their request ids."""
    ids = []
    auth = {"authorization": f"Bearer {KEY}"}
    stream = {"fake": {"chunks": 12, "chunk_delay": 0.01}, "stream": True}
    bodies = [
        {"model": "instruct", **stream},
        {"model": "instruct", **stream},
        {"model": "big"},
        {"model": "complex"},  # the class's route: ghost (dead backend) then big
        {"model": "instruct", "fake": {"status": 500}},
    ]
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        for i, extra in enumerate(bodies):
            body = {"messages": [{"role": "user", "content": f"question {i}"}], **extra}
            rid = f"status-test-{i}"
            r = client.post("/v1/chat/completions", json=body, headers={"x-request-id": rid})
            assert r.status_code == (502 if i == 4 else 200), r.text
            ids.append(rid)
    return ids


def test_the_page_shows_the_requests_that_went_through(
    keyed: str, profile: Path, fake: FakeUpstream
) -> None:
    ids = _traffic(keyed)
    dom = StatusDom(browse(keyed + "/#key=" + KEY, profile))
    assert "login" in dom.hidden and "main" not in dom.hidden, dom.hidden
    assert dom.body.get("data-loaded"), "the page never rendered /status.json"
    # the decisions table: every request, newest first, with its variant and fallback
    rows = {r.attrs["data-request-id"]: r for r in dom.rows("decisions")}
    assert set(ids) <= set(rows), rows.keys()
    header = [c for r in dom.tables["decisions"] if r.head for c in r.cells]
    col = {name: i for i, name in enumerate(header)}
    assert [rows[i].attrs["data-variant"] for i in ids] == [
        "instruct",
        "instruct",
        "big",
        "big",
        "instruct",
    ]
    fallback = rows[ids[3]]
    assert fallback.cells[col["fallback"]] == "ghost → big"
    assert fallback.cells[col["class"]] == "complex"
    assert rows[ids[4]].cells[col["status"]] == "502"
    streamed = rows[ids[0]]
    assert float(streamed.cells[col["TTFT ms"]]) >= 0
    assert float(streamed.cells[col["tok/s"]]) > 0
    # no prompt text: log_prompts is off
    assert "question" not in " ".join(c for r in rows.values() for c in r.cells)
    # the charts are drawn, with points, for the variants that served
    for chart in ("instruct:requests", "instruct:ttft", "instruct:tokens", "big:requests"):
        drawn = dom.charts[chart]
        assert drawn.points > 0 and drawn.polylines, (chart, drawn)
        assert all(re.fullmatch(r"[\d.]+,[\d.]+( [\d.]+,[\d.]+)+", p) for p in drawn.polylines)
    assert dom.charts["code:requests"].points > 0  # covered but idle: a line at zero
    # the variants and backends tables
    variants = {r.attrs["data-variant"]: r.cells for r in dom.rows("variants")}
    assert set(variants) == {"instruct", "code", "big", "ghost"}
    assert variants["instruct"][2] == "up" and variants["instruct"][5] == "unpinned"
    assert variants["ghost"][2] in ("down", "breaker open")
    backends = {r.attrs["data-backend"]: r.cells for r in dom.rows("backends")}
    assert backends["main"][2] == "up" and backends["main"][7] == "external"
    assert backends["dead"][2] in ("down", "breaker open")
    assert len(fake.seen) == 5  # the page's own polling sent nothing upstream
    # the latest benchmark, with its report link
    (bench,) = dom.rows("bench-table")
    assert bench.cells[:4] == ["instruct", "instruction", "instruction", "0.650"]
    assert 'id="report-link"' in dom.raw and 'href="/ui/report"' in dom.raw


def test_prompt_text_is_shown_as_text_never_as_markup(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, profile: Path
) -> None:
    cfg = make_config(fake_server[1], watch_config=False, health_interval=3600, log_prompts=True)
    attack = "<img src=x onerror=\"document.title='owned'\"><b id=injected>bold</b>"
    with proxy_at(write_config(tmp_path, cfg)) as url:
        body = {"model": "instruct", "messages": [{"role": "user", "content": attack}]}
        assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200
        html = browse(url + "/", profile)
    dom = StatusDom(html)
    (row,) = dom.rows("decisions")
    assert row.cells[-1].startswith(attack)  # the prompt, as the user typed it
    assert "<title>variant-proxy status</title>" in html  # the onerror never ran
    assert 'id="injected"' not in html and "<img" not in html


def test_without_the_key_the_page_shows_only_its_key_form(keyed: str, profile: Path) -> None:
    _traffic(keyed)
    dom = StatusDom(browse(keyed + "/", profile))
    assert "login" not in dom.hidden and "main" in dom.hidden
    assert dom.rows("decisions") == [] and dom.charts == {}
    # and a wrong key is refused the same way, the page saying so
    html = browse(keyed + "/#key=sk-wrong", profile)
    assert "That key was refused." in html
    assert "status-test-" not in html


def test_a_rebinding_name_cannot_load_the_page(keyed: str, profile: Path) -> None:
    port = keyed.rsplit(":", 1)[1]
    for path in ("/", "/status.json", "/ui/app.js"):
        dom = browse(
            f"http://rebind.evil:{port}{path}#key={KEY}",
            profile,
            "--host-resolver-rules=MAP rebind.evil 127.0.0.1",
        )
        assert "misdirected_host" in dom, (path, dom[:500])
        assert "variant-proxy status" not in dom and '"decisions"' not in dom
