"""`variant-proxy serve`: the proxy under uvicorn, one process or several workers.

One process runs uvicorn on uvloop (when installed) with SIGHUP reloading the config
and SIGTERM/SIGINT draining to a clean exit. `--workers N` hands the socket to
uvicorn's supervisor instead; each worker builds its app from the environment
(`proxy.app:app_from_env`) and metrics are summed across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from ..config import RouterConfig
from ..errors import ConfigError
from ..httpserver import BoundedHttpProtocol
from ..origin import open_listener_problem
from ..settings import Settings
from ._common import print_config_error

__all__ = ["cmd_serve"]


def cmd_serve(settings: Settings, err: TextIO) -> int:
    from ..app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # one line per health probe and request is noise; uvicorn's access log already has requests
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))
    try:
        app = create_app(
            settings.config, listen_host=settings.host, allow_remote=settings.allow_remote
        )
    except ConfigError as exc:
        print_config_error(exc, err)
        return 1
    proxy = app.state.proxy
    problem = open_listener_problem(
        settings.host, keys=proxy.keys.enabled, allow_remote=settings.allow_remote
    )
    if problem is not None:
        print(f"error: {problem}", file=err)
        return 1
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "[::]") else settings.host
    base = f"http://{shown}:{settings.port}"
    cfg = proxy.runtime.cfg
    if settings.workers > 1:
        return _serve_workers(settings, cfg, base, err)
    print(_banner(base, cfg), file=err, flush=True)
    _return_freed_memory()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(cfg.server.drain_timeout),
        server_header=False,
        access_log=settings.access_log,
        **_limits(cfg),
    )
    server = _Server(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def reload() -> None:
            try:
                proxy.reload()
            except ConfigError as exc:
                logging.getLogger("variant_proxy").error("reload failed, keeping config: %s", exc)

        loop.add_signal_handler(signal.SIGHUP, reload)
        await server.serve()

    # uvloop when installed, as uvicorn.run would choose
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(run())
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT handled by draining is a clean exit
    (status 0) rather than re-raised to kill the process afterwards."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be handled on the main thread
            return
        stop = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stop}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _serve_workers(settings: Settings, cfg: RouterConfig, base: str, err: TextIO) -> int:
    """Several worker processes on one socket (uvicorn's supervisor).

    Metrics use prometheus_client's multiprocess mode, so /metrics on any worker shows
    the sum over all of them. Health, breaker, queue and pin state are per worker. SIGHUP
    restarts the workers, which reload the config.
    """
    import shutil

    if any(b.managed for b in cfg.backends.values()):
        print(
            "error: managed backends (backends.*.command) run in one process; "
            "use --workers 1, or start the model server yourself and give its url",
            file=err,
        )
        return 1
    metrics_dir = Path(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(cfg.server.state_dir) / "metrics"
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    os.environ["VARIANT_PROXY_CONFIG"] = str(settings.config)
    # each worker's reload check needs the bound address and --allow-remote too
    os.environ["VARIANT_PROXY_HOST"] = settings.host
    os.environ["VARIANT_PROXY_ALLOW_REMOTE"] = "1" if settings.allow_remote else "0"
    print(_banner(base, cfg) + f"\n  workers: {settings.workers}", file=err, flush=True)
    uvicorn.run(
        "proxy.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(cfg.server.drain_timeout),
        server_header=False,
        access_log=settings.access_log,
        **_limits(cfg),
    )
    return 0


def _limits(cfg: RouterConfig) -> dict[str, Any]:
    """uvicorn settings for the client side: the bounded protocol (head size and timeout,
    connection cap, lingering close; see `proxy.httpserver`, which reads the running
    config itself) on the httptools parser it extends, and the idle keep-alive timeout."""
    return {
        "http": BoundedHttpProtocol,
        "timeout_keep_alive": math.ceil(cfg.server.idle_timeout),
    }


def _return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the system.

    glibc serves blocks over 128 KiB with mmap, but after one is freed it raises that
    threshold (up to 32 MiB) and serves later ones from the heap, which it rarely returns:
    16 concurrent 31 MiB bodies then stayed as 1.2-1.5 GB of RSS after they were done.
    A fixed threshold keeps every large block (request bodies) mmapped and unmapped on
    free; small allocations, the hot path's, are unaffected. A no-op off glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(name)
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 256 * 1024)


def _banner(base: str, cfg: RouterConfig) -> str:
    names = ", ".join(["auto", *cfg.variants])
    # the README quickstart's two requests: both answer correctly in about a second even on
    # the demo's 270M base model (code from a docstring; a short fact, with routing headers)
    completion = (
        '{"model": "auto", "prompt": "def reverse_string(s):\\n    '
        '\\"\\"\\"Return s reversed.\\"\\"\\"\\n"}'
    )
    chat = (
        '{"model": "auto", "messages": [{"role": "user", '
        '"content": "What is the capital of France?"}]}'
    )
    return "\n".join(
        [
            f"variant-proxy: point OpenAI clients at {base}/v1 "
            + (
                "(api_key: one of the keys in server.auth)"
                if cfg.server.auth.api_keys_env or cfg.server.auth.api_keys_file
                else "(api_key: any string)"
            ),
            f"  models:  {names}",
            f"  metrics: {base}/metrics   backends: {base}/backends   ready: {base}/ready",
            f"  try:     curl -s {base}/v1/completions -H 'content-type: application/json' "
            f"-d '{completion}'",
            f"           curl -i {base}/v1/chat/completions -H 'content-type: application/json' "
            f"-d '{chat}'",
        ]
    )
