"""Warm-aware routing: skip a candidate that would make the request wait too long to load.

A 300 ms autocomplete request that waits 20 s for its best variant to load
is worse served than by a good-enough variant that is already running. A
route may set `max_cold_start` (seconds) per class; after the router has
ordered the candidates, `prefer_warm` drops those whose expected wait to
load exceeds it, *while a candidate within the budget is left*. When every
candidate is over the budget the order stays as it is: the request waits for
the best one, as it would without a budget. A request that names its
variant is never rerouted.

A candidate is `warm` (running), `loading` (starting; the wait is what is
left of its expected load time) or `cold` (stopped; the wait is its load
time learned from past starts, `ManagedProcess.expected_load_seconds`). A
variant with replicas is as warm as its warmest backend. A backend the proxy
does not run is warm, except on Ollama and LM Studio, which say which models
they hold (`proxy.backends.loaded`): a model they don't hold is cold with an
unknown load time. Until a managed backend has loaded once its load time is
unknown too, and unknown counts as over any budget
(`POST /admin/load/<backend>` warms a managed backend and measures it).

Pure: the warmth readings come in as a function, a list and reasons go out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["WARM", "Warmth", "describe", "note", "prefer_warm", "warmest", "within"]

WarmState = Literal["warm", "loading", "cold"]


@dataclass(frozen=True, slots=True)
class Warmth:
    """How soon a backend (or a variant, through its warmest backend) could answer."""

    state: WarmState
    #: seconds until it could answer; 0 when warm, None when unknown (never loaded)
    wait: float | None = 0.0


WARM = Warmth("warm", 0.0)


def warmest(readings: Sequence[Warmth]) -> Warmth:
    """A variant's warmth from its backends': the one that could answer soonest."""
    if not readings:
        return WARM
    order = {"warm": 0, "loading": 1, "cold": 2}
    return min(
        readings,
        key=lambda w: (w.wait is None, w.wait if w.wait is not None else 0.0, order[w.state]),
    )


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def describe(warmth: Warmth, budget: float) -> str:
    """Why a candidate is over the budget: `cold, ~8.0 s to load > 0.5 s budget`."""
    limit = f"{budget:g} s budget"
    if warmth.wait is None:
        return f"{warmth.state}, load time unknown > {limit}"
    verb = "left to load" if warmth.state == "loading" else "to load"
    return f"{warmth.state}, ~{_seconds(warmth.wait)} {verb} > {limit}"


def within(warmth: Warmth, budget: float) -> bool:
    return warmth.state == "warm" or (warmth.wait is not None and warmth.wait <= budget)


def prefer_warm(
    candidates: Sequence[str], budget: float | None, warmth: Callable[[str], Warmth]
) -> tuple[list[str], dict[str, str]]:
    """The candidates within `budget`, in order, and why the others were skipped.

    Unchanged (and nothing skipped) without a budget, or when no candidate is within it.
    """
    if budget is None or len(candidates) < 2:
        return list(candidates), {}
    readings = {name: warmth(name) for name in candidates}
    kept = [name for name in candidates if within(readings[name], budget)]
    if not kept or len(kept) == len(candidates):
        return list(candidates), {}
    skipped = {name: describe(readings[name], budget) for name in candidates if name not in kept}
    return kept, skipped


def note(skipped: Mapping[str, str]) -> str:
    """The skips as one phrase for a decision's reason."""
    return "; ".join(f"skipped {name}: {why}" for name, why in skipped.items())
