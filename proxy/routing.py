"""From a requested model name to an ordered list of variants. Pure: no I/O.

A client names one of:

* a variant or one of its aliases → that variant only (no classification);
* a class (`completion`, `instruction`, `complex`, `multi-language`) → that
  class's route, skipping classification;
* `auto` → the request is classified and the class's route is used.

A route is an ordered candidate list. A candidate that can't serve what the
request needs (`Needs`: an infill-capable variant for a FIM prompt, a chat
model for chat traffic, tool calling when the request offers tools, a context
window that holds the prompt) is skipped with the reason. Infill and chat are
preferences: when they leave no candidate, `Runtime.decide` routes again
without them and the request is adapted to the variant (`proxy.prompting`).
Without weights the first eligible candidate wins and the rest are fallbacks,
in order. With weights (a canary or A/B split) the first pick is drawn by
weight among the eligible ones and the others follow by descending weight.
Eligibility (backend health, pin drift, capacity) is a callback supplied by
the I/O layer; it returns `None` for eligible or a short reason for not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import CLASSES, RouteCandidate, RouterConfig
from .fim import PromptFim

__all__ = ["Decision", "Eligibility", "Needs", "Ranker", "RouteTarget", "Router"]

#: None when the variant may serve, else why not ("backend down", "pin drifted").
Eligibility = Callable[[str], str | None]
#: Orders a route's candidates for a class by evidence (benchmark results).
Ranker = Callable[[list[str], str], list[str]]


@dataclass(frozen=True, slots=True)
class Needs:
    """What a request needs of a variant, beyond the class.

    `prompt_tokens` is called only when a candidate declares a context window, so a
    request to a route without declared windows never pays for the estimate.
    """

    infill: bool = False
    #: a chat request: base models (`api: completion`) are skipped while a chat model is left
    chat: bool = False
    tools: bool = False
    prompt_tokens: Callable[[], int] | None = None
    max_tokens: int | None = None
    #: serving windows learned from the backends (`proxy.contextwindow`), by variant; they
    #: take the place of a variant's declared `context_window` (already capped by it)
    windows: Mapping[str, int] | None = None

    def window(self, name: str, declared: int | None) -> int | None:
        """The window variant `name` serves: learned if known, else declared."""
        learned = self.windows.get(name) if self.windows is not None else None
        return learned if learned is not None else declared

    def context_reason(self, window: int) -> str | None:
        """Why a variant with a `window`-token context can't take the request, or None."""
        if self.prompt_tokens is None:
            return None
        prompt = self.prompt_tokens()
        need = prompt + (self.max_tokens or 0)
        if need <= window:
            return None
        answer = f" + max_tokens {self.max_tokens}" if self.max_tokens else ""
        return f"context window {window} tokens < ~{need} needed (prompt ~{prompt}{answer})"


@dataclass(frozen=True, slots=True)
class RouteTarget:
    kind: Literal["variant", "class", "auto"]
    name: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Why a request goes where it goes; rendered in headers, `/route/explain` and the CLI."""

    cls: str
    rule: str
    reason: str
    variant: str | None
    candidates: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    signals: Mapping[str, Any] = field(default_factory=dict)
    #: the request's FIM reading, made once and passed on to the body rewrite
    prompt_fim: PromptFim | None = field(default=None, compare=False, repr=False)
    #: how the request was read, for explanations: the client, the ask (truncated), the
    #: size split in tokens, and the task stickiness that applied (None: classification
    #: was skipped)
    reading: Mapping[str, Any] | None = field(default=None, compare=False)
    #: what the first candidate changes in the request: `adapted` (a chat request as a
    #: plain transcript, infill as prefix-only), the defaults it fills in, and `capped`
    applied: Mapping[str, Any] | None = field(default=None, compare=False)
    #: the prompt's size against the candidates' windows, when a window was consulted:
    #: `prompt_tokens`, `counted_by` (an estimate or a tokenizer) and `windows`
    context: Mapping[str, Any] | None = field(default=None, compare=False)
    #: a Responses request as the chat request it is routed (and, translated, sent) as
    chat: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "class": self.cls,
            "rule": self.rule,
            "reason": self.reason,
            "variant": self.variant,
            "candidates": list(self.candidates),
            "skipped": dict(self.skipped),
            "signals": dict(self.signals),
        }
        if self.reading is not None:
            out.update(self.reading)
        if self.applied:
            out["applied"] = dict(self.applied)
        if self.context:
            out["context"] = dict(self.context)
        return out


class Router:
    """Compiled once per config: name lookup and candidate ordering."""

    def __init__(self, cfg: RouterConfig) -> None:
        self.cfg = cfg
        names: dict[str, RouteTarget] = {"auto": RouteTarget("auto", "auto")}
        for cls in CLASSES:
            names[cls] = RouteTarget("class", cls)
        for name, variant in cfg.variants.items():
            names[name] = RouteTarget("variant", name)
            for alias in variant.aliases:
                names[alias] = RouteTarget("variant", name)
        self._names = names
        self._infill = frozenset(n for n, v in cfg.variants.items() if v.fim is not None)
        self._base = frozenset(n for n, v in cfg.variants.items() if v.api == "completion")

    def resolve(self, model: str) -> RouteTarget | None:
        return self._names.get(model)

    def known_names(self) -> list[str]:
        return list(self._names)

    def route(self, cls: str) -> list[RouteCandidate]:
        route = self.cfg.routes.for_class(cls)
        if not route:
            return [RouteCandidate(variant=self.cfg.routes.default)]
        return route

    def unable(self, name: str, needs: Needs) -> str | None:
        """Why variant `name` can't serve what the request needs, or None."""
        if needs.infill and name not in self._infill:
            return "cannot fill in the middle (no fim format)"
        if needs.chat and name in self._base:
            return "base model (api: completion): chat only as a plain transcript"
        variant = self.cfg.variants[name]
        if needs.tools and variant.tools is False:
            return "cannot call tools (tools: false)"
        window = needs.window(name, variant.context_window)
        if window is not None:
            return needs.context_reason(window)
        return None

    def candidates(
        self,
        cls: str,
        *,
        needs: Needs | None = None,
        eligible: Eligibility | None = None,
        draw: float = 0.0,
        rank: Ranker | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """Ordered variants to try for a class, and why the others were skipped.

        `draw` is a number in [0, 1) used for the weighted pick, passed in so
        that this stays deterministic under test. `rank` reorders a route whose
        `order` is `benchmark` by the latest evidence.
        """
        skipped: dict[str, str] = {}
        usable: list[RouteCandidate] = []
        for candidate in self.route(cls):
            name = candidate.variant
            why = self.unable(name, needs) if needs is not None else None
            if why is None and eligible is not None:
                why = eligible(name)
            if why is not None:
                skipped[name] = why
                continue
            usable.append(candidate)
        if not usable or usable[0].weight is None:
            names = [c.variant for c in usable]
            if rank is not None and self.cfg.routes.order.get(cls) == "benchmark":
                names = rank(names, cls)
            return names, skipped
        total = sum(c.weight or 0.0 for c in usable)
        point = draw * total
        chosen = usable[-1]
        for candidate in usable:
            point -= candidate.weight or 0.0
            if point < 0:
                chosen = candidate
                break
        rest = sorted((c for c in usable if c is not chosen), key=lambda c: -(c.weight or 0.0))
        return [chosen.variant, *(c.variant for c in rest)], skipped
