"""End to end: a running daemon routes on the evidence that `variant-proxy bench` runs
leave in its state dir — pooled over every run, ranked by a confidence bound, and
never preferring a variant measured at 0%.

Real sockets throughout: the fake upstream (it knows each task's reference answer),
the daemon (uvicorn), and the CLI benching that daemon over HTTP (`--url`), its
answers scored in the real sandbox.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.app import create_app
from proxy.config import load_config
from tests.helpers.fakeupstream import run_server
from tests.socket.test_bench import AnsweringUpstream, bench


class WithAZero(AnsweringUpstream):
    """`up-zero` never answers right; `up-good` always; `up-bad` every other task."""

    def answer(self, model: str, body: dict[str, Any]) -> str:
        if model == "up-zero":
            return self.WRONG
        return super().answer(model, body)


@pytest.fixture
def upstream() -> Iterator[str]:
    with run_server(WithAZero()) as url:
        yield url


def daemon_config(tmp_path: Path, url: str) -> Path:
    data = {
        "server": {"state_dir": str(tmp_path / "state")},
        "backends": {"fake": {"kind": "openai", "url": url}},
        "variants": {
            "zero": {"backend": "fake", "model": "up-zero"},
            "bad": {"backend": "fake", "model": "up-bad"},
            "good": {"backend": "fake", "model": "up-good"},
        },
        # configured order puts the variant that will measure 0% first
        "routes": {
            "default": "good",
            "complex": {"order": "benchmark", "candidates": ["zero", "bad", "good"]},
        },
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def order(proxy_url: str) -> list[str]:
    body = {"model": "complex", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(proxy_url + "/route/explain", json=body, timeout=10)
    reply.raise_for_status()
    candidates: list[str] = reply.json()["candidates"]
    return candidates


def run_bench(proxy_url: str, out: Path, variants: str, limit: int) -> None:
    code, stdout, stderr = bench(
        "--url", proxy_url, "--suite", "complex", "--variants", variants,
        "--limit", str(limit), "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert code == 0, stdout + stderr


def test_routing_picks_the_better_variant_from_accumulated_runs(
    upstream: str, tmp_path: Path
) -> None:
    config = daemon_config(tmp_path, upstream)
    out = tmp_path / "state" / "bench"  # where the daemon looks
    with run_server(create_app(load_config(config))) as proxy_url:
        assert order(proxy_url) == ["zero", "bad", "good"]  # no evidence: as configured

        run_bench(proxy_url, out, "zero", 2)  # 0/2
        time.sleep(1.2)  # the daemon re-reads its state dir at most once a second
        # measured at 0%: behind the unmeasured ones, although configured first
        assert order(proxy_url) == ["bad", "good", "zero"]

        run_bench(proxy_url, out, "bad", 1)  # a lucky 1/1
        run_bench(proxy_url, out, "good", 4)  # 4/4
        run_bench(proxy_url, out, "good", 4)  # 8/8 pooled
        time.sleep(1.2)
        # the latest file holds only `good`: `bad` and `zero` are ranked from older runs
        assert order(proxy_url) == ["good", "bad", "zero"]
        # Prometheus gets the bounds and sample counts routing used
        metrics = httpx.get(proxy_url + "/metrics", timeout=10).text
        assert 'variant_proxy_bench_scored_samples{class="complex",variant="good"} 8.0' in metrics
        assert 'variant_proxy_bench_pass_ratio_lower_bound{class="complex",variant="zero"} 0.0' in (
            metrics
        )
        lower = next(
            line
            for line in metrics.splitlines()
            if line.startswith(
                'variant_proxy_bench_pass_ratio_lower_bound{class="complex",variant="good"}'
            )
        )
        assert float(lower.split()[-1]) == pytest.approx(0.6756, abs=1e-3)
    assert len(list(out.glob("bench-*.json"))) == 4


def test_ctrl_c_saves_partial_results(tmp_path: Path) -> None:
    """SIGINT mid-run (a real `variant-proxy bench` process): the answers so far are scored
    and written, marked interrupted, exit status 130."""
    slow = WithAZero()
    slow.first_delay = 0.4
    with run_server(slow) as url:
        config = daemon_config(tmp_path, url)
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "variant-proxy"),
                "bench",
                "--config",
                str(config),
                "--suite",
                "complex",
                "--variants",
                "good",
                "--out",
                str(out),
                "--no-warmup",
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(slow.models) < 3:
            time.sleep(0.05)
        assert len(slow.models) >= 3, "the bench never got going"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted: partial results" in stderr
    doc = json.loads((out / "latest.json").read_text())
    assert doc["interrupted"] is True
    assert 2 <= len(doc["tasks"]) < 8  # some, not all, of the 8 complex tasks
    assert all(t["status"] == "passed" for t in doc["tasks"])
    assert "INTERRUPTED" in next(out.glob("bench-*.md")).read_text()


def test_compare_refuses_a_baseline_with_other_settings_before_running(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "schema": 1,
                "settings": {"temperature": 0.0, "max_tokens": None, "limit": None, "repeat": 1},
                "suites": {"complex": {"version": 1}},
                "results": [],
            }
        )
    )
    code, out, err = bench(
        "--url", "http://127.0.0.1:9", "--suite", "complex", "--limit", "3",
        "--compare", str(baseline), "--no-progress",
    )  # fmt: skip
    assert code == 2, out + err
    assert "runs are not comparable: limit None vs 3" in err


def test_unsafe_no_sandbox_is_said_first_everywhere(upstream: str, tmp_path: Path) -> None:
    config = daemon_config(tmp_path, upstream)
    out = tmp_path / "unsafe"
    code, stdout, stderr = bench(
        "--config", str(config), "--suite", "complex", "--variants", "good", "--limit", "2",
        "--out", str(out), "--no-progress", "--unsafe-no-sandbox",
    )  # fmt: skip
    assert code == 0, stdout + stderr
    first = "UNSAFE: answers ran WITHOUT the bubblewrap sandbox"
    assert stdout.startswith(first)
    assert "warning: UNSAFE" in stderr
    doc = json.loads((out / "latest.json").read_text())
    assert doc["sandbox"]["sandbox"] == "none" and doc["settings"]["unsafe_no_sandbox"] is True
    assert next(out.glob("bench-*.md")).read_text().startswith(f"**{first}")
    page = next(out.glob("bench-*.html")).read_text()
    assert page.index(first) < page.index("<h1>")
    # still harness-decided: the reference answers pass, nothing else changed
    assert [r["passed"] for r in doc["results"]] == [2]
