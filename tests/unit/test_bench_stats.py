"""The benchmark's statistics and the harness's verdict: pure tables."""

from __future__ import annotations

import pytest

from proxy.bench import harness
from proxy.bench.report import CompareMismatch, compare
from proxy.bench.stats import mcnemar_exact, spread, wilson
from proxy.bench.suite import Task, extract


@pytest.mark.parametrize(
    ("passed", "n", "low", "high"),
    [(1, 1, 0.2065, 1.0), (19, 20, 0.7639, 0.9911), (0, 2, 0.0, 0.6576), (5, 10, 0.2366, 0.7634)],
)
def test_wilson_interval(passed: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(passed, n)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)


def test_lucky_one_of_one_is_below_nineteen_of_twenty() -> None:
    assert wilson(1, 1)[0] < wilson(19, 20)[0]


@pytest.mark.parametrize(
    ("losses", "gains", "p"), [(1, 0, 0.5), (5, 0, 0.03125), (6, 1, 0.0625), (0, 0, 1.0)]
)
def test_exact_mcnemar(losses: int, gains: int, p: float) -> None:
    assert mcnemar_exact(losses, gains) == pytest.approx(p)


def test_spread() -> None:
    assert spread([]) == (None, None)
    assert spread([3.0]) == (3.0, None)
    mean, sd = spread([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(1.0)


TASK = Task.model_validate(
    {"id": "t", "messages": [{"role": "user", "content": "x"}], "test": "assert True"}
)


@pytest.mark.parametrize(
    ("code", "stdout", "stderr", "ok", "kind"),
    [
        (0, "\nTOKEN\n", "", True, None),
        (0, "", "", False, "no-token"),
        (0, "TOKEN-guess\n", "", False, "no-token"),
        (1, "\nTOKEN\n", "", False, "exit"),
        (1, "", "VP-HARNESS assertion AssertionError\n", False, "assertion"),
        (0, "\nTOKEN\nafter\n", "", False, "no-token"),
    ],
)
def test_verdict_needs_the_token_last_and_exit_zero(
    code: int, stdout: str, stderr: str, ok: bool, kind: str | None
) -> None:
    assert harness.verdict(TASK, "TOKEN", code, stdout, stderr)[:2] == (ok, kind)


def _doc(limit: int | None, outcomes: dict[str, bool], version: int = 1) -> dict[str, object]:
    passed = sum(outcomes.values())
    return {
        "settings": {"temperature": 0.0, "max_tokens": None, "limit": limit, "repeat": 1},
        "suites": {"s": {"version": version}},
        "results": [
            {
                "variant": "v",
                "suite": "s",
                "suite_version": version,
                "pass_ratio": passed / len(outcomes),
            }
        ],
        "tasks": [
            {"variant": "v", "suite": "s", "task": t, "status": "passed" if ok else "failed"}
            for t, ok in outcomes.items()
        ],
    }


def test_compare_refuses_mismatched_runs() -> None:
    full = _doc(None, {f"t{i}": True for i in range(8)})
    with pytest.raises(CompareMismatch, match="limit"):
        compare(full, _doc(3, {"t0": True, "t1": True, "t2": False}))
    with pytest.raises(CompareMismatch, match="suite s v1 vs v2"):
        compare(full, _doc(None, {f"t{i}": True for i in range(8)}, version=2))


def test_one_flipped_task_is_not_a_regression_but_many_are() -> None:
    before = _doc(None, {f"t{i}": True for i in range(8)})
    one = _doc(None, {f"t{i}": i != 0 for i in range(8)})
    found, notes = compare(before, one)
    assert found == [] and any("within chance" in n for n in notes)
    five = _doc(None, {f"t{i}": i >= 5 for i in range(8)})
    found, _ = compare(before, five)
    assert [r.metric for r in found] == ["pass_ratio"] and "McNemar" in found[0].message


def test_fim_cut_only_at_the_suffix_line_at_its_own_indentation() -> None:
    """A deeper-indented `return -1` inside the infill is code, not the suffix repeated."""
    task = Task.model_validate(
        {
            "id": "find",
            "prompt": "def find(xs, target):\n",
            "suffix": "\n    return -1\n",
            "test": "assert find([1], 1) == 0",
        }
    )
    body = "    for i, x in enumerate(xs):\n        if x == target:\n            return -1\n"
    assert extract(task, body + "    return -1\n") == body.rstrip(" \t")
    assert extract(task, body) == body.rstrip(" \t")
