"""The security model: client API keys, what is protected, what never leaves the proxy.

The app runs under TestClient; respx answers for every host and records what
reached it, so a request that went anywhere but a configured backend, or
carried a client header it should not, is caught.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import uvicorn
from starlette.testclient import TestClient

from proxy import cli
from proxy.app import create_app as _create_app
from proxy.config import parse_config
from proxy.metrics import Metrics
from tests.helpers.config import make_config, write_config

# respx mocks httpx, so these apps relay through httpx rather than the native client
create_app = functools.partial(_create_app, upstream_client="httpx")

UP = "http://up.test"
KEY_ONE = "sk-test-key-one-8f3a1c"
KEY_TWO = "sk-test-key-two-77b2e9"
BACKEND_KEY = "backend-secret-5d0c4e"
VENV_BIN = Path(sys.executable).parent


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": []})
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            },
        )

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


def secured(auth: dict[str, Any] | None = None, **server: Any) -> dict[str, Any]:
    cfg = make_config(UP, auth={"api_keys_env": "VP_TEST_KEYS", **(auth or {})}, **server)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    return cfg


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=rec)
        yield rec


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_TEST_KEYS", f"{KEY_ONE}, {KEY_TWO}")


def client_for(cfg: dict[str, Any]) -> TestClient:
    return TestClient(create_app(parse_config(cfg), metrics=Metrics()))


@pytest.fixture
def client(keys: None, recorder: Recorder) -> Iterator[TestClient]:
    with client_for(secured()) as c:
        yield c


def chat(model: str = "instruct", content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
    assert KEY_ONE not in r.text and KEY_TWO not in r.text


# -- API keys --------------------------------------------------------------------------------

OPENAI = [
    ("POST", "/v1/chat/completions", chat()),
    ("POST", "/v1/completions", {"model": "code", "prompt": "def f("}),
    ("POST", "/v1/embeddings", {"model": "instruct", "input": "x"}),
    ("GET", "/v1/models", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OPENAI)
def test_openai_endpoints_need_a_valid_key(
    client: TestClient, recorder: Recorder, method: str, path: str, body: Any
) -> None:
    assert_401(client.request(method, path, json=body))
    for bad in ("Bearer nope", f"Bearer {KEY_ONE}x", f"Basic {KEY_ONE}", KEY_ONE, "Bearer "):
        assert_401(client.request(method, path, json=body, headers={"authorization": bad}))
    assert recorder.posts() == []
    for key in (KEY_ONE, KEY_TWO):
        r = client.request(method, path, json=body, headers=bearer(key))
        assert r.status_code == 200, r.text
    lower = client.request(method, path, json=body, headers={"Authorization": f"bearer {KEY_ONE}"})
    assert lower.status_code == 200


def test_client_key_never_reaches_the_backend(client: TestClient, recorder: Recorder) -> None:
    r = client.post("/v1/chat/completions", json=chat(), headers=bearer(KEY_ONE))
    assert r.status_code == 200
    (sent,) = recorder.posts()
    assert "authorization" not in sent.headers
    assert KEY_ONE.encode() not in sent.content


def test_backend_gets_its_own_key_instead(
    keys: None, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VP_BACKEND_KEY", BACKEND_KEY)
    cfg = secured()
    cfg["backends"]["main"]["api_key_env"] = "VP_BACKEND_KEY"
    with client_for(cfg) as c:
        r = c.post("/v1/chat/completions", json=chat(), headers=bearer(KEY_ONE))
    assert r.status_code == 200
    (sent,) = recorder.posts()
    assert sent.headers["authorization"] == f"Bearer {BACKEND_KEY}"
    assert BACKEND_KEY not in r.text


def test_metrics_open_by_default_and_protectable(keys: None, recorder: Recorder) -> None:
    with client_for(secured()) as c:
        assert c.get("/metrics").status_code == 200
    with client_for(secured({"protect_metrics": True})) as c:
        assert_401(c.get("/metrics"))
        assert_401(c.get("/metrics", headers=bearer("wrong")))
        assert c.get("/metrics", headers=bearer(KEY_TWO)).status_code == 200


ADMIN = [
    ("GET", "/backends", None),
    ("POST", "/route/explain", chat()),
    ("POST", "/admin/reload", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN)
def test_admin_endpoints_protected_by_default(
    keys: None, recorder: Recorder, tmp_path: Path, method: str, path: str, body: Any
) -> None:
    source = write_config(tmp_path, secured())
    with TestClient(create_app(source, metrics=Metrics())) as c:
        assert_401(c.request(method, path, json=body))
        assert_401(c.request(method, path, json=body, headers=bearer("wrong")))
        assert c.request(method, path, json=body, headers=bearer(KEY_ONE)).status_code == 200
    with TestClient(create_app(write_config(tmp_path, secured({"protect_admin": False})))) as c:
        if path == "/route/explain":
            # explain reads any text and runs the classifier: with keys set it always needs
            # one (issue 16, finding 4)
            assert_401(c.request(method, path, json=body))
            assert c.request(method, path, json=body, headers=bearer(KEY_ONE)).status_code == 200
        else:
            assert c.request(method, path, json=body).status_code == 200


def test_health_is_open(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_without_keys_everything_is_open(recorder: Recorder) -> None:
    cfg = make_config(UP)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with client_for(cfg) as c:
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200
        assert c.get("/backends").status_code == 200


def test_keys_never_logged_nor_echoed(
    keys: None, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-0a9b8c7d"
    caplog.set_level(logging.DEBUG)
    with client_for(secured({"protect_metrics": True})) as c:
        bodies = [
            c.post("/v1/chat/completions", json=chat(), headers=bearer(wrong)).text,
            c.post("/v1/chat/completions", json=chat(), headers=bearer(KEY_ONE)).text,
            c.post("/v1/chat/completions", json=chat("nope"), headers=bearer(KEY_ONE)).text,
            c.post("/v1/chat/completions", json=chat("ghost"), headers=bearer(KEY_ONE)).text,
            c.get("/metrics", headers=bearer(KEY_ONE)).text,
            c.get("/backends", headers=bearer(KEY_ONE)).text,
        ]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (KEY_ONE, KEY_TWO, wrong):
        assert secret not in logged
        assert all(secret not in body for body in bodies)


# -- SSRF: nothing a client sends changes where the proxy connects ---------------------------

HOSTILE_MODELS = [
    "http://evil.test/",
    "http://evil.test/v1/chat/completions",
    "//evil.test/instruct",
    "instruct@evil.test",
    "evil.test:80",
    "../instruct",
    "instruct/../../admin",
    "instruct/../instruct",
    "instruct%2F..%2F",
    "instruct\r\nHost: evil.test",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("model", HOSTILE_MODELS)
def test_model_names_cannot_change_the_upstream(
    client: TestClient, recorder: Recorder, model: str
) -> None:
    r = client.post("/v1/chat/completions", json=chat(model), headers=bearer(KEY_ONE))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert recorder.posts() == []


def test_host_headers_cannot_change_the_upstream(keys: None, recorder: Recorder) -> None:
    headers = {
        **bearer(KEY_ONE),
        "host": "evil.test",
        "x-forwarded-host": "evil.test",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "10.0.0.1",
        "forwarded": "host=evil.test;proto=https",
        "x-original-url": "http://evil.test/",
        "x-rewrite-url": "/admin",
    }
    # a name in server.allowed_hosts: any other Host is refused outright (test_origin.py)
    with client_for(secured(allowed_hosts=["evil.test"])) as client:
        for model in ("instruct", "complex", "auto"):
            r = client.post("/v1/chat/completions", json=chat(model), headers=headers)
            assert r.status_code == 200
    hosts = {(req.url.scheme, req.url.host, req.url.port) for req in recorder.posts()}
    assert hosts <= {("http", "up.test", None), ("http", "dead.test", None)}  # configured ones
    for req in recorder.posts():
        assert req.headers["host"] in ("up.test", "dead.test")
        assert req.url.path == "/v1/chat/completions"
        assert not {"x-forwarded-host", "forwarded", "x-original-url"} & set(req.headers)


def test_hop_by_hop_and_client_headers_are_not_forwarded(
    client: TestClient, recorder: Recorder
) -> None:
    headers = {
        **bearer(KEY_ONE),
        "connection": "close, x-secret",
        "keep-alive": "timeout=999, max=1",
        "upgrade": "h2c",
        "proxy-authorization": "Basic c2VjcmV0OnNlY3JldA==",
        "proxy-connection": "keep-alive",
        "te": "trailers",
        "trailer": "x-late",
        "x-secret": "do-not-forward",
        "cookie": "session=abc",
    }
    r = client.post("/v1/chat/completions", json=chat(), headers=headers)
    assert r.status_code == 200
    (sent,) = recorder.posts()
    for name in (
        "keep-alive",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "x-secret",
        "cookie",
        "authorization",
    ):
        assert name not in sent.headers, name
    assert sent.headers.get("connection", "keep-alive") == "keep-alive"
    assert "transfer-encoding" not in sent.headers
    assert sent.headers["content-length"] == str(len(sent.content))


def test_client_transfer_encoding_is_not_forwarded(client: TestClient, recorder: Recorder) -> None:
    body = json.dumps(chat()).encode()
    ctype = "application/json; charset=utf-8"  # any other type is a 415 (test_origin)
    headers = {**bearer(KEY_ONE), "transfer-encoding": "chunked", "content-type": ctype}
    r = client.post("/v1/chat/completions", content=body, headers=headers)
    assert r.status_code == 200
    (sent,) = recorder.posts()
    assert "transfer-encoding" not in sent.headers
    assert sent.headers["content-type"] == "application/json"


# -- logs ------------------------------------------------------------------------------------

MARKER = "PROMPT-MARKER-4f1d2c9e"


@pytest.mark.parametrize("stream", [False, True])
def test_prompts_are_not_logged_by_default(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = make_config(UP)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with client_for(cfg) as c:
        for model in ("instruct", "auto", "complex", "nope"):
            c.post("/v1/chat/completions", json=chat(model, f"say {MARKER}", stream=stream))
        c.post("/v1/completions", json={"model": "code", "prompt": MARKER})
        c.post("/route/explain", json=chat("auto", MARKER))
    assert len(caplog.records) > 0  # the proxy and httpx did log, at DEBUG
    assert MARKER not in caplog.text
    assert all(MARKER not in str(r.args) for r in caplog.records)


def test_log_prompts_opt_in_is_what_logs_them(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cfg = make_config(UP, log_prompts=True)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with client_for(cfg) as c:
        c.post("/v1/chat/completions", json=chat("instruct", MARKER))
    assert MARKER in caplog.text


# -- serve refuses to be open to the network -------------------------------------------------


def test_serve_refuses_a_remote_host_without_keys(tmp_path: Path) -> None:
    cfg = make_config("http://127.0.0.1:9")
    path = write_config(tmp_path, cfg)
    proc = subprocess.run(
        [str(VENV_BIN / "variant-proxy"), "serve", "--config", str(path), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "refusing to listen on 0.0.0.0 without API keys" in proc.stderr


@pytest.fixture
def no_listen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `serve` in-process up to the point of binding; record the host it would bind."""
    hosts: list[str] = []

    async def serve(self: uvicorn.Server, sockets: Any = None) -> None:
        hosts.append(self.config.host)

    monkeypatch.setattr(uvicorn.Server, "serve", serve)
    return hosts


def test_serve_accepts_a_remote_host_with_allow_remote(
    tmp_path: Path, no_listen: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, make_config("http://127.0.0.1:9", health_interval=3600))
    argv = ["serve", "--config", str(path), "--host", "0.0.0.0", "--port", "1"]
    assert cli.main(argv) == 1
    assert no_listen == []
    assert cli.main([*argv, "--allow-remote"]) == 0
    assert no_listen == ["0.0.0.0"]


def test_serve_accepts_a_remote_host_with_keys(
    tmp_path: Path, no_listen: list[str], monkeypatch: pytest.MonkeyPatch, keys: None
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, secured(health_interval=3600))
    assert cli.main(["serve", "--config", str(path), "--host", "0.0.0.0", "--port", "1"]) == 0
    assert no_listen == ["0.0.0.0"]
