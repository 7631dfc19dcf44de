"""`variant-proxy check` and `variant-proxy models`: what a config says, without running it."""

from __future__ import annotations

import json
from typing import TextIO

from ..config import CLASSES
from ..settings import Settings
from ._common import load_or_report

__all__ = ["cmd_check", "cmd_models"]


def cmd_check(settings: Settings, out: TextIO, err: TextIO) -> int:
    cfg = load_or_report(settings.config, err)
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
    cfg = load_or_report(settings.config, err)
    if cfg is None:
        return 1
    from ..service import Proxy

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
