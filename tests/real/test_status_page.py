"""The status page in headless Chromium while requests flow to a real llama-server.

One proxy, two backends: a managed llama-server serving a copy of the gemma GGUF whose
file was changed after it was pinned (so one variant's pin has really drifted), and the
fake upstream. Real requests go through first (streamed answers from gemma, requests to
the fake, one refused with 409 because its pin drifted); then Chromium opens the page and
`--dump-dom` shows what it drew: the decisions table lists those requests with their
variants, the per-variant and the backend CPU/RSS charts have points, and the drifted
variant's pin reads `drifted` with the pinned and served sha256 side by side.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from proxy.app import create_app
from proxy.backends.identity import sha256_file
from tests.helpers.config import llama_argv, require_real_server
from tests.helpers.fakeupstream import FakeUpstream, run_server
from tests.helpers.statusdom import StatusDom
from tests.real.test_pinning import rename_model
from tests.socket.test_origin_browser import _chromium, browse

pytestmark = [pytest.mark.real_server, pytest.mark.slow]


def _config(tmp_path: Path, binary: str, served: Path, pinned_sha: str, fake: str) -> Path:
    argv = llama_argv(binary)
    cfg = {
        "server": {
            "state_dir": str(tmp_path / "state"),
            "health_interval": 60,
            "resource_interval": 0.5,
            "watch_config": False,
        },
        "pinning": {"policy": "enforce", "lockfile": str(tmp_path / "models.lock")},
        "backends": {
            "gemma": {
                "kind": "llamacpp",
                "command": argv,
                "model_file": str(served),
                "start_timeout": 120,
            },
            "fake": {"kind": "openai", "url": fake},
        },
        "variants": {
            # what the server loads is still a Q4_K_M gemma: this pin holds
            "gemma": {
                "backend": "gemma",
                "model": "gemma3-270m",
                "pin": {"quantization": "Q4_K_M"},
            },
            # pinned to the file before it changed: drifted
            "gemma-v1": {"backend": "gemma", "model": "gemma3-270m", "pin": {"sha256": pinned_sha}},
            "fake": {"backend": "fake", "model": "up-fake"},
        },
        "routes": {"instruction": ["gemma-v1", "gemma"], "default": "fake"},
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_page_shows_real_traffic_charts_and_a_drifted_pin(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str]
) -> None:
    binary, model = require_real_server()
    _chromium()
    served = tmp_path / "gemma.gguf"
    shutil.copyfile(model, served)
    pinned_sha = sha256_file(served)
    rename_model(served)  # the file the server loads now is not the pinned one
    path = _config(tmp_path, binary, served, pinned_sha, fake_server[1])
    ask = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
    sent: dict[str, tuple[str, int]] = {}
    with run_server(create_app(path)) as url, httpx.Client(base_url=url, timeout=120) as client:
        for rid, model_name, extra, status in [
            ("real-1", "gemma", {"stream": True}, 200),
            ("real-2", "gemma", {"stream": True}, 200),
            ("real-3", "instruction", {"stream": True}, 200),  # gemma-v1 skipped: drifted
            ("real-4", "gemma-v1", {}, 409),  # named directly: refused
            ("real-5", "fake", {"stream": True, "fake": {"chunks": 8}}, 200),
            ("real-6", "fake", {}, 200),
        ]:
            r = client.post(
                "/v1/chat/completions",
                json={**ask, "model": model_name, **extra},
                headers={"x-request-id": rid},
            )
            assert r.status_code == status, r.text
            sent[rid] = (r.headers.get("x-route-variant", model_name), status)
        html = browse(url + "/", tmp_path / "profile")
    dom = StatusDom(html)
    assert dom.body.get("data-loaded") and "main" not in dom.hidden
    header = [c for r in dom.tables["decisions"] if r.head for c in r.cells]
    col = {name: i for i, name in enumerate(header)}
    rows = {r.attrs["data-request-id"]: r for r in dom.rows("decisions")}
    for rid, (variant, status) in sent.items():
        assert rows[rid].attrs["data-variant"] == variant, rid
        assert rows[rid].cells[col["status"]] == str(status), rid
    assert sent["real-3"][0] == "gemma"
    assert rows["real-3"].cells[col["class"]] == "instruction"
    real = rows["real-1"]
    assert float(real.cells[col["TTFT ms"]]) > 0 and float(real.cells[col["tok/s"]]) > 0
    # charts: the real variant's speed, and the real server's CPU and memory
    for chart in ("gemma:requests", "gemma:ttft", "gemma:tokens", "fake:requests"):
        assert dom.charts[chart].points > 0 and dom.charts[chart].polylines, chart
    for chart in ("gemma:cpu", "gemma:rss"):
        assert dom.charts[chart].points > 0 and dom.charts[chart].polylines, chart
    # pins: ok, and drifted with the pinned and the served sha256 side by side
    variants = {r.attrs["data-variant"]: r for r in dom.rows("variants")}
    head = [c for r in dom.tables["variants"] if r.head for c in r.cells]
    vcol = {name: i for i, name in enumerate(head)}
    assert variants["gemma"].cells[vcol["pin"]] == "ok"
    drifted = variants["gemma-v1"]
    assert drifted.cells[vcol["pin"]] == "drifted"
    assert "pin-drifted" in drifted.classes[vcol["pin"]]
    assert f"sha256={pinned_sha[:12]}" in drifted.cells[vcol["pinned"]]
    assert f"sha256={sha256_file(served)[:12]}" in drifted.cells[vcol["served"]]
    backends = {r.attrs["data-backend"]: r.cells for r in dom.rows("backends")}
    assert backends["gemma"][2] == "up" and "pid" in backends["gemma"][7]
