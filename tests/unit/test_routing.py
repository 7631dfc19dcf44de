from __future__ import annotations

from typing import Any

import pytest

from proxy.config import parse_config
from proxy.routing import Needs, Router, RouteTarget


def router(routes: dict[str, Any] | None = None) -> Router:
    return Router(
        parse_config(
            {
                "backends": {"b": {"kind": "openai", "url": "http://127.0.0.1:1"}},
                "variants": {
                    "a": {"backend": "b", "model": "ma", "aliases": ["alpha"], "fim": "codellama"},
                    "c": {"backend": "b", "model": "mc"},
                    "d": {"backend": "b", "model": "md", "fim": "starcoder"},
                },
                "routes": routes or {"completion": ["c", "a", "d"], "default": "c"},
            }
        )
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a", RouteTarget("variant", "a")),
        ("alpha", RouteTarget("variant", "a")),
        ("auto", RouteTarget("auto", "auto")),
        ("complex", RouteTarget("class", "complex")),
        ("multi-language", RouteTarget("class", "multi-language")),
        ("nope", None),
        ("", None),
    ],
)
def test_resolve(name: str, expected: RouteTarget | None) -> None:
    assert router().resolve(name) == expected


def test_first_eligible_in_order() -> None:
    r = router()
    assert r.candidates("completion") == (["c", "a", "d"], {})
    down = {"c": "backend down"}
    assert r.candidates("completion", eligible=down.get) == (["a", "d"], {"c": "backend down"})


def test_infill_needs_a_fim_variant() -> None:
    ordered, skipped = router().candidates("completion", needs=Needs(infill=True))
    assert ordered == ["a", "d"]
    assert "fim" in skipped["c"]


def test_class_without_route_uses_default() -> None:
    assert router().candidates("complex") == (["c"], {})


@pytest.mark.parametrize(("draw", "first"), [(0.0, "a"), (0.89, "a"), (0.9, "c"), (0.999, "c")])
def test_weighted_split(draw: float, first: str) -> None:
    r = router(
        {
            "instruction": [{"variant": "a", "weight": 90}, {"variant": "c", "weight": 10}],
            "default": "c",
        }
    )
    ordered, _ = r.candidates("instruction", draw=draw)
    assert ordered[0] == first and sorted(ordered) == ["a", "c"]


def test_weighted_split_skips_ineligible() -> None:
    r = router(
        {
            "instruction": [{"variant": "a", "weight": 90}, {"variant": "c", "weight": 10}],
            "default": "c",
        }
    )
    assert r.candidates("instruction", eligible={"a": "drifted"}.get, draw=0.1)[0] == ["c"]


def capable_router() -> Router:
    return Router(
        parse_config(
            {
                "backends": {"b": {"kind": "openai", "url": "http://127.0.0.1:1"}},
                "variants": {
                    "small": {"backend": "b", "model": "s", "context_window": 4096, "tools": False},
                    "big": {"backend": "b", "model": "b", "context_window": 32768, "tools": True},
                    "plain": {"backend": "b", "model": "p"},
                },
                "routes": {"instruction": ["small", "big", "plain"], "default": "small"},
            }
        )
    )


@pytest.mark.parametrize(
    ("needs", "ordered", "reasons"),
    [
        (Needs(), ["small", "big", "plain"], {}),
        (Needs(tools=True), ["big", "plain"], {"small": "cannot call tools (tools: false)"}),
        (
            Needs(prompt_tokens=lambda: 6000),
            ["big", "plain"],
            {"small": "context window 4096 tokens < ~6000 needed (prompt ~6000)"},
        ),
        (
            Needs(prompt_tokens=lambda: 3000, max_tokens=2000),
            ["big", "plain"],
            {"small": "context window 4096 tokens < ~5000 needed (prompt ~3000 + max_tokens 2000)"},
        ),
        (Needs(prompt_tokens=lambda: 4096), ["small", "big", "plain"], {}),
        (
            Needs(prompt_tokens=lambda: 40000, tools=True),
            ["plain"],
            {
                "small": "cannot call tools (tools: false)",
                "big": "context window 32768 tokens < ~40000 needed (prompt ~40000)",
            },
        ),
    ],
)
def test_capabilities_are_constraints(
    needs: Needs, ordered: list[str], reasons: dict[str, str]
) -> None:
    assert capable_router().candidates("instruction", needs=needs) == (ordered, reasons)


def test_prompt_estimate_only_when_a_window_is_declared() -> None:
    calls = []

    def tokens() -> int:
        calls.append(1)
        return 10

    router().candidates("completion", needs=Needs(prompt_tokens=tokens))
    assert calls == []  # no variant of this route declares context_window
    capable_router().candidates("instruction", needs=Needs(prompt_tokens=tokens))
    assert calls
