"""A bounded load round: interleaved requests to three members of a `max_loaded: 2` group
(`benchmarks/swap_load.py`, real processes): none fails, never three run at once, and the
swaps and waits are reported. Timings are printed, not asserted."""

from __future__ import annotations

from benchmarks.swap_load import run


def test_interleaved_requests_to_three_members_of_a_max_loaded_2_group() -> None:
    result = run(requests=24, concurrency=4, load_seconds=0.3, max_loaded=2)
    assert result.failed == []
    assert result.ok == 24
    assert result.most_running <= 2
    # round-robin over three members with room for two: the group must swap
    assert result.swaps >= 2 and result.evictions >= 1
    assert result.wait_count >= result.swaps  # every swap had at least one request waiting
    print(
        f"\nswaps {result.swaps:.0f}, evictions {result.evictions:.0f}, "
        f"{result.wait_count:.0f} requests waited {result.wait_sum:.2f} s in all"
    )
