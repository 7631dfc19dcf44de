"""`variant-proxy bench`: benchmark every variant through the proxy, write the reports.

    variant-proxy bench [--config PATH] [--variants a,b] [--suite NAME|PATH ...]
                        [--repeat N] [--concurrency N] [--limit N] [--max-tokens N]
                        [--out DIR] [--compare PREVIOUS.json] [--url PROXY_URL]

Without `--url` the proxy is started in this process from the config, under
uvicorn on a free loopback port (so streaming is timed over a real socket,
through the same code path as live traffic, managed backends included). With
`--url` an already running proxy is benchmarked. Exit status: 0, 1 when
`--compare` found a regression, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from ..bench import sandbox
from ..bench.report import (
    CompareMismatch,
    Regression,
    check_comparable,
    compare,
    text_table,
    write_outputs,
)
from ..bench.runner import RunSettings, VariantTarget, run_benchmark, variant_identity
from ..bench.running import RunningProxy
from ..bench.suite import Suite, load_suite
from ..bench.usage import backend_pid
from ..classify import CLASSES
from ..config import RouterConfig, load_config
from ..errors import ConfigError, SuiteError
from ..settings import Settings
from ._common import print_config_error

__all__ = ["register_cli", "run_cli"]

API_KEY_ENV = "VARIANT_PROXY_BENCH_API_KEY"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `bench` subcommand to the `variant-proxy` parser."""
    p = sub.add_parser(
        "bench",
        help="benchmark every variant's speed, accuracy and resource use",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="routing config (default: $VARIANT_PROXY_CONFIG or config/router.yaml)",
    )
    p.add_argument("--variants", default=None, help="comma-separated variants (default: all)")
    p.add_argument(
        "--suite",
        action="append",
        default=None,
        help=f"shipped suite ({', '.join(CLASSES)}) or a suite file; repeatable or "
        "comma-separated (default: all shipped suites)",
    )
    p.add_argument("--repeat", type=_positive, default=1, help="samples per task (pass@k)")
    p.add_argument("--concurrency", type=_positive, default=1, help="requests at once")
    p.add_argument("--limit", type=_positive, default=None, help="first N tasks of each suite")
    p.add_argument("--max-tokens", type=_positive, default=None, help="cap on every task's")
    p.add_argument(
        "--temperature", type=float, default=None, help="default 0, or 0.8 with --repeat > 1"
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    p.add_argument("--out", type=Path, default=None, help="default <state_dir>/bench")
    p.add_argument("--compare", type=Path, default=None, help="a previous result JSON")
    p.add_argument(
        "--pass-tolerance",
        type=_fraction,
        default=0.05,
        help="pass ratio drop that counts as a regression (default 0.05)",
    )
    p.add_argument(
        "--speed-tolerance",
        type=_fraction,
        default=0.20,
        help="relative TTFT / tokens-per-second loss that counts as a regression (0.20)",
    )
    p.add_argument("--url", default=None, help="bench a running proxy instead of starting one")
    p.add_argument(
        "--api-key", default=None, help=f"client key for the proxy (default: ${API_KEY_ENV})"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run answers without bubblewrap (only resource limits); reports say so first",
    )
    p.add_argument("--no-warmup", action="store_true", help="no unmeasured warm-up request")


class _Bar:
    """A one-line progress bar on a terminal; a line per 10% otherwise."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.stage = ""
        self._last_decile = -1
        self._stage_started = time.monotonic()

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.enabled or total <= 0:
            return
        stage = "scoring" if label.startswith("scoring") else "generating"
        if stage != self.stage:
            if self.tty and self.stage:
                self.stream.write("\n")
            self.stage, self._last_decile = stage, -1
            self._stage_started = time.monotonic()
        fraction = done / total
        elapsed = time.monotonic() - self._stage_started
        eta = f"ETA {elapsed / done * (total - done):.0f}s" if done and done < total else ""
        if self.tty:
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r{stage:<10} [{bar}] {done}/{total} {eta:<10} {label[:40]:<40}")
            if done == total:
                self.stream.write("\n")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if decile != self._last_decile:
            self._last_decile = decile
            line = f"{stage} {done}/{total} ({fraction:.0%}) {eta}".rstrip()
            print(line, file=self.stream, flush=True)


@dataclass
class _Context:
    base_url: str
    variants: list[VariantTarget]
    meta: dict[str, Any]
    default_out: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


def _variant_info(cfg: RouterConfig, name: str) -> dict[str, Any]:
    spec = cfg.variants[name]
    backend = cfg.backends[spec.backend]
    return {
        "backend": spec.backend,
        "backend_kind": backend.kind,
        "model": spec.model,
        "api": spec.api,
        "fim": spec.fim,
        "pin": spec.pin.model_dump(exclude_none=True) if spec.pin is not None else None,
        "identity": None,
    }


def _backend_urls(proxy: RunningProxy | None, cfg: RouterConfig) -> dict[str, str]:
    """Where each backend answers: the running proxy knows its managed ones' ports."""
    if proxy is not None:
        return dict(proxy.runtime.urls)
    return {n: b.url for n, b in cfg.backends.items() if b.url is not None}


async def _targets(
    cfg: RouterConfig, names: list[str] | None, proxy: RunningProxy | None, urls: dict[str, str]
) -> list[VariantTarget]:
    chosen = names or list(cfg.variants)
    unknown = [n for n in chosen if n not in cfg.variants]
    if unknown:
        known = ", ".join(cfg.variants)
        raise SystemExit(f"error: unknown variant {unknown[0]!r} (known: {known})")
    out = []
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        for name in chosen:
            info = _variant_info(cfg, name)
            info["identity"] = await variant_identity(cfg, name, client, urls)
            backend = cfg.variants[name].backend
            out.append(
                VariantTarget(
                    name=name,
                    fim=cfg.variants[name].fim is not None,
                    info=info,
                    pid=backend_pid(proxy, backend, urls.get(backend)),
                    api=cfg.variants[name].api,
                )
            )
    return out


async def _remote_variants(url: str, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The variants a running proxy lists, with what it says about each (`api`, `fim`)."""
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as client:
        reply = await client.get("/v1/models", headers=headers)
        reply.raise_for_status()
        data = reply.json().get("data", [])
    return {
        str(m["id"]): m["variant_proxy"]
        for m in data
        if isinstance(m, dict) and (m.get("variant_proxy") or {}).get("kind") == "variant"
    }


def _remote_target(name: str, listed: dict[str, dict[str, Any]]) -> VariantTarget:
    """A variant of a running proxy; FIM and API known when the proxy lists them."""
    info = listed.get(name)
    if info is None or "fim" not in info:
        return VariantTarget(name, None, {"identity": None})
    api = info.get("api")
    target = VariantTarget(name, info["fim"] is not None, {"identity": None, "fim": info["fim"]})
    target.api = str(api) if api is not None else None
    return target


def _load_cfg(path: Path | None) -> tuple[RouterConfig, Path]:
    config = path if path is not None else Settings().config
    return load_config(config), config


@contextlib.asynccontextmanager
async def _context(args: argparse.Namespace, headers: dict[str, str]) -> AsyncIterator[_Context]:
    names = _split([args.variants]) if args.variants else None
    if args.url:
        url = args.url.rstrip("/").removesuffix("/v1")
        if args.config is not None:
            cfg, _ = _load_cfg(args.config)
            urls = _backend_urls(None, cfg)
            targets = await _targets(cfg, names, None, urls)
            out = Path(cfg.server.state_dir) / "bench"
        else:
            listed = await _remote_variants(url, headers)
            targets = [_remote_target(n, listed) for n in names or listed]
            out = Path(".variant-proxy") / "bench"
        meta = {"proxy": {"mode": "url", "url": url, "config": _s(args.config)}}
        yield _Context(url, targets, meta, out)
        return

    import uvicorn

    from ..app import create_app  # the top layer may build the web layer

    class _QuietServer(uvicorn.Server):
        """Leaves Ctrl-C to the bench (which stops and saves), not to uvicorn."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    cfg, source = _load_cfg(args.config)
    app = create_app(source)
    proxy: RunningProxy = app.state.proxy
    port = _free_port()
    server = _QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve(), name="variant-proxy-bench-server")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise SystemExit("error: the in-process proxy did not start (see the log above)")
            await asyncio.sleep(0.02)
        urls = _backend_urls(proxy, cfg)
        targets = await _targets(cfg, names, proxy, urls)
        meta = {
            "proxy": {
                "mode": "in-process",
                "url": f"http://127.0.0.1:{port}",
                "config": str(source),
            }
        }
        yield _Context(
            f"http://127.0.0.1:{port}", targets, meta, Path(cfg.server.state_dir) / "bench"
        )
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 60)


@contextlib.contextmanager
def _ctrl_c(err: TextIO) -> Iterator[asyncio.Event]:
    """The first Ctrl-C stops sending new tasks (what was answered is scored and saved);
    a second one interrupts as usual."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def first() -> None:
        stopped.set()
        print("\nstopping: scoring and saving the answers so far (Ctrl-C again to abort)", file=err)
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests), or no signals
        yield stopped
        return
    try:
        yield stopped
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _s(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _previous(args: argparse.Namespace, err: TextIO) -> dict[str, Any] | None | int:
    """The `--compare` baseline, None without one, or an exit status on an error."""
    if args.compare is None:
        return None
    try:
        previous = json.loads(args.compare.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.compare}: {exc}", file=err)
        return 2
    if not isinstance(previous, dict) or previous.get("schema") != 1:
        print(f"error: {args.compare} is not a schema 1 benchmark result", file=err)
        return 2
    return previous


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        suites: list[Suite] = [load_suite(s) for s in (_split(args.suite) or CLASSES)]
    except SuiteError as exc:
        print(f"error: {exc}", file=err)
        return 2
    previous = _previous(args, err)
    if isinstance(previous, int):
        return previous
    key = args.api_key or os.environ.get(API_KEY_ENV)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    settings = RunSettings(
        repeat=args.repeat,
        concurrency=args.concurrency,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        limit=args.limit,
        request_timeout=args.timeout,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
        warmup=not args.no_warmup,
    )
    if previous is not None:  # refuse a mismatched baseline before spending an hour
        planned = {"settings": settings.as_dict()}
        planned["suites"] = {s.name: {"version": s.version} for s in suites}
        try:
            check_comparable(previous, planned)
        except CompareMismatch as exc:
            print(f"error: --compare {args.compare}: {exc}", file=err)
            return 2
    if not args.unsafe_no_sandbox:
        found, why = sandbox.bubblewrap()
        if found is None:
            print(f"error: {why}; refusing to score (--unsafe-no-sandbox runs anyway)", file=err)
            return 2
    bar = _Bar(err, not args.no_progress)
    started = time.monotonic()
    async with _context(args, headers) as ctx:
        if not ctx.variants:
            print("error: no variants to benchmark", file=err)
            return 2
        timeout = httpx.Timeout(args.timeout, connect=10)
        async with httpx.AsyncClient(
            base_url=ctx.base_url, timeout=timeout, trust_env=False
        ) as client:
            with _ctrl_c(err) as stopped:
                doc = await run_benchmark(
                    client,
                    ctx.variants,
                    suites,
                    settings,
                    headers=headers,
                    progress=bar,
                    meta=ctx.meta,
                    stop=stopped.is_set,
                )
    return _finish(args, doc, previous, args.out or ctx.default_out, started, out, err)


def _finish(
    args: argparse.Namespace,
    doc: dict[str, Any],
    previous: dict[str, Any] | None,
    out_dir: Path,
    started: float,
    out: TextIO,
    err: TextIO,
) -> int:
    """Compare, write the files, print the summary; the exit status."""
    regressions: list[Regression] = []
    notes: list[str] = []
    if previous is not None:
        regressions, notes = compare(
            previous,
            doc,
            pass_tolerance=args.pass_tolerance,
            speed_tolerance=args.speed_tolerance,
        )
    paths = write_outputs(
        doc,
        out_dir,
        regressions=regressions,
        notes=notes,
        compared_with=None if args.compare is None else str(args.compare),
    )
    print(text_table(doc), file=out)
    print(file=out)
    iso = doc["sandbox"]
    if iso.get("sandbox") != "bubblewrap":
        print("warning: UNSAFE: answers ran WITHOUT the bubblewrap sandbox", file=err)
    if not iso.get("network"):
        print(
            f"warning: candidates ran WITHOUT network isolation: {iso['network_detail']}", file=err
        )
    for regression in regressions:
        print(f"REGRESSION {regression.message}", file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    print(
        f"results: {paths['json']}\nreport:  {paths['markdown']}\n         {paths['html']}\n"
        f"history: {paths['history']}\n"
        f"({time.monotonic() - started:.1f} s)",
        file=out,
    )
    if doc.get("interrupted"):
        print(f"interrupted: partial results of {len(doc['tasks'])} answers saved", file=err)
        return 130
    return 1 if regressions else 0


def run_cli(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `bench` with parsed arguments; return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return asyncio.run(_run(args, out, err))
    except ConfigError as exc:
        print_config_error(exc, err)
        return 2
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=err)
            return 2
        return int(exc.code or 0)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the proxy: {exc}", file=err)
        return 2
