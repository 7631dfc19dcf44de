"""Warm-aware routing and the admin load/unload endpoints, against real managed processes
(`tests/helpers/fake_llama.py`, which takes `--load-seconds` to become healthy, like a
llama-server loading its model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.app import ProxyApp, create_app
from proxy.service import Proxy
from tests.helpers.config import write_config
from tests.helpers.fakeupstream import run_server
from tests.socket.test_swapping import alive, fake_backend

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Proxy]]:
    monkeypatch.setenv("SWAP_TEST_KEYS", "sekrit")
    data: dict[str, Any] = {
        "server": {
            "state_dir": str(tmp_path / "state"),
            "health_interval": 30,
            "watch_config": False,
            "auth": {"api_keys_env": "SWAP_TEST_KEYS"},
        },
        "backends": {
            "slow": fake_backend("slow", "--load-seconds", "2"),
            "quick": fake_backend("quick", start="eager"),
            "remote": {"kind": "openai", "url": "http://127.0.0.1:9"},
        },
        "variants": {
            "vslow": {"backend": "slow", "model": "slow"},
            "vquick": {"backend": "quick", "model": "quick"},
            "vremote": {"backend": "remote", "model": "r"},
        },
        "routes": {
            "completion": {"candidates": ["vslow", "vquick"], "max_cold_start": 0.5},
            "instruction": ["vslow", "vquick"],
            "default": "vquick",
        },
    }
    app: ProxyApp = create_app(write_config(tmp_path, data))
    with run_server(app) as url:
        yield url, app.state.proxy


def post(url: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    headers = {"authorization": "Bearer sekrit", **kw.pop("headers", {})}
    return httpx.post(url + path, json=body, headers=headers, timeout=60, **kw)


def ask(url: str, model: str) -> httpx.Response:
    answer = post(url, "/v1/chat/completions", {"model": model, **CHAT})
    assert answer.status_code == 200, answer.text
    return answer


def test_cold_slow_best_candidate_is_skipped_within_the_budget(stack: tuple[str, Proxy]) -> None:
    url, proxy = stack
    slow = proxy.managed["slow"]
    # never loaded: its load time is unknown, so over any budget; the warm one serves
    answer = ask(url, "completion")
    assert answer.headers["x-route-variant"] == "vquick"
    assert "skipped vslow: cold, load time unknown" in answer.headers["x-route-reason"]
    assert slow.state == "stopped"

    # without a budget (instruction) the request waits for the best candidate to load
    answer = ask(url, "instruction")
    assert answer.headers["x-route-variant"] == "vslow"
    assert answer.json()["choices"][0]["message"]["content"] == f"slow pid {slow.pid}"
    learned = slow.expected_load_seconds
    assert learned is not None and learned >= 2

    unloaded = post(url, "/admin/unload/slow")
    assert unloaded.status_code == 200, unloaded.text
    assert unloaded.json() == {
        "backend": "slow",
        "state": "stopped",
        "was": "ready",
        "unloaded": True,
    }

    # now it is cold with a learned load time over the 0.5 s budget
    answer = ask(url, "completion")
    assert answer.headers["x-route-variant"] == "vquick"
    reason = answer.headers["x-route-reason"]
    assert f"skipped vslow: cold, ~{learned:.1f} s to load > 0.5 s budget" in reason
    explained = post(url, "/route/explain", {"model": "completion", **CHAT}).json()
    assert explained["candidates"] == ["vquick"]
    assert explained["skipped"]["vslow"].startswith("cold, ~")

    # warmed up by a script: the best candidate serves again
    loaded = post(url, "/admin/load/slow")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["state"] == "ready" and loaded.json()["was"] == "stopped"
    answer = ask(url, "completion")
    assert answer.headers["x-route-variant"] == "vslow"
    assert "skipped" not in answer.headers["x-route-reason"]
    backends = post(url, "/backends", headers={}).status_code  # GET only
    assert backends == 405
    listing = httpx.get(url + "/backends", headers={"authorization": "Bearer sekrit"}).json()
    assert listing["backends"]["slow"]["managed"]["warmth"] == "warm"
    assert listing["backends"]["slow"]["managed"]["loads"] == 2


def test_admin_load_and_unload_are_guarded(stack: tuple[str, Proxy]) -> None:
    url, proxy = stack
    # admin auth
    refused = httpx.post(url + "/admin/load/slow", timeout=10)
    assert refused.status_code == 401
    assert proxy.managed["slow"].state == "stopped"
    # a web page can't drive them (cross-origin), nor post a form body to them
    page = post(url, "/admin/unload/quick", headers={"origin": "http://evil.example"})
    assert page.status_code == 403
    form = httpx.post(
        url + "/admin/unload/quick",
        content=b"x=1",
        headers={"authorization": "Bearer sekrit", "content-type": "text/plain"},
        timeout=10,
    )
    assert form.status_code == 415
    assert alive(proxy.managed["quick"].pid)
    # unknown and unmanaged backends: OpenAI-shaped errors with the right status
    unknown = post(url, "/admin/load/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "backend_not_found"
    assert "quick, slow" in unknown.json()["error"]["message"]
    remote = post(url, "/admin/unload/remote")
    assert remote.status_code == 400
    assert "not managed" in remote.json()["error"]["message"]
    # unloading what isn't running says so
    idle = post(url, "/admin/unload/slow")
    assert idle.status_code == 200 and idle.json()["unloaded"] is False
