"""Which members of a group to stop so that another one fits. Pure: no I/O.

A group (`groups:` in the config, llama-swap's idea) is a set of managed
backends that share one machine: at most `max_loaded` of them run at once,
and their resident memory stays within `memory_mb`. When a request needs a
member that is not loaded, `plan` says which loaded members to stop first:

* only *idle* members are stopped (a member with a request in flight, a
  stream half sent, is never cut), and never a `persistent` one;
* least recently used first, and only as many as the budget needs;
* memory is what each loaded member's process tree actually holds (its RSS,
  measured when the plan is made); a member not loaded yet counts what it
  held last time, or its model file's size before its first load.

The plan is `ready` (stop `evict`, then start the member), `blocked` (it
would fit once busy members finish: wait and plan again) or `never` (the
member alone is bigger than the budget). `proxy.swapper` gathers the
`Member` readings, carries the plan out and does the waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["EvictionReason", "Member", "Plan", "plan"]

#: why a member was stopped: the group's process count, its memory, or an admin's unload
EvictionReason = Literal["max_loaded", "memory", "admin"]


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a group as the swapper sees it at the moment of planning."""

    name: str
    #: a process is running or starting (ready, starting or restarting)
    loaded: bool
    #: requests in flight (queued for it or being answered)
    in_flight: int
    #: when it last had traffic (monotonic seconds): the least recent goes first
    last_used: float
    #: MB it holds (measured when loaded) or is expected to hold; None: unknown
    footprint_mb: float | None
    persistent: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do for a request that needs `want`."""

    status: Literal["ready", "blocked", "never"]
    #: members to stop first, in order, each with its reason
    evict: tuple[tuple[str, EvictionReason], ...] = ()
    #: why not now (blocked) or never
    why: str = ""


def _mb(value: float | None) -> str:
    return "unknown size" if value is None else f"{value:.0f} MB"


def plan(
    members: Sequence[Member],
    want: str,
    *,
    max_loaded: int | None,
    memory_mb: float | None,
) -> Plan:
    """The members to stop so that `want` fits the group's budget (see module doc)."""
    by_name = {m.name: m for m in members}
    target = by_name[want]
    if target.loaded:
        return Plan("ready")
    need = target.footprint_mb or 0.0
    if memory_mb is not None and need > memory_mb:
        return Plan(
            "never",
            why=f"{want} needs ~{_mb(need)}, more than the group's memory_mb {memory_mb:g}",
        )
    loaded = [m for m in members if m.loaded and m.name != want]

    def over(kept: list[Member]) -> EvictionReason | None:
        if max_loaded is not None and len(kept) + 1 > max_loaded:
            return "max_loaded"
        if memory_mb is not None and sum(m.footprint_mb or 0.0 for m in kept) + need > memory_mb:
            return "memory"
        return None

    victims = sorted(
        (m for m in loaded if m.in_flight == 0 and not m.persistent), key=lambda m: m.last_used
    )
    kept = list(loaded)
    evict: list[tuple[str, EvictionReason]] = []
    reason = over(kept)
    while reason is not None and victims:
        victim = victims.pop(0)
        kept.remove(victim)
        evict.append((victim.name, reason))
        reason = over(kept)
    if reason is None:
        return Plan("ready", tuple(evict))
    held = ", ".join(
        f"{m.name}: {'persistent' if m.persistent else f'{m.in_flight} in flight'}" for m in kept
    )
    if reason == "max_loaded":
        limit = f"max_loaded {max_loaded} reached"
    else:
        used = sum(m.footprint_mb or 0.0 for m in kept)
        limit = f"~{used:.0f} MB loaded + ~{need:.0f} MB for {want} > memory_mb {memory_mb:g}"
    return Plan("blocked", why=f"{limit}, and every loaded member is busy or persistent ({held})")
