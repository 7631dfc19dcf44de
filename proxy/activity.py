"""What the proxy did lately: a bounded ring of finished requests, read into tables and charts.

The status page (`statuspage.py`, `GET /status.json`) shows the last requests
and per-variant charts over the last minutes. Both come from here, and the
design follows from one rule: **the request path only appends**. When a
request ends, the edge builds one `Entry` from values it already has (the
`Outcome`, the `StreamStats` that `Dispatcher.record` computed for the
metrics anyway) and appends it to `ActivityLog`, a `collections.deque` with a
`maxlen`: O(1), no lock (a deque append is atomic), no allocation beyond the
entry, nothing written to disk. Everything else (the table, the buckets, the
percentiles) is computed by `recent` and `series` only when someone reads the
JSON, so the page costs nothing while nobody has it open.

Because the charts are computed from the same ring, they can only cover what
it still holds: with more requests in the window than `server.status_page.
history`, the older buckets have no data and say so (`null`, and
`covered_from` in the JSON), rather than showing a false zero.

Backend CPU and memory come from the resource sampler, which already reads
them off the request path every `server.resource_interval` seconds; it adds
each reading to a `ResourceHistory` (a small ring per backend).

Pure: plain data in, plain data out; no starlette, no asyncio.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .streammeter import StreamStats

__all__ = [
    "ActivityLog",
    "Entry",
    "ResourceHistory",
    "backend_state",
    "percentile",
    "prompt_excerpt",
    "series",
    "variant_state",
]

#: how much of a prompt an entry keeps (only with `server.log_prompts`)
PROMPT_EXCERPT = 160


@dataclass(slots=True)
class Entry:
    """One finished request, as the status page shows it. Not mutated once appended;
    not `frozen` because a frozen dataclass's `__init__` costs five times as much, and
    one is built per request."""

    #: wall-clock time the request ended (epoch seconds)
    at: float
    endpoint: str
    cls: str
    rule: str
    #: the variant that answered (or the last one tried); "none" if none was chosen
    variant: str
    #: the variants attempted, in order: more than one means a fallback
    tried: Sequence[str]
    status: int
    #: seconds from the request's arrival to its end
    duration: float
    request_id: str
    #: what the stream meter read (None: no answer was metered)
    stats: StreamStats | None = None
    #: the scheduled benchmark's own request, not a user's
    bench: bool = False
    #: the routing reason and the start of the prompt: only with `server.log_prompts`
    reason: str | None = None
    prompt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        stats = self.stats
        out: dict[str, Any] = {
            "time": round(self.at, 3),
            "endpoint": self.endpoint,
            "class": self.cls,
            "rule": self.rule,
            "variant": self.variant,
            "fallback": list(self.tried) if len(self.tried) > 1 else [],
            "status": self.status,
            "duration_seconds": round(self.duration, 4),
            "ttft_seconds": _round(stats.ttft if stats else None, 4),
            "tokens_per_second": _round(stats.tokens_per_second if stats else None, 2),
            "output_tokens": stats.output_tokens if stats else 0,
            "request_id": self.request_id,
            "source": "benchmark" if self.bench else "client",
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def prompt_excerpt(payload: Mapping[str, Any]) -> str | None:
    """The start of what the user asked (the last user message, the prompt or the input),
    for the table when `server.log_prompts` is on. Never raises."""
    try:
        text: Any = None
        messages = payload.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    text = message.get("content")
                    break
        else:
            text = payload.get("prompt", payload.get("input"))
        if isinstance(text, list):  # content parts, or a batch of prompts/inputs
            text = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in text)
        if text is None:
            return None
        return " ".join(str(text).split())[:PROMPT_EXCERPT]
    except Exception:  # an odd body must not break the request that carried it
        return None


class ActivityLog:
    """The last `capacity` finished requests, oldest first. `append` is the only write."""

    def __init__(self, capacity: int, *, clock: Callable[[], float] = time.time) -> None:
        self._ring: deque[Entry] = deque(maxlen=capacity)
        self.started = clock()

    @property
    def capacity(self) -> int:
        return self._ring.maxlen or 0

    def append(self, entry: Entry) -> None:
        """Called once per request, on the request path: O(1), no lock."""
        self._ring.append(entry)

    def resize(self, capacity: int) -> None:
        """Follow `server.status_page.history` after a reload (keeps the newest entries)."""
        if capacity != self._ring.maxlen:
            self._ring = deque(self._ring, maxlen=capacity)

    def entries(self) -> list[Entry]:
        """A copy of the ring (one C-level pass, safe against concurrent appends)."""
        return list(self._ring)

    def covered_from(self, entries: Sequence[Entry]) -> float:
        """Since when the ring holds every request: its start, or its oldest entry once
        full (older requests have been dropped)."""
        if entries and len(entries) >= self.capacity:
            return entries[0].at
        return self.started


def recent(entries: Sequence[Entry], limit: int) -> list[dict[str, Any]]:
    """The last `limit` entries, newest first, as JSON."""
    return [e.as_dict() for e in reversed(entries[-limit:])] if limit > 0 else []


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile (0..1) of `values` by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(slots=True)
class _Bucket:
    count: int = 0
    errors: int = 0
    ttft: list[float] | None = None
    tps: list[float] | None = None


#: the series of one variant's chart, in the order the page draws them
SERIES = ("requests_per_second", "errors", "ttft_p50", "ttft_p95", "tokens_per_second")


def series(
    entries: Iterable[Entry],
    *,
    now: float,
    window: float,
    step: float,
    covered_from: float,
    variants: Iterable[str] = (),
) -> dict[str, Any]:
    """Per-variant time series over the last `window` seconds in buckets of `step`.

    Per bucket: requests/s, errors (answers with status ≥ 500), TTFT p50/p95 (seconds)
    and the median per-request output tokens/s. A bucket that ends before
    `covered_from` is `None` (the ring no longer holds it); a covered bucket without
    requests is 0 for the counts and `None` for the timings. `variants` are listed
    even when they had no requests.
    """
    n = max(1, math.ceil(window / step))
    start = now - n * step
    buckets: dict[str, list[_Bucket]] = {v: [_Bucket() for _ in range(n)] for v in variants}
    for e in entries:
        if e.at < start or e.at > now or e.variant == "none":
            continue
        i = min(n - 1, int((e.at - start) / step))
        row = buckets.get(e.variant)
        if row is None:
            row = buckets[e.variant] = [_Bucket() for _ in range(n)]
        b = row[i]
        b.count += 1
        if e.status >= 500:
            b.errors += 1
        stats = e.stats
        if stats is not None:
            if stats.ttft is not None:
                (b.ttft if b.ttft is not None else _init(b, "ttft")).append(stats.ttft)
            if stats.tokens_per_second is not None:
                (b.tps if b.tps is not None else _init(b, "tps")).append(stats.tokens_per_second)
    covered = [start + (i + 1) * step > covered_from for i in range(n)]
    out: dict[str, Any] = {}
    for variant, row in buckets.items():
        cols: dict[str, list[float | None]] = {name: [] for name in SERIES}
        for ok, b in zip(covered, row, strict=True):
            if not ok:
                for col in cols.values():
                    col.append(None)
                continue
            cols["requests_per_second"].append(round(b.count / step, 4))
            cols["errors"].append(b.errors)
            cols["ttft_p50"].append(_round(percentile(b.ttft or (), 0.5), 4))
            cols["ttft_p95"].append(_round(percentile(b.ttft or (), 0.95), 4))
            cols["tokens_per_second"].append(_round(percentile(b.tps or (), 0.5), 2))
        out[variant] = cols
    return {
        "start": round(start, 3),
        "step_seconds": step,
        "buckets": n,
        "covered_from": round(covered_from, 3),
        "variants": out,
    }


def _init(bucket: _Bucket, name: str) -> list[float]:
    values: list[float] = []
    setattr(bucket, name, values)
    return values


class ResourceHistory:
    """The resource sampler's last readings per backend: (time, CPU %, RSS bytes).

    Written by the sampler (every `server.resource_interval` seconds, in a worker
    thread: a deque append is atomic), read by the status page.
    """

    def __init__(self, keep: int = 720) -> None:
        self.keep = keep
        self._rows: dict[str, deque[tuple[float, float | None, int]]] = {}

    def add(self, backend: str, at: float, cpu_percent: float | None, rss: int) -> None:
        row = self._rows.get(backend)
        if row is None:
            row = self._rows[backend] = deque(maxlen=self.keep)
        row.append((at, cpu_percent, rss))

    def since(self, start: float) -> dict[str, dict[str, list[list[float | None]]]]:
        """Per backend, `[time, value]` points from `start` on (JSON-ready)."""
        out: dict[str, dict[str, list[list[float | None]]]] = {}
        for backend, row in list(self._rows.items()):
            points = [p for p in list(row) if p[0] >= start]
            out[backend] = {
                "cpu_percent": [[round(t, 3), cpu] for t, cpu, _ in points],
                "rss_bytes": [[round(t, 3), float(rss)] for t, _, rss in points],
            }
        return out


def backend_state(*, breaker: str, healthy: bool | None, managed: str | None) -> str:
    """One word for a backend: `up`, `loading` (a managed backend starting or
    restarting), `breaker open`, `breaker half-open`, `down` (its health probe
    fails), `stopped` (a managed backend stopped when idle; it starts on the next
    request) or `unknown` (not probed yet).

    There is no `draining`: during the shutdown drain the server accepts no new
    connection, so no page can ask."""
    if breaker == "open":
        return "breaker open"
    if managed in ("starting", "restarting"):
        return "loading"
    if managed == "stopped":
        return "stopped"
    if managed == "failed" or healthy is False:
        return "down"
    if breaker == "half-open":
        return "breaker half-open"
    if healthy is None:
        return "unknown"
    return "up"


#: which state a variant takes from its replicas: the first found in this order
_PREFERENCE = (
    "up",
    "breaker half-open",
    "loading",
    "stopped",
    "unknown",
    "breaker open",
    "down",
)


def variant_state(backend_states: Iterable[str]) -> str:
    """A variant is as available as its best replica."""
    found = set(backend_states)
    for state in _PREFERENCE:
        if state in found:
            return state
    return "unknown"
