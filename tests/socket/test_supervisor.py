"""ManagedProcess against a real child process (tests/helpers/fake_server.py), bounded in time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from proxy.errors import BackendStartError
from proxy.supervisor import (
    ManagedProcess,
    find_free_port,
    render_command,
)

FAKE_SERVER = str(Path(__file__).resolve().parents[1] / "helpers" / "fake_server.py")
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def make(tmp_path: Path, *extra: str, **kwargs: Any) -> ManagedProcess:
    port = find_free_port()
    argv = render_command(
        [sys.executable, FAKE_SERVER, "--port", "{port}", *extra], port=port, model="unused"
    )
    kwargs.setdefault("start_timeout", 10.0)
    kwargs.setdefault("stop_grace", 2.0)
    kwargs.setdefault("restart_initial_backoff", 0.1)
    kwargs.setdefault("restart_max_backoff", 0.5)
    return ManagedProcess(
        argv,
        health_url=f"http://127.0.0.1:{port}/health",
        log_path=tmp_path / "logs" / "fake.log",
        name="fake",
        **kwargs,
    )


def test_render_command_substitutes_only_placeholders() -> None:
    argv = ["srv", "-m", "{model}", "--port={port}", '{"x": 1}']
    assert render_command(argv, 8080, "/m.gguf") == [
        "srv",
        "-m",
        "/m.gguf",
        "--port=8080",
        '{"x": 1}',
    ]


def test_find_free_port_is_bindable() -> None:
    import socket

    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_start_waits_for_health(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "1.0")

    async def main() -> None:
        assert proc.state == "stopped" and proc.pid is None
        t0 = time.monotonic()
        try:
            await proc.start()
            assert time.monotonic() - t0 >= 1.0
            assert proc.state == "ready"
            assert proc.pid is not None and alive(proc.pid)
            async with httpx.AsyncClient(trust_env=False) as client:
                assert (await client.get(proc.health_url)).status_code == 200
        finally:
            await proc.stop()
        assert proc.state == "stopped"

    run(main())


def test_early_exit_raises_naming_the_log(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "60", "--exit-after", "0.2", "--exit-code", "3")

    async def main() -> None:
        with pytest.raises(BackendStartError) as info:
            await proc.start()
        err = info.value
        assert str(proc.log_path) in str(err)
        assert "exited with code 3" in str(err)
        assert "exiting on purpose" in str(err)  # quoted from the log tail
        assert err.log_path == proc.log_path
        assert proc.state == "failed"
        assert proc.pid is None
        await proc.stop()

    run(main())


def test_missing_executable_raises(tmp_path: Path) -> None:
    proc = ManagedProcess(
        [str(tmp_path / "no-such-binary")],
        health_url="http://127.0.0.1:1/health",
        log_path=tmp_path / "x.log",
    )
    with pytest.raises(BackendStartError, match="cannot execute"):
        run(proc.start())
    assert proc.state == "failed"


def test_start_timeout_kills_the_process(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "60", start_timeout=1.0)
    seen: list[int] = []

    async def main() -> None:
        async def watch_pid() -> None:
            await wait_until(lambda: proc.pid is not None)
            assert proc.pid is not None
            seen.append(proc.pid)

        watcher = asyncio.create_task(watch_pid())
        with pytest.raises(BackendStartError, match=r"not healthy within 1s .*HTTP 503"):
            await proc.start()
        await watcher
        assert not alive(seen[0])
        assert proc.state == "failed"

    run(main())


def test_crash_is_restarted_and_on_ready_runs_again(tmp_path: Path) -> None:
    ready_pids: list[int | None] = []

    async def on_ready(p: ManagedProcess) -> None:
        ready_pids.append(p.pid)

    proc = make(tmp_path, on_ready=on_ready)

    async def main() -> None:
        try:
            await proc.start()
            first = proc.pid
            assert first is not None and ready_pids == [first]
            os.kill(first, signal.SIGKILL)
            await wait_until(lambda: proc.state == "restarting")
            await wait_until(lambda: proc.state == "ready")
            assert proc.restarts == 1
            assert proc.last_exit_code == -signal.SIGKILL
            assert proc.pid is not None and proc.pid != first
            assert ready_pids == [first, proc.pid]
            assert not alive(first)
        finally:
            await proc.stop()

    run(main())


def test_ensure_started_skips_restart_backoff(tmp_path: Path) -> None:
    proc = make(tmp_path, restart_initial_backoff=60.0, restart_max_backoff=60.0)

    async def main() -> None:
        try:
            await proc.start()
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            await wait_until(lambda: proc.state == "restarting")
            t0 = time.monotonic()
            await proc.ensure_started()
            assert time.monotonic() - t0 < 10
            assert proc.state == "ready" and proc.restarts == 1
        finally:
            await proc.stop()

    run(main())


def test_failing_on_ready_fails_the_start(tmp_path: Path) -> None:
    async def on_ready(p: ManagedProcess) -> None:
        raise RuntimeError("wrong model digest")

    proc = make(tmp_path, on_ready=on_ready)

    async def main() -> None:
        with pytest.raises(BackendStartError, match="wrong model digest"):
            await proc.start()
        assert proc.state == "failed" and proc.pid is None

    run(main())


def test_idle_ttl_stops_and_ensure_started_restarts(tmp_path: Path) -> None:
    proc = make(tmp_path, idle_ttl=0.5)

    async def main() -> None:
        try:
            await proc.start()
            first = proc.pid
            assert first is not None
            await wait_until(lambda: proc.state == "stopped", timeout=5)
            assert proc.pid is None and not alive(first)
            assert proc.restarts == 0  # an idle stop is not a crash
            await proc.ensure_started()
            assert proc.state == "ready" and proc.pid not in (None, first)
        finally:
            await proc.stop()

    run(main())


def test_touch_and_in_use_postpone_idle_stop(tmp_path: Path) -> None:
    proc = make(tmp_path, idle_ttl=0.5)

    async def main() -> None:
        try:
            async with proc.in_use():
                await asyncio.sleep(1.5)  # a long stream: must not be idled out
                assert proc.state == "ready"
            for _ in range(6):
                proc.touch()
                await asyncio.sleep(0.2)
            assert proc.state == "ready"
        finally:
            await proc.stop()

    run(main())


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_stop_reaps_the_whole_group(tmp_path: Path, ignore_sigterm: bool) -> None:
    pidfile = tmp_path / "child.pid"
    extra = ["--spawn-child", "--pidfile", str(pidfile)]
    if ignore_sigterm:
        extra.append("--ignore-sigterm")
    proc = make(tmp_path, *extra, stop_grace=0.5)

    async def main() -> None:
        await proc.start()
        leader = proc.pid
        assert leader is not None
        child = int(pidfile.read_text())
        assert alive(leader) and alive(child)
        assert os.getpgid(child) == leader  # own group, led by the server
        await proc.stop()
        assert proc.pid is None and proc.state == "stopped"
        assert not Path(f"/proc/{leader}").exists()  # reaped, not a zombie
        await wait_until(lambda: not alive(child), timeout=3)
        await proc.stop()  # idempotent

    run(main())


def test_concurrent_ensure_started_starts_once(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "0.5")

    async def main() -> None:
        try:
            calls: list[Awaitable[None]] = [proc.ensure_started() for _ in range(8)]
            await asyncio.gather(*calls)
            assert proc.state == "ready"
        finally:
            await proc.stop()
        assert proc.log_path.read_text().count("variant-proxy starting") == 1

    run(main())


def test_cancelled_caller_does_not_cancel_shared_start(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "1.0")

    async def main() -> None:
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(proc.ensure_started(), timeout=0.2)
            await proc.ensure_started()
            assert proc.state == "ready"
        finally:
            await proc.stop()
        assert proc.log_path.read_text().count("variant-proxy starting") == 1

    run(main())


def test_stop_during_start_fails_waiters_cleanly(tmp_path: Path) -> None:
    proc = make(tmp_path, "--unhealthy-for", "60")

    async def main() -> None:
        waiter = asyncio.create_task(proc.ensure_started())
        await wait_until(lambda: proc.pid is not None)
        pid = proc.pid
        assert pid is not None
        await proc.stop()
        with pytest.raises(BackendStartError, match="stopped while starting"):
            await waiter
        assert proc.state == "stopped" and not alive(pid)

    run(main())
