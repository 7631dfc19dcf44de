"""`order: benchmark` routes rank their candidates by the evidence of every kept run."""

from __future__ import annotations

import json
import time
from pathlib import Path

from starlette.testclient import TestClient

from proxy.app import create_app
from proxy.config import parse_config
from tests.helpers.config import make_config


def latest(tmp_path: Path, rows: list[dict[str, object]], run: str = "a") -> Path:
    """A result file as `variant-proxy bench` writes it into the state dir."""
    bench = tmp_path / "state" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    doc = {
        "schema": 1,
        "run_id": run,
        "finished_at": f"2026-11-25T20:00:0{len(list(bench.glob('*.json')))}+00:00",
        "settings": {"temperature": 0.0, "max_tokens": None},
        "sandbox": {"sandbox": "bubblewrap"},
        "suites": {"instruction": {"version": 1}},
        "results": rows,
    }
    (bench / f"bench-{run}.json").write_text(json.dumps(doc))
    return bench


def row(variant: str, cls: str, passed: int, tps: float, scored: int = 10) -> dict[str, object]:
    return {
        "variant": variant,
        "class": cls,
        "suite": cls,
        "suite_version": 1,
        "passed": passed,
        "scored": scored,
        "output_tokens_per_second": {"p50": tps},
        "ttft_seconds": {"p50": 0.1},
    }


def test_benchmark_order_ranks_by_pass_ratio_then_speed(tmp_path: Path) -> None:
    latest(tmp_path, [row("instruct", "instruction", 4, 90.0), row("big", "instruction", 9, 20.0)])
    cfg = make_config("http://127.0.0.1:9")
    cfg["server"]["state_dir"] = str(tmp_path / "state")
    cfg["routes"]["instruction"] = {"order": "benchmark", "candidates": ["instruct", "big"]}
    cfg["routes"]["multi-language"] = ["instruct", "big"]  # plain list: config order
    body = {"model": "instruction", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app(parse_config(cfg))) as client:
        ranked = client.post("/route/explain", json=body).json()
        plain = client.post("/route/explain", json={**body, "model": "multi-language"}).json()
    assert ranked["candidates"] == ["big", "instruct"]
    assert plain["candidates"] == ["instruct", "big"]


def test_route_object_rejects_unknown_keys() -> None:
    cfg = make_config("http://127.0.0.1:9")
    cfg["routes"]["instruction"] = {"order": "benchmark", "candidats": ["instruct"]}
    import pytest

    from proxy.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key 'candidats'"):
        parse_config(cfg)


def test_evidence_accumulates_across_runs_and_a_measured_zero_is_never_preferred(
    tmp_path: Path,
) -> None:
    """1/1 does not beat 19/20 (pooled over two runs); 0/2 goes behind an unmeasured
    variant; a result file written while the daemon runs changes its routing."""
    latest(
        tmp_path,
        [row("steady", "instruction", 10, 20.0), row("lucky", "instruction", 1, 90.0, 1)],
        "r1",
    )
    latest(
        tmp_path,
        [row("steady", "instruction", 9, 20.0), row("zero", "instruction", 0, 99.0, 2)],
        "r2",
    )
    cfg = make_config("http://127.0.0.1:9")
    for name in ("steady", "lucky", "zero", "fresh"):
        cfg["variants"][name] = {**cfg["variants"]["instruct"], "aliases": []}
    cfg["server"]["state_dir"] = str(tmp_path / "state")
    cfg["routes"]["instruction"] = {
        "order": "benchmark",
        "candidates": ["zero", "lucky", "fresh", "steady"],
    }
    body = {"model": "instruction", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app(parse_config(cfg))) as client:
        first = client.post("/route/explain", json=body).json()["candidates"]
        # the CLI writes a new run while the daemon is up: 30 more passes for "fresh"
        latest(tmp_path, [row("fresh", "instruction", 30, 50.0, 30)], "r3")
        time.sleep(1.2)  # the state dir is re-read at most once a second
        second = client.post("/route/explain", json=body).json()["candidates"]
    assert first == ["steady", "lucky", "fresh", "zero"]
    assert second == ["fresh", "steady", "lucky", "zero"]
