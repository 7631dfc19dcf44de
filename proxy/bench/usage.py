"""The backend's CPU, memory and GPU use while a benchmark phase runs.

The process is the managed backend's (`proxy.managed[name].pid`) or, for a
server variant-proxy doesn't run, whatever listens on the backend's loopback
port. A sampler task reads it every `interval` seconds with psutil (the
process and its children summed) and NVML when `pynvml` is importable; none
of this is on a request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable
from types import TracebackType
from typing import Any

import psutil

from ..resources import listening_pid, loopback_port
from .running import ManagedBackends

__all__ = ["UsageSampler", "backend_pid", "listener"]


def listener(url: str) -> Callable[[], int | None]:
    """A pid provider for the server on `url`: looked up once, again only when it exits."""
    found: list[int] = []

    def pid() -> int | None:
        if found and psutil.pid_exists(found[0]):
            return found[0]
        found.clear()
        port = loopback_port(url)
        value = listening_pid(port) if port is not None else None
        if value is not None:
            found.append(value)
        return value

    return pid


def backend_pid(
    proxy: ManagedBackends | None, backend: str, url: str | None
) -> Callable[[], int | None]:
    """The backend's pid: the managed process's, else whatever listens on its port.

    `proxy` is None when the proxy runs elsewhere (`bench --url`); its managed
    processes are read at each call, since they start after the scheduler is built.
    """
    listen = listener(url) if url else None

    def pid() -> int | None:
        proc = proxy.managed.get(backend) if proxy is not None else None
        if proc is not None:
            return proc.pid
        return listen() if listen is not None else None

    return pid


class _Gpu:
    """NVML through pynvml, if installed; otherwise nothing is reported."""

    def __init__(self) -> None:
        self.nvml: Any = None
        with contextlib.suppress(Exception):
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
            self.nvml = nvml

    def read(self, pids: set[int]) -> tuple[float, int] | None:
        if self.nvml is None:
            return None
        nvml = self.nvml
        util = 0.0
        memory = 0
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                mine = [p for p in procs if p.pid in pids]
                if mine:
                    util = max(util, float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                    memory += sum(int(p.usedGpuMemory or 0) for p in mine)
        except Exception:
            return None
        return util, memory


class UsageSampler:
    """Samples one process tree in the background while used as `async with`."""

    def __init__(self, pid: Callable[[], int | None], *, interval: float = 0.25) -> None:
        self._pid = pid
        self.interval = interval
        self._procs: dict[int, psutil.Process] = {}
        self._task: asyncio.Task[None] | None = None
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self.gpu_util: list[float] = []
        self.gpu_memory: list[int] = []
        self.pids: set[int] = set()
        self._gpu: _Gpu | None = None

    async def __aenter__(self) -> UsageSampler:
        self._gpu = _Gpu()
        self._sample()  # primes cpu_percent
        self.cpu.clear()
        self._task = asyncio.create_task(self._loop(), name="variant-proxy-bench-usage")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._sample()

    def _sample(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        cpu = 0.0
        rss = 0
        current: dict[int, psutil.Process] = {}
        for proc in tree:
            known = self._procs.get(proc.pid, proc)
            current[proc.pid] = known
            with contextlib.suppress(psutil.Error):
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
        self._procs = current
        self.pids.add(pid)
        self.cpu.append(cpu)
        self.rss.append(rss)
        if self._gpu is not None:
            reading = self._gpu.read(set(current))
            if reading is not None:
                self.gpu_util.append(reading[0])
                self.gpu_memory.append(reading[1])

    def summary(self) -> dict[str, Any] | None:
        """Mean and peak figures, or None when no process could be observed."""
        if not self.rss:
            return None
        cpu = self.cpu or [0.0]
        return {
            "pids": sorted(self.pids),
            "samples": len(self.rss),
            "cpu_percent_mean": round(sum(cpu) / len(cpu), 1),
            "cpu_percent_max": round(max(cpu), 1),
            "rss_bytes_mean": int(sum(self.rss) / len(self.rss)),
            "rss_bytes_max": max(self.rss),
            "gpu_util_percent_max": max(self.gpu_util) if self.gpu_util else None,
            "gpu_memory_bytes_max": max(self.gpu_memory) if self.gpu_memory else None,
        }
