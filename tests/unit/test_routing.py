from __future__ import annotations

from typing import Any

import pytest

from proxy.config import parse_config
from proxy.routing import Router, RouteTarget


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
    ordered, skipped = router().candidates("completion", needs_infill=True)
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
