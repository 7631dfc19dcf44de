"""Task stickiness: the steps of one agent task keep the class of the task's first ask.

An agent (Cline, Roo, aider, any tool-calling loop) sends one request per step: the
first carries the user's task, the later ones carry tool output or a short reply.
Classified on its own, a step can land on another class, and so on another backend,
which throws away the warm KV cache of the conversation and mixes models mid-task.
So the first ask of a task sets its class, and later steps keep it unless the user
clearly changes course: a new human ask (not tool output) that a rule places in
another class. A step that no rule claims (`default`) keeps the task's class.

A task is known by the envelope's `task_key` (a hash of its system prompt and first
human ask). Memory is bounded: at most `max_tasks` tasks, least recently used first
out, each forgotten `ttl` seconds after its last step. Pure apart from the clock,
which is injected; one instance lives as long as the proxy and survives reloads.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Remembered", "TaskMemory"]


@dataclass(frozen=True, slots=True)
class Remembered:
    """A task's class and the rule that set it."""

    cls: str
    rule: str
    since: float


class TaskMemory:
    """Recent tasks' classes, bounded in number and age."""

    def __init__(
        self,
        max_tasks: int = 4096,
        ttl: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tasks = max_tasks
        self.ttl = ttl
        self.clock = clock
        self._tasks: OrderedDict[str, tuple[Remembered, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tasks)

    def recall(self, key: str, *, touch: bool = True) -> Remembered | None:
        """The task's class, if it is remembered and fresh; `touch` marks it used now."""
        found = self._tasks.get(key)
        if found is None:
            return None
        remembered, seen = found
        now = self.clock()
        if now - seen > self.ttl:
            del self._tasks[key]
            return None
        if touch:
            self._tasks[key] = (remembered, now)
            self._tasks.move_to_end(key)
        return remembered

    def remember(self, key: str, cls: str, rule: str) -> None:
        """Set the task's class (its first ask, or a clear change of course)."""
        now = self.clock()
        self._tasks[key] = (Remembered(cls, rule, now), now)
        self._tasks.move_to_end(key)
        while len(self._tasks) > self.max_tasks:
            self._tasks.popitem(last=False)
