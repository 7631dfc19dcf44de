"""Pin enforcement through the proxy against a real llama-server serving a drifted GGUF:
routing falls through to the next candidate, a direct request gets 409."""

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
from tests.real.test_pinning import rename_model

pytestmark = pytest.mark.real_server


def test_drifted_variant_is_routed_around_and_refused_directly(
    tmp_path: Path, fake_server: tuple[FakeUpstream, str]
) -> None:
    binary, model = require_real_server()
    _, spare_url = fake_server
    served = tmp_path / "gemma.gguf"
    shutil.copyfile(model, served)
    pinned_sha = sha256_file(served)  # the version we pinned...
    rename_model(served)  # ...and the file the server really loads now
    cfg = {
        "server": {"state_dir": str(tmp_path / "state"), "health_interval": 60},
        "pinning": {"policy": "enforce", "lockfile": str(tmp_path / "models.lock")},
        "backends": {
            "gemma": {
                "kind": "llamacpp",
                "command": llama_argv(binary),
                "model_file": str(served),
                "start_timeout": 120,
            },
            "spare": {"kind": "openai", "url": spare_url},
        },
        "variants": {
            "gemma-pinned": {
                "backend": "gemma",
                "model": "gemma3-270m",
                "pin": {"sha256": pinned_sha, "quantization": "Q4_K_M"},
            },
            "spare": {"backend": "spare", "model": "up-spare"},
        },
        "routes": {"instruction": ["gemma-pinned", "spare"], "default": "gemma-pinned"},
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(cfg))
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with run_server(create_app(path)) as url, httpx.Client(base_url=url, timeout=60) as client:
        pins = client.get("/pins").json()["variants"]["gemma-pinned"]
        routed = client.post("/v1/chat/completions", json={**body, "model": "instruction"})
        direct = client.post("/v1/chat/completions", json={**body, "model": "gemma-pinned"})
        explained = client.post("/route/explain", json={**body, "model": "instruction"}).json()
        metrics = client.get("/metrics").text
    assert pins["status"] == "drifted"
    assert [d["field"] for d in pins["drift"]] == ["sha256"]  # quantization still matches
    assert routed.status_code == 200, routed.text
    assert routed.headers["x-route-variant"] == "spare"
    assert "pin drifted: sha256" in explained["skipped"]["gemma-pinned"]
    assert direct.status_code == 409
    error = direct.json()["error"]
    assert error["code"] == "model_version_mismatch"
    assert error["expected"]["sha256"] == pinned_sha
    assert error["observed"]["sha256"] == sha256_file(served)
    assert 'variant_proxy_pin_ok{variant="gemma-pinned"} 0.0' in metrics
