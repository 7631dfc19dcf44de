"""Scoring answers by running them, and the pass@k estimator.

`score` assembles the program for one answer (see `suite.program`), runs it in
the sandbox with the language's toolchain and compares its output. A missing
toolchain (no `node`, no `gcc`) falls back to the task's `static` regexes, and
a task with neither is `skipped` (not counted in pass ratios).
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from typing import Literal

from . import sandbox
from .suite import Task, extract, program

__all__ = ["Score", "ScoreStatus", "pass_at_k", "score", "toolchains"]

ScoreStatus = Literal["passed", "failed", "timeout", "crashed", "skipped", "error"]

#: Address-space limits per language: V8 reserves several GiB of virtual memory up front.
_MEMORY = {"python": 1 << 30, "javascript": 4 << 30, "c": 1 << 30, "shell": 1 << 30}


@dataclass(frozen=True, slots=True)
class Score:
    status: ScoreStatus
    reason: str
    stdout: str = ""
    stderr: str = ""
    method: Literal["executed", "static", "none"] = "executed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True, slots=True)
class _Toolchain:
    filename: str
    commands: list[list[str]]


def toolchains() -> dict[str, str | None]:
    """Each language's interpreter or compiler on this machine, or None."""
    try:
        python: str | None = sandbox.python_for_sandbox()
    except RuntimeError:
        python = None
    return {
        "python": python,
        "javascript": shutil.which("node"),
        "c": shutil.which("gcc") or shutil.which("cc"),
        "shell": shutil.which("bash") or shutil.which("sh"),
    }


def _toolchain(language: str, tools: dict[str, str | None]) -> _Toolchain | None:
    tool = tools.get(language)
    if tool is None:
        return None
    match language:
        case "python":
            return _Toolchain("main.py", [[tool, "-I", "main.py"]])
        case "javascript":
            return _Toolchain("main.js", [[tool, "main.js"]])
        case "c":
            return _Toolchain(
                "main.c", [[tool, "-std=c11", "-O1", "-o", "prog", "main.c", "-lm"], ["./prog"]]
            )
        case "shell":
            return _Toolchain("main.sh", [[tool, "main.sh"]])
    return None


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def score(
    task: Task,
    answer: str,
    *,
    tools: dict[str, str | None] | None = None,
    limits: sandbox.Limits | None = None,
) -> Score:
    """Check one answer. Blocking (runs a subprocess): use a worker thread from async code."""
    code = extract(task, answer)
    if not code.strip():
        return Score("failed", "no code in the answer", method="none")
    tools = tools if tools is not None else toolchains()
    chain = _toolchain(task.language, tools)
    if chain is None:
        if not task.static:
            return Score("skipped", f"no {task.language} toolchain installed", method="none")
        missing = [p for p in task.static if not re.search(p, code, re.M)]
        if missing:
            return Score("failed", f"static check: no match for {missing[0]!r}", method="static")
        return Score("passed", f"static check ({task.language} not installed)", method="static")
    limits = limits or sandbox.Limits(memory_bytes=_MEMORY.get(task.language, 1 << 30))
    outcome = sandbox.run(chain.commands, {chain.filename: program(task, code)}, limits)
    if not outcome.passed:
        return Score(outcome.status, outcome.reason, outcome.stdout, outcome.stderr)
    if task.expected_output is not None:
        if _normalize(outcome.stdout) != _normalize(task.expected_output):
            got = _normalize(outcome.stdout)[:120]
            return Score(
                "failed",
                f"wrong output: {got!r}",
                outcome.stdout,
                outcome.stderr,
            )
    return Score("passed", "tests passed", outcome.stdout, outcome.stderr)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al., 2021)."""
    if n <= 0 or k <= 0:
        raise ValueError("n and k must be positive")
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
