"""What the backends cost: CPU, memory, threads and GPU, sampled off the request path.

`ResourceSampler.run()` is a long-lived task (the app starts it in its
lifespan). Every `interval` seconds it reads, in a worker thread so the
event loop never waits on `/proc`:

* for each backend whose process it can find — the pid of a managed backend
  (`pids()`), a configured pid file, or else the process listening on the
  port of a loopback URL (looked up with `psutil.net_connections`, cached) —
  the CPU seconds, CPU percent, resident memory and threads of the process
  and all its children;
* system CPU and memory;
* per GPU utilisation and memory through NVML, when `pynvml` (the
  `nvidia-ml-py` package) imports and initialises; silently absent otherwise;
* the proxy's own process via prometheus_client's `ProcessCollector`,
  added to the registry unless one is there already.

Scrapes only read the last values, so a scrape costs nothing extra. Each
backend reading also goes to a `ResourceHistory` when one is given (the
status page's CPU and memory charts).
A backend whose process can't be found (remote, or not running) exports
`variant_proxy_backend_processes 0` and none of the other backend series.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from prometheus_client import ProcessCollector

from .activity import ResourceHistory
from .metrics import Metrics

__all__ = ["ResourceSampler", "listening_pid", "loopback_port"]

log = logging.getLogger("variant_proxy.resources")

_PROC_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError)


def loopback_port(url: str) -> int | None:
    """The TCP port of a URL served on this machine, else None (a remote backend).

    On this machine: `localhost`, a loopback address (127.0.0.0/8, ::1) or a wildcard
    one (0.0.0.0, ::) that a server may be configured with. No port: the scheme's.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not _on_this_machine(host):
        return None
    if port is not None:
        return port
    return {"http": 80, "https": 443}.get(parts.scheme)


def _on_this_machine(host: str) -> bool:
    if host == "localhost" or host.startswith("127."):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def listening_pid(port: int) -> int | None:
    """The pid listening on a local TCP port, if this user may see it, else None.

    Shared by the resource sampler and the benchmark's usage sampler. Never raises:
    a listing psutil can't make is the same as no listener.
    """
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # macOS without root: ask process by process
        for proc in psutil.process_iter():
            with contextlib.suppress(*_PROC_ERRORS):
                for c in proc.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                        return int(proc.pid)
        return None
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is not None:
                return int(conn.pid)
    return None


@dataclass(slots=True)
class _Previous:
    pid: int
    cpu: float
    at: float


@dataclass(slots=True)
class _Usage:
    cpu: float = 0.0
    rss: int = 0
    threads: int = 0
    processes: int = 0


class ResourceSampler:
    """Samples backend, system and GPU resources into `metrics` every `interval` seconds."""

    def __init__(
        self,
        metrics: Metrics,
        backends: Mapping[str, str] | Callable[[], Mapping[str, str]],
        pids: Callable[[], Mapping[str, int | None]] | None = None,
        pid_files: Mapping[str, str] | None = None,
        *,
        interval: float = 5.0,
        port_cache_ttl: float = 60.0,
        gpu: bool = True,
        history: ResourceHistory | None = None,
    ) -> None:
        self.metrics = metrics
        #: where each backend reading also goes, for the status page's charts
        self.history = history
        self.interval = interval
        self.port_cache_ttl = port_cache_ttl
        self._backends = backends
        self._pids = pids
        self._pid_files = dict(pid_files or {})
        self._procs: dict[int, psutil.Process] = {}
        self._ports: dict[int, tuple[int | None, float]] = {}  # port → (pid, looked up at)
        self._previous: dict[str, _Previous] = {}
        self._known: set[str] = set()
        self._nvml: Any = None
        self._gpus: list[Any] = []
        self._gpu_ids: set[str] = set()
        self._ensure_process_collector()
        psutil.cpu_percent(interval=None)  # primes the system-wide reading
        if gpu:
            self._init_nvml()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Sample forever; cancel the task to stop. Errors are logged, never raised."""
        try:
            while True:
                backends, pids = self._inputs()
                try:
                    await asyncio.to_thread(self.sample, backends, pids)
                except Exception:  # a sampling bug must not kill the task
                    log.exception("resource sampling failed")
                await asyncio.sleep(self.interval)
        finally:
            self.close()

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None
            self._gpus = []

    # -- one pass ----------------------------------------------------------------------------

    def sample(
        self,
        backends: Mapping[str, str] | None = None,
        pids: Mapping[str, int | None] | None = None,
    ) -> None:
        """One sampling pass (blocking; `run` calls it in a worker thread)."""
        if backends is None or pids is None:
            b, p = self._inputs()
            backends = b if backends is None else backends
            pids = p if pids is None else pids
        now = time.monotonic()
        trees: dict[str, list[psutil.Process]] = {}
        for name, url in backends.items():
            root = self._find_process(name, url, pids.get(name), now)
            tree = self._tree(root) if root is not None else []
            trees[name] = tree
            self._record_backend(name, root, tree, now)
        for gone in self._known - set(backends):
            self._forget(gone)
            with contextlib.suppress(KeyError):
                self.metrics.backend_processes.remove(gone)
        self._known = set(backends)
        self._record_system()
        if self._nvml is not None:
            self._record_gpus(trees)

    def _inputs(self) -> tuple[dict[str, str], dict[str, int | None]]:
        backends = self._backends() if callable(self._backends) else self._backends
        pids: Mapping[str, int | None] = {}
        if self._pids is not None:
            try:
                pids = self._pids()
            except Exception:  # a broken callable must not stop sampling
                log.exception("pids() failed")
        return dict(backends), dict(pids)

    # -- finding processes -------------------------------------------------------------------

    def _find_process(
        self, name: str, url: str, pid: int | None, now: float
    ) -> psutil.Process | None:
        if pid:
            proc = self._process(pid)
            if proc is not None:
                return proc
        path = self._pid_files.get(name)
        if path:
            with contextlib.suppress(OSError, ValueError):
                proc = self._process(int(Path(path).read_text().split()[0]))
                if proc is not None:
                    return proc
        port = loopback_port(url)
        if port is None:
            return None
        cached = self._ports.get(port)
        if cached is not None:
            cached_pid, at = cached
            proc = self._process(cached_pid) if cached_pid else None
            fresh = now - at < self.port_cache_ttl
            if proc is not None or (cached_pid is None and fresh):
                return proc
        found = listening_pid(port)
        self._ports[port] = (found, now)
        return self._process(found) if found else None

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is not None and proc.is_running():
            return proc
        self._procs.pop(pid, None)
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except _PROC_ERRORS:
            return None
        if len(self._procs) > 256:  # a churn of short-lived children; start over
            self._procs.clear()
        self._procs[pid] = proc
        return proc

    def _tree(self, root: psutil.Process) -> list[psutil.Process]:
        tree = [root]
        with contextlib.suppress(*_PROC_ERRORS):
            for child in root.children(recursive=True):
                cached = self._process(child.pid)
                if cached is not None:
                    tree.append(cached)
        return tree

    # -- recording ---------------------------------------------------------------------------

    def _record_backend(
        self, name: str, root: psutil.Process | None, tree: list[psutil.Process], now: float
    ) -> None:
        m = self.metrics
        usage = _usage(tree)
        m.backend_processes.labels(name).set(usage.processes)
        if root is None or usage.processes == 0:
            self._forget(name)
            return
        m.backend_cpu_seconds.set([name], usage.cpu)
        m.backend_memory.labels(name).set(usage.rss)
        m.backend_threads.labels(name).set(usage.threads)
        prev = self._previous.get(name)
        percent: float | None = None
        if prev is not None and prev.pid == root.pid and now > prev.at:
            percent = round(max(0.0, (usage.cpu - prev.cpu) / (now - prev.at) * 100.0), 2)
            m.backend_cpu_percent.labels(name).set(percent)
        self._previous[name] = _Previous(root.pid, usage.cpu, now)
        if self.history is not None:
            self.history.add(name, time.time(), percent, usage.rss)

    def _forget(self, name: str) -> None:
        m = self.metrics
        self._previous.pop(name, None)
        m.backend_cpu_seconds.remove([name])
        for gauge in (m.backend_cpu_percent, m.backend_memory, m.backend_threads):
            with contextlib.suppress(KeyError):
                gauge.remove(name)
        with contextlib.suppress(KeyError):
            m.backend_gpu_memory.remove(name)

    def _record_system(self) -> None:
        m = self.metrics
        m.system_cpu_percent.set(psutil.cpu_percent(interval=None))
        vm = psutil.virtual_memory()
        m.system_memory_total.set(vm.total)
        m.system_memory_used.set(vm.total - vm.available)

    # -- GPUs --------------------------------------------------------------------------------

    def _init_nvml(self) -> None:
        try:
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
        except Exception:  # not installed, no driver, no GPU: no GPU metrics
            return
        try:
            count = int(nvml.nvmlDeviceGetCount())
            self._gpus = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
            return
        self._nvml = nvml

    def _record_gpus(self, trees: Mapping[str, list[psutil.Process]]) -> None:
        nvml, m = self._nvml, self.metrics
        owner = {p.pid: name for name, tree in trees.items() for p in tree}
        per_backend: dict[str, int] = {}
        for index, handle in enumerate(self._gpus):
            gpu = str(index)
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # a GPU fell off the bus or NVML hiccuped: skip this pass
                continue
            m.gpu_utilization.labels(gpu).set(float(util.gpu) / 100.0)
            m.gpu_memory_used.labels(gpu).set(float(mem.used))
            m.gpu_memory_total.labels(gpu).set(float(mem.total))
            self._gpu_ids.add(gpu)
            with contextlib.suppress(Exception):
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    name = owner.get(int(proc.pid))
                    used = getattr(proc, "usedGpuMemory", None)
                    if name is not None and isinstance(used, int):
                        per_backend[name] = per_backend.get(name, 0) + used
        for name in trees:
            if name in per_backend:
                m.backend_gpu_memory.labels(name).set(per_backend[name])
            else:
                with contextlib.suppress(KeyError):
                    m.backend_gpu_memory.remove(name)

    # -- the proxy itself --------------------------------------------------------------------

    def _ensure_process_collector(self) -> None:
        registry = self.metrics.registry
        if registry.get_sample_value("process_cpu_seconds_total") is not None:
            return
        with contextlib.suppress(ValueError):  # already registered (on a platform without /proc)
            ProcessCollector(registry=registry)


def _usage(tree: list[psutil.Process]) -> _Usage:
    usage = _Usage()
    for proc in tree:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                rss = proc.memory_info().rss
                threads = proc.num_threads()
        except _PROC_ERRORS:
            continue  # exited between listing and reading
        usage.cpu += times.user + times.system + times.children_user + times.children_system
        usage.rss += rss
        usage.threads += threads
        usage.processes += 1
    return usage
