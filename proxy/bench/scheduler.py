"""Continuous benchmarking inside the daemon: run the suites on a schedule, when idle.

`BenchScheduler.run()` (spawn it as a task in the app's lifespan) wakes up
every few seconds; a run starts when `schedule` seconds have passed since the
last one *and* no request has been seen for `idle_seconds`, so a benchmark
never competes with the user for a local GPU. With `pause_on_traffic` a run
is abandoned as soon as a user request arrives, and retried at the next idle
period. Requests go to the app in-process (`StreamingASGITransport`) so they
take the live path, timings included, without a socket.

Results are written to the state dir like the CLI's (`latest.json` plus
timestamped JSON, Markdown and HTML; the oldest beyond `keep` are deleted),
and the latest figures are exported as gauges labelled by variant and suite
(`Metrics.bench`, defined with every other metric in `proxy.metrics`).

Routing (`order: benchmark`) uses the evidence of *every* run kept in the state dir,
pooled by `ranking.figures`, and re-reads it when a result file appears or changes,
so a `variant-proxy bench` run written there reaches a running daemon without a
restart. With several workers, one scheduled run at a time: a run holds
`<state_dir>/run.lock` (`flock`), and a worker that finds it held skips its turn.

The scheduler drives the app as a plain ASGI callable and reads the running proxy
through `running.RunningProxy`, so it needs neither `proxy.app` nor `proxy.service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from ..config import BenchmarkConfig
from ..errors import BenchInterrupted, SuiteError
from ..metrics import BenchGauges
from .asgi import ASGIApp, StreamingASGITransport
from .history import load_runs
from .ranking import figures, rank
from .report import write_outputs
from .runner import RunSettings, VariantTarget, run_benchmark, variant_identity
from .running import RunningProxy
from .suite import load_suite
from .usage import backend_pid

__all__ = ["BenchScheduler", "export"]

log = logging.getLogger("variant_proxy.bench")


def export(gauges: BenchGauges, doc: Mapping[str, Any], finished: float) -> None:
    """Replace the exported figures with those of a result document."""
    gauges.clear()
    for row in doc.get("results", []):
        labels = (str(row["variant"]), str(row["suite"]))
        if row.get("pass_ratio") is not None:
            gauges.pass_ratio.labels(*labels).set(float(row["pass_ratio"]))
        ttft = (row.get("ttft_seconds") or {}).get("p50")
        if ttft is not None:
            gauges.ttft.labels(*labels).set(float(ttft))
        tps = (row.get("output_tokens_per_second") or {}).get("p50")
        if tps is not None:
            gauges.tokens_per_second.labels(*labels).set(float(tps))
        gauges.last_run.labels(*labels).set(finished)


def _finished_epoch(doc: Mapping[str, Any]) -> float | None:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(str(doc["finished_at"])).timestamp()
    except (KeyError, ValueError):
        return None


class BenchScheduler:
    """Runs benchmarks in the daemon. `idle_for()` is seconds since the last request.

    `figures` holds the latest run's evidence for `ranking.rank(candidates, cls,
    scheduler.figures)`.
    """

    def __init__(
        self,
        config: BenchmarkConfig,
        *,
        app: ASGIApp,
        proxy: RunningProxy,
        idle_for: Callable[[], float],
        metrics: BenchGauges | None = None,
        state_dir: str | Path | None = None,
        poll_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        traffic_slack: float = 0.25,
    ) -> None:
        self.config = config
        self.app = app
        self.proxy = proxy
        self.idle_for = idle_for
        self.metrics = metrics or proxy.metrics.bench
        default = Path(proxy.runtime.cfg.server.state_dir) / "bench"
        self.state_dir = Path(config.state_dir or state_dir or default)
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.last_finished: float | None = None
        self.running = False
        self.last_error: str | None = None
        #: a request seen within this many seconds after one of the bench's own is taken to
        #: be the bench's (in case `idle_for` counts benchmark requests too)
        self.traffic_slack = traffic_slack
        self._sends: list[float] = []
        self._run_started = 0.0
        #: `ranking.figures` pooled over every run kept in `state_dir`, for routes ordered by
        #: benchmark evidence; re-read when a run (the daemon's or the CLI's) lands there
        self.figures: dict[str, dict[str, dict[str, Any]]] = {}
        self._seen: tuple[tuple[str, int], ...] | None = None
        self._checked = 0.0
        latest = self.latest()
        if latest is not None:
            self.last_finished = _finished_epoch(latest)
            export(self.metrics, latest, self.last_finished or 0.0)
        self.refresh(force=True)

    def rank(self, candidates: list[str], cls: str) -> list[str]:
        """`candidates` ordered by the accumulated evidence (a `routing.Ranker`)."""
        self.refresh()
        return rank(candidates, cls, self.figures)

    def refresh(self, *, force: bool = False) -> None:
        """Re-pool the evidence if the result files changed (checked at most once a second),
        so results written by `variant-proxy bench` reach the running daemon."""
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        try:
            files = sorted(self.state_dir.glob("bench-*.json"))
            seen = tuple((f.name, f.stat().st_mtime_ns) for f in files)
        except OSError:
            return
        if seen == self._seen and not force:
            return
        self._seen = seen
        self.figures = figures(load_runs(files))
        self.metrics.set_evidence(self.figures)

    def latest(self) -> dict[str, Any] | None:
        """The latest persisted result document, if any."""
        path = self.state_dir / "latest.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("schema") == 1 else None

    def due(self) -> bool:
        """Scheduled and idle long enough (the schedule counts from the last finished run)."""
        if self.config.schedule is None or self.running:
            return False
        if self.last_finished is not None:
            if self.clock() - self.last_finished < self.config.schedule:
                return False
        return self.idle_for() >= self.config.idle_seconds

    async def run(self) -> None:
        """Forever: check every `poll_seconds`, run when due. Spawn as a task; cancel to stop."""
        while True:
            if self.due():
                try:
                    await self.run_once()
                except Exception as exc:  # never let a bad run end the loop
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("benchmark run failed")
                    self.last_finished = self.clock()
            await asyncio.sleep(self.poll_seconds)

    def _traffic_free(self) -> bool:
        """No user request since the run started (requests right after our own are ours)."""
        last = time.monotonic() - self.idle_for()
        if last <= self._run_started:
            return True
        return any(s - 0.01 <= last <= s + self.traffic_slack for s in self._sends)

    @contextlib.contextmanager
    def _run_lock(self) -> Iterator[bool]:
        """Hold `<state_dir>/run.lock` for a run; yields False when another worker holds it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "run.lock").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    async def run_once(self) -> dict[str, Any] | None:
        """Run the configured suites now; None if abandoned because of user traffic or
        because another worker's run holds the lock."""
        with self._run_lock() as mine:
            if not mine:
                log.info("benchmark skipped: another worker is running one")
                self.last_finished = self.clock()
                return None
            return await self._run_locked()

    async def _run_locked(self) -> dict[str, Any] | None:
        cfg = self.proxy.runtime.cfg
        names = self.config.variants or list(cfg.variants)
        names = [n for n in names if n in cfg.variants]
        try:
            suites = [load_suite(s) for s in self.config.suites]
        except SuiteError as exc:
            self.last_error = str(exc)
            log.error("benchmark not run: %s", exc)
            return None
        urls = dict(self.proxy.runtime.urls)
        targets = []
        async with httpx.AsyncClient(trust_env=False, timeout=30) as probe:
            for name in names:
                spec = cfg.variants[name]
                info = {
                    "backend": spec.backend,
                    "model": spec.model,
                    "fim": spec.fim,
                    "pin": spec.pin.model_dump(exclude_none=True) if spec.pin else None,
                    "identity": await variant_identity(cfg, name, probe, urls),
                }
                targets.append(
                    VariantTarget(name, spec.fim is not None, info, self._pid(spec.backend, urls))
                )
        settings = RunSettings(
            repeat=self.config.repeat,
            concurrency=self.config.concurrency,
            max_tokens=self.config.max_tokens,
            limit=self.config.limit,
        )
        self.running = True
        self._sends = []
        self._run_started = time.monotonic()

        async def sent(request: httpx.Request) -> None:
            self._sends.append(time.monotonic())

        try:
            async with httpx.AsyncClient(
                transport=StreamingASGITransport(self.app),
                base_url="http://variant-proxy.bench",
                timeout=httpx.Timeout(600.0),
                event_hooks={"request": [sent]},
            ) as client:
                doc = await run_benchmark(
                    client,
                    targets,
                    suites,
                    settings,
                    headers=self._auth(),
                    should_continue=(self._traffic_free if self.config.pause_on_traffic else None),
                    meta={"proxy": {"mode": "scheduled", "url": None, "config": None}},
                )
        except BenchInterrupted:
            log.info("benchmark abandoned: a request arrived; retrying when idle again")
            return None
        finally:
            self.running = False
        await asyncio.to_thread(write_outputs, doc, self.state_dir)
        await asyncio.to_thread(self._prune)
        self.last_finished = _finished_epoch(doc) or self.clock()
        export(self.metrics, doc, self.last_finished)
        self.refresh(force=True)
        self.last_error = None
        log.info("benchmark finished: %d results in %s", len(doc["results"]), self.state_dir)
        return doc

    def _pid(self, backend: str, urls: Mapping[str, str]) -> Callable[[], int | None]:
        return backend_pid(self.proxy, backend, urls.get(backend))

    def _auth(self) -> dict[str, str]:
        keys = self.proxy.keys.keys
        return {"authorization": "Bearer " + keys[0].decode()} if keys else {}

    def _prune(self) -> None:
        runs = sorted(self.state_dir.glob("bench-*.json"))
        for old in runs[: max(0, len(runs) - self.config.keep)]:
            for suffix in (".json", ".md", ".html"):
                old.with_suffix(suffix).unlink(missing_ok=True)
