"""Each variant is benchmarked in its own protocol: a base model (`api: completion`) gets
HumanEval's original completion form of a task, a chat model the chat task (issue 17)."""

from __future__ import annotations

import pytest

from proxy.bench.client import request_body
from proxy.bench.report import markdown, text_table
from proxy.bench.runner import VariantTarget, summarize
from proxy.bench.suite import COMPLETION_STOP, Task, extract, load_suite, program

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TASK = Task.model_validate(
    {
        "id": "add",
        "messages": [{"role": "user", "content": "Write add(a, b). ```python\n" + PROMPT}],
        "completion_prompt": PROMPT,
        "setup": PROMPT + "    ...",
        "test": "assert add(2, 3) == 5",
    }
)


def test_completion_form_is_humaneval_protocol() -> None:
    done = TASK.as_completion()
    assert done is not None and not done.chat
    assert done.prompt == PROMPT and done.suffix == "" and done.setup == ""
    assert tuple(done.stop) == COMPLETION_STOP
    answer = "    return a + b\n"
    assert program(done, extract(done, answer)) == PROMPT + answer + "\n\nassert add(2, 3) == 5\n"
    path, body = request_body("gemma", done, max_tokens=64, temperature=0)
    assert path == "/v1/completions"
    assert body["prompt"] == PROMPT and body["stop"] == list(COMPLETION_STOP)
    assert "messages" not in body and "suffix" not in body


def test_a_chat_only_task_has_no_completion_form() -> None:
    chat_only = TASK.model_copy(update={"completion_prompt": None})
    assert chat_only.as_completion() is None
    assert "stop" not in request_body("x", chat_only, max_tokens=8, temperature=0)[1]


@pytest.mark.parametrize(
    ("api", "task", "protocol", "path"),
    [
        ("completion", TASK, "completion", "/v1/completions"),
        ("chat", TASK, "chat", "/v1/chat/completions"),
        (None, TASK, "chat", "/v1/chat/completions"),
        ("completion", TASK.model_copy(update={"completion_prompt": None}), "chat", None),
        (
            "chat",
            Task(id="fim", prompt="x = ", suffix="\nprint(x)", test="pass"),
            "fim",
            "/v1/completions",
        ),
    ],
)
def test_protocol_per_variant(api: str | None, task: Task, protocol: str, path: str | None) -> None:
    chosen, asked = VariantTarget("v", api=api).protocol_for(task)
    assert chosen == protocol
    if path is not None:
        assert request_body("v", asked, max_tokens=8, temperature=0)[0] == path


def test_shipped_humaneval_tasks_carry_their_original_prompt() -> None:
    suite = load_suite("instruction")
    for task in suite.tasks:
        assert task.completion_prompt is not None
        assert task.setup == task.completion_prompt.rstrip() + "\n    ..."
        assert task.reference is not None
        body = task.reference.removeprefix("```python\n").removesuffix("```")
        assert body.startswith(task.completion_prompt)  # the canonical solution continues it


def test_report_says_which_protocol_each_variant_used() -> None:
    records = [
        {"variant": "base", "suite": "instruction", "task": "t", "status": "passed",
         "protocol": "completion"},
        {"variant": "chatty", "suite": "instruction", "task": "t", "status": "failed",
         "protocol": "chat"},
    ]  # fmt: skip
    suites = {"instruction": {"version": 1, "class": "instruction", "tasks": 1}}
    doc = {
        "suites": suites,
        "variants": {"base": {"api": "completion"}, "chatty": {"api": "chat"}},
        "results": summarize(records, suites, 1),
        "tasks": records,
    }
    assert {r["variant"]: r["protocol"] for r in doc["results"]} == {
        "base": "completion",
        "chatty": "chat",
    }
    md = markdown(doc)
    assert "- **base** (api: completion): completion" in md
    assert "- **chatty** (api: chat): chat" in md
    assert "| base | instruction v1 | completion | 1.00 (1/1, CI 0.21–1.00) |" in md
    assert "completion" in text_table(doc).splitlines()[2]
