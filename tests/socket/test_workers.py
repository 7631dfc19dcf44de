"""`serve --workers N`: several processes on one port, metrics summed over all of them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers.config import make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream, free_port


def test_two_workers_share_the_port_and_aggregate_metrics(
    fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    _, upstream = fake_server
    cfg = make_config(upstream)
    cfg["server"]["state_dir"] = str(tmp_path / "state")
    path = write_config(tmp_path, cfg)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(path),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        body = {"model": "instruct", "messages": [{"role": "user", "content": "hi"}]}
        pids = set()
        for _ in range(20):
            # new connection each time so the kernel spreads them over the workers
            with httpx.Client() as client:
                r = client.post(base + "/v1/chat/completions", json=body, timeout=10)
            assert r.status_code == 200
        text = httpx.get(base + "/metrics", timeout=5).text
        found = re.findall(
            r'variant_proxy_requests_total\{[^}]*status="200"[^}]*variant="instruct"[^}]*\} (\S+)',
            text,
        ) or re.findall(
            r'variant_proxy_requests_total\{[^}]*variant="instruct"[^}]*status="200"[^}]*\} (\S+)',
            text,
        )
        assert found, text[:2000]
        assert sum(float(v) for v in found) == 20.0
        pids.update(re.findall(r'pid="(\d+)"', text))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"workers: 2" in out
