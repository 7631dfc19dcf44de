"""The `variant-proxy` command line.

variant-proxy serve   [--config PATH] [--host H] [--port N] [--log-level L]
variant-proxy check   [--config PATH]
variant-proxy models  [--config PATH] [--json]
variant-proxy explain [--config PATH] (--endpoint PATH | --jsonl) < input
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
import uvicorn

from . import pin_cli
from .bench.cli import register_cli as register_bench
from .bench.cli import run_cli as run_bench
from .config import CLASSES, RouterConfig, load_config
from .errors import ConfigError, ModelNotFound, ProxyError, status_of
from .settings import Settings

__all__ = ["main"]


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="routing config YAML (default: $VARIANT_PROXY_CONFIG or config/router.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variant-proxy",
        description="OpenAI-compatible proxy that routes each request to the best local model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    _add_config(serve)
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to bind (default 8780)")
    serve.add_argument(
        "--log-level", default=None, choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default 1); metrics are aggregated across workers",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log one line per request (off by default: it costs ~5%% of the proxy's CPU)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        default=None,
        help="listen on a non-loopback address even without API keys (not recommended)",
    )

    check = sub.add_parser("check", help="validate a config and summarise it")
    _add_config(check)

    models = sub.add_parser("models", help="list the model names clients can ask for")
    _add_config(models)
    models.add_argument("--json", action="store_true", help="print the /v1/models JSON")

    explain = sub.add_parser("explain", help="show how requests would be routed (nothing is sent)")
    _add_config(explain)
    group = explain.add_mutually_exclusive_group()
    group.add_argument(
        "--endpoint",
        default="/v1/chat/completions",
        help="endpoint of the request body read from stdin (default /v1/chat/completions)",
    )
    group.add_argument(
        "--jsonl",
        action="store_true",
        help='read lines of {"endpoint": ..., "body": {...}}, print one decision per line',
    )
    pin_cli.register_cli(sub)
    register_bench(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for key in (
        "config",
        "host",
        "port",
        "log_level",
        "allow_remote",
        "workers",
        "access_log",
    ):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return Settings(**overrides)


def _load(settings: Settings, err: TextIO) -> RouterConfig | None:
    try:
        return load_config(settings.config)
    except ConfigError as exc:
        print(f"error: invalid config {exc.source}", file=err)
        for issue in exc.issues:
            print(f"{issue}", file=err)
        return None


def cmd_check(settings: Settings, out: TextIO, err: TextIO) -> int:
    cfg = _load(settings, err)
    if cfg is None:
        return 1
    print(f"config {settings.config}: ok", file=out)
    print(f"backends ({len(cfg.backends)}):", file=out)
    for name, backend in cfg.backends.items():
        where = backend.url or f"managed: {' '.join(backend.command or [])}"
        extra = f", max_concurrency {backend.max_concurrency}" if backend.max_concurrency else ""
        print(f"  {name:<16} {backend.kind:<9} {where}{extra}", file=out)
    print(f"variants ({len(cfg.variants)}):", file=out)
    for name, variant in cfg.variants.items():
        aliases = f"  aliases: {', '.join(variant.aliases)}" if variant.aliases else ""
        fim = f"  fim: {variant.fim}" if variant.fim else ""
        print(f"  {name:<16} {variant.backend}/{variant.model}{fim}{aliases}", file=out)
    print("routes:", file=out)
    for cls in (*CLASSES, "embeddings"):
        route = cfg.routes.for_class(cls)
        if not route:
            if cls != "embeddings":
                print(f"  {cls:<16} -> {cfg.routes.default} (default)", file=out)
            continue
        parts = [c.variant + (f" ({c.weight:g})" if c.weight else "") for c in route]
        print(f"  {cls:<16} -> {', '.join(parts)}", file=out)
    print(f"  {'default':<16} -> {cfg.routes.default}", file=out)
    print(f"classifier: {len(cfg.classifier.rules)} rules", file=out)
    return 0


def cmd_models(settings: Settings, as_json: bool, out: TextIO, err: TextIO) -> int:
    cfg = _load(settings, err)
    if cfg is None:
        return 1
    from .service import Proxy

    listing = Proxy(cfg, source=str(settings.config)).models()
    if as_json:
        print(json.dumps(listing, indent=2), file=out)
        return 0
    for item in listing["data"]:
        info = item["variant_proxy"]
        kind = info["kind"]
        if kind == "variant":
            detail = f"{info['backend']}/{info['backend_model']}"
        elif kind == "alias":
            detail = f"alias of {info['variant']}"
        elif kind == "class":
            detail = "route: " + ", ".join(info["candidates"])
        else:
            detail = info["route"]
        print(f"{item['id']:<24} {kind:<8} {detail}", file=out)
    return 0


def _endpoint_of(path: str) -> str | None:
    """`/v1/chat/completions`, `/chat/completions`, `chat`, … → the endpoint name."""
    from .runtime import PATH_TO_ENDPOINT

    clean = "/" + path.strip().strip("/")
    if not clean.startswith("/v1/"):
        clean = "/v1" + clean
    if clean == "/v1/chat":
        clean = "/v1/chat/completions"
    return PATH_TO_ENDPOINT.get(clean)


def _explain_one(rt: Any, path: str, body: Any) -> dict[str, Any]:
    from .runtime import parse_payload

    endpoint = _endpoint_of(path)
    if endpoint is None:
        return {"error": {"message": f"unknown endpoint {path!r}", "code": "invalid_request"}}
    try:
        if isinstance(body, bytes):
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(body)
        if isinstance(body, dict) and "model" not in body:
            body = {**body, "model": "auto"}  # explain answers "where would auto send this?"
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        payload = parse_payload(endpoint, raw)
        try:
            decision: dict[str, Any] = rt.decide(endpoint, payload).as_dict()
        except ModelNotFound as exc:
            # still show the classification, and say what the proxy would answer
            decision = rt.decide(endpoint, {**payload, "model": "auto"}).as_dict()
            decision["warning"] = f"{exc.message} (a request would get 404; shown as auto)"
        return decision
    except ProxyError as exc:
        result = exc.body()
        result["status"] = status_of(exc)
        return result


def cmd_explain(
    settings: Settings, endpoint: str, jsonl: bool, inp: TextIO, out: TextIO, err: TextIO
) -> int:
    cfg = _load(settings, err)
    if cfg is None:
        return 1
    from .runtime import Runtime

    rt = Runtime(cfg, str(settings.config), {n: 0 for n in cfg.backends})
    if not jsonl:
        data = inp.read().encode()
        result = _explain_one(rt, endpoint, data)
        print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
        return 1 if "error" in result else 0
    failures = 0
    for lineno, line in enumerate(inp, 1):
        line = line.strip()
        if not line:
            continue
        try:
            item = orjson.loads(line)
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object")
            result = _explain_one(
                rt, str(item.get("endpoint", "/v1/chat/completions")), item.get("body")
            )
        except (orjson.JSONDecodeError, ValueError) as exc:
            result = {"error": {"message": f"line {lineno}: {exc}", "code": "invalid_json"}}
        if "error" in result:
            failures += 1
        out.write(orjson.dumps(result).decode() + "\n")
    return 1 if failures else 0


def cmd_serve(settings: Settings, err: TextIO) -> int:
    from .app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # one line per health probe and request is noise; uvicorn's access log already has requests
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))
    try:
        app = create_app(settings.config)
    except ConfigError as exc:
        print(f"error: invalid config {exc.source}", file=err)
        for issue in exc.issues:
            print(f"{issue}", file=err)
        return 1
    proxy = app.state.proxy
    if not _is_loopback(settings.host) and not proxy.keys.enabled and not settings.allow_remote:
        print(
            f"error: refusing to listen on {settings.host} without API keys: anyone who can "
            "reach it could use your models. Set server.auth.api_keys_env (or api_keys_file), "
            "or pass --allow-remote / VARIANT_PROXY_ALLOW_REMOTE=1 if something else guards it.",
            file=err,
        )
        return 1
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "[::]") else settings.host
    base = f"http://{shown}:{settings.port}"
    cfg = proxy.runtime.cfg
    if settings.workers > 1:
        return _serve_workers(settings, cfg, base, err)
    print(_banner(base, cfg), file=err, flush=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(cfg.server.drain_timeout),
        server_header=False,
        access_log=settings.access_log,
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
    )
    return 0


def _banner(base: str, cfg: RouterConfig) -> str:
    names = ", ".join(["auto", *cfg.variants])
    body = (
        '{"model": "auto", "messages": [{"role": "user", '
        '"content": "Write a Python function that reverses a string."}]}'
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
            f"  try:     curl -s {base}/v1/chat/completions -H 'content-type: application/json' "
            f"-d '{body}'",
        ]
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    match args.command:
        case "serve":
            return cmd_serve(settings, sys.stderr)
        case "check":
            return cmd_check(settings, sys.stdout, sys.stderr)
        case "models":
            return cmd_models(settings, args.json, sys.stdout, sys.stderr)
        case "lock" | "verify":
            return pin_cli.run_cli(args)
        case "bench":
            return run_bench(args)
        case "explain":
            return cmd_explain(
                settings, args.endpoint, args.jsonl, sys.stdin, sys.stdout, sys.stderr
            )
    return 2
