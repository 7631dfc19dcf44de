"""Issue 16, findings 1 and 2, against real sockets: what a web page can do to the proxy,
and what a reload can do to its keys.

The proxy runs under uvicorn in a thread in front of the fake upstream, whose `seen`
list is the proof that a refused request never became a generation. Each attack is
sent exactly as a browser would send it (the `Origin`, `Sec-Fetch-Site`, content type
and `Host` a page gets); the same requests without them (curl, the openai SDK) must
keep working, including the README's curl examples run as they are written. The
browser itself is in test_origin_browser.py.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
import yaml

from proxy.app import create_app
from tests.helpers.config import ROOT, make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream, free_port, run_server

CHAT = {"model": "instruct", "messages": [{"role": "user", "content": "hi"}]}
BODIES = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": {"model": "code", "prompt": "def f("},
    "/v1/embeddings": {"model": "instruct", "input": "x"},
}
EVIL = "http://evil.example"
APP = "http://localhost:3000"
KEY = "sk-origin-test-3c1f"


def config(upstream: str, **server: Any) -> dict[str, Any]:
    cfg = make_config(upstream, watch_config=False, health_interval=3600, **server)
    del cfg["backends"]["dead"], cfg["variants"]["ghost"]
    cfg["routes"]["complex"] = ["big"]
    return cfg


@contextlib.contextmanager
def proxy_at(path: Path, *, bind: str = "127.0.0.1", **kw: Any) -> Iterator[str]:
    """The proxy from a config file, served on `bind` (its `listen_host`) in a thread."""
    app = create_app(path, listen_host=bind, **kw)
    if bind == "127.0.0.1":
        with run_server(app) as url:
            yield url
        return
    server = uvicorn.Server(
        uvicorn.Config(app, host=bind, port=free_port(), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str], fake: FakeUpstream
) -> Iterator[tuple[str, Path]]:
    path = write_config(tmp_path, config(fake_server[1]))
    with proxy_at(path) as url:
        yield url, path


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error", error


# -- finding 1: a page can't use the proxy -----------------------------------------------------


@pytest.mark.parametrize("path", list(BODIES))
def test_text_plain_post_from_a_foreign_page_is_refused(
    served: tuple[str, Path], fake: FakeUpstream, path: str
) -> None:
    url, _ = served
    body = httpx.Request("POST", "/", json=BODIES[path]).content
    page = {"origin": EVIL, "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}
    plain = {"content-type": "text/plain;charset=UTF-8"}
    r = httpx.post(url + path, content=body, headers={**page, **plain})
    refused(r, 403, "forbidden_origin")
    assert "server.cors_origins" in r.json()["error"]["message"]
    assert "access-control-allow-origin" not in r.headers
    # the same body as JSON from the page: still the page's, still refused
    refused(httpx.post(url + path, json=BODIES[path], headers=page), 403, "forbidden_origin")
    # and text/plain without an Origin (a page that could hide it) is not JSON
    refused(httpx.post(url + path, content=body, headers=plain), 415, "unsupported_media_type")
    refused(httpx.post(url + path, content=body), 415, "unsupported_media_type")
    assert fake.seen == []
    assert httpx.post(url + path, json=BODIES[path]).status_code == 200  # curl, SDKs
    assert len(fake.seen) == 1


def test_form_post_to_admin_reload_is_refused(
    served: tuple[str, Path], fake_server: tuple[FakeUpstream, str]
) -> None:
    url, path = served
    cfg = config(fake_server[1])
    cfg["variants"]["extra"] = {"backend": "main", "model": "up-extra"}
    path.write_text(yaml.safe_dump(cfg))
    form = {"content-type": "application/x-www-form-urlencoded"}
    page = {"origin": "null", "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    refused(
        httpx.post(url + "/admin/reload", content=b"a=b", headers=form),
        415,
        "unsupported_media_type",
    )
    r = httpx.post(url + "/admin/reload", content=b"a=b", headers={**form, **page})
    refused(r, 403, "forbidden_origin")
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    refused(
        httpx.post(url + "/admin/reload", content=b"--x--", headers=multipart),
        415,
        "unsupported_media_type",
    )
    ids = [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
    assert "extra" not in ids  # not reloaded
    # curl -X POST …/admin/reload (no body, no type) still reloads
    assert httpx.post(url + "/admin/reload").json()["reloaded"] is True
    assert "extra" in [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/backends"),
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("GET", "/health"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/route/explain"),
        ("POST", "/admin/reload"),
    ],
)
def test_dns_rebinding_host_is_refused(
    served: tuple[str, Path],
    fake: FakeUpstream,
    fake_server: tuple[FakeUpstream, str],
    method: str,
    path: str,
) -> None:
    url, _ = served
    port = url.rsplit(":", 1)[1]
    body = BODIES.get(path, CHAT) if method == "POST" else None
    # what a rebinding page's same-origin fetch sends: its own name in Host and Origin
    for headers in (
        {"host": f"rebind.evil:{port}"},
        {"host": f"rebind.evil:{port}", "origin": f"http://rebind.evil:{port}"},
        {"host": "rebind.evil", "sec-fetch-site": "same-origin"},
    ):
        r = httpx.request(method, url + path, json=body, headers=headers)
        refused(r, 421, "misdirected_host")
        assert "server.allowed_hosts" in r.json()["error"]["message"]
        assert fake_server[1] not in r.text  # no internal URL
    assert fake.seen == []


def test_an_allowed_host_name_is_served(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str], fake: FakeUpstream
) -> None:
    path = write_config(tmp_path, config(fake_server[1], allowed_hosts=["proxy.lan"]))
    with proxy_at(path) as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"proxy.lan:{port}", "PROXY.LAN"):
            assert httpx.get(url + "/backends", headers={"host": host}).status_code == 200
        own = {"host": f"proxy.lan:{port}", "origin": f"http://proxy.lan:{port}"}
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=own).status_code == 200
        r = httpx.get(url + "/backends", headers={"host": "rebind.evil"})
        refused(r, 421, "misdirected_host")


def test_same_origin_and_plain_clients_are_served(
    served: tuple[str, Path], fake: FakeUpstream
) -> None:
    url, _ = served
    own = url.replace("127.0.0.1", "localhost")
    for headers in (
        {},  # curl, SDKs, editors
        {"origin": url, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"},
        {"origin": own, "host": own.removeprefix("http://")},
        {"sec-fetch-site": "none"},  # typed into the address bar
        {"host": url.removeprefix("http://").replace("127.0.0.1", "[::1]")},
    ):
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=headers).is_success
        assert httpx.get(url + "/v1/models", headers=headers).status_code == 200
        assert httpx.get(url + "/backends", headers=headers).status_code == 200
    assert len(fake.seen) == 5


def test_the_openai_sdk_is_unaffected(served: tuple[str, Path], fake: FakeUpstream) -> None:
    url, _ = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model="auto", messages=CHAT["messages"])  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    stream = client.chat.completions.create(
        model="instruct",
        messages=CHAT["messages"],  # type: ignore[arg-type]
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert client.completions.create(model="code", prompt="def f(").choices[0].text
    assert client.embeddings.create(model="instruct", input="x").data[0].embedding
    assert "auto" in [m.id for m in client.models.list()]
    assert len(fake.seen) == 4


def _curl_commands(text: str) -> list[str]:
    """The `curl …` commands of a page's ```sh blocks (continuation lines joined)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        commands += [
            line.strip() for line in joined.splitlines() if line.strip().startswith("curl")
        ]
    return commands


def test_the_readmes_curl_examples_work(served: tuple[str, Path], fake: FakeUpstream) -> None:
    url, _ = served
    commands = _curl_commands((ROOT / "README.md").read_text())
    commands += _curl_commands((ROOT / "docs/deployment.md").read_text())
    assert len(commands) >= 3
    for command in commands:
        command = command.replace("http://127.0.0.1:8780", url)
        piped = "|" in command  # then the next program must read a good answer
        if not piped:
            command += " -w '\n%{http_code}'"
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, (command, done.stderr)
        if not piped:  # /ready says 503 while the health loop has not probed yet
            assert done.stdout.rstrip().endswith(("200", "503")), (command, done.stdout)
    assert fake.seen  # the generations reached the upstream


# -- opt-in CORS -------------------------------------------------------------------------------


@pytest.fixture
def cors(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str], fake: FakeUpstream
) -> Iterator[str]:
    path = write_config(tmp_path, config(fake_server[1], cors_origins=[APP]))
    with proxy_at(path) as url:
        yield url


def test_cors_preflight_for_an_allowed_origin(cors: str, fake: FakeUpstream) -> None:
    for path in ("/v1/chat/completions", "/v1/models", "/admin/reload"):
        r = httpx.options(
            cors + path,
            headers={
                "origin": APP,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type,x-request-id",
                "sec-fetch-site": "same-site",
            },
        )
        assert r.status_code == 204, r.text
        assert r.headers["access-control-allow-origin"] == APP
        allowed = r.headers["access-control-allow-headers"]
        assert {"authorization", "content-type", "x-request-id"} <= set(allowed.split(", "))
        assert "POST" in r.headers["access-control-allow-methods"]
        assert r.headers["vary"] == "Origin"
    assert fake.seen == []


def test_cors_headers_on_the_answers_to_an_allowed_origin(cors: str, fake: FakeUpstream) -> None:
    page = {"origin": APP, "sec-fetch-site": "same-site", "sec-fetch-mode": "cors"}
    answers = [
        httpx.post(cors + "/v1/chat/completions", json=CHAT, headers=page),
        httpx.post(cors + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=page),
        httpx.post(cors + "/v1/embeddings", json=BODIES["/v1/embeddings"], headers=page),
        httpx.get(cors + "/v1/models", headers=page),
        httpx.post(cors + "/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=page),
        httpx.post(cors + "/v1/chat/completions", content=b"{}", headers=page),  # 415
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 404, 415]
    for r in answers:
        assert r.headers["access-control-allow-origin"] == APP
        assert "Origin" in r.headers["vary"]
        assert "x-route-variant" in r.headers["access-control-expose-headers"]
    assert "data: [DONE]" in answers[1].text
    assert len(fake.seen) == 3


@pytest.mark.parametrize(
    "origin", ["http://localhost:3001", "https://localhost:3000", EVIL, "null"]
)
def test_cors_refuses_other_origins(cors: str, fake: FakeUpstream, origin: str) -> None:
    preflight = {"origin": origin, "access-control-request-method": "POST"}
    r = httpx.options(cors + "/v1/chat/completions", headers=preflight)
    refused(r, 403, "forbidden_origin")
    assert "access-control-allow-origin" not in r.headers
    r = httpx.post(cors + "/v1/chat/completions", json=CHAT, headers={"origin": origin})
    refused(r, 403, "forbidden_origin")
    assert "access-control-allow-origin" not in r.headers
    assert fake.seen == []


# -- finding 2: a reload can't switch auth off --------------------------------------------------


def _reload_with(path: Path, url: str, cfg: dict[str, Any]) -> httpx.Response:
    path.write_text(yaml.safe_dump(cfg))
    return httpx.post(url + "/admin/reload", headers={"authorization": f"Bearer {KEY}"})


def _reload_errors(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    found = re.search(r'^variant_proxy_config_reloads_total\{result="error"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_reload_to_no_keys_on_0000_is_refused(
    tmp_path: Path,
    fake_server: tuple[FakeUpstream, str],
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("VP_ORIGIN_KEYS", KEY)
    keyed = config(fake_server[1], auth={"api_keys_env": "VP_ORIGIN_KEYS"})
    path = write_config(tmp_path, keyed)
    with proxy_at(path, bind="0.0.0.0") as url:
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 401
        errors = _reload_errors(url)
        # no keys at all, then no keys with the explicit switch: 0.0.0.0 still needs keys
        for auth in ({}, {"allow_disable_on_reload": True}):
            r = _reload_with(path, url, config(fake_server[1], auth=auth))
            assert r.status_code == 400, r.text
            assert r.json()["reloaded"] is False
            assert r.json()["error"]["code"] == "invalid_config"
            assert any("server.auth" in issue for issue in r.json()["error"]["issues"])
            assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 401
            assert httpx.post(url + "/admin/reload").status_code == 401
        assert "0.0.0.0 without API keys" in r.text
        assert _reload_errors(url) == errors + 2
        # a key file emptied (comments only) is no keys either
        keys = tmp_path / "keys.txt"
        keys.write_text("# all revoked\n")
        r = _reload_with(path, url, config(fake_server[1], auth={"api_keys_file": str(keys)}))
        assert r.status_code == 400, r.text
        assert "0.0.0.0 without API keys" in r.text
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 401
    assert fake.seen == []
    refusals = [r for r in caplog.records if "reload refused" in r.getMessage()]
    assert len(refusals) == 3 and all(r.levelno == logging.ERROR for r in refusals)


def test_keys_to_none_needs_the_explicit_setting(
    tmp_path: Path,
    fake_server: tuple[FakeUpstream, str],
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("VP_ORIGIN_KEYS", KEY)
    path = write_config(tmp_path, config(fake_server[1], auth={"api_keys_env": "VP_ORIGIN_KEYS"}))
    with proxy_at(path) as url:
        r = _reload_with(path, url, config(fake_server[1]))
        assert r.status_code == 400 and "allow_disable_on_reload" in r.text
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 401
        caplog.clear()
        r = _reload_with(path, url, config(fake_server[1], auth={"allow_disable_on_reload": True}))
        assert r.status_code == 200, r.text
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
    changed = [r for r in caplog.records if "changes the API keys" in r.getMessage()]
    assert [r.levelno for r in changed] == [logging.WARNING]
    assert "1 before, 0 after" in changed[0].getMessage()
    assert KEY not in caplog.text


def test_a_reload_that_changes_keys_is_logged(
    tmp_path: Path,
    fake_server: tuple[FakeUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("VP_ORIGIN_KEYS", KEY)
    cfg = config(fake_server[1], auth={"api_keys_env": "VP_ORIGIN_KEYS"})
    path = write_config(tmp_path, cfg)
    with proxy_at(path, bind="0.0.0.0") as url:
        monkeypatch.setenv("VP_ORIGIN_KEYS", f"{KEY}, sk-new-key-9d2e")
        caplog.clear()
        assert _reload_with(path, url, cfg).status_code == 200
        headers = {"authorization": "Bearer sk-new-key-9d2e"}
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=headers).is_success
        assert _reload_with(path, url, cfg).status_code == 200  # same keys: quiet
    changed = [r for r in caplog.records if "changes the API keys" in r.getMessage()]
    assert [r.levelno for r in changed] == [logging.WARNING]
    assert "1 added, 0 removed" in changed[0].getMessage()
    assert "sk-new-key" not in caplog.text
