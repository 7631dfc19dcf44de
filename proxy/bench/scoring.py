"""Scoring answers by running them under the harness, and the pass@k estimator.

`score` extracts the code from one answer, builds the language's check program
(`harness.build`), runs it in the sandbox with a fresh success token on fd 3 and
asks `harness.verdict` whether the harness printed that token after the task's
last check. An exit status alone never passes. A missing toolchain gives
`unverified`: shown as such in every report and never counted as a pass or a
failure (there is no regex stand-in). A missing sandbox raises
`sandbox.SandboxUnavailable` unless `unsafe` is set.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import Literal

from . import harness, sandbox
from .suite import Task, extract

__all__ = ["Score", "ScoreStatus", "pass_at_k", "score", "toolchains"]

ScoreStatus = Literal["passed", "failed", "timeout", "crashed", "unverified", "error"]

#: Address-space limits per language: V8 reserves several GiB of virtual memory up front.
_MEMORY = {"python": 1 << 30, "javascript": 8 << 30, "c": 1 << 30, "shell": 1 << 30}


@dataclass(frozen=True, slots=True)
class Score:
    status: ScoreStatus
    reason: str
    stdout: str = ""
    stderr: str = ""
    method: Literal["executed", "none"] = "executed"
    #: why it failed (`harness.FailureKind`), None when it passed or was not run
    failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def toolchains(*, unsafe: bool = False) -> dict[str, str | None]:
    """Each language's interpreter or compiler on this machine, or None."""
    try:
        python: str | None = sandbox.python_for_sandbox(unsafe=unsafe)
    except RuntimeError:
        python = None
    return {
        "python": python,
        "javascript": shutil.which("node") or shutil.which("nodejs"),
        "c": shutil.which("gcc") or shutil.which("cc"),
        "shell": shutil.which("bash"),
    }


def score(
    task: Task,
    answer: str,
    *,
    tools: dict[str, str | None] | None = None,
    limits: sandbox.Limits | None = None,
    unsafe: bool = False,
) -> Score:
    """Check one answer. Blocking (runs a subprocess): use a worker thread from async code."""
    code = extract(task, answer)
    if not code.strip():
        return Score("failed", "no code in the answer", method="none", failure="no-code")
    tools = tools if tools is not None else toolchains(unsafe=unsafe)
    tool = tools.get(task.language)
    if tool is None:
        return Score(
            "unverified", f"UNVERIFIED: no {task.language} toolchain installed", method="none"
        )
    check = harness.build(task, code, tool)
    token = harness.new_token()
    limits = limits or sandbox.Limits(memory_bytes=_MEMORY.get(task.language, 1 << 30))
    outcome = sandbox.run(
        check.commands,
        check.files,
        limits,
        build_steps=check.build_steps,
        secret=token.encode(),
        unsafe=unsafe,
    )
    stdout = outcome.stdout if not outcome.stdout_tail else outcome.stdout_tail
    out_shown = outcome.stdout.replace(token, "<token>")
    if outcome.status == "timeout":
        return Score("timeout", outcome.reason, out_shown, outcome.stderr, failure="timeout")
    failed_build = len(outcome.steps) <= check.build_steps and outcome.status != "passed"
    if failed_build:
        return Score("failed", outcome.reason, out_shown, outcome.stderr, failure="compile-error")
    full = outcome.stdout if len(outcome.stdout) < limits.output_bytes else stdout
    ok, kind, detail = harness.verdict(task, token, outcome.returncode, full, outcome.stderr)
    if ok:
        return Score("passed", detail, out_shown, outcome.stderr)
    status: ScoreStatus = "crashed" if outcome.status == "crashed" else "failed"
    reason = detail if kind != "exit" or outcome.status != "crashed" else outcome.reason
    return Score(status, f"{kind}: {reason}", out_shown, outcome.stderr, failure=kind)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al., 2021)."""
    if n <= 0 or k <= 0:
        raise ValueError("n and k must be positive")
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
