"""The routing decision: `Runtime.decide` (pure apart from a random draw) and
`Dispatcher.decide`, which adds this process's live eligibility (breakers, full
queues, pins) and the benchmark ranking. Tables of request → decision, no I/O.
"""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from proxy.config import parse_config
from proxy.dispatch import Dispatcher
from proxy.errors import ModelNotFound, Unavailable, UpstreamBusy
from proxy.metrics import Metrics
from proxy.runtime import Runtime
from tests.helpers.config import make_config

URL = "http://127.0.0.1:1"
FIM_PROMPT = "<fim_prefix>def f():\n    <fim_suffix>\n    return x<fim_middle>"


def runtime(**routes: Any) -> Runtime:
    """`make_config`'s two-backend setup, plus an embeddings variant, a variant on a
    backend with one slot and no queue (`tight`), a replicated variant, and a completion
    route whose first candidate cannot fill in the middle."""
    data = make_config(URL)
    data["backends"]["tight"] = {
        "kind": "openai",
        "url": URL,
        "max_concurrency": 1,
        "max_queue": 0,
        "queue_timeout": 8,
    }
    data["variants"]["embed"] = {"backend": "spare", "model": "up-embed"}
    data["variants"]["crowded"] = {"backend": "tight", "model": "up-crowded"}
    data["variants"]["pair"] = {"backend": "dead", "replicas": ["tight"], "model": "up-pair"}
    data["routes"].update({"embeddings": ["embed"], "completion": ["instruct", "code"]})
    data["routes"].update(routes)
    return Runtime(parse_config(data), "<test>", {})


def chat(text: str, model: str = "auto") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


class Pins:
    """The pin guard's per-request surface, refusing the variants in `refused`."""

    def __init__(self, refused: dict[str, str] | None = None) -> None:
        self.refused = refused or {}

    def eligible(self, variant: str) -> str | None:
        return self.refused.get(variant)


def dispatcher(pins: Pins | None = None, rank: Any = None) -> Dispatcher:
    # decide never touches the HTTP client or managed processes
    return Dispatcher(
        Metrics(),
        cast(Any, None),
        native=None,
        managed={},
        pins=cast(Any, pins or Pins()),
        rank=rank,
    )


def open_breaker(rt: Runtime, backend: str) -> None:
    breaker = rt.backends[backend].breaker
    for _ in range(breaker.threshold):
        breaker.failure(time.monotonic())


def fill(rt: Runtime, backend: str) -> None:
    """Take every slot of `backend` (its queue is 0 long), so it is busy."""
    limiter = rt.backends[backend].limiter
    assert limiter.max_concurrency is not None
    limiter.active = limiter.max_concurrency


# -- Runtime.decide: classification and routes ------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "payload", "cls", "rule", "candidates"),
    [
        # auto: classified, then the class's route
        ("chat", chat("Write a Python function that reverses a string."), "instruction",
         "default", ("instruct",)),
        ("chat", chat("Design a sharded, replicated architecture with trade-offs."), "complex",
         "hard-problem", ("ghost", "big")),
        ("chat", chat("Escribe una función en Python que sume una lista."), "multi-language",
         "non-english", ("big",)),
        ("completions", {"model": "auto", "prompt": "import os\n\ndef main():\n    "},
         "completion", "code-continuation", ("instruct", "code")),
        # a class name: no classification, the class's route as configured
        ("chat", chat("Escribe una función.", model="complex"), "complex", "model",
         ("ghost", "big")),
        ("completions", {"model": "completion", "prompt": "Once upon"}, "completion", "model",
         ("instruct", "code")),
        # a variant or an alias: that variant only
        ("chat", chat("Design a sharded architecture.", model="big"), "direct", "model",
         ("big",)),
        ("chat", chat("hi", model="ci"), "direct", "model", ("instruct",)),
        ("completions", {"model": "code", "prompt": "x"}, "direct", "model", ("code",)),
        # embeddings go by endpoint, whatever class the model names
        ("embeddings", {"model": "auto", "input": "hello"}, "embeddings", "endpoint",
         ("embed",)),
        ("embeddings", {"model": "complex", "input": "hello"}, "embeddings", "endpoint",
         ("embed",)),
    ],
    ids=["auto-instruction", "auto-complex", "auto-multi-language", "auto-completion",
         "class-complex", "class-completion", "variant", "alias", "variant-completions",
         "embeddings-auto", "embeddings-class"],
)  # fmt: skip
def test_runtime_decide(
    endpoint: str, payload: dict[str, Any], cls: str, rule: str, candidates: tuple[str, ...]
) -> None:
    decision = runtime().decide(endpoint, payload)
    assert (decision.cls, decision.rule, decision.candidates) == (cls, rule, candidates)
    assert decision.variant == candidates[0]
    assert decision.skipped == {}
    assert decision.reason


def test_direct_names_its_variant_in_the_reason() -> None:
    decision = runtime().decide("chat", chat("hi", model="ci"))
    assert decision.reason == "model 'ci' names variant instruct"


def test_auto_carries_the_classifier_signals() -> None:
    decision = runtime().decide("chat", chat("Translate this to Kotlin:\n```java\nclass A {}\n```"))
    assert (decision.cls, decision.rule) == ("multi-language", "translation")
    assert decision.reason.startswith("rule translation: ")
    assert decision.signals


@pytest.mark.parametrize("model", ["gpt-4o", "Instruct", "", "x" * 300])
def test_unknown_model_lists_the_known_names(model: str) -> None:
    rt = runtime()
    with pytest.raises(ModelNotFound) as info:
        rt.decide("chat", chat("hi", model=model))
    message = info.value.message
    assert info.value.param == "model"
    for name in ("auto", "complex", "multi-language", "instruct", "ci", "code", "embed"):
        assert name in message.split("Choose one of: ")[1].split(", ")
    assert len(message) < 400  # the echoed name is cut, the list is not


@pytest.mark.parametrize(
    ("model", "payload", "candidates", "skipped"),
    [
        # FIM markers in the prompt, classified or named by class: infill-capable only
        ("auto", {"prompt": FIM_PROMPT}, ("code",), ("instruct",)),
        ("completion", {"prompt": FIM_PROMPT}, ("code",), ("instruct",)),
        # an OpenAI `suffix` asks for infill just the same
        ("auto", {"prompt": "def f():\n    ", "suffix": "\n    return x"}, ("code",),
         ("instruct",)),
        ("completion", {"prompt": "def f():\n    ", "suffix": "\n"}, ("code",), ("instruct",)),
        # an empty suffix and a plain prompt don't
        ("completion", {"prompt": "def f():\n    ", "suffix": ""}, ("instruct", "code"), ()),
        ("completion", {"prompt": "def f():\n    "}, ("instruct", "code"), ()),
    ],
    ids=["auto-markers", "class-markers", "auto-suffix", "class-suffix", "empty-suffix", "plain"],
)  # fmt: skip
def test_fim_completion_prefers_infill_variants(
    model: str, payload: dict[str, Any], candidates: tuple[str, ...], skipped: tuple[str, ...]
) -> None:
    decision = runtime().decide("completions", {"model": model, **payload})
    assert decision.candidates == candidates
    assert tuple(decision.skipped) == skipped
    for why in decision.skipped.values():
        assert why == "cannot fill in the middle (no fim format)"


def test_fim_markers_in_chat_do_not_ask_for_infill() -> None:
    decision = runtime().decide("chat", chat(FIM_PROMPT, model="completion"))
    assert decision.candidates == ("instruct", "code")


def test_weighted_route_uses_the_random_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime(
        instruction=[{"variant": "instruct", "weight": 90}, {"variant": "big", "weight": 10}]
    )
    payload = chat("hi", model="instruction")
    monkeypatch.setattr("proxy.runtime.random.random", lambda: 0.95)
    assert rt.decide("chat", payload).candidates == ("big", "instruct")
    monkeypatch.setattr("proxy.runtime.random.random", lambda: 0.05)
    assert rt.decide("chat", payload).candidates == ("instruct", "big")


# -- benchmark order ---------------------------------------------------------------------------


def reverse_rank(calls: list[tuple[list[str], str]]) -> Any:
    def rank(names: list[str], cls: str) -> list[str]:
        calls.append((list(names), cls))
        return list(reversed(names))

    return rank


def test_benchmark_route_is_reordered_by_rank() -> None:
    rt = runtime(complex={"order": "benchmark", "candidates": ["ghost", "big"]})
    calls: list[tuple[list[str], str]] = []
    decision = rt.decide("chat", chat("x", model="complex"), rank=reverse_rank(calls))
    assert decision.candidates == ("big", "ghost")
    assert decision.variant == "big"
    assert calls == [(["ghost", "big"], "complex")]


def test_benchmark_rank_sees_only_eligible_candidates() -> None:
    rt = runtime(complex={"order": "benchmark", "candidates": ["ghost", "big", "instruct"]})
    calls: list[tuple[list[str], str]] = []
    decision = rt.decide(
        "chat", chat("x", model="complex"), {"big": "down"}.get, reverse_rank(calls)
    )
    assert decision.candidates == ("instruct", "ghost")
    assert calls == [(["ghost", "instruct"], "complex")]
    assert decision.skipped == {"big": "down"}


@pytest.mark.parametrize("model", ["complex", "big"])
def test_rank_leaves_config_ordered_routes_and_direct_alone(model: str) -> None:
    calls: list[tuple[list[str], str]] = []
    decision = runtime().decide("chat", chat("x", model=model), rank=reverse_rank(calls))
    assert decision.candidates[0] == {"complex": "ghost", "big": "big"}[model]
    assert calls == []


def test_dispatcher_passes_its_rank() -> None:
    rt = runtime(complex={"order": "benchmark", "candidates": ["ghost", "big"]})
    calls: list[tuple[list[str], str]] = []
    decision = dispatcher(rank=reverse_rank(calls)).decide(rt, "chat", chat("x", model="complex"))
    assert decision.candidates == ("big", "ghost")
    assert len(calls) == 1


# -- Dispatcher.decide: live eligibility --------------------------------------------------------


def _breaker_dead(rt: Runtime) -> None:
    open_breaker(rt, "dead")


def _nothing(rt: Runtime) -> None:
    pass


@pytest.mark.parametrize(
    ("routes", "prepare", "pins", "candidates", "skipped"),
    [
        ({}, _nothing, {}, ("ghost", "big"), {}),
        ({}, _breaker_dead, {}, ("big",), {"ghost": "backend dead circuit open"}),
        ({"complex": ["crowded", "big"]}, lambda rt: fill(rt, "tight"), {}, ("big",),
         {"crowded": "backend tight busy (queue full)"}),
        ({}, _nothing, {"ghost": "pin drifted: expected abc, serving def"}, ("big",),
         {"ghost": "pin drifted: expected abc, serving def"}),
        # a pin refusal is reported as it is, before the backends are looked at
        ({}, _breaker_dead, {"ghost": "pin unverifiable"}, ("big",),
         {"ghost": "pin unverifiable"}),
        # a replicated variant is eligible while any of its backends is usable ...
        ({"complex": ["pair", "big"]}, _breaker_dead, {}, ("pair", "big"), {}),
        ({"complex": ["pair", "big"]}, lambda rt: fill(rt, "tight"), {}, ("pair", "big"), {}),
        # ... and skipped with every backend's reason when none is
        ({"complex": ["pair", "big"]}, lambda rt: (_breaker_dead(rt), fill(rt, "tight")), {},
         ("big",),
         {"pair": "backend dead circuit open; backend tight busy (queue full)"}),
    ],
    ids=["all-eligible", "breaker-open", "queue-full", "pin", "pin-first", "replica-down",
         "replica-busy", "replicas-all-out"],
)  # fmt: skip
def test_dispatcher_decide_skips_ineligible(
    routes: dict[str, Any],
    prepare: Any,
    pins: dict[str, str],
    candidates: tuple[str, ...],
    skipped: dict[str, str],
) -> None:
    rt = runtime(**routes)
    prepare(rt)
    decision = dispatcher(Pins(pins)).decide(rt, "chat", chat("x", model="complex"))
    assert decision.candidates == candidates
    assert decision.skipped == skipped


def test_half_open_breaker_is_eligible_until_its_trial_is_out() -> None:
    rt = runtime()
    breaker = rt.backends["dead"].breaker
    for _ in range(breaker.threshold):
        breaker.failure(time.monotonic() - breaker.cooldown - 1)
    d = dispatcher()
    assert d.decide(rt, "chat", chat("x", model="complex")).candidates == ("ghost", "big")
    assert breaker.allow(time.monotonic())  # the trial is taken
    assert d.decide(rt, "chat", chat("x", model="complex")).candidates == ("big",)


def test_direct_variant_ignores_eligibility() -> None:
    """Naming a variant sends the request there whatever its state; the attempt reports it."""
    rt = runtime()
    open_breaker(rt, "dead")
    decision = dispatcher(Pins({"ghost": "pin drifted"})).decide(rt, "chat", chat("x", "ghost"))
    assert (decision.cls, decision.candidates, decision.skipped) == ("direct", ("ghost",), {})


def test_every_candidate_busy_is_upstream_busy_with_retry_after() -> None:
    rt = runtime(complex=["crowded"])
    fill(rt, "tight")
    with pytest.raises(UpstreamBusy) as info:
        dispatcher().decide(rt, "chat", chat("x", model="complex"))
    assert info.value.retry_after == 8 / 4  # the tight backend's queue_timeout / 4
    assert "every variant for class 'complex' is busy" in info.value.message
    assert "crowded: backend tight busy (queue full)" in info.value.message


def test_busy_replicas_count_only_when_every_backend_is_busy() -> None:
    rt = runtime(complex=["pair"])
    fill(rt, "tight")
    open_breaker(rt, "dead")  # one backend busy, the other down: unavailable, not busy
    with pytest.raises(Unavailable):
        dispatcher().decide(rt, "chat", chat("x", model="complex"))


@pytest.mark.parametrize(
    ("route", "prepare", "pins", "reasons"),
    [
        (["ghost", "big"], lambda rt: (open_breaker(rt, "dead"), open_breaker(rt, "spare")), {},
         ["ghost: backend dead circuit open", "big: backend spare circuit open"]),
        (["ghost", "big"], _nothing, {"ghost": "pin drifted", "big": "pin unverifiable"},
         ["ghost: pin drifted", "big: pin unverifiable"]),
        # one busy, one down: not every candidate is busy, so no retry_after promise
        (["crowded", "ghost"], lambda rt: (open_breaker(rt, "dead"), fill(rt, "tight")), {},
         ["crowded: backend tight busy (queue full)", "ghost: backend dead circuit open"]),
    ],
    ids=["breakers-open", "pins", "busy-and-down"],
)  # fmt: skip
def test_none_eligible_is_unavailable(
    route: list[str], prepare: Any, pins: dict[str, str], reasons: list[str]
) -> None:
    rt = runtime(complex=route)
    prepare(rt)
    with pytest.raises(Unavailable) as info:
        dispatcher(Pins(pins)).decide(rt, "chat", chat("x", model="complex"))
    assert info.value.message.startswith("no eligible variant for class 'complex'")
    for reason in reasons:
        assert reason in info.value.message
