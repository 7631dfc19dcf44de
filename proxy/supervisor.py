"""Managed model servers: start on demand, wait for health, restart on crash, stop when idle.

Like llama-swap, the proxy can own the processes behind some backends. A
:class:`ManagedProcess` runs one command line (``llama-server -m {model} --port {port}``)
in its own session, appends its stdout and stderr to a log file, and moves through::

    stopped ──start()──▶ starting ──healthy──▶ ready ──crash──▶ restarting ──healthy──▶ ready
       ▲                    │                    │                  │ (backoff, retries)
       │                    ▼                    │ idle_ttl/stop()  ▼
       └──────────────── failed ◀────────────────┴──────────▶ stopped  (failed: max_restarts)

Errors::

    BackendStartError   # the process exited early, or was not healthy within start_timeout;
                        # the message names the log file and quotes its last lines

Every task it spawns is kept in ``self._tasks`` and cancelled by :meth:`ManagedProcess.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from .errors import BackendStartError

__all__ = [
    "ManagedProcess",
    "OnReady",
    "ProcessState",
    "find_free_port",
    "render_command",
    "tail_lines",
]

logger = logging.getLogger("variant_proxy.supervisor")

ProcessState = Literal["stopped", "starting", "ready", "failed", "restarting"]
#: Called (and awaited) each time the process passes its health check, before it is marked
#: ready. Raising from it fails that start attempt, so it can gate traffic (e.g. on the
#: loaded model's identity).
OnReady = Callable[["ManagedProcess"], Awaitable[None]]

LOG_TAIL_LINES = 20


def start_error(name: str, reason: str, log_path: Path) -> BackendStartError:
    """Why backend `name` did not start, with the tail of its log."""
    tail = tail_lines(log_path, LOG_TAIL_LINES)
    return BackendStartError(name, reason, log_path, tail, LOG_TAIL_LINES)


def render_command(argv: Sequence[str], port: int, model: str) -> list[str]:
    """Substitute ``{port}`` and ``{model}`` in each argument. Other braces are left alone,
    so JSON or templates in arguments survive."""
    return [arg.replace("{port}", str(port)).replace("{model}", model) for arg in argv]


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; another process may still
    take it before the caller binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a text file (empty if it does not exist)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))
            data = file.read()
    except OSError:
        return []
    lines: deque[str] = deque(maxlen=count)
    for line in data.decode("utf-8", errors="replace").splitlines():
        lines.append(line)
    return list(lines)


class ManagedProcess:
    """One supervised server process. All methods must be called from one event loop.

    ``env`` is added to this process's environment. ``restarts`` counts respawns after
    unexpected exits (each attempt counts). ``idle_ttl=None`` never stops for idleness.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        health_url: str,
        log_path: str | os.PathLike[str],
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        start_timeout: float = 120.0,
        idle_ttl: float | None = None,
        restart_initial_backoff: float = 1.0,
        restart_max_backoff: float = 30.0,
        max_restarts: int | None = None,
        stop_grace: float = 5.0,
        health_interval: float = 0.1,
        on_ready: OnReady | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv must not be empty")
        self.argv = list(argv)
        self.name = name or Path(self.argv[0]).name
        self.health_url = health_url
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.idle_ttl = idle_ttl
        self.restart_initial_backoff = restart_initial_backoff
        self.restart_max_backoff = restart_max_backoff
        self.max_restarts = max_restarts
        self.stop_grace = stop_grace
        self.health_interval = health_interval
        self.on_ready = on_ready

        self._state: ProcessState = "stopped"
        self._proc: asyncio.subprocess.Process | None = None
        self._restarts = 0
        self._last_used = time.monotonic()
        self._active = 0
        self._last_exit: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._attempt: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: when the current start attempt began (monotonic), None when not starting
        self._attempt_started: float | None = None
        #: seconds from spawn to ready, smoothed over past starts (None: never started)
        self._load_seconds: float | None = None
        self._loads = 0

    # -- public surface -------------------------------------------------------------------

    @property
    def state(self) -> ProcessState:
        return self._state

    @property
    def pid(self) -> int | None:
        """The live process's pid (also its process group id), else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def last_used(self) -> float:
        """When the process last had traffic (monotonic seconds)."""
        return self._last_used

    @property
    def loads(self) -> int:
        """Successful starts so far (first start and restarts)."""
        return self._loads

    @property
    def expected_load_seconds(self) -> float | None:
        """How long a start takes, learned from past starts (None until one succeeded)."""
        return self._load_seconds

    @property
    def loading_for(self) -> float | None:
        """Seconds since the current start attempt began, or None when not starting."""
        started = self._attempt_started
        return None if started is None else time.monotonic() - started

    @property
    def last_exit_code(self) -> int | None:
        """Return code of the last process that exited (negative: killed by that signal)."""
        return self._last_exit

    def touch(self) -> None:
        """Record traffic, postponing the idle stop."""
        self._last_used = time.monotonic()

    @contextlib.asynccontextmanager
    async def in_use(self) -> AsyncIterator[None]:
        """Hold the process for one request: starts it if needed, and never idles it out
        while any holder is inside (long streams outlive ``idle_ttl``)."""
        self._active += 1
        try:
            await self.ensure_started()
            yield
        finally:
            self._active -= 1
            self.touch()

    async def start(self) -> None:
        """Spawn the process and wait until ``health_url`` answers 200.

        Raises :class:`BackendStartError` if it exits early or is not healthy in time.
        If it is already starting or ready, this waits for / returns that instead.
        """
        await self.ensure_started()

    async def ensure_started(self) -> None:
        """Return once the process is ready, starting it if needed. Concurrent callers
        share one start attempt; during crash-restart backoff this retries at once."""
        self.touch()
        if self._state == "ready":
            return
        if self._state == "restarting":
            self._wake.set()
        attempt = self._current_attempt()
        # shield: a caller that gives up (timeout, client gone) must not cancel the start
        # that other callers share.
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if attempt.cancelled() and (current is None or not current.cancelling()):
                # stop() cancelled the shared start; that is a failure for its waiters,
                # not a cancellation of their own tasks.
                raise start_error(self.name, "stopped while starting", self.log_path) from None
            raise

    async def stop(self) -> None:
        """Stop supervising and terminate the process group (SIGTERM, then SIGKILL after
        ``stop_grace``), reaping it. Idempotent."""
        await self._shutdown(cancel_idle=True)
        self._state = "stopped"

    # -- starting -------------------------------------------------------------------------

    def _spawn_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome so that a failed attempt nobody awaited is not reported as
        # "exception was never retrieved"; attempts' errors reach their awaiters anyway.
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, BackendStartError):
                logger.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)

    def _current_attempt(self) -> asyncio.Task[None]:
        if self._attempt is None or self._attempt.done():
            self._attempt = self._spawn_task(self._run_attempt(), "start")
        return self._attempt

    async def _run_attempt(self) -> None:
        restarting = self._state == "restarting"
        if restarting:
            self._restarts += 1
        else:
            self._state = "starting"
        proc: asyncio.subprocess.Process | None = None
        self._attempt_started = began = time.monotonic()
        try:
            proc = await self._spawn()
            await self._wait_healthy(proc)
            if self.on_ready is not None:
                try:
                    await self.on_ready(self)
                except Exception as exc:
                    raise start_error(
                        self.name, f"on_ready callback failed: {exc!r}", self.log_path
                    ) from exc
        except BaseException:
            if proc is not None:
                await self._terminate(proc)
            if self._state in ("starting", "restarting"):
                self._state = "restarting" if restarting else "failed"
            raise
        finally:
            self._attempt_started = None
        self._learn_load(time.monotonic() - began)
        self._state = "ready"
        self.touch()
        logger.info("%s ready (pid %s, restarts %d)", self.name, proc.pid, self._restarts)
        self._spawn_task(self._watch(proc), "watch")
        if self.idle_ttl is not None and (self._idle_task is None or self._idle_task.done()):
            self._idle_task = self._spawn_task(self._idle_loop(self.idle_ttl), "idle")

    def _learn_load(self, seconds: float) -> None:
        # smoothed, so one slow start (a cold page cache) doesn't define the next estimate
        previous = self._load_seconds
        self._load_seconds = seconds if previous is None else 0.5 * previous + 0.5 * seconds
        self._loads += 1

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} variant-proxy starting: {self.argv!r} ===\n".encode())
            log.flush()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **self.env},
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise start_error(
                    self.name, f"cannot execute {self.argv[0]!r}: {exc}", self.log_path
                ) from exc
        self._proc = proc
        logger.info("%s spawned pid %d: %s", self.name, proc.pid, self.argv)
        return proc

    async def _wait_healthy(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        exited = asyncio.ensure_future(proc.wait())
        try:
            # trust_env=False: a proxy configured in the environment must not see loopback.
            async with httpx.AsyncClient(trust_env=False) as client:
                while True:
                    if exited.done():
                        raise start_error(
                            self.name,
                            f"process exited with code {proc.returncode} before it was healthy",
                            self.log_path,
                        )
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise start_error(
                            self.name,
                            f"not healthy within {self.start_timeout:g}s "
                            f"({self.health_url}: {last})",
                            self.log_path,
                        )
                    try:
                        response = await client.get(
                            self.health_url, timeout=max(0.1, min(2.0, remaining))
                        )
                    except httpx.TransportError as exc:
                        last = type(exc).__name__
                    else:
                        if response.status_code == 200:
                            return
                        last = f"HTTP {response.status_code}"
                    await asyncio.wait({exited}, timeout=self.health_interval)
        finally:
            if not exited.done():
                exited.cancel()

    # -- supervision ----------------------------------------------------------------------

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if proc is not self._proc or self._state != "ready":
            return  # stopped on purpose, or superseded
        self._last_exit = code
        logger.warning("%s (pid %d) exited unexpectedly with code %s", self.name, proc.pid, code)
        await self._kill_group(proc.pid)  # leftovers of the crashed group
        self._state = "restarting"
        self._restart_task = self._spawn_task(self._restart_loop(), "restart")

    async def _restart_loop(self) -> None:
        delay = self.restart_initial_backoff
        while True:
            if self.max_restarts is not None and self._restarts >= self.max_restarts:
                self._state = "failed"
                logger.error("%s: giving up after %d restarts", self.name, self._restarts)
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            try:
                await asyncio.shield(self._current_attempt())
                return
            except BackendStartError as exc:
                logger.warning("%s: restart failed: %s", self.name, exc.reason)
                delay = min(delay * 2, self.restart_max_backoff)

    async def _idle_loop(self, ttl: float) -> None:
        interval = min(1.0, ttl / 4)
        while True:
            await asyncio.sleep(interval)
            if self._state != "ready" or self._active > 0:
                continue
            if time.monotonic() - self._last_used >= ttl:
                logger.info("%s idle for %gs, stopping", self.name, ttl)
                await self._shutdown(cancel_idle=False)
                self._state = "stopped"
                return

    # -- stopping -------------------------------------------------------------------------

    async def _shutdown(self, *, cancel_idle: bool) -> None:
        current = asyncio.current_task()
        tasks = [
            t for t in self._tasks if t is not current and (cancel_idle or t is not self._idle_task)
        ]
        for task in tasks:
            task.cancel()
        # An attempt cancelled mid-start terminates its own process in its except clause.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._attempt = None
        self._restart_task = None
        if cancel_idle:
            self._idle_task = None
        proc, self._proc = self._proc, None
        if proc is not None:
            await self._terminate(proc)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group, SIGKILL it after ``stop_grace``, reap the leader."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=self.stop_grace)
            except TimeoutError:
                logger.warning("%s (pid %d) ignored SIGTERM, killing", self.name, proc.pid)
        await self._kill_group(proc.pid)
        await proc.wait()
        if proc is self._proc:
            self._proc = None

    @staticmethod
    async def _kill_group(pgid: int) -> None:
        # The leader may be gone while children it forked still hold the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
