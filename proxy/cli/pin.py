"""`variant-proxy lock` and `variant-proxy verify`: the pinning commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TextIO

import httpx

from ..backends import adapter_for
from ..backends.identity import FileHashCache
from ..config import RouterConfig, load_config
from ..errors import BackendStartError, ConfigError
from ..pinning import (
    LockfileError,
    lock,
    lockfile_path,
    read_lockfile,
    render_verify,
    verify,
    write_lockfile,
)
from ..settings import Settings
from ..supervisor import ManagedProcess, find_free_port, render_command
from ._common import add_config, print_config_error

__all__ = ["register_cli", "run_cli"]


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lock`` and ``verify`` to the ``variant-proxy`` sub-commands."""
    for name, help_text in (
        ("lock", "record the identity every server reports into the lockfile"),
        ("verify", "compare what the servers serve with the pins and the lockfile"),
    ):
        parser = sub.add_parser(name, help=help_text)
        add_config(parser)
        parser.add_argument(
            "--lockfile",
            type=Path,
            default=None,
            help="lockfile (default: pinning.lockfile, else models.lock beside the config)",
        )
        parser.add_argument(
            "--url",
            action="append",
            default=[],
            metavar="BACKEND=URL",
            help="where a managed backend runs now (repeatable)",
        )
        parser.add_argument(
            "--start",
            action="store_true",
            help="start managed backends without a URL for the duration of the command",
        )
        if name == "lock":
            parser.add_argument(
                "--variant",
                action="append",
                default=None,
                metavar="NAME",
                help="lock only this variant (repeatable); the others keep their entries",
            )
            parser.add_argument(
                "--dry-run", action="store_true", help="print the changes, write nothing"
            )
        else:
            parser.add_argument("--json", action="store_true", help="machine-readable output")


def _parse_urls(items: list[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for item in items:
        backend, sep, url = item.partition("=")
        if not sep or not backend or not url.startswith(("http://", "https://")):
            raise ValueError(f"--url {item!r}: expected BACKEND=http://host:port")
        urls[backend] = url.rstrip("/").removesuffix("/v1")
    return urls


@contextlib.asynccontextmanager
async def _started(
    cfg: RouterConfig, backends: Iterable[str], err: TextIO
) -> AsyncIterator[dict[str, str]]:
    """Start the named managed backends; yield backend → URL for those that came up."""
    procs: list[ManagedProcess] = []
    urls: dict[str, str] = {}
    try:
        for name in sorted(set(backends)):
            backend = cfg.backends[name]
            if backend.command is None or backend.url is not None:
                continue
            port = backend.port or find_free_port()
            url = f"http://127.0.0.1:{port}"
            log_path = backend.log_file or Path(cfg.server.state_dir) / "logs" / f"{name}.log"
            proc = ManagedProcess(
                render_command(backend.command, port, backend.model_file or ""),
                name=name,
                health_url=url + adapter_for(backend.kind).health_path,
                log_path=log_path,
                env=backend.env,
                start_timeout=backend.start_timeout,
                max_restarts=0,
            )
            procs.append(proc)
            print(f"starting {name} ...", file=err)
            try:
                await proc.start()
            except BackendStartError as exc:
                print(f"error: {exc}", file=err)
                continue
            urls[name] = url
        yield urls
    finally:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)


def run_cli(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> int:
    """Run ``lock`` or ``verify``. Exit codes: 0 fine; 1 drift, unreachable or a variant
    that could not be locked; 2 bad config, lockfile or arguments."""
    out = out or sys.stdout
    err = err or sys.stderr
    config_path = Path(args.config) if args.config is not None else Settings().config
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print_config_error(exc, err)
        return 2
    path = args.lockfile or lockfile_path(config_path, cfg.pinning)
    try:
        urls = _parse_urls(list(args.url or []))
        previous = read_lockfile(path)
    except (ValueError, LockfileError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    hashes = FileHashCache() if cfg.pinning.hash_files else None

    def make_client() -> httpx.AsyncClient:
        if client_factory is not None:
            return client_factory()
        return httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(30.0))

    async def with_servers(work: Callable[[dict[str, str]], Awaitable[int]]) -> int:
        if not args.start:
            return await work(urls)
        chosen = getattr(args, "variant", None) or list(cfg.variants)
        needed = [cfg.variants[v].backend for v in chosen if v in cfg.variants]
        needed = [b for b in needed if b not in urls]
        async with _started(cfg, needed, err) as started:
            return await work({**started, **urls})

    if args.command == "lock":
        variants: list[str] | None = args.variant

        async def do_lock(found: dict[str, str]) -> int:
            async with make_client() as client:
                new, lines = await lock(
                    cfg, client, variants, previous=previous, urls=found, hashes=hashes
                )
            changes = [line for line in lines if not line.startswith("!")]
            for line in lines:
                print(line, file=err if line.startswith("!") else out)
            if not changes:
                print(f"{path}: up to date", file=out)
            elif args.dry_run:
                print(f"{path}: not written (--dry-run)", file=out)
            else:
                write_lockfile(path, new)
                print(f"{path}: written ({len(changes)} changes)", file=out)
            return 1 if len(changes) != len(lines) else 0

        try:
            return asyncio.run(with_servers(do_lock))
        except ValueError as exc:
            print(f"error: {exc}", file=err)
            return 2

    async def do_verify(found: dict[str, str]) -> int:
        async with make_client() as client:
            states = await verify(cfg, client, previous, urls=found, hashes=hashes)
        print(render_verify(states, bool(args.json)), file=out)
        return 0 if all(s.serving_ok for s in states.values()) else 1

    return asyncio.run(with_servers(do_verify))
