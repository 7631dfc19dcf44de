"""Fixtures only: the environment is clean for every test, and one fake upstream per session.

Builders and fakes live in `tests/helpers/`; the folders name the layers:
`unit` (pure functions), `app` (the ASGI app in-process, respx upstreams),
`socket` (real sockets and processes against fakes), `real` (a real llama-server,
Prometheus, systemd).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers.fakeupstream import FakeUpstream, run_server


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
