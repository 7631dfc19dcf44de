"""Issue 16, finding 1, in a real browser: headless Chromium loads a page from another
local port whose script attacks the proxy the ways a web page can.

The page (served by a second uvicorn) posts a `text/plain` generation with
`mode: "no-cors"` (no preflight: before the fix it ran), reads `/v1/models` and
`/backends` with `fetch`, posts JSON (which needs a preflight), and submits an HTML
form to `/admin/reload`; it writes what it could see into the DOM, which
`--dump-dom` prints. The test then checks both sides: the proxy logged every
request as refused, the fake upstream got nothing, the config was not reloaded
and the page read nothing. With the page's origin in `server.cors_origins` the
same page may use the proxy through the CORS rules. A navigation to
`http://rebind.evil:<port>/backends` (the name mapped to 127.0.0.1 in the browser's
resolver, as a rebinding attack would) gets the 421.

Needs Debian's `chromium` (the Makefile's `system-deps` installs it): skipped when
absent, a failure under `make test`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers.config import write_config
from tests.helpers.fakeupstream import FakeUpstream, run_server
from tests.socket.test_origin import config, proxy_at

PAGE = """<!doctype html><html><body><pre id="out"></pre>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{proxy}/admin/reload" target="sink">
<input name="reload" value="1"></form>
<script>
const P = "{proxy}";
const seen = {{}};
const chat = JSON.stringify({{model: "instruct", messages: [{{role: "user", content: "page"}}]}});
async function attempt(name, url, init) {{
  try {{
    const r = await fetch(url, init);
    seen[name] = {{status: r.status, type: r.type, body: (await r.text()).slice(0, 300)}};
  }} catch (e) {{
    seen[name] = {{error: String(e)}};
  }}
}}
async function run() {{
  await attempt("csrf", P + "/v1/chat/completions",
    {{method: "POST", mode: "no-cors", headers: {{"content-type": "text/plain"}}, body: chat}});
  await attempt("models", P + "/v1/models", {{}});
  await attempt("backends", P + "/backends", {{}});
  await attempt("json", P + "/v1/chat/completions",
    {{method: "POST", headers: {{"content-type": "application/json"}}, body: chat}});
  const sink = document.querySelector("iframe");
  const loaded = new Promise(resolve => sink.addEventListener("load", resolve));
  document.getElementById("form").submit();
  await Promise.race([loaded, new Promise(resolve => setTimeout(resolve, 5000))]);
  seen.done = true;
  document.getElementById("out").textContent = JSON.stringify(seen);
}}
run();
</script></body></html>"""


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        why = "needs Debian's chromium (make system-deps installs it)"
        if os.environ.get("VARIANT_PROXY_REQUIRE_REAL"):
            pytest.fail(why)
        pytest.skip(why)
    return binary


def browse(url: str, profile: Path, *extra: str) -> str:
    """The DOM of `url` after its scripts ran, as headless Chromium prints it."""
    argv = [
        _chromium(),
        "--no-sandbox",
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *extra,
        "--dump-dom",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class PageServer:
    """Serves the attack page from its own port (another origin than the proxy's)."""

    def __init__(self, proxy: str) -> None:
        self.page = PAGE.format(proxy=proxy).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            return
        headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(self.page))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.page})


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    _chromium()
    return tmp_path / "chromium-profile"


def _page_saw(dom: str) -> dict[str, Any]:
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    seen: dict[str, Any] = json.loads(dom[start : dom.index("</pre>", start)])
    assert seen.get("done") is True, seen
    return seen


@pytest.fixture
def attack(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str]
) -> Iterator[tuple[str, str, Path, dict[str, Any]]]:
    """The proxy (from a config file) and the attack page's URL on another port."""
    cfg = config(fake_server[1])
    path = write_config(tmp_path, cfg)
    with proxy_at(path) as proxy, run_server(PageServer(proxy)) as page:
        yield proxy, page, path, cfg


def test_a_real_browser_page_cannot_use_the_proxy(
    attack: tuple[str, str, Path, dict[str, Any]],
    fake: FakeUpstream,
    profile: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, page, path, cfg = attack
    cfg["variants"]["extra"] = {"backend": "main", "model": "up-extra"}
    path.write_text(yaml.safe_dump(cfg))  # what a reload would load
    seen = _page_saw(browse(page + "/", profile))
    # the page read nothing: the no-cors POST is opaque, the reads and the JSON POST fail
    assert seen["csrf"] == {"status": 0, "type": "opaque", "body": ""}
    for name in ("models", "backends", "json"):
        assert "Failed to fetch" in seen[name]["error"], seen
    # the proxy saw each request and refused it; nothing reached the upstream
    refusals = [
        r.getMessage() for r in caplog.records if "refused a browser request" in r.getMessage()
    ]
    for request in (
        "POST /v1/chat/completions",
        "GET /v1/models",
        "GET /backends",
        "OPTIONS /v1/chat/completions",  # the JSON POST's preflight: the POST never came
        "POST /admin/reload",
    ):
        assert any(request in line and page in line for line in refusals), (request, refusals)
    assert fake.seen == []
    ids = [m["id"] for m in httpx.get(proxy + "/v1/models").json()["data"]]
    assert "extra" not in ids  # the form did not reload the config


def test_a_listed_origin_may_use_the_proxy_from_a_browser(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, profile: Path
) -> None:
    path = write_config(tmp_path, config(fake_server[1]))
    with proxy_at(path) as proxy:
        page_app = PageServer(proxy)
        with run_server(page_app) as page:
            cfg = config(fake_server[1], cors_origins=[page])
            path.write_text(yaml.safe_dump(cfg))
            assert httpx.post(proxy + "/admin/reload").status_code == 200
            seen = _page_saw(browse(page + "/", profile))
    assert seen["json"]["status"] == 200 and "chat.completion" in seen["json"]["body"]
    assert seen["models"]["status"] == 200 and '"auto"' in seen["models"]["body"]
    assert seen["backends"]["status"] == 200
    # still JSON only: the no-cors text/plain POST got a 415 it cannot read
    assert seen["csrf"]["type"] == "opaque"
    assert [s.body["messages"][0]["content"] for s in fake.seen] == ["page"]


def test_a_rebinding_name_gets_the_421_in_a_browser(
    attack: tuple[str, str, Path, dict[str, Any]], fake: FakeUpstream, profile: Path
) -> None:
    proxy, _, _, _ = attack
    port = proxy.rsplit(":", 1)[1]
    dom = browse(
        f"http://rebind.evil:{port}/backends",
        profile,
        "--host-resolver-rules=MAP rebind.evil 127.0.0.1",
    )
    assert "misdirected_host" in dom and "server.allowed_hosts" in dom
    assert '"backends"' not in dom
