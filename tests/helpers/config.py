"""Config builders, paths and the real-server gate shared by the test layers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parent.parent / "data"
ROOT = Path(__file__).resolve().parents[2]


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


def llama_argv(
    binary: str, *, alias: str = "gemma3-270m", ctx: int = 1024, extra: tuple[str, ...] = ()
) -> list[str]:
    """A managed `llama-server` command for the real tests: one slot of `ctx` tokens,
    `{model}` and `{port}` left for the supervisor to fill in."""
    return [
        binary, "-m", "{model}", "--host", "127.0.0.1", "--port", "{port}",
        "--alias", alias, "-c", str(ctx), "-np", "1", *extra,
    ]  # fmt: skip


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
