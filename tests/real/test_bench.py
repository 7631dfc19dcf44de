"""End to end on the real stack: `bench` starts the proxy in-process from single-gemma.yaml, which
starts a managed llama-server with gemma-3-270m; one task of every shipped suite runs through
it and is scored in the sandbox. A 270M model solves little; this checks the plumbing and the
files, not the accuracy."""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import pytest
import yaml

from proxy.classify import CLASSES
from proxy.cli.bench import register_cli, run_cli
from tests.helpers.config import ROOT, require_real_server

pytestmark = pytest.mark.real_server


def demo_config(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "tests" / "real" / "single-gemma.yaml").read_text())
    data["server"]["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bench_every_suite_on_gemma(tmp_path: Path) -> None:
    require_real_server()
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    out_dir = tmp_path / "results"
    args = parser.parse_args(
        ["bench", "--config", str(demo_config(tmp_path)), "--max-tokens", "32",
         "--out", str(out_dir), "--timeout", "60"]
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = run_cli(args, out, err)
    elapsed = time.monotonic() - started
    assert code == 0, out.getvalue() + err.getvalue()
    # liveness only: every task of every suite takes about 90 s on 2 idle cores, but a
    # llama-server starved by other jobs on a shared machine has run at 3 tokens/s
    assert elapsed < 1800

    doc = json.loads((out_dir / "latest.json").read_text())
    assert doc["schema"] == 1 and doc["proxy"]["mode"] == "in-process"
    assert set(doc["suites"]) == set(CLASSES)
    # the whole of every shipped suite ran
    assert all(info["version"] >= 1 and info["tasks"] >= 8 for info in doc["suites"].values())
    assert doc["sandbox"]["network"] is True
    assert doc["sandbox"]["sandbox"] == "bubblewrap"  # never silently unsandboxed
    assert doc["machine"]["cpu_count"] >= 1 and doc["machine"]["memory_bytes"] > 0
    assert set(doc["variants"]) == {"gemma-instruct", "gemma-complete"}
    identity = doc["variants"]["gemma-instruct"]["identity"]
    assert identity is None or isinstance(identity, dict)

    rows = {(r["variant"], r["suite"]): r for r in doc["results"]}
    expected = {("gemma-complete", s) for s in CLASSES} | {
        ("gemma-instruct", s) for s in CLASSES if s != "completion"
    }
    assert set(rows) == expected
    assert doc["skipped"][0]["variant"] == "gemma-instruct"  # no fim format
    answered = 0
    for row in rows.values():
        assert row["samples"] == doc["suites"][row["suite"]]["tasks"]  # one per task
        assert row["pass_ratio"] is None or 0.0 <= row["pass_ratio"] <= 1.0
        if row["errors"] == 0:
            answered += 1
            assert row["ttft_seconds"]["p50"] > 0
            assert row["output_tokens_per_second"]["p50"] > 0
            usage = row["usage"]
            assert usage is not None and usage["rss_bytes_max"] > 10 << 20
    assert answered >= len(rows) // 2
    for task in doc["tasks"]:
        assert task["status"] in {"passed", "failed", "timeout", "crashed", "error"}
        # a real model's answer passes only with the harness's token, and says why not
        assert task["status"] == "passed" or task["failure"] or task["status"] == "error"
        if task["error"] is None:
            assert task["answer"] and task["served_by"] == task["variant"]

    md = next(out_dir.glob("bench-*.md")).read_text()
    assert "## Ranking by class" in md and "gemma-complete" in md
    assert "<svg" in next(out_dir.glob("bench-*.html")).read_text()
    assert "pass@1" in out.getvalue()
    for row in doc["results"]:
        if row["scored"]:
            low, high = row["pass_ci95"]
            assert low <= row["pass_ratio"] <= high
