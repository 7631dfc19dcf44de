"""The replay log: decisions by replay id, bounded, rendered only when asked."""

from __future__ import annotations

from proxy.replay import Replay, ReplayLog
from proxy.routing import Decision


def decision(variant: str) -> Decision:
    return Decision("instruction", "r", "why", variant, (variant, "b"), {"c": "down"})


def test_the_oldest_go_first_once_full() -> None:
    log = ReplayLog(size=2)
    ids = [log.new_id() for _ in range(3)]
    assert len(set(ids)) == 3 and all(i.startswith("rpl_") for i in ids)
    for n, replay_id in enumerate(ids):
        log.add(replay_id, Replay("chat", decision(f"v{n}")))
    assert len(log) == 2 and log.get(ids[0]) is None
    kept = log.get(ids[2])
    assert kept is not None and kept.decision.variant == "v2"


def test_what_came_of_the_request_is_read_when_asked() -> None:
    replay = Replay("chat", decision("a"))
    assert replay.as_dict("rpl_x")["status"] is None  # in flight
    replay.served_by, replay.status = "b", 200  # the dispatcher fell back after the decision
    shown = replay.as_dict("rpl_x")
    assert shown["replay_id"] == "rpl_x" and shown["endpoint"] == "chat"
    assert shown["variant"] == "a" and shown["served_by"] == "b" and shown["status"] == 200
    assert shown["skipped"] == {"c": "down"} and shown["candidates"] == ["a", "b"]


def test_size_zero_keeps_nothing() -> None:
    log = ReplayLog(size=0)
    log.add("rpl_1", Replay("chat", decision("a")))
    assert len(log) == 0
