"""The `variant-proxy` command line: the parser and the dispatch, one module per command.

    variant-proxy serve   [--config PATH] [--host H] [--port N] [--log-level L]
    variant-proxy check   [--config PATH]
    variant-proxy models  [--config PATH] [--json]
    variant-proxy explain [--config PATH] (--endpoint PATH | --jsonl) < input
    variant-proxy lock | verify [--config PATH] ...
    variant-proxy bench   [--config PATH] ...

`serve` (serve.py), `check` and `models` (check.py), `explain` (explain.py), `lock`
and `verify` (pin.py), `bench` (bench.py). This is the top layer: it may import any
module of the proxy, nothing imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..settings import Settings
from ._common import add_config
from .bench import register_cli as register_bench
from .bench import run_cli as run_bench
from .check import cmd_check, cmd_models
from .explain import cmd_explain
from .pin import register_cli as register_pin
from .pin import run_cli as run_pin
from .serve import cmd_serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variant-proxy",
        description="OpenAI-compatible proxy that routes each request to the best local model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    add_config(serve)
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
    add_config(check)

    models = sub.add_parser("models", help="list the model names clients can ask for")
    add_config(models)
    models.add_argument("--json", action="store_true", help="print the /v1/models JSON")

    explain = sub.add_parser("explain", help="show how requests would be routed (nothing is sent)")
    add_config(explain)
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
    register_pin(sub)
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
            return run_pin(args)
        case "bench":
            return run_bench(args)
        case "explain":
            return cmd_explain(
                settings, args.endpoint, args.jsonl, sys.stdin, sys.stdout, sys.stderr
            )
    return 2
