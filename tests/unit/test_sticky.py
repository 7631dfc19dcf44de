"""Task stickiness: the memory itself, and what Runtime.decide does with it."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import parse_config
from proxy.runtime import Runtime
from proxy.sticky import TaskMemory
from tests.helpers.config import make_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_is_bounded_least_recently_used_first() -> None:
    memory = TaskMemory(max_tasks=2, ttl=60, clock=Clock())
    memory.remember("a", "complex", "hard-problem")
    memory.remember("b", "instruction", "default")
    assert memory.recall("a") is not None  # a is now the most recently used
    memory.remember("c", "multi-language", "non-english")
    assert len(memory) == 2
    assert memory.recall("b") is None
    assert memory.recall("a") is not None and memory.recall("c") is not None


def test_memory_forgets_after_ttl_and_peeking_does_not_refresh() -> None:
    clock = Clock()
    memory = TaskMemory(ttl=10, clock=clock)
    memory.remember("a", "complex", "hard-problem")
    clock.now += 8
    assert memory.recall("a", touch=False) is not None
    clock.now += 3  # 11 s since the last real use
    assert memory.recall("a") is None
    assert len(memory) == 0


SYSTEM = "You are an agent. " * 50


def turn(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "system", "content": SYSTEM}, *messages]}


TASK = {
    "role": "user",
    "content": "Redesign the session layer: move auth to OAuth with token rotation "
    "across every service.",
}
CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}
    ],
}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "def login():\n    return 1\n"}


@pytest.fixture
def runtime() -> Runtime:
    cfg = parse_config(make_config("http://127.0.0.1:9"))
    return Runtime(cfg, "<test>", {})


def test_agent_steps_keep_the_class_of_the_task(runtime: Runtime) -> None:
    memory = TaskMemory()
    first = runtime.decide("chat", turn(TASK), memory=memory)
    assert first.cls == "complex"
    step = turn(TASK, CALL, RESULT)
    alone = runtime.decide("chat", step)  # without memory the tool turn reads differently
    kept = runtime.decide("chat", step, memory=memory)
    assert kept.cls == "complex"
    assert kept.reading is not None and kept.reading["sticky"]["kept"] is True
    if alone.cls != "complex":
        assert kept.rule == "sticky"


def test_a_clear_new_ask_changes_the_task_class(runtime: Runtime) -> None:
    memory = TaskMemory()
    runtime.decide("chat", turn(TASK), memory=memory)
    ok = {"role": "assistant", "content": "Done."}
    port = {"role": "user", "content": "Ahora porta el módulo de sesiones a Rust, por favor."}
    changed = runtime.decide("chat", turn(TASK, ok, port), memory=memory)
    assert changed.cls == "multi-language"
    assert changed.reading is not None and changed.reading["sticky"]["kept"] is False


def test_explaining_does_not_teach_the_memory(runtime: Runtime) -> None:
    memory = TaskMemory()
    runtime.decide("chat", turn(TASK), memory=memory, learn=False)
    assert len(memory) == 0


def test_stickiness_can_be_switched_off() -> None:
    data = make_config("http://127.0.0.1:9")
    data["classifier"] = {"stickiness": {"enabled": False}}
    runtime = Runtime(parse_config(data), "<test>", {})
    memory = TaskMemory()
    runtime.decide("chat", turn(TASK), memory=memory)
    assert len(memory) == 0
