"""Carrying out swaps: the async side of `proxy.swapping`, beside the supervisor.

`Swapper.ensure(backend)` is what a request calls before it is sent to a
managed backend. A backend in no group is just started if it isn't running
(as before groups existed). For a group member that is not loaded:

* one *load task* per member: every request waiting for the same member
  shares it (batched), and a client that leaves does not cancel it;
* one swap at a time per group: load tasks take the group's lock in arrival
  order, so concurrent requests for different cold members don't thrash;
* under the lock the task reads the members (loaded, requests in flight, last
  use, RSS of the process tree), asks `swapping.plan` what to stop, stops
  those members, then starts the one needed. While the plan is `blocked`
  (every loaded member busy or persistent) it polls until one goes idle or
  the requester's `queue_timeout` runs out: then a 503 that says why;
* a member being stopped is marked *evicting*: a request that arrives for it
  meanwhile waits behind the swap instead of being sent to a dying server.

Readings are taken only during a swap (a slow path: a process is about to
start), so nothing here runs per request beyond a state check. Requests wait
in the relay's open phase, so streams get SSE keep-alives while a swap runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import psutil

from .backends.loaded import model_key
from .config import RouterConfig, Variant
from .errors import BackendInUse, BackendStartError, UpstreamBusy
from .metrics import Metrics
from .supervisor import ManagedProcess
from .swapping import EvictionReason, Group, Member, Plan, plan
from .warmth import WARM, Warmth, warmest

__all__ = ["Swapper", "tree_rss_mb"]

log = logging.getLogger("variant_proxy.swapper")

#: seconds between looks at a blocked group (requests finishing free a member)
POLL_SECONDS = 0.05
_MB = 1024 * 1024
_LOADED = frozenset({"starting", "ready", "restarting"})


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children, in MB (None: gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except (psutil.Error, OSError):
        return None
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.Error, OSError):
            continue
    return total / _MB


def _file_mb(path: str | None) -> float | None:
    if not path:
        return None
    try:
        return os.path.getsize(path) / _MB
    except OSError:
        return None


class Swapper:
    """Loads and unloads managed backends within their groups' budgets."""

    def __init__(
        self,
        cfg: RouterConfig | None,
        managed: Mapping[str, ManagedProcess],
        metrics: Metrics,
        *,
        in_flight: Callable[[str], int],
        rss_mb: Callable[[int], float | None] = tree_rss_mb,
    ) -> None:
        self.managed = managed
        self.metrics = metrics
        self.in_flight = in_flight
        self.rss_mb = rss_mb
        self.groups: dict[str, Group] = {}
        self._group_of: dict[str, str] = {}
        self._persistent: set[str] = set()
        self._model_files: dict[str, str | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._evicting: set[str] = set()
        #: the last RSS measured per member (MB): the estimate for its next load
        self._last_rss: dict[str, float] = {}
        self._last_eviction: dict[str, str] = {}
        self._swaps: dict[str, int] = {}
        #: the models a server that loads them itself (Ollama, LM Studio) holds, by backend
        self._remote: dict[str, tuple[str, frozenset[str]]] = {}
        if cfg is not None:
            self.configure(cfg)

    def configure(self, cfg: RouterConfig) -> None:
        """Take the groups of a (re)loaded config; swaps under way finish first."""
        self.groups = dict(cfg.groups)
        self._group_of = {m.backend: g for g, grp in cfg.groups.items() for m in grp.members}
        self._persistent = {
            m.backend for grp in cfg.groups.values() for m in grp.members if m.persistent
        }
        self._model_files = {n: b.model_file for n, b in cfg.backends.items()}
        for name in self.groups:
            self._locks.setdefault(name, asyncio.Lock())

    def group_of(self, backend: str) -> str | None:
        return self._group_of.get(backend)

    # -- requests --------------------------------------------------------------------------

    def needs_work(self, backend: str) -> bool:
        """True when a request for `backend` must go through `ensure` first."""
        proc = self.managed[backend]
        return proc.state != "ready" or backend in self._evicting

    async def ensure(self, backend: str, timeout: float) -> None:
        """Return once `backend` runs, after making room in its group (see module doc).

        Raises `BackendStartError` if it fails to start, `UpstreamBusy` if no room was
        made within `timeout` seconds or it can never fit.
        """
        proc = self.managed[backend]
        group = self._group_of.get(backend)
        if group is None:
            await proc.ensure_started()
            return
        if not self.needs_work(backend):
            proc.touch()
            return
        task = self._loading.get(backend)
        if task is None or task.done():
            task = asyncio.create_task(self._load(backend, group, timeout), name=f"load:{backend}")
            self._loading[backend] = task
            task.add_done_callback(_retrieve)
        waited = time.monotonic()
        try:
            # shield: the load is shared by every request waiting for this member
            await asyncio.shield(task)
        finally:
            self.metrics.swap_wait.labels(group).observe(time.monotonic() - waited)

    async def _load(self, backend: str, group: str, timeout: float) -> None:
        began = time.monotonic()
        deadline = began + timeout
        proc = self.managed[backend]
        lock = self._locks[group]
        try:
            async with asyncio.timeout(timeout):
                await lock.acquire()
        except TimeoutError:
            why = "the swaps before it in the group took too long"
            raise self._busy(backend, group, timeout, why) from None
        try:
            while True:
                if proc.state == "ready" and backend not in self._evicting:
                    return  # loaded by someone else meanwhile (an admin load)
                decided = self.plan(backend)
                if decided.status == "never":
                    raise UpstreamBusy(
                        f"backend {backend!r} can never load in group {group!r}: {decided.why}"
                    )
                if decided.status == "ready":
                    break
                if time.monotonic() >= deadline:
                    raise self._busy(backend, group, timeout, decided.why)
                await asyncio.sleep(POLL_SECONDS)
            await self._evict(group, decided)
            await proc.ensure_started()
        finally:
            lock.release()
        seconds = time.monotonic() - began
        self._swaps[group] = self._swaps.get(group, 0) + 1
        self.metrics.swaps.labels(group).inc()
        self.metrics.swap_seconds.labels(group).observe(seconds)
        stopped = ", ".join(f"{n} ({r})" for n, r in decided.evict) or "nothing"
        log.info("group %s: loaded %s in %.2fs, stopped %s", group, backend, seconds, stopped)

    def _busy(self, backend: str, group: str, timeout: float, why: str) -> UpstreamBusy:
        return UpstreamBusy(
            f"backend {backend!r} could not be loaded within {timeout:g}s (its queue_timeout): "
            f"group {group!r} has no room: {why}",
            retry_after=timeout / 4,
        )

    async def _evict(self, group: str, decided: Plan) -> None:
        for name, _ in decided.evict:
            self._evicting.add(name)  # no new request is sent to it from here on
        try:
            for name, reason in decided.evict:
                await self._stop(name, group, reason)
        finally:
            self._evicting.difference_update(n for n, _ in decided.evict)

    async def _stop(self, name: str, group: str, reason: EvictionReason) -> None:
        proc = self.managed[name]
        pid = proc.pid
        if pid is not None:
            rss = self.rss_mb(pid)
            if rss is not None:
                self._last_rss[name] = rss
        log.info("group %s: stopping %s (%s)", group, name, reason)
        await proc.stop()
        self._last_eviction[name] = reason
        self.metrics.evictions.labels(group, reason).inc()

    # -- readings ----------------------------------------------------------------------------

    def footprint(self, name: str) -> float | None:
        """MB a member holds (measured, when running) or is expected to hold."""
        proc = self.managed[name]
        estimate = self._last_rss.get(name) or _file_mb(self._model_files.get(name))
        pid = proc.pid
        if proc.state not in _LOADED or pid is None:
            return estimate
        measured = self.rss_mb(pid)
        if measured is None:
            return estimate
        self._last_rss[name] = measured
        if proc.state == "ready":
            return measured
        return max(measured, estimate or 0.0)  # still loading: it will grow

    def members(self, group: str) -> list[Member]:
        out = []
        for spec in self.groups[group].members:
            proc = self.managed[spec.backend]
            out.append(
                Member(
                    name=spec.backend,
                    loaded=proc.state in _LOADED,
                    in_flight=self.in_flight(spec.backend),
                    last_used=proc.last_used,
                    footprint_mb=self.footprint(spec.backend),
                    persistent=spec.persistent,
                )
            )
        return out

    def plan(self, backend: str) -> Plan:
        group = self._group_of[backend]
        spec = self.groups[group]
        return plan(
            self.members(group), backend, max_loaded=spec.max_loaded, memory_mb=spec.memory_mb
        )

    def variant_warmth(self, variant: Variant) -> Warmth:
        """A variant is as warm as its warmest backend."""
        return warmest([self.warmth(b, variant.model) for b in variant.backends])

    def set_loaded(self, backend: str, kind: str, models: frozenset[str] | None) -> None:
        """What a server that loads models itself holds now (None: it can't say)."""
        if models is None:
            self._remote.pop(backend, None)
        else:
            self._remote[backend] = (kind, models)

    def note_served(self, backend: str, model: str) -> None:
        """`model` just answered on `backend`: it is loaded there (until the next poll)."""
        known = self._remote.get(backend)
        if known is not None:
            kind, models = known
            key = model_key(kind, model)
            if key not in models:
                self._remote[backend] = (kind, models | {key})

    def warmth(self, backend: str, model: str | None = None) -> Warmth:
        """How soon `backend` could answer `model` (`proxy.warmth`): a managed backend by its
        process, Ollama and LM Studio by what they last said they hold, others warm."""
        proc = self.managed.get(backend)
        if proc is None:
            known = self._remote.get(backend)
            if known is None or model is None or model_key(known[0], model) in known[1]:
                return WARM
            return Warmth("cold", None)
        expected = proc.expected_load_seconds
        if proc.state == "ready" and backend not in self._evicting:
            return WARM
        if proc.state in ("starting", "restarting"):
            began = proc.loading_for
            left = None if expected is None else max(0.0, expected - (began or 0.0))
            return Warmth("loading", left)
        return Warmth("cold", expected)

    async def start_fitting(self, names: list[str]) -> None:
        """Start eager group members, in config order, while each fits without stopping
        another; the rest load on their first request."""
        for name in names:
            decided = self.plan(name)
            if decided.status != "ready" or decided.evict:
                group = self._group_of[name]
                log.info("%s: not started, group %s is full (it loads on demand)", name, group)
                continue
            try:
                await self.managed[name].start()
            except BackendStartError as exc:
                log.error("%s", exc)

    # -- admin -----------------------------------------------------------------------------

    async def unload(self, backend: str) -> bool:
        """Stop `backend` now; False if it wasn't running. Raises `BackendInUse` while it
        has requests in flight (they are never cut)."""
        proc = self.managed[backend]
        group = self._group_of.get(backend)
        lock = self._locks.get(group) if group is not None else None
        if lock is not None:
            await lock.acquire()
        try:
            if proc.state not in _LOADED:
                return False
            busy = self.in_flight(backend)
            if busy:
                raise BackendInUse(
                    f"backend {backend!r} has {busy} request(s) in flight; unload it when "
                    "they are done"
                )
            self._evicting.add(backend)
            try:
                await self._stop(backend, group or "none", "admin")
            finally:
                self._evicting.discard(backend)
        finally:
            if lock is not None:
                lock.release()
        return True

    # -- listings ----------------------------------------------------------------------------

    def loaded_models(self, backend: str) -> list[str] | None:
        """What an Ollama or LM Studio backend last said it holds (None: not asked)."""
        known = self._remote.get(backend)
        return None if known is None else sorted(known[1])

    def backend_info(self, backend: str) -> dict[str, Any]:
        """What `/backends` shows about a managed backend's loading and swapping."""
        proc = self.managed[backend]
        warmth = self.warmth(backend)
        return {
            "group": self._group_of.get(backend),
            "persistent": backend in self._persistent,
            "warmth": warmth.state,
            "expected_load_seconds": _round(proc.expected_load_seconds),
            "loads": proc.loads,
            "resident_mb": _round(self._last_rss.get(backend)),
            "estimated_mb": _round(_file_mb(self._model_files.get(backend))),
            "last_eviction": self._last_eviction.get(backend),
        }

    def status(self) -> dict[str, Any]:
        """Each group's budget and what is loaded in it now."""
        out: dict[str, Any] = {}
        for name, spec in self.groups.items():
            members = self.members(name)
            loaded = [m for m in members if m.loaded]
            out[name] = {
                "max_loaded": spec.max_loaded,
                "memory_mb": spec.memory_mb,
                "members": [m.name for m in members],
                "loaded": [m.name for m in loaded],
                "loaded_mb": _round(sum(m.footprint_mb or 0.0 for m in loaded)),
                "swapping": self._locks[name].locked(),
                "swaps": self._swaps.get(name, 0),
            }
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _retrieve(task: asyncio.Task[None]) -> None:
    # every load task is awaited by its requesters; a failure nobody waited for any more
    # (all of them left) must not be reported as "exception was never retrieved"
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, BackendStartError | UpstreamBusy):
            log.error("load task %s failed", task.get_name(), exc_info=exc)
