from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from tests.helpers.config import DATA, ROOT


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(DATA / "minimal.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "instruct" in out and "completion" in out


def test_check_reports_every_issue_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load((DATA / "minimal.yaml").read_text())
    data["variants"]["code"]["backend"] = "nope"
    data["backends"]["local"]["timeouts"] = {"connect": -1}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("backends.local.timeouts.connect: ") for line in err)
    assert "variants.code.backend: unknown backend 'nope' (known: local)" in err or any(
        "backends.local.timeouts.connect" in line for line in err
    )


def test_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--config", str(DATA / "minimal.yaml")]) == 0
    out = capsys.readouterr().out
    for name in ("auto", "completion", "instruct", "codellama-instruct", "code"):
        assert name in out
    assert main(["models", "--config", str(DATA / "minimal.yaml"), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["object"] == "list"


def run(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_explain_single_and_jsonl() -> None:
    body = {"model": "auto", "prompt": "<fim_prefix>def f(<fim_suffix>)\n<fim_middle>"}
    done = run(
        ["explain", "--config", "config/router.yaml", "--endpoint", "/v1/completions"],
        json.dumps(body),
    )
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["class"] == "completion"
    assert decision["variant"] == "codellama-code"
    lines = [
        {"endpoint": "/v1/completions", "body": body},
        {
            "endpoint": "/v1/chat/completions",
            "body": {"model": "auto", "messages": [{"role": "user", "content": "Hi"}]},
        },
    ]
    done = run(
        ["explain", "--config", "config/router.yaml", "--jsonl"],
        "\n".join(json.dumps(x) for x in lines) + "\n",
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 2
    for decision in out:
        assert {"class", "variant", "rule", "candidates"} <= set(decision)


def test_serve_refuses_remote_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--config", str(DATA / "minimal.yaml"), "--host", "0.0.0.0"])
    assert code == 1
    assert "refusing to listen on 0.0.0.0 without API keys" in capsys.readouterr().err


def test_serve_rejects_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("backends: {}\nvariants: {}\nroutes: {default: x}\n")
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "backends: at least one backend is required" in err


def test_explain_jsonl_tolerates_missing_or_unknown_models_and_short_endpoints() -> None:
    lines = [
        {
            "endpoint": "chat",
            "body": {
                "messages": [{"role": "user", "content": "Hola, ¿cómo escribo un bucle en Python?"}]
            },
        },
        {"endpoint": "/completions", "body": {"model": "gpt-4", "prompt": "x", "suffix": "y"}},
    ]
    done = run(
        ["explain", "--config", "config/router.yaml", "--jsonl"],
        "\n".join(json.dumps(x) for x in lines) + "\n",
    )
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["class"] == "multi-language"
    assert second["class"] == "completion" and "404" in second["warning"]
