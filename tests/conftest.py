from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakeupstream import FakeUpstream, run_server

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VARIANT_PROXY_* or proxy settings leak in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("VARIANT_PROXY_") and key not in (
            "VARIANT_PROXY_LLAMA_SERVER",
            "VARIANT_PROXY_MODEL",
            "VARIANT_PROXY_CACHE",
            "VARIANT_PROXY_REQUIRE_REAL",
        ):
            monkeypatch.delenv(key)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(key, raising=False)


def require_real_server() -> tuple[str, str]:
    """The provisioned llama-server and model; a skip locally, a failure under `make test`."""
    binary = os.environ.get("VARIANT_PROXY_LLAMA_SERVER")
    model = os.environ.get("VARIANT_PROXY_MODEL")
    if not binary or not model:
        why = "set VARIANT_PROXY_LLAMA_SERVER and VARIANT_PROXY_MODEL (make test does)"
        if os.environ.get("VARIANT_PROXY_REQUIRE_REAL"):
            pytest.fail(why)
        pytest.skip(why)
    return binary, model


@pytest.fixture(scope="session")
def fake_server() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with run_server(fake) as url:
        yield fake, url


@pytest.fixture
def fake(fake_server: tuple[FakeUpstream, str]) -> FakeUpstream:
    upstream, _ = fake_server
    with upstream.lock:
        upstream.seen.clear()
    return upstream


def make_config(url: str, **server: Any) -> dict[str, Any]:
    """Two backends on one upstream so fallbacks can be exercised."""
    return {
        "server": {"keepalive_after": 0.3, "keepalive_interval": 0.2, **server},
        "backends": {
            "main": {"kind": "openai", "url": url, "timeouts": {"first_byte": 5, "idle": 2}},
            "spare": {"kind": "openai", "url": url},
            "dead": {"kind": "openai", "url": "http://127.0.0.1:9", "timeouts": {"connect": 1}},
        },
        "variants": {
            "instruct": {"backend": "main", "model": "up-instruct", "aliases": ["ci"]},
            "code": {"backend": "main", "model": "up-code", "fim": "starcoder"},
            "big": {"backend": "spare", "model": "up-big"},
            "ghost": {"backend": "dead", "model": "up-ghost"},
        },
        "routes": {
            "completion": ["code"],
            "instruction": ["instruct"],
            "complex": ["ghost", "big"],
            "multi-language": ["big"],
            "default": "instruct",
        },
    }


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def asgi_scope(path: str = "/v1/chat/completions") -> dict[str, Any]:
    """An HTTP POST scope for driving the ASGI app by hand."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8780),
    }
