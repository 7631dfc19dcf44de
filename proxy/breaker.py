"""Per-backend circuit breaker. Pure: the caller passes the time.

    closed ──(N consecutive failures)──▶ open ──(cooldown elapsed)──▶ half-open
       ▲                                                                  │
       └────────────── success ◀── one trial request or probe ◀───────────┘
                                      failure ──▶ open again

While open, the backend's variants are ineligible, so routes fall through
to their next candidate instead of waiting on a server that is down.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    __slots__ = ("threshold", "cooldown", "failures", "opened_at", "_trial_out", "_state")

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at = 0.0
        self._trial_out = False
        self._state: State = "closed"

    def state(self, now: float) -> State:
        if self._state == "open" and now - self.opened_at >= self.cooldown:
            self._state = "half-open"
            self._trial_out = False
        return self._state

    def available(self, now: float) -> bool:
        """Could a request go here now (without taking the half-open trial)?"""
        state = self.state(now)
        return state == "closed" or (state == "half-open" and not self._trial_out)

    def allow(self, now: float) -> bool:
        """May a request go to this backend now? Half-open lets one trial through."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_out:
            self._trial_out = True
            return True
        return False

    def release_trial(self) -> None:
        """A half-open trial ended without a verdict: let the next request try."""
        if self._state == "half-open":
            self._trial_out = False

    def success(self) -> None:
        self.failures = 0
        self._state = "closed"
        self._trial_out = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self._state == "half-open" or self.failures >= self.threshold:
            self._state = "open"
            self.opened_at = now
            self._trial_out = False
