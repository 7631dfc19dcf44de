"""Why did this request go where it went? The decisions of recent requests, by replay id.

Every routed request gets a replay id (`x-route-replay` header, `x_route.replay_id`
in the answer when the variant is shown). `GET /route/explain/{replay_id}` reads the
decision back as `/route/explain` would have shown it, plus what happened: the
variant that served, the fallbacks, the status.

The log keeps the `Decision` objects themselves (frozen, already built) and renders
them only when asked, so a request pays for a dictionary insert, not for JSON.
Memory is bounded: the oldest entries go first once `server.replay_size` are kept.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .routing import Decision

__all__ = ["Replay", "ReplayLog"]


@dataclass(slots=True)
class Replay:
    """One request's decision and, once it is over, what came of it (the variant that
    served after any fallback, and the status; None while in flight)."""

    endpoint: str
    decision: Decision
    at: float = field(default_factory=time.time)
    served_by: str | None = None
    status: int | None = None

    def as_dict(self, replay_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"replay_id": replay_id, "endpoint": self.endpoint}
        out["at"] = self.at
        out.update(self.decision.as_dict())
        out["served_by"] = self.served_by
        out["status"] = self.status
        return out


class ReplayLog:
    """A bounded, least-recently-added map from replay id to `Replay`."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[str, Replay] = OrderedDict()

    @staticmethod
    def new_id() -> str:
        return "rpl_" + secrets.token_hex(8)

    def add(self, replay_id: str, replay: Replay) -> None:
        if self.size <= 0:
            return
        self._items[replay_id] = replay
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, replay_id: str) -> Replay | None:
        return self._items.get(replay_id)

    def __len__(self) -> int:
        return len(self._items)
