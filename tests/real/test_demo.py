"""The newcomer's first run (issue 17): `config/demo.yaml` started exactly as `make run` starts
it, the README quickstart's requests sent as they are written, and the demo benchmark.

`make run` is `variant-proxy serve --config config/demo.yaml` from the repository root with
three environment variables from scripts/provision.py; the test does the same in a
subprocess on a free port (the F16 build is provisioned here when the environment doesn't
name it: ~10 s once, ~2 s to verify later). The curl commands are read from README.md's
Quickstart section, so the README can't drift from what is tested.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.cli.bench import register_cli, run_cli
from tests.helpers.config import ROOT, require_real_server
from tests.helpers.fakeupstream import free_port

pytestmark = pytest.mark.real_server

#: chat-template and foreign FIM markers: none may reach a newcomer's answer
FOREIGN_TOKENS = ("<|im_", "<start_of_turn>", "<MID>", "<SUF>")


def demo_env() -> dict[str, str]:
    """The environment `make run` gives `variant-proxy serve`."""
    binary, model = require_real_server()
    f16 = os.environ.get("VARIANT_PROXY_MODEL_F16")
    if not f16:
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "provision.py"), "model-f16"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        f16 = done.stdout.strip().splitlines()[-1]
    return {
        **os.environ,
        "VARIANT_PROXY_LLAMA_SERVER": binary,
        "VARIANT_PROXY_MODEL": model,
        "VARIANT_PROXY_MODEL_F16": f16,
    }


def quickstart_commands() -> list[str]:
    """The `curl …` commands of README.md's Quickstart section (continuations joined)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        commands += [ln.strip() for ln in joined.splitlines() if ln.strip().startswith("curl")]
    return commands


class Demo:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], started_in: float) -> None:
        self.url = url
        self.proc = proc
        self.started_in = started_in


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    env = demo_env()
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "serve.log"
    exe = Path(sys.executable).with_name("variant-proxy")
    argv = [str(exe), "serve", "--config", "config/demo.yaml", "--port", str(port)]
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = started + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield Demo(url, proc, time.monotonic() - started)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_curl(command: str, url: str) -> tuple[int, dict[str, str], str, float]:
    """Run one README command against the test's port: status, headers (with -i), body."""
    command = command.replace("http://127.0.0.1:8780", url) + " -w '\n%{http_code}'"
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, (command, done.stderr)
    # text mode has turned the header lines' CRLF into LF
    output, _, status = done.stdout.rpartition("\n")
    headers: dict[str, str] = {}
    if output.startswith("HTTP/"):
        head, _, output = output.partition("\n\n")
        for line in head.splitlines()[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(status), headers, output, elapsed


def test_quickstart_requests_answer_in_seconds(demo: Demo) -> None:
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert demo.started_in < 120
    answers = {}
    for command in commands:
        status, headers, body, elapsed = run_curl(command, demo.url)
        assert status == 200, (command, body)
        assert elapsed < 20, (command, elapsed)
        for token in FOREIGN_TOKENS:
            assert token not in body, (command, body)
        answers["/v1/completions" if "/v1/completions" in command else "chat"] = (headers, body)

    completion = json.loads(answers["/v1/completions"][1])["choices"][0]["text"]
    assert any(line.strip().startswith("return") for line in completion.splitlines()), completion
    headers, body = answers["chat"]
    assert headers["x-route-variant"] == "gemma-f16" and headers["x-route-class"]
    assert headers["x-route-pin"] == "ok"
    assert json.loads(body)["choices"][0]["message"]["content"].strip()


def test_two_processes_and_verified_pins(demo: Demo) -> None:
    backends = httpx.get(demo.url + "/backends", timeout=10).json()["backends"]
    pids = {name: b["managed"]["pid"] for name, b in backends.items()}
    assert set(pids) == {"gemma-q4", "gemma-f16"}
    assert len(set(pids.values())) == 2 and all(pids.values()), pids
    pins = httpx.get(demo.url + "/pins", timeout=10).json()
    assert pins["policy"] == "enforce"
    for name in ("gemma-q4", "gemma-f16"):
        state = pins["variants"][name]
        assert state["status"] == "ok", state
        assert len(state["expected"]["sha256"]) == 64  # pinned by the lockfile
    quantizations = {pins["variants"][n]["expected"]["quantization"] for n in pids}
    assert quantizations == {"Q4_K - Medium", "F16"}


def test_demo_bench_reports_both_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make bench`, shortened to the first 10 HumanEval problems: both variants, their
    protocol, a pass@1 above zero, tokens/s and RSS per variant."""
    for key, value in demo_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT)  # the lockfile path in the demo config is relative to the cwd
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    out_dir = tmp_path / "results"
    args = parser.parse_args(
        ["bench", "--config", "config/demo.yaml", "--suite", "instruction", "--limit", "10",
         "--max-tokens", "128", "--out", str(out_dir), "--timeout", "120", "--no-progress"]
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    assert run_cli(args, out, err) == 0, out.getvalue() + err.getvalue()

    doc = json.loads((out_dir / "latest.json").read_text())
    rows = {r["variant"]: r for r in doc["results"]}
    assert set(rows) == {"gemma-q4", "gemma-f16"}
    for name, row in rows.items():
        assert row["protocol"] == "completion", row  # base models: HumanEval's own protocol
        assert doc["variants"][name]["api"] == "completion"
        # at most a stray 502: the proxy sometimes reuses a keep-alive connection that
        # llama-server has just closed ("closed the connection before responding")
        assert row["errors"] <= 1, row
        assert row["pass_ratio"] is not None and row["pass_ratio"] > 0, row
        assert row["output_tokens_per_second"]["p50"] > 0
        assert row["usage"]["rss_bytes_max"] > 100 << 20
    # the F16 file holds ~276 MiB more weights than the Q4_K_M one
    rss = {n: r["usage"]["rss_bytes_max"] for n, r in rows.items()}
    assert rss["gemma-f16"] - rss["gemma-q4"] > 150 << 20, rss
    md = next(out_dir.glob("bench-*.md")).read_text()
    assert "**gemma-q4** (api: completion): completion" in md
