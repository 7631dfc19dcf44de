"""Per-backend circuit breaker. Pure: the caller passes the time.

    closed ──(N consecutive faults)──▶ open ──(cooldown elapsed)──▶ half-open
       ▲                                                                │
       └───────────── success ◀── one trial request or probe ◀─────────┘
                                     failure ──▶ open again

While open, the backend's variants are ineligible, so routes fall through
to their next candidate instead of waiting on a server that is down.

Only *backend faults* count (`failure`): refused or reset connections,
timeouts, broken HTTP, 502/503/504. A 500 is usually about one request (a
prompt the model chokes on), and one bad prompt retried must not take a
healthy backend away from everybody. So a request-specific answer
(`request_failure`) counts only once such answers have come from
`request_errors` *distinct* requests (by a fingerprint of the body) with no
success in between; the caller counts it as a fault instead when the
backend's health probe is failing too. Each failure carries a short cause,
which the breaker keeps so that the 503 it leads to can say why.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half-open"]

#: fingerprints kept per breaker; more distinct requests than this changes nothing
_MAX_DISTINCT = 1024


class CircuitBreaker:
    __slots__ = (
        "threshold",
        "cooldown",
        "request_errors",
        "failures",
        "opened_at",
        "cause",
        "_distinct",
        "_trial_out",
        "_state",
    )

    def __init__(self, threshold: int, cooldown: float, request_errors: int = 10) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.request_errors = request_errors
        self.failures = 0
        self.opened_at = 0.0
        #: the last failure's summary (no URL, no backend text), for the 503 an open breaker causes
        self.cause = ""
        self._distinct: set[int] = set()
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
        self._distinct.clear()
        self._state = "closed"
        self._trial_out = False

    def failure(self, now: float, cause: str = "") -> None:
        """A backend fault: counts toward `threshold`."""
        self.failures += 1
        if cause:
            self.cause = cause
        if self._state == "half-open" or self.failures >= self.threshold:
            self._open(now)

    def request_failure(self, now: float, fingerprint: int, cause: str = "") -> None:
        """A request-specific error (a 500): opens only across `request_errors` distinct requests.

        It is not a verdict on a half-open trial either way: the trial is given back.
        """
        if len(self._distinct) < _MAX_DISTINCT:
            self._distinct.add(fingerprint)
        if cause:
            self.cause = cause
        if self._state == "half-open":
            self._trial_out = False
            return
        if len(self._distinct) >= self.request_errors:
            self.failures = max(self.failures, len(self._distinct))
            self._open(now)

    def describe(self) -> str:
        """Why the breaker is open, for the 503 clients get while it is."""
        if not self.cause:
            return "circuit open"
        return f"circuit open after {self.failures} failures: {self.cause}"

    def _open(self, now: float) -> None:
        self._state = "open"
        self.opened_at = now
        self._trial_out = False
