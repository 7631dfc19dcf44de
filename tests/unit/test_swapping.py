"""The pure side of groups: config validation, the eviction plan, warm-aware ordering."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.backends.loaded import lmstudio_loaded, model_key, ollama_running
from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.swapping import Member, plan
from proxy.warmth import Warmth, describe, prefer_warm, warmest
from tests.helpers.server_samples import LMSTUDIO_V0_MODELS


def cfg(groups: Any = None, routes: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "backends": {
            "a": {"kind": "llamacpp", "command": ["srv", "a"]},
            "b": {"kind": "llamacpp", "command": ["srv", "b"]},
            "c": {"kind": "llamacpp", "command": ["srv", "c"]},
            "remote": {"kind": "ollama", "url": "http://127.0.0.1:11434"},
        },
        "variants": {"va": {"backend": "a", "model": "m"}, "vb": {"backend": "b", "model": "m"}},
        "routes": routes or {"default": "va"},
    }
    if groups is not None:
        data["groups"] = groups
    return data


def test_groups_parse_plain_and_persistent_members() -> None:
    parsed = parse_config(
        cfg({"g": {"members": ["a", {"backend": "b", "persistent": True}], "max_loaded": 2}})
    )
    group = parsed.groups["g"]
    assert [(m.backend, m.persistent) for m in group.members] == [("a", False), ("b", True)]
    assert group.max_loaded == 2 and group.memory_mb is None
    assert parse_config(cfg()).groups == {}


@pytest.mark.parametrize(
    ("groups", "key", "reason"),
    [
        ({"g": {"members": ["zz"], "max_loaded": 1}}, "groups.g.members.0", "unknown backend 'zz'"),
        (
            {"g": {"members": ["remote"], "max_loaded": 1}},
            "groups.g.members.0",
            "'remote' is not managed",
        ),
        (
            {"g": {"members": ["a"], "max_loaded": 1}, "h": {"members": ["a"], "memory_mb": 9}},
            "groups.h.members.0",
            "already in group 'g'",
        ),
        ({"g": {"members": ["a", "a"], "max_loaded": 1}}, "groups.g.members.1", "this group"),
        ({"g": {"members": ["a"]}}, "groups.g", "give max_loaded, memory_mb or both"),
        ({"g": {"members": [], "max_loaded": 1}}, "groups.g", "at least one backend"),
        ({"g": {"members": ["a"], "max_loaded": 0}}, "groups.g.max_loaded", "greater than"),
        ({"g": {"members": ["a"], "memory_mb": -1}}, "groups.g.memory_mb", "greater than"),
        ({"g": {"members": ["a"], "max_loaded": 1, "swap": True}}, "groups.g.swap", "unknown key"),
        (
            {"g": {"members": [{"backend": "a", "persistent": True}, "b"], "max_loaded": 1}},
            "groups.g.max_loaded",
            "could never load",
        ),
    ],
)
def test_bad_groups_are_rejected_with_key_and_reason(groups: Any, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(cfg(groups))
    assert any(i.path == key and reason in i.reason for i in caught.value.issues), str(caught.value)


def test_max_cold_start_is_part_of_a_route_object() -> None:
    routes = {"completion": {"candidates": ["va", "vb"], "max_cold_start": 0.5}, "default": "va"}
    parsed = parse_config(cfg(routes=routes))
    assert parsed.routes.max_cold_start == {"completion": 0.5}
    assert [c.variant for c in parsed.routes.completion] == ["va", "vb"]
    bad = {"completion": {"candidates": ["va"], "max_cold_start": -1}, "default": "va"}
    with pytest.raises(ConfigError, match="max_cold_start"):
        parse_config(cfg(routes=bad))
    with pytest.raises(ConfigError, match="unknown class 'chat'"):
        parse_config(cfg(routes={"max_cold_start": {"chat": 1}, "default": "va"}))


def m(name: str, loaded: bool = True, busy: int = 0, used: float = 0, mb: float | None = None,
      persistent: bool = False) -> Member:  # fmt: skip
    return Member(name, loaded, busy, used, mb, persistent)


ML, MEM = "max_loaded", "memory"
X = m("x", loaded=False)


def x(mb: float) -> Member:
    return m("x", loaded=False, mb=mb)


@pytest.mark.parametrize(
    ("members", "max_loaded", "memory_mb", "status", "evict"),
    [
        # already loaded: nothing to do
        ([m("x")], 1, None, "ready", ()),
        # room left
        ([m("a"), X], 2, None, "ready", ()),
        # full: the least recently used idle member goes
        ([m("a", used=5), m("b", used=1), X], 2, None, "ready", (("b", ML),)),
        # the LRU one is busy: the next one goes
        ([m("a", used=5), m("b", used=1, busy=1), X], 2, None, "ready", (("a", ML),)),
        # persistent members stay
        ([m("a", used=1, persistent=True), m("b", used=5), X], 2, None, "ready", (("b", ML),)),
        # every loaded member busy: wait
        ([m("a", busy=2), X], 1, None, "blocked", ()),
        # memory: stop as many as needed, least recent first
        ([m("a", used=1, mb=40), m("b", used=2, mb=40), m("c", used=3, mb=10), x(50)],
         None, 100, "ready", (("a", MEM),)),
        ([m("a", used=1, mb=40), m("b", used=2, mb=40), x(70)],
         None, 100, "ready", (("a", MEM), ("b", MEM))),
        # fits by memory: nothing stopped, whatever the count
        ([m("a", mb=10), m("b", mb=10), x(10)], None, 100, "ready", ()),
        # both budgets: the count decides first, memory next
        ([m("a", used=1, mb=10), m("b", used=2, mb=80), x(30)], 2, 100, "ready",
         (("a", ML), ("b", MEM))),
        # bigger than the whole budget: never
        ([m("a", mb=10), x(200)], None, 100, "never", ()),
        # memory blocked by a busy member: nothing is stopped in vain
        ([m("a", used=1, mb=50), m("b", used=2, mb=40, busy=1), x(70)],
         None, 100, "blocked", ()),
        # unloaded members don't count
        ([m("a", loaded=False, mb=90), x(50)], 1, 100, "ready", ()),
    ],
)  # fmt: skip
def test_plan(
    members: list[Member],
    max_loaded: int | None,
    memory_mb: float | None,
    status: str,
    evict: tuple[tuple[str, str], ...],
) -> None:
    decided = plan(members, "x", max_loaded=max_loaded, memory_mb=memory_mb)
    assert decided.status == status, decided.why
    assert decided.evict == evict


def test_blocked_plan_says_who_holds_the_room() -> None:
    decided = plan(
        [m("a", busy=2), m("k", persistent=True), m("x", loaded=False)],
        "x",
        max_loaded=2,
        memory_mb=None,
    )
    assert decided.status == "blocked"
    assert decided.why == (
        "max_loaded 2 reached, and every loaded member is busy or persistent "
        "(a: 2 in flight, k: persistent)"
    )
    never = plan([m("x", loaded=False, mb=300)], "x", max_loaded=None, memory_mb=100)
    assert never.why == "x needs ~300 MB, more than the group's memory_mb 100"


WARM, COLD8, COLD_UNKNOWN = Warmth("warm"), Warmth("cold", 8.0), Warmth("cold", None)


@pytest.mark.parametrize(
    ("readings", "budget", "kept", "skipped"),
    [
        # no budget: as today
        ({"a": COLD8, "b": WARM}, None, ["a", "b"], []),
        # the cold best candidate is skipped for the warm one
        ({"a": COLD8, "b": WARM}, 0.5, ["b"], ["a"]),
        # within the budget: kept
        ({"a": Warmth("cold", 0.4), "b": WARM}, 0.5, ["a", "b"], []),
        ({"a": Warmth("loading", 0.2), "b": WARM}, 0.5, ["a", "b"], []),
        # unknown load time is over any budget
        ({"a": COLD_UNKNOWN, "b": WARM}, 60, ["b"], ["a"]),
        # nothing within the budget: wait for the best, as without one
        ({"a": COLD8, "b": COLD_UNKNOWN}, 0.5, ["a", "b"], []),
        # order among the kept is the route's
        ({"a": WARM, "b": COLD8, "c": Warmth("cold", 0.1)}, 1, ["a", "c"], ["b"]),
        # one candidate: never rerouted
        ({"a": COLD8}, 0.5, ["a"], []),
    ],
)
def test_prefer_warm(
    readings: dict[str, Warmth], budget: float | None, kept: list[str], skipped: list[str]
) -> None:
    got, why = prefer_warm(list(readings), budget, readings.__getitem__)
    assert got == kept
    assert sorted(why) == skipped


def test_warmth_words_and_replicas() -> None:
    assert describe(COLD8, 0.5) == "cold, ~8.0 s to load > 0.5 s budget"
    assert describe(Warmth("cold", 21.4), 2) == "cold, ~21 s to load > 2 s budget"
    assert describe(Warmth("loading", 3.0), 1) == "loading, ~3.0 s left to load > 1 s budget"
    assert describe(COLD_UNKNOWN, 0.5) == ("cold, load time unknown > 0.5 s budget")
    # a variant is as warm as its warmest backend
    assert warmest([COLD8, WARM]) == WARM
    assert warmest([COLD_UNKNOWN, COLD8]) == COLD8
    assert warmest([]) == WARM


def test_what_ollama_and_lm_studio_say_they_hold() -> None:
    ps = {
        "models": [
            {"name": "gemma3", "model": "gemma3", "size": 6591830464, "size_vram": 0},
            {"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b"},
        ]
    }
    assert ollama_running(ps) == {"gemma3:latest", "qwen2.5-coder:7b"}
    assert ollama_running({"models": []}) == frozenset()
    assert ollama_running({"error": "unauthorized"}) is None
    assert model_key("ollama", "gemma3") == "gemma3:latest"
    assert model_key("ollama", "library/gemma3:4b") == "library/gemma3:4b"
    assert model_key("lmstudio", "gemma3") == "gemma3"
    assert lmstudio_loaded(LMSTUDIO_V0_MODELS) == {"meta-llama-3.1-8b-instruct"}
    # LM Studio before 0.3.6: 200 with an error object; it can't say
    assert lmstudio_loaded({"error": "Unexpected endpoint or method."}) is None


def test_a_reload_takes_the_new_groups() -> None:
    from proxy.metrics import Metrics
    from proxy.swapper import Swapper

    first = parse_config(cfg({"g": {"members": ["a", "b"], "max_loaded": 1}}))
    swapper = Swapper(first, {}, Metrics(), in_flight=lambda _: 0)
    assert swapper.group_of("a") == "g" and swapper.group_of("c") is None
    second = parse_config(
        cfg({"h": {"members": ["c", {"backend": "a", "persistent": True}], "max_loaded": 2}})
    )
    swapper.configure(second)
    assert swapper.group_of("a") == "h" and swapper.group_of("b") is None
    assert list(swapper.groups) == ["h"]
