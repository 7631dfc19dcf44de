"""The benchmark: suites, extraction, scoring, statistics, ranking, reports, the CLI end to
end through the in-process proxy against a fake upstream that knows the right answers, and
the scheduler."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from proxy.bench import ranking, report
from proxy.bench.asgi import StreamingASGITransport
from proxy.bench.client import request_body, run_request
from proxy.bench.runner import percentile, summarize
from proxy.bench.scheduler import BenchScheduler, export
from proxy.bench.scoring import pass_at_k, score, toolchains
from proxy.bench.suite import Suite, Task, extract, load_suite
from proxy.bench.usage import backend_pid, listener
from proxy.classify import CLASSES
from proxy.cli.bench import register_cli, run_cli
from proxy.config import BenchmarkConfig
from proxy.errors import SuiteError
from proxy.metrics import BenchGauges
from tests.helpers.fakeupstream import run_server
from tests.helpers.openai_wire import lifespan

# -- suites -----------------------------------------------------------------------------------


def all_tasks() -> list[tuple[str, Task]]:
    return [(name, task) for name in CLASSES for task in load_suite(name).tasks]


def test_builtin_suites_load_with_versions_and_classes() -> None:
    for name in CLASSES:
        suite = load_suite(name)
        assert suite.name == name and suite.cls == name
        assert suite.version == (1 if name == "instruction" else 2)
        assert all(t.reference for t in suite.tasks)
        assert suite.license and suite.source  # every shipped suite states both
    assert len(load_suite("instruction").tasks) == 20
    assert "MIT" in (load_suite("instruction").license or "")
    assert len(load_suite("complex").tasks) >= 8
    ml = load_suite("multi-language")
    assert {t.language for t in ml.tasks} == {"python", "javascript", "c", "shell"}
    assert {t.human_language for t in ml.tasks} >= {"es", "fr", "de", "zh", "ja"}
    assert all(not t.chat for t in load_suite("completion").tasks)


@pytest.mark.parametrize(("suite", "task"), all_tasks(), ids=lambda v: getattr(v, "id", v))
def test_every_reference_answer_passes(suite: str, task: Task, tools: dict[str, Any]) -> None:
    result = score(task, task.reference or "", tools=tools)
    assert result.status == "passed", (result.reason, result.stderr)


@pytest.fixture(scope="module")
def tools() -> dict[str, str | None]:
    return toolchains()


def test_wrong_answers_fail(tools: dict[str, Any]) -> None:
    for name in CLASSES:
        task = load_suite(name).tasks[0]
        assert score(task, "I don't know.", tools=tools).status == "failed"


def test_missing_toolchain_is_unverified_never_a_pass(tools: dict[str, Any]) -> None:
    """No regex stand-in: without node, even `gcd(){return 0;}`-style answers are not passes."""
    task = next(t for t in load_suite("multi-language").tasks if t.language == "javascript")
    no_node = {**tools, "javascript": None}
    good = score(task, task.reference or "", tools=no_node)
    assert good.status == "unverified" and "UNVERIFIED" in good.reason and not good.passed
    assert score(task, "```js\nlet x = 1;\n```", tools=no_node).status == "unverified"


def test_user_suite_file_and_format_errors(tmp_path: Path) -> None:
    good = {
        "name": "mine",
        "version": "2024.1",
        "class": "instruction",
        "tasks": [
            {
                "id": "double",
                "messages": [{"role": "user", "content": "Write double(x)."}],
                "test": "assert double(2) == 4",
            }
        ],
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(good))
    suite = load_suite(str(path))
    assert suite.version == "2024.1" and suite.tasks[0].extraction == "fence"
    bad = json.loads(json.dumps(good))
    bad["tasks"][0]["prompt"] = "def f():"
    bad["tasks"][0]["colour"] = 1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SuiteError) as info:
        load_suite(str(tmp_path / "bad.json"))
    assert "tasks.0.colour: unknown key" in str(info.value)
    with pytest.raises(SuiteError, match="not a shipped suite"):
        load_suite("nope")


# -- extraction -------------------------------------------------------------------------------


def chat_task(language: str = "python") -> Task:
    return Task.model_validate(
        {
            "id": "t",
            "language": language,
            "messages": [{"role": "user", "content": "x"}],
            "test": "x",
        }
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Here:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1"),
        ("```\nprint(1)\n```", "print(1)"),
        ("```js\nno\n```\n```py\nyes\n```", "yes"),
        ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # cut by max_tokens
        ("def f():\n    return 2\n", "def f():\n    return 2"),  # no fence at all
        ("```python\nx = 1\n```<end_of_turn>junk", "x = 1"),
        ("x = 2<|im_end|>\n<|im_start|>user\n```python\nbad\n```", "x = 2"),
    ],
)
def test_fence_extraction(answer: str, expected: str) -> None:
    assert extract(chat_task(), answer) == expected


def test_fim_extraction_stops_at_markers_and_repeated_suffix() -> None:
    task = Task.model_validate(
        {"id": "f", "prompt": "def f(x):\n", "suffix": "\n    return y\n", "test": "f(1)"}
    )
    assert extract(task, "    y = x + 1<EOT>garbage") == "    y = x + 1"
    assert extract(task, "    y = x + 1\n    return y\n\nprint()") == "    y = x + 1\n"


# -- statistics, ranking, comparison --------------------------------------------------------------


def test_pass_at_k_unbiased_estimator() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,2)/C(10,2) = 1 - 21/45
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)
    assert pass_at_k(2, 1, 5) == 1.0  # k clamped to n


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(101)], 95) == pytest.approx(95.0)


def test_summarize_counts_and_pass_at_k() -> None:
    def rec(task: str, status: str, n: int) -> dict[str, Any]:
        return {
            "variant": "v",
            "suite": "s",
            "task": task,
            "sample": n,
            "status": status,
            "ttft_seconds": 0.1 * (n + 1),
            "output_tokens_per_second": 10.0,
            "error": "HTTP 502" if status == "error" else None,
        }

    rows = summarize(
        [rec("a", "passed", 0), rec("a", "failed", 1), rec("b", "error", 0), rec("b", "failed", 1)]
        + [rec("c", "skipped", 0), rec("c", "skipped", 1)],
        {"s": {"class": "complex", "version": 3}},
        repeat=2,
    )
    (row,) = rows
    assert row["class"] == "complex" and row["suite_version"] == 3
    assert (row["scored"], row["passed"], row["skipped"], row["errors"]) == (4, 1, 2, 1)
    assert row["pass_ratio"] == 0.25
    assert row["pass_at_k"] == {"1": 0.25, "2": 0.5}
    assert row["ttft_seconds"]["p50"] == pytest.approx(0.15)


def fig(passed: int, scored: int, tps: float, ttft: float = 0.1) -> dict[str, Any]:
    return {
        "passed": passed,
        "scored": scored,
        "output_tokens_per_second": tps,
        "ttft_seconds": ttft,
    }


FIGS = {
    "fast-ok": {"complex": fig(5, 10, 90)},
    "slow-good": {"complex": fig(8, 10, 10, 1)},
    "fast-good": {"complex": fig(8, 10, 40, 2)},
    "lucky": {"complex": fig(1, 1, 500)},
    "zero": {"complex": fig(0, 20, 900)},
    "other-class": {"completion": fig(10, 10, 500)},
}


@pytest.mark.parametrize(
    ("candidates", "cls", "expected"),
    [
        (
            ["fast-ok", "slow-good", "fast-good"],
            "complex",
            ["fast-good", "slow-good", "fast-ok"],
        ),
        (["unknown", "fast-ok", "other-class"], "complex", ["fast-ok", "unknown", "other-class"]),
        # 1/1 (Wilson lower bound 0.21) is behind 8/10 (0.49); a measured 0/20 goes last
        (
            ["zero", "lucky", "unknown", "fast-good"],
            "complex",
            ["fast-good", "lucky", "unknown", "zero"],
        ),
        (["a", "b"], "complex", ["a", "b"]),
        ([], "complex", []),
    ],
)
def test_rank(candidates: list[str], cls: str, expected: list[str]) -> None:
    assert ranking.rank(candidates, cls, FIGS) == expected


def result_row(variant: str, suite: str, ratio: float, ttft: float, tps: float) -> dict[str, Any]:
    return {
        "variant": variant,
        "suite": suite,
        "class": suite,
        "suite_version": 1,
        "passed": int(ratio * 10),
        "scored": 10,
        "pass_ratio": ratio,
        "ttft_seconds": {"p50": ttft},
        "output_tokens_per_second": {"p50": tps},
    }


def task_row(variant: str, task: str, passed: bool) -> dict[str, Any]:
    return {
        "variant": variant,
        "suite": "complex",
        "task": task,
        "status": "passed" if passed else "failed",
    }


def test_figures_pool_suites_of_a_class() -> None:
    doc = {
        "results": [
            result_row("v", "complex", 0.5, 0.2, 10),
            {**result_row("v", "complex-2", 1.0, 0.4, 30), "class": "complex"},
        ]
    }
    fig = ranking.figures(doc)["v"]["complex"]
    assert fig["pass_ratio"] == 0.75
    assert fig["output_tokens_per_second"] == 20
    assert fig["ttft_seconds"] == pytest.approx(0.3)


def test_compare_flags_accuracy_and_speed_regressions() -> None:
    before = {
        "results": [
            result_row("a", "complex", 0.8, 0.10, 50),
            result_row("b", "complex", 0.5, 0.10, 50),
            result_row("c", "complex", 0.5, 0.10, 50),
        ]
    }
    after = {
        "results": [
            result_row("a", "complex", 0.7, 0.13, 35),  # -0.1 pass, +30% ttft, -30% tps
            result_row("b", "complex", 0.47, 0.11, 45),  # within tolerances
            {**result_row("c", "complex", 0.0, 1, 1), "suite_version": 2},
            result_row("d", "complex", 0.0, 1, 1),
        ]
    }
    # per task, "a" lost 6 of 10 tasks and gained none: the paired test calls it
    before["tasks"] = [task_row("a", f"t{i}", True) for i in range(10)]
    after["tasks"] = [task_row("a", f"t{i}", i >= 6) for i in range(10)]
    found, notes = report.compare(before, after, pass_tolerance=0.05, speed_tolerance=0.2)
    assert [(r.variant, r.metric) for r in found] == [
        ("a", "pass_ratio"),
        ("a", "ttft_seconds"),
        ("a", "output_tokens_per_second"),
    ]
    assert "McNemar p = 0.016" in found[0].message
    assert any("suite version 1 -> 2" in n for n in notes)
    assert any(n.startswith("d on complex: not in the previous") for n in notes)


# -- a fake upstream that knows the answers ----------------------------------------------------


class AnsweringUpstream:
    """OpenAI-compatible ASGI app: `up-good` answers every task right, `up-bad` only the tasks
    at even positions of their suite; everything streams in 5 chunks after `first_delay`."""

    WRONG = "I don't know."

    def __init__(self) -> None:
        self.by_prompt: dict[str, tuple[int, Task]] = {}
        for name in CLASSES:
            for i, task in enumerate(load_suite(name).tasks):
                key = task.messages[-1].content if task.messages else task.prompt or ""
                self.by_prompt[key] = (i, task)
        self.first_delay = 0.05
        self.chunk_delay = 0.01
        self.degraded = False
        self.lock = threading.Lock()
        self.models: list[str] = []

    def answer(self, model: str, body: dict[str, Any]) -> str:
        if "messages" in body:
            key = body["messages"][-1]["content"]
        else:
            key = body.get("prompt", "")
        found = self.by_prompt.get(key)
        if found is None:
            found = next((v for k, v in self.by_prompt.items() if k and k in key), None)
        if found is None:
            return self.WRONG
        index, task = found
        right = model == "up-good" or index % 2 == 0
        if self.degraded and model == "up-good" and index % 2 == 1:
            right = False
        return (task.reference or "") if right else self.WRONG

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        if scope["method"] == "GET":
            data = b'{"status":"ok","object":"list","data":[]}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw)
        model = body["model"]
        with self.lock:
            self.models.append(model)
        text = self.answer(model, body)
        chat = scope["path"].endswith("/chat/completions")
        await asyncio.sleep(self.first_delay * (6 if self.degraded and model == "up-good" else 1))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        n = 5
        size = -(-len(text) // n)
        for i in range(n):
            piece = text[i * size : (i + 1) * size]
            choice: dict[str, Any] = (
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                if chat
                else {"index": 0, "text": piece, "finish_reason": None}
            )
            event = {"object": "chunk", "model": model, "choices": [choice]}
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + json.dumps(event).encode() + b"\n\n",
                    "more_body": True,
                }
            )
            await asyncio.sleep(self.chunk_delay)
        usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": n}}
        tail = b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail, "more_body": False})


@pytest.fixture(scope="module")
def answering() -> Iterator[tuple[AnsweringUpstream, str]]:
    fake = AnsweringUpstream()
    with run_server(fake) as url:
        yield fake, url


def bench_config(tmp_path: Path, url: str) -> Path:
    data = {
        "server": {"state_dir": str(tmp_path / "state")},
        "backends": {"fake": {"kind": "openai", "url": url}},
        "variants": {
            "good": {"backend": "fake", "model": "up-good", "fim": "native-suffix"},
            "bad": {"backend": "fake", "model": "up-bad", "fim": "native-suffix"},
            "chat-only": {"backend": "fake", "model": "up-good"},
        },
        "routes": {"default": "good"},
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def bench(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_cli(args, out, err)
    return code, out.getvalue(), err.getvalue()


def rows_by(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["variant"], r["suite"]): r for r in doc["results"]}


def test_cli_end_to_end_exact_pass_ratios_timings_and_compare(
    answering: tuple[AnsweringUpstream, str], tmp_path: Path
) -> None:
    fake, url = answering
    fake.degraded = False
    config = bench_config(tmp_path, url)
    out_dir = tmp_path / "out"
    code, out, err = bench(
        "--config", str(config), "--variants", "good,bad,chat-only", "--limit", "4",
        "--out", str(out_dir), "--concurrency", "2",
    )  # fmt: skip
    assert code == 0, out + err
    assert "generating" in err and "scoring" in err  # progress on stderr
    assert "pass@1" in out and "results:" in out
    doc = json.loads((out_dir / "latest.json").read_text())
    assert doc["schema"] == 1
    assert doc["proxy"]["mode"] == "in-process"
    assert set(doc["suites"]) == set(CLASSES)
    assert {n: s["version"] for n, s in doc["suites"].items()} == {
        "completion": 2,
        "instruction": 1,
        "complex": 2,
        "multi-language": 2,
    }
    assert {"cpu_count", "memory_bytes", "os", "python"} <= set(doc["machine"])
    assert doc["sandbox"]["network"] is True
    assert doc["variants"]["good"]["model"] == "up-good"
    assert "identity" in doc["variants"]["good"]
    rows = rows_by(doc)
    for suite in CLASSES:
        assert rows[("good", suite)]["pass_ratio"] == 1.0
        assert rows[("bad", suite)]["pass_ratio"] == 0.5
        assert rows[("good", suite)]["scored"] == 4
    # chat-only has no fim format: the completion suite is skipped for it, the rest run
    assert ("chat-only", "completion") not in rows
    assert rows[("chat-only", "complex")]["pass_ratio"] == 1.0
    assert doc["skipped"] == [
        {
            "variant": "chat-only",
            "suite": "completion",
            "class": "completion",
            "reason": "variant has no fill-in-the-middle format (variants.*.fim)",
        }
    ]
    for row in doc["results"]:
        ttft, itl = row["ttft_seconds"], row["itl_seconds"]
        assert 0.05 <= ttft["p50"] < 1.0
        assert 0.005 <= itl["p50"] < 0.5
        assert ttft["p50"] < row["e2e_seconds"]["p50"] < 2.0
        assert row["output_tokens_per_second"]["p50"] > 0
        assert row["errors"] == 0
    # one fake server serves all three: its resource figures are marked as shared
    assert rows[("good", "complex")]["usage"]["shared_with"] == ["bad", "chat-only"]
    tasks = [t for t in doc["tasks"] if t["variant"] == "bad" and t["suite"] == "complex"]
    assert [t["status"] for t in tasks] == ["passed", "failed", "passed", "failed"]
    assert tasks[0]["served_by"] == "bad" and tasks[0]["output_tokens"] == 5
    md = next(out_dir.glob("bench-*.md")).read_text()
    assert "## Ranking by class" in md and "| 1 | good |" in md
    page = next(out_dir.glob("bench-*.html")).read_text()
    assert page.count("<svg") == 4 and "<script" not in page

    # a worse run: `good` fails half its tasks and answers 6x later
    first = out_dir / "first.json"
    first.write_text((out_dir / "latest.json").read_text())
    fake.degraded = True
    try:
        code, out, err = bench(
            "--config", str(config), "--variants", "good,bad", "--limit", "4",
            "--out", str(out_dir), "--compare", str(first), "--no-progress",
        )  # fmt: skip
    finally:
        fake.degraded = False
    assert code == 1, out + err
    # 2 of 4 tasks lost is within chance (exact McNemar p = 0.25): a note, not a regression
    assert "REGRESSION good on complex: pass ratio" not in out
    assert "good on complex: pass ratio 1.00 -> 0.50, but 2 lost / 0 gained" in out
    assert "REGRESSION good on complex: median TTFT" in out
    assert "REGRESSION bad" not in out
    assert "generating" not in err
    worse = json.loads((out_dir / "latest.json").read_text())
    assert rows_by(worse)[("good", "complex")]["pass_ratio"] == 0.5
    flagged = {(r["variant"], r["metric"]) for r in worse["comparison"]["regressions"]}
    assert ("good", "pass_ratio") not in flagged and ("good", "ttft_seconds") in flagged


def test_cli_url_mode_and_errors(answering: tuple[AnsweringUpstream, str], tmp_path: Path) -> None:
    _, url = answering
    from proxy.app import create_app

    with run_server(create_app(bench_config(tmp_path, url))) as proxy_url:
        code, out, err = bench(
            "--url", proxy_url + "/v1", "--suite", "complex", "--limit", "2",
            "--variants", "bad", "--out", str(tmp_path / "o"), "--no-progress",
        )  # fmt: skip
        assert code == 0, out + err
        doc = json.loads((tmp_path / "o" / "latest.json").read_text())
        assert doc["proxy"]["mode"] == "url"
        assert rows_by(doc)[("bad", "complex")]["pass_ratio"] == 0.5
        # without --variants: every variant the proxy lists
        code, out, err = bench(
            "--url", proxy_url, "--suite", "complex", "--limit", "1", "--out",
            str(tmp_path / "o2"), "--no-progress",
        )  # fmt: skip
        assert code == 0, out + err
        doc = json.loads((tmp_path / "o2" / "latest.json").read_text())
        assert set(doc["variants"]) == {"good", "bad", "chat-only"}
        # without --config the proxy's listing says which variants take FIM: no FIM task
        # goes to one that can't
        code, out, err = bench(
            "--url", proxy_url, "--suite", "completion", "--limit", "1", "--out",
            str(tmp_path / "o3"), "--no-progress", "--variants", "good,chat-only",
        )  # fmt: skip
        assert code == 0, out + err
        doc = json.loads((tmp_path / "o3" / "latest.json").read_text())
        assert [(s["variant"], s["suite"]) for s in doc["skipped"]] == [("chat-only", "completion")]
        assert {r["variant"] for r in doc["results"]} == {"good"}
    assert bench("--suite", "nope", "--url", "http://127.0.0.1:9")[0] == 2
    code, _, err = bench("--config", str(bench_config(tmp_path, url)), "--variants", "ghost")
    assert code == 2 and "unknown variant 'ghost'" in err


def test_request_errors_are_recorded_not_raised() -> None:
    task = load_suite("complex").tasks[0]
    path, body = request_body("x", task, max_tokens=8, temperature=0)
    assert path == "/v1/chat/completions" and body["stream"] is True

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fails":
            return httpx.Response(503, json={"error": {"message": "all busy"}})
        events = (
            b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
            b'data: {"error":{"message":"backend died","code":"upstream_protocol_error"}}\n\n'
        )
        return httpx.Response(200, stream=httpx.ByteStream(events))

    async def go() -> tuple[Any, Any, Any]:
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9", trust_env=False) as c:
            unreachable = await run_request(c, path, body, timeout=2)
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            failed = await run_request(c, "/fails", body)
            died = await run_request(c, path, body)
        return unreachable, failed, died

    unreachable, failed, died = asyncio.run(go())
    assert unreachable.error and "Connect" in unreachable.error and unreachable.text == ""
    assert failed.error == "HTTP 503: all busy" and failed.status_code == 503
    assert died.error == "stream error: backend died" and died.text == "par"
    assert died.ttft_s is not None and died.output_tokens == 1


# -- in-process transport and the scheduler ------------------------------------------------------


def test_backend_pid_is_the_managed_process_else_the_listener() -> None:
    """The bench finds a backend's process with the resource sampler's `listening_pid`:
    loopback and wildcard hosts, never a remote one; a managed process wins."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for host in ("127.0.0.1", "localhost", "0.0.0.0"):
            assert listener(f"http://{host}:{port}")() == os.getpid(), host
        assert listener(f"http://10.255.0.1:{port}")() is None

        class Managed:
            managed = {"m": SimpleNamespace(pid=4242), "stopped": SimpleNamespace(pid=None)}

        url = f"http://127.0.0.1:{port}"
        assert backend_pid(Managed(), "m", url)() == 4242
        assert backend_pid(Managed(), "stopped", url)() is None
        assert backend_pid(Managed(), "other", url)() == os.getpid()
        assert backend_pid(None, "m", url)() == os.getpid()
        assert backend_pid(None, "m", None)() is None


def test_streaming_asgi_transport_does_not_buffer() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def go() -> list[tuple[float, bytes]]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        seen = []
        transport = StreamingASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            async with client.stream("POST", "/", content=b"{}") as response:
                async for chunk in response.aiter_raw():
                    seen.append((loop.time() - t0, chunk))
        return seen

    seen = asyncio.run(go())
    assert [c for _, c in seen] == [b"0", b"1", b"2"]
    assert seen[0][0] < 0.08 and seen[-1][0] >= 0.2


def test_bench_metrics_reuse_the_proxy_gauges() -> None:
    from proxy.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    doc = {"results": [result_row("v", "complex", 0.75, 0.2, 33.0)]}
    export(metrics.bench, doc, 1234.0)
    get = metrics.registry.get_sample_value
    labels = {"variant": "v", "suite": "complex"}
    assert get("variant_proxy_bench_pass_ratio", labels) == 0.75
    assert get("variant_proxy_bench_ttft_seconds", labels) == 0.2
    assert get("variant_proxy_bench_output_tokens_per_second", labels) == 33.0
    assert get("variant_proxy_bench_last_run_timestamp_seconds", labels) == 1234.0
    standalone = BenchGauges(CollectorRegistry())
    export(standalone, doc, 1.0)
    assert standalone.registry.get_sample_value("variant_proxy_bench_pass_ratio", labels) == 0.75


def test_benchmark_config_is_strict() -> None:
    cfg = BenchmarkConfig.model_validate({"schedule": 3600, "idle_seconds": 60})
    assert cfg.suites == list(CLASSES) and cfg.variants is None and cfg.repeat == 1
    with pytest.raises(ValueError, match="extra"):
        BenchmarkConfig.model_validate({"schedul": 1})
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        BenchmarkConfig.model_validate({"suites": ["nope"]})
    with pytest.raises(ValueError):
        BenchmarkConfig.model_validate({"schedule": 0})


def test_scheduler_runs_when_idle_persists_and_exports(
    answering: tuple[AnsweringUpstream, str], tmp_path: Path
) -> None:
    from proxy.app import create_app

    _, url = answering
    app = create_app(bench_config(tmp_path, url))
    proxy = app.state.proxy
    idle = {"value": 0.0}
    now = {"value": 1_000_000.0}
    config = BenchmarkConfig(
        schedule=3600, suites=["complex", "completion"], variants=["good", "bad"],
        idle_seconds=60, limit=2,
    )  # fmt: skip

    async def go() -> None:
        await proxy.start()
        try:
            sched = BenchScheduler(
                config,
                app=app,
                proxy=proxy,
                idle_for=lambda: idle["value"],
                clock=lambda: now["value"],
            )
            assert sched.state_dir == tmp_path / "state" / "bench"
            assert not sched.due()  # traffic just now
            idle["value"] = 120.0
            assert sched.due()
            doc = await sched.run_once()
            assert doc is not None
            assert rows_by(doc)[("bad", "complex")]["pass_ratio"] == 0.5
            assert rows_by(doc)[("good", "completion")]["pass_ratio"] == 1.0
            assert doc["proxy"]["mode"] == "scheduled"
            assert ranking.rank(["bad", "good"], "complex", sched.figures) == ["good", "bad"]
            assert not sched.due()  # ran; next one in an hour
            labels = {"variant": "good", "suite": "complex"}
            get = proxy.metrics.registry.get_sample_value
            assert get("variant_proxy_bench_pass_ratio", labels) == 1.0
            assert get("variant_proxy_bench_ttft_seconds", labels) >= 0.05
            assert get("variant_proxy_bench_last_run_timestamp_seconds", labels) > 0

            # a restart picks up the persisted result and its time
            again = BenchScheduler(
                config,
                app=app,
                proxy=proxy,
                idle_for=lambda: 1e9,
                clock=lambda: now["value"],
                metrics=BenchGauges(CollectorRegistry()),
            )
            assert again.latest() is not None and again.last_finished is not None
            assert again.figures["bad"]["complex"]["pass_ratio"] == 0.5
            now["value"] = again.last_finished + 10
            assert not again.due()
            now["value"] = again.last_finished + 3601
            assert again.due()
            value = again.metrics.registry.get_sample_value(
                "variant_proxy_bench_pass_ratio", {"variant": "bad", "suite": "complex"}
            )
            assert value == 0.5

            # a user request mid-run abandons it (pause_on_traffic). `idle_for` is what the
            # daemon wires: time since the proxy's last request, the bench's own included
            interrupted = BenchScheduler(
                config,
                app=app,
                proxy=proxy,
                idle_for=lambda: time.monotonic() - proxy.last_request,
                metrics=BenchGauges(CollectorRegistry()),
                state_dir=tmp_path / "other",
                traffic_slack=0.01,
            )
            proxy.last_request = time.monotonic() - 120

            async def user() -> None:
                while not interrupted._sends:
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.03)
                transport = StreamingASGITransport(app)
                async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                    body = {"model": "good", "messages": [{"role": "user", "content": "hi"}]}
                    assert (await c.post("/v1/chat/completions", json=body)).status_code == 200

            results = await asyncio.gather(interrupted.run_once(), user())
            assert results[0] is None
            assert len(interrupted._sends) == 1
            assert not (tmp_path / "other" / "latest.json").exists()
        finally:
            await proxy.stop()

    asyncio.run(go())
    assert len(list((tmp_path / "state" / "bench").glob("bench-*.json"))) == 1


def test_suite_limited_and_task_class() -> None:
    suite = Suite.model_validate(
        {
            "name": "s",
            "version": 1,
            "class": "complex",
            "tasks": [
                {"id": "a", "prompt": "x", "test": "pass"},
                {"id": "b", "class": "completion", "prompt": "y", "test": "pass"},
            ],
        }
    )
    assert [t.id for t in suite.limited(1).tasks] == ["a"]
    assert suite.task_class(suite.tasks[0]) == "complex"
    assert suite.task_class(suite.tasks[1]) == "completion"
    with pytest.raises(ValueError, match="duplicate task ids"):
        Suite.model_validate({**suite.model_dump(by_alias=True), "tasks": [suite.tasks[0]] * 2})
