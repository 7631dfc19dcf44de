"""A real llama-server (from scripts/provision.py) under ManagedProcess, probed by the adapter.

Run via `make test`, or by hand:

    export VARIANT_PROXY_LLAMA_SERVER=$(.venv/bin/python scripts/provision.py llama-server)
    export VARIANT_PROXY_MODEL=$(.venv/bin/python scripts/provision.py model)
    .venv/bin/pytest -m real_server
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from proxy.backends import LlamaCppAdapter
from proxy.supervisor import ManagedProcess, find_free_port, render_command
from tests.helpers.config import require_real_server

pytestmark = pytest.mark.real_server


# The command line a config would give, with {model} and {port} placeholders.
LLAMA_ARGV = [
    "{binary}",
    "-m", "{model}",
    "--host", "127.0.0.1",
    "--port", "{port}",
    "-c", "2048",
    "-np", "2",
    "-t", "2",
    "--metrics",
    "--slots",
]  # fmt: skip


@pytest.fixture
def llama(tmp_path: Path) -> tuple[str, str]:
    return require_real_server()


def test_llama_server_under_supervision(llama: tuple[str, str], tmp_path: Path) -> None:
    binary, model = llama
    port = find_free_port()
    argv = render_command(
        [a.replace("{binary}", binary) for a in LLAMA_ARGV], port=port, model=model
    )
    base = f"http://127.0.0.1:{port}"
    ready_calls = 0

    async def on_ready(_: ManagedProcess) -> None:
        nonlocal ready_calls
        ready_calls += 1

    proc = ManagedProcess(
        argv,
        name="llama-smoke",
        health_url=f"{base}/health",
        log_path=tmp_path / "llama-server.log",
        start_timeout=120,
        stop_grace=10,
        on_ready=on_ready,
    )
    adapter = LlamaCppAdapter()

    async def main() -> None:
        try:
            await proc.start()
            assert proc.state == "ready" and ready_calls == 1
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                result = await adapter.health(client, base, {})
                assert result.ok, result.detail
                assert result.detail == "ok"

                listed = await adapter.list_models(client, base, {})
                # This build names the model by the -m path as given (no --alias).
                assert [m.id for m in listed] == [model]
                meta = listed[0].raw["meta"]
                assert meta["n_params"] > 0 and meta["n_ctx_train"] > 0

                for path in ("/props", "/slots", "/metrics"):
                    response = await client.get(base + path)
                    assert response.status_code == 200, (path, response.text[:200])
                slots = (await client.get(base + "/slots")).json()
                assert len(slots) == 2  # -np 2

                # The proxy forwards OpenAI routes under base_url + /v1 for every kind.
                chat = await client.post(
                    base + "/v1/chat/completions",
                    json={
                        "messages": [{"role": "user", "content": "Say hi."}],
                        "max_tokens": 8,
                        "temperature": 0,
                    },
                )
                assert chat.status_code == 200, chat.text[:300]
                assert chat.json()["choices"][0]["message"]["role"] == "assistant"
        finally:
            await proc.stop()
        assert proc.pid is None and proc.state == "stopped"

    asyncio.run(asyncio.wait_for(main(), 240))
