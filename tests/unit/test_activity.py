"""The status page's pure parts: the activity ring, the chart buckets, the state words."""

from __future__ import annotations

import pytest

from proxy.activity import (
    ActivityLog,
    Entry,
    ResourceHistory,
    backend_state,
    percentile,
    prompt_excerpt,
    recent,
    series,
    variant_state,
)
from proxy.streammeter import StreamStats


def entry(at: float, variant: str = "a", status: int = 200, **kw: object) -> Entry:
    return Entry(
        at=at,
        endpoint="chat",
        cls="instruction",
        rule="r",
        variant=variant,
        tried=kw.pop("tried", [variant]),  # type: ignore[arg-type]
        status=status,
        duration=0.5,
        request_id=f"id-{at}",
        **kw,  # type: ignore[arg-type]
    )


def test_the_ring_keeps_the_newest_and_resizes() -> None:
    log = ActivityLog(3, clock=lambda: 100.0)
    for t in range(5):
        log.append(entry(float(t)))
    assert [e.at for e in log.entries()] == [2.0, 3.0, 4.0]
    assert log.covered_from(log.entries()) == 2.0  # full: older ones are gone
    log.resize(10)
    log.append(entry(5.0))
    assert [e.at for e in log.entries()] == [2.0, 3.0, 4.0, 5.0]
    assert log.covered_from(log.entries()) == 100.0  # not full: since it started
    log.resize(2)
    assert [e.at for e in log.entries()] == [4.0, 5.0] and log.capacity == 2


def test_recent_is_newest_first_and_shows_a_fallback() -> None:
    items = recent([entry(1.0), entry(2.0, "b", tried=["a", "b"]), entry(3.0, "a", 502)], limit=2)
    assert [(d["time"], d["variant"], d["status"]) for d in items] == [
        (3.0, "a", 502),
        (2.0, "b", 200),
    ]
    assert items[1]["fallback"] == ["a", "b"] and items[0]["fallback"] == []
    assert recent([entry(1.0)], 0) == []


def test_entry_json_has_no_prompt_unless_given() -> None:
    stats = StreamStats(ttft=0.25, output_tokens=10, tokens_per_second=40.0)
    plain = entry(1.0, stats=stats).as_dict()
    assert plain["ttft_seconds"] == 0.25 and plain["tokens_per_second"] == 40.0
    assert "prompt" not in plain and "reason" not in plain and plain["source"] == "client"
    noted = entry(1.0, prompt="hi", reason="rule r", bench=True).as_dict()
    assert noted["prompt"] == "hi" and noted["reason"] == "rule r"
    assert noted["source"] == "benchmark"


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, None), ([3.0], 0.95, 3.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5), ([5, 1, 3], 1.0, 5)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_series_buckets_rates_errors_and_percentiles() -> None:
    fast = StreamStats(ttft=0.1, tokens_per_second=50.0)
    slow = StreamStats(ttft=0.3, tokens_per_second=30.0)
    entries = [
        entry(951.0, stats=fast),
        entry(955.0, stats=slow),
        entry(959.0, status=500),
        entry(995.0, "b"),
        entry(899.0),  # before the window
        entry(999.0, "none", status=400),  # never reached a variant
    ]
    out = series(
        entries, now=1000.0, window=100.0, step=10.0, covered_from=0.0, variants=["a", "b", "c"]
    )
    assert out["start"] == 900.0 and out["buckets"] == 10
    a = out["variants"]["a"]
    assert a["requests_per_second"][5] == 0.3 and a["errors"][5] == 1
    assert a["ttft_p50"][5] == pytest.approx(0.2) and a["ttft_p95"][5] == pytest.approx(0.29)
    assert a["tokens_per_second"][5] == 40.0
    assert a["requests_per_second"][0] == 0 and a["ttft_p50"][0] is None
    assert out["variants"]["b"]["requests_per_second"][9] == 0.1
    assert set(out["variants"]["c"]["requests_per_second"]) == {0}
    assert "none" not in out["variants"]


def test_series_before_coverage_is_unknown_not_zero() -> None:
    out = series([entry(995.0)], now=1000.0, window=100.0, step=10.0, covered_from=975.0)
    rps = out["variants"]["a"]["requests_per_second"]
    assert rps[:7] == [None] * 7  # buckets ending at or before 975
    assert rps[7:] == [0.0, 0.0, 0.1]


def test_resource_history_since() -> None:
    history = ResourceHistory(keep=3)
    for t in range(5):
        history.add("gemma", float(t), None if t == 0 else 10.0 * t, 1000 + t)
    assert history.since(3.0) == {
        "gemma": {
            "cpu_percent": [[3.0, 30.0], [4.0, 40.0]],
            "rss_bytes": [[3.0, 1003.0], [4.0, 1004.0]],
        }
    }
    assert len(history.since(0.0)["gemma"]["cpu_percent"]) == 3  # kept the newest 3


@pytest.mark.parametrize(
    ("breaker", "healthy", "managed", "state"),
    [
        ("closed", True, None, "up"),
        ("closed", None, None, "unknown"),
        ("closed", False, None, "down"),
        ("open", True, None, "breaker open"),
        ("half-open", True, None, "breaker half-open"),
        ("closed", False, "starting", "loading"),
        ("closed", True, "restarting", "loading"),
        ("closed", False, "stopped", "stopped"),
        ("closed", False, "failed", "down"),
        ("closed", True, "ready", "up"),
    ],
)
def test_backend_state(breaker: str, healthy: bool | None, managed: str | None, state: str) -> None:
    assert backend_state(breaker=breaker, healthy=healthy, managed=managed) == state


def test_a_variant_is_as_available_as_its_best_replica() -> None:
    assert variant_state(["down", "up"]) == "up"
    assert variant_state(["breaker open", "loading"]) == "loading"
    assert variant_state(["down"]) == "down"
    assert variant_state([]) == "unknown"


@pytest.mark.parametrize(
    ("payload", "excerpt"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": "first"},
                    {"role": "user", "content": "b  c"},
                ]
            },
            "b c",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]}, "parts"),
        ({"prompt": "def f(" + "x" * 500}, "def f(" + "x" * 154),
        ({"input": ["a", "b"]}, "a b"),
        ({"messages": "garbage"}, None),
        ({"messages": [{"role": "system", "content": "s"}]}, None),
    ],
)
def test_prompt_excerpt(payload: dict[str, object], excerpt: str | None) -> None:
    assert prompt_excerpt(payload) == excerpt
