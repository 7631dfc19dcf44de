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

The `groups:` schema lives here too (`Group`, `check_groups`), beside the
rules it configures; `proxy.config` includes it in the one config model.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ConfigIssue

__all__ = [
    "EvictionReason",
    "Group",
    "GroupMember",
    "Member",
    "Plan",
    "check_groups",
    "plan",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class GroupMember(BaseModel):
    """A managed backend in a group; `persistent` ones are never evicted to make room."""

    model_config = _STRICT

    backend: str
    persistent: bool = False


def _members(value: Any) -> Any:
    if isinstance(value, list):
        return [{"backend": item} if isinstance(item, str) else item for item in value]
    return value


class Group(BaseModel):
    """`groups.<name>`: managed backends that share one machine's budget.

    At most `max_loaded` members run at once and their resident memory (measured once
    loaded, estimated from `model_file` before) stays within `memory_mb`; a request for
    a member that doesn't fit stops the least recently used idle members first.
    """

    model_config = _STRICT

    members: list[GroupMember]
    max_loaded: int | None = Field(None, ge=1)
    memory_mb: float | None = Field(None, gt=0)

    _coerce = field_validator("members", mode="before")(_members)

    @model_validator(mode="after")
    def _has_budget(self) -> Group:
        if self.max_loaded is None and self.memory_mb is None:
            raise ValueError("give max_loaded, memory_mb or both: a group without a budget")
        if not self.members:
            raise ValueError("members: at least one backend")
        return self


def check_groups(
    groups: Mapping[str, Group], *, managed: Collection[str], known: Collection[str]
) -> list[ConfigIssue]:
    """What the schema can't check alone: members are managed backends, each in one group,
    and persistent members leave room for the others."""
    issues: list[ConfigIssue] = []
    owner: dict[str, str] = {}
    names = ", ".join(sorted(managed)) or "none"
    for name, group in groups.items():
        for i, member in enumerate(group.members):
            key, backend = f"groups.{name}.members.{i}", member.backend
            if backend not in known:
                why = f"unknown backend {backend!r} (managed backends: {names})"
            elif backend not in managed:
                why = (
                    f"backend {backend!r} is not managed (it has a url, no command): "
                    "variant-proxy can only load and unload servers it runs itself"
                )
            elif backend in owner:
                where = "this group" if owner[backend] == name else f"group {owner[backend]!r}"
                why = f"backend {backend!r} is already in {where}"
            else:
                owner[backend] = name
                continue
            issues.append(ConfigIssue(key, why))
        pinned = sum(1 for m in group.members if m.persistent)
        if group.max_loaded is not None and len(group.members) > pinned >= group.max_loaded:
            issues.append(
                ConfigIssue(
                    f"groups.{name}.max_loaded",
                    f"{pinned} persistent members fill max_loaded {group.max_loaded}: "
                    "the other members could never load",
                )
            )
    return issues


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
