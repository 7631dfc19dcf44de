"""The status page at the app level: `/status.json`, the page's files, keys, CSP, origins.

TestClient runs the lifespan; respx stands in for the backends. What a browser makes of
the page is in tests/socket/test_status_page_browser.py and tests/real/test_status_page.py.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from proxy.app import create_app as _create_app
from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.statuspage import CSP, REPORT_CSP
from tests.app.test_app import UP, chat, ok_chat
from tests.helpers.config import make_config

create_app = functools.partial(_create_app, upstream_client="httpx")
KEY = "sk-status-app-1"
PAGE_PATHS = ("/", "/ui", "/ui/app.js", "/ui/app.css")


def ok_stream(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    if not body.get("stream"):
        return ok_chat(request)
    events = []
    for i, piece in enumerate(["a", "b", "c", "d"]):
        delta = {"content": piece, **({"role": "assistant"} if i == 0 else {})}
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return httpx.Response(
        200, content=b"".join(events), headers={"content-type": "text/event-stream"}
    )


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{UP}/v1/models").respond(200, json={"object": "list", "data": []})
        router.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_stream)
        router.post("http://dead.test/v1/chat/completions").mock(
            side_effect=httpx.ConnectError("refused")
        )
        router.get("http://dead.test/v1/models").mock(side_effect=httpx.ConnectError("refused"))
        yield router


def _config(tmp_path: Path, **server: Any) -> dict[str, Any]:
    cfg = make_config(UP, state_dir=str(tmp_path / "state"), **server)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    return cfg


def _client(cfg: dict[str, Any]) -> TestClient:
    return TestClient(create_app(parse_config(cfg)))


@pytest.fixture
def client(tmp_path: Path, mock: respx.MockRouter) -> Iterator[TestClient]:
    with _client(_config(tmp_path)) as c:
        yield c


def _traffic(c: TestClient, headers: dict[str, str] | None = None) -> None:
    for model, extra in [
        ("instruct", {"stream": True}),
        ("big", {}),
        ("complex", {}),  # ghost (dead) first, then big
        ("ghost", {}),  # named directly: 502
    ]:
        c.post("/v1/chat/completions", json=chat(model, **extra), headers=headers or {})


# -- the JSON -------------------------------------------------------------------------------


def test_status_json_shows_backends_variants_decisions_and_series(client: TestClient) -> None:
    _traffic(client)
    r = client.get("/status.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["schema"] == 1
    assert set(doc["backends"]) == {"main", "spare", "dead"}
    main = doc["backends"]["main"]
    assert main["state"] == "up" and main["in_flight"] == 0 and main["kind"] == "openai"
    assert doc["backends"]["dead"]["state"] in ("down", "breaker open")
    assert doc["variants"]["instruct"]["backends"] == ["main"]
    assert doc["variants"]["instruct"]["pin"] == {"status": "unpinned"}
    items = doc["decisions"]["items"]
    assert [d["variant"] for d in items] == ["ghost", "big", "big", "instruct"]  # newest first
    ghost, fell_back, big, streamed = items
    assert ghost["status"] == 502 and ghost["class"] == "direct" and ghost["rule"] == "model"
    assert fell_back["fallback"] == ["ghost", "big"] and fell_back["class"] == "complex"
    assert big["fallback"] == [] and big["status"] == 200
    assert streamed["ttft_seconds"] is not None and streamed["output_tokens"] == 4
    assert streamed["tokens_per_second"] is None or streamed["tokens_per_second"] > 0
    assert all("prompt" not in d and "reason" not in d for d in items)  # log_prompts off
    assert doc["decisions"]["held"] == 4 and doc["decisions"]["capacity"] == 2000
    series = doc["series"]
    assert series["buckets"] == 60 and series["step_seconds"] == 10
    last = series["variants"]["big"]
    assert last["requests_per_second"][-1] == pytest.approx(2 / 10)
    assert series["variants"]["ghost"]["errors"][-1] == 1
    assert series["variants"]["code"]["requests_per_second"][-1] == 0  # idle but covered
    assert series["variants"]["instruct"]["ttft_p50"][-1] is not None
    # before the proxy started: no data, not a false zero
    assert series["variants"]["big"]["requests_per_second"][0] is None
    assert doc["benchmark"] == {"running": False, "last_error": None, "run": None}


def test_recent_and_window_parameters(client: TestClient) -> None:
    _traffic(client)
    doc = client.get("/status.json", params={"recent": 2, "window": 120}).json()
    assert len(doc["decisions"]["items"]) == 2
    assert doc["series"]["step_seconds"] == 2
    for bad in ({"window": "abc"}, {"window": 5}, {"recent": -1}):
        r = client.get("/status.json", params=bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "invalid_request"


def test_history_is_bounded_and_follows_a_reload(tmp_path: Path, mock: respx.MockRouter) -> None:
    cfg = _config(tmp_path)
    cfg["server"]["status_page"] = {"history": 10}
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(cfg))
    with TestClient(create_app(path)) as c:
        for _ in range(15):
            c.post("/v1/chat/completions", json=chat("big"))
        doc = c.get("/status.json", params={"recent": 100}).json()
        assert doc["decisions"]["held"] == 10 and len(doc["decisions"]["items"]) == 10
        # the ring is full: the charts say since when they know
        assert doc["series"]["covered_from"] == pytest.approx(
            doc["decisions"]["items"][-1]["time"], abs=0.01
        )
        cfg["server"]["status_page"] = {"history": 20}
        path.write_text(json.dumps(cfg))
        assert c.post("/admin/reload").status_code == 200
        for _ in range(5):
            c.post("/v1/chat/completions", json=chat("big"))
        doc = c.get("/status.json").json()
        assert doc["decisions"]["capacity"] == 20 and doc["decisions"]["held"] == 15


def test_prompts_and_reasons_only_with_log_prompts(tmp_path: Path, mock: respx.MockRouter) -> None:
    with _client(_config(tmp_path, log_prompts=True)) as c:
        body = {"model": "auto", "messages": [{"role": "user", "content": "write a  haiku\n"}]}
        c.post("/v1/chat/completions", json=body)
        item = c.get("/status.json").json()["decisions"]["items"][0]
    assert item["prompt"] == "write a haiku"
    assert item["reason"] and item["rule"] != "model"


def test_benchmark_summary_and_report(tmp_path: Path, mock: respx.MockRouter) -> None:
    bench = tmp_path / "state" / "bench"
    bench.mkdir(parents=True)
    doc = {
        "schema": 1,
        "run_id": "abc123def456",
        "started_at": "2026-12-01T10:00:00+00:00",
        "finished_at": "2026-12-01T10:05:00+00:00",
        "results": [
            {
                "variant": "instruct",
                "suite": "instruction",
                "class": "instruction",
                "scored": 20,
                "pass_ratio": 0.75,
                "pass_at_k": {"1": 0.75},
                "pass_at_1_interval": {"low": 0.53, "high": 0.89},
                "output_tokens_per_second": {"p50": 41.5},
                "ttft_seconds": {"p50": 0.12},
            }
        ],
    }
    (bench / "latest.json").write_text(json.dumps(doc))
    (bench / "bench-20261201T100000Z-abc123def456.html").write_text(
        "<!doctype html><style>h1{color:red}</style><h1>report</h1>"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STATUS_KEYS", KEY)
        with _client(_config(tmp_path, auth={"api_keys_env": "STATUS_KEYS"})) as c:
            auth = {"authorization": f"Bearer {KEY}"}
            run = c.get("/status.json", headers=auth).json()["benchmark"]["run"]
            assert run["run_id"] == "abc123def456" and run["report"] == "/ui/report"
            (row,) = run["variants"]["instruct"]
            assert row["pass_at_1"] == 0.75 and row["interval"] == [0.53, 0.89]
            assert row["tokens_per_second"] == 41.5 and row["ttft_seconds"] == 0.12
            # a new result replaces the summary (the file is re-read when it changes)
            newer = {**doc, "run_id": "0123456789ab", "results": []}
            (bench / "latest.json").write_text(json.dumps(newer) + " " * 10)
            run2 = c.get("/status.json", headers=auth).json()["benchmark"]["run"]
            assert run2["run_id"] == "0123456789ab" and run2["variants"] == {}
            assert run2["report"] is None  # no HTML report for that run
            (bench / "latest.json").write_text(json.dumps(doc))
            assert c.get("/ui/report").status_code == 401
            report = c.get("/ui/report", headers=auth)
            assert report.status_code == 200 and "<h1>report</h1>" in report.text
            assert report.headers["content-security-policy"] == REPORT_CSP
            assert report.headers["x-content-type-options"] == "nosniff"


def test_no_report_is_a_404(client: TestClient) -> None:
    r = client.get("/ui/report")
    assert r.status_code == 404 and "no benchmark report" in r.json()["error"]["message"]


# -- keys, headers, origins ------------------------------------------------------------------


def test_the_json_needs_the_key_the_page_files_do_not(
    tmp_path: Path, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUS_KEYS", KEY)
    with _client(_config(tmp_path, auth={"api_keys_env": "STATUS_KEYS"})) as c:
        _traffic(c, {"authorization": f"Bearer {KEY}"})
        r = c.get("/status.json")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert "decisions" not in r.text
        assert c.get("/status.json", headers={"authorization": "Bearer nope"}).status_code == 401
        ok = c.get("/status.json", headers={"authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and len(ok.json()["decisions"]["items"]) == 4
        for path in PAGE_PATHS:  # static, no data: they must load for the key form
            page = c.get(path)
            assert page.status_code == 200, path
            assert "instruct" not in page.text  # no config or traffic in them


def test_protect_admin_off_leaves_the_json_open(
    tmp_path: Path, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUS_KEYS", KEY)
    auth = {"api_keys_env": "STATUS_KEYS", "protect_admin": False}
    with _client(_config(tmp_path, auth=auth)) as c:
        assert c.get("/status.json").status_code == 200


@pytest.mark.parametrize("path", [*PAGE_PATHS, "/status.json"])
def test_security_headers(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert csp == CSP
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    expected = {
        "/": "text/html",
        "/ui": "text/html",
        "/ui/app.js": "text/javascript",
        "/ui/app.css": "text/css",
        "/status.json": "application/json",
    }[path]
    assert r.headers["content-type"].startswith(expected)
    if path == "/status.json":
        assert r.headers["cache-control"] == "no-store"


class _Inline(HTMLParser):
    """Whatever a strict CSP would block in the page: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "style" or "style" in names:
            self.found.append(f"style on <{tag}>")
        self.found += [f"{k} on <{tag}>" for k in names if k.startswith("on")]
        if tag == "script":
            self._in_script = True
            self.scripts.append(names.get("src") or "")
            if not names.get("src"):
                self.found.append("inline <script>")
        for key in ("src", "href"):
            value = names.get(key) or ""
            if re.match(r"(https?:)?//|javascript:", value):
                self.found.append(f"external or javascript: {key}={value}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script text")


def test_the_page_has_nothing_inline_and_nothing_external(client: TestClient) -> None:
    page = _Inline()
    page.feed(client.get("/").text)
    assert page.found == [] and page.scripts == ["/ui/app.js"]
    script = client.get("/ui/app.js").text
    # data reaches the DOM as text, never as markup; no eval of any kind
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
        assert banned not in script, banned
    assert '.setAttribute("style"' not in script and "document.write" not in script


def test_browser_origin_rules_apply(client: TestClient) -> None:
    evil = {"origin": "http://evil.example", "sec-fetch-site": "cross-site"}
    for path in [*PAGE_PATHS, "/status.json"]:
        r = client.get(path, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_origin", path
        r = client.get(path, headers={"host": "rebind.evil:8780"})
        assert r.status_code == 421 and r.json()["error"]["code"] == "misdirected_host", path
    # the page's own fetch: same origin (no Origin on a GET), and a typed-in address
    same = client.get("/status.json", headers={"sec-fetch-site": "same-origin"})
    assert same.status_code == 200
    assert client.get("/", headers={"sec-fetch-site": "none"}).status_code == 200


def test_switched_off(tmp_path: Path, mock: respx.MockRouter) -> None:
    with _client(_config(tmp_path, status_page={"enabled": False})) as c:
        _traffic(c)
        for path in [*PAGE_PATHS, "/status.json", "/ui/report"]:
            r = c.get(path)
            assert r.status_code == 404, path
            assert "server.status_page.enabled" in r.json()["error"]["message"]
        proxy = c.app.proxy  # type: ignore[attr-defined]
        assert proxy.activity.capacity == 0 and proxy.activity.entries() == []  # kept nothing


def test_bad_status_page_config_names_the_key(tmp_path: Path) -> None:
    for bad in ({"history": 5}, {"history": "lots"}, {"size": 10}):
        cfg = _config(tmp_path, status_page=bad)
        with pytest.raises(ConfigError) as err:
            parse_config(cfg)
        assert "server.status_page" in str(err.value), bad


def test_the_page_files_ship_in_the_package() -> None:
    """Served from the package (`importlib.resources`): pyproject must list them as data."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["proxy"]
    shipped = {p.relative_to(root / "proxy") for g in globs for p in (root / "proxy").glob(g)}
    assert {Path("ui/index.html"), Path("ui/app.js"), Path("ui/app.css")} <= shipped
