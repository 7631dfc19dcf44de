"""`order: benchmark` routes rank their candidates by the daemon's latest benchmark."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from proxy.app import create_app
from proxy.config import parse_config
from tests.helpers.config import make_config


def latest(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    bench = tmp_path / "state" / "bench"
    bench.mkdir(parents=True)
    doc = {"schema": 1, "finished_at": "2026-11-25T20:00:00+00:00", "results": rows}
    (bench / "latest.json").write_text(json.dumps(doc))
    return bench


def row(variant: str, cls: str, passed: int, tps: float) -> dict[str, object]:
    return {
        "variant": variant,
        "class": cls,
        "suite": cls,
        "passed": passed,
        "scored": 10,
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
