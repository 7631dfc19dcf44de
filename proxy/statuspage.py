"""The status page: `GET /` (and `/ui`), its script and styles, and `GET /status.json`.

The page is three static files shipped as package data (`proxy/ui/`): one
HTML document, `app.js` and `app.css`, with no external asset and no build
step. They hold no data, so they are served to anyone who passes the origin
rules (which every request passes first, in `ProxyApp.__call__`): the page
must load to show its key form. Everything the page shows comes from
`GET /status.json`, which `app.py` puts behind the API keys like the other
admin endpoints; the script sends the key it was given (a form, or
`#key=…` in the URL, which browsers never send to a server) as
`Authorization: Bearer`, keeps it in `sessionStorage` and polls every few
seconds while the tab is visible. Scripts can read the same JSON.

Every response here carries a strict Content-Security-Policy (`script-src
'self'`, `style-src 'self'`, no inline code or styles anywhere, `connect-src
'self'`, `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer`; the page builds its DOM with `textContent`
and SVG attributes only, so names and prompts can't become markup.

`status_document` assembles the JSON from what the service already keeps
(backend state, pins, the activity ring, the resource history, the latest
benchmark result read through `BenchScheduler.latest`); nothing is computed
until someone asks for it.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from .activity import backend_state, recent, series, variant_state
from .errors import EndpointNotFound, InvalidRequest

if TYPE_CHECKING:
    from .bench.scheduler import BenchScheduler
    from .service import Proxy

__all__ = [
    "CSP",
    "LatestBenchmark",
    "SCHEMA",
    "asset",
    "page",
    "report",
    "status_document",
    "status_json",
]

#: the version of `/status.json`'s shape
SCHEMA = 1
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: the benchmark's own HTML report has inline styles and no script: allow just that
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: the charts' window: default and bounds (seconds), and buckets per window
WINDOW = 600.0
WINDOW_RANGE = (60.0, 3600.0)
BUCKETS = 60
RECENT = 50


def _read_assets() -> dict[str, bytes]:
    root = resources.files("proxy") / "ui"
    return {name: (root / name).read_bytes() for name in _ASSETS}


_FILES = _read_assets()


def _headers(csp: str = CSP, cache: str = "no-cache") -> dict[str, str]:
    return {"content-security-policy": csp, "cache-control": cache, **_SECURITY}


def _proxy(request: Request) -> Proxy:
    proxy: Proxy = request.app.state.proxy
    if not proxy.runtime.cfg.server.status_page.enabled:
        raise EndpointNotFound(
            f"no such endpoint: {request.url.path} (server.status_page.enabled is off)"
        )
    return proxy


async def page(request: Request) -> Response:
    """`GET /` and `GET /ui`: the HTML document (no data in it)."""
    _proxy(request)
    return _file("index.html")


def asset(name: str) -> Any:
    """The handler for `GET /ui/<name>` (the script or the styles)."""

    async def serve(request: Request) -> Response:
        _proxy(request)
        return _file(name)

    return serve


def _file(name: str) -> Response:
    return Response(_FILES[name], media_type=_ASSETS[name], headers=_headers())


async def status_json(request: Request) -> Response:
    """`GET /status.json` (behind the admin key): what the page shows, for scripts too."""
    proxy = _proxy(request)
    params = request.query_params
    window = _number(params.get("window"), "window", WINDOW, WINDOW_RANGE)
    limit = int(_number(params.get("recent"), "recent", RECENT, (0, 1_000_000)))
    state = request.app.state
    bench: BenchScheduler | None = getattr(state, "bench", None)
    latest: LatestBenchmark | None = getattr(state, "status_latest_bench", None)
    if latest is None:
        latest = state.status_latest_bench = LatestBenchmark()
    doc = status_document(proxy, bench, window=window, recent_limit=limit, latest=latest)
    return Response(
        orjson.dumps(doc),
        media_type="application/json",
        headers=_headers(cache="no-store"),
    )


def _number(raw: str | None, name: str, default: float, bounds: tuple[float, float]) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(
            f"query parameter {name!r} must be a number, not {raw[:40]!r}"
        ) from None
    low, high = bounds
    if not low <= value <= high:
        raise InvalidRequest(f"query parameter {name!r} must be between {low:g} and {high:g}")
    return value


def status_document(
    proxy: Proxy,
    bench: BenchScheduler | None,
    *,
    window: float = WINDOW,
    recent_limit: int = RECENT,
    now: float | None = None,
    latest: LatestBenchmark | None = None,
) -> dict[str, Any]:
    """The JSON of `GET /status.json` (documented in docs/status-page.md). `latest`
    caches the benchmark summary between calls."""
    now = time.time() if now is None else now
    rt = proxy.runtime
    cfg = rt.cfg
    log = proxy.activity
    entries = log.entries()
    backends = _backends(proxy)
    variants = _variants(proxy, backends)
    step = window / BUCKETS
    charts = series(
        entries,
        now=now,
        window=window,
        step=step,
        covered_from=log.covered_from(entries),
        variants=variants,
    )
    charts["backends"] = proxy.resource_history.since(charts["start"])
    return {
        "schema": SCHEMA,
        "generated_at": round(now, 3),
        "started_at": round(log.started, 3),
        "config": {
            "source": rt.source,
            "pinning_policy": cfg.pinning.policy,
            "log_prompts": cfg.server.log_prompts,
        },
        "backends": backends,
        "variants": variants,
        "decisions": {
            "capacity": log.capacity,
            "held": len(entries),
            "items": recent(entries, min(recent_limit, len(entries))),
        },
        "series": charts,
        "benchmark": (latest or LatestBenchmark()).read(bench),
    }


def _backends(proxy: Proxy) -> dict[str, Any]:
    out = proxy.backend_status()
    for item in out.values():
        managed = item.get("managed")
        item["state"] = backend_state(
            breaker=item["breaker"],
            healthy=item["healthy"],
            managed=managed["state"] if managed else None,
        )
        if managed is not None:
            managed.pop("log_file", None)  # a path on the server: not the page's business
    return out


def _variants(proxy: Proxy, backends: dict[str, Any]) -> dict[str, Any]:
    cfg = proxy.runtime.cfg
    out: dict[str, Any] = {}
    for name, spec in cfg.variants.items():
        names = list(spec.backends)
        item: dict[str, Any] = {
            "backends": names,
            "model": spec.model,
            "aliases": list(spec.aliases),
            "state": variant_state(backends[b]["state"] for b in names if b in backends),
            "in_flight": sum(backends[b]["in_flight"] for b in names if b in backends),
            "queued": sum(backends[b]["queued"] for b in names if b in backends),
            "pin": _pin(proxy, name),
        }
        out[name] = item
    return out


def _pin(proxy: Proxy, variant: str) -> dict[str, Any]:
    """`ok`, `drifted`, `unverifiable`, `unreachable` (not checked: backend down) or
    `unpinned`, with what was pinned and what the backend serves."""
    state = proxy.pins.state(variant) if proxy.pins is not None else None
    if state is None:
        return {"status": "unpinned" if not _has_pin(proxy, variant) else "unchecked"}
    observed = state.observed
    return {
        "status": state.status,
        "reason": state.reason(),
        "pinned": dict(state.expected),
        "served": dict(observed.fields) if observed is not None else None,
        "served_model": observed.model if observed is not None else None,
        "drift": [d.as_dict() for d in state.drift],
        "checked_at": state.checked_at,
    }


def _has_pin(proxy: Proxy, variant: str) -> bool:
    spec = proxy.runtime.cfg.variants[variant]
    return spec.pin is not None and bool(spec.pin.model_dump(exclude_none=True))


# -- the latest benchmark ---------------------------------------------------------------------


class LatestBenchmark:
    """The latest run's summary, re-read (through `BenchScheduler.latest`) only when
    `latest.json` changes: a result file with every answer in it can be large, and the
    page asks every 2 seconds. One per app (kept on its state)."""

    def __init__(self) -> None:
        self._stamp: tuple[str, int, int] | None = None
        self._run: dict[str, Any] | None = None

    def read(self, bench: BenchScheduler | None) -> dict[str, Any] | None:
        """Per variant, the latest run's figures; None without a scheduler."""
        if bench is None:
            return None
        latest = bench.state_dir / "latest.json"
        try:
            st = latest.stat()
        except OSError:
            self._stamp = self._run = None
        else:
            stamp = (str(latest), st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                doc = bench.latest()
                self._run = _summary(doc, bench.state_dir) if doc is not None else None
                self._stamp = stamp
        return {"running": bench.running, "last_error": bench.last_error, "run": self._run}


def _summary(doc: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    variants: dict[str, list[dict[str, Any]]] = {}
    for row in doc.get("results", []):
        if not isinstance(row, dict) or "variant" not in row:
            continue
        pass_k = row.get("pass_at_k") or {}
        variants.setdefault(str(row["variant"]), []).append(
            {
                "suite": row.get("suite"),
                "class": row.get("class"),
                "pass_at_1": pass_k.get("1", row.get("pass_ratio")),
                "interval": _interval(row),
                "scored": row.get("scored"),
                "tokens_per_second": (row.get("output_tokens_per_second") or {}).get("p50"),
                "ttft_seconds": (row.get("ttft_seconds") or {}).get("p50"),
            }
        )
    run_id = str(doc.get("run_id", ""))
    reports = sorted(state_dir.glob(f"bench-*-{run_id}.html")) if run_id.isalnum() else []
    return {
        "run_id": run_id,
        "started_at": doc.get("started_at"),
        "finished_at": doc.get("finished_at"),
        "report": "/ui/report" if reports else None,
        "variants": variants,
    }


def _interval(row: dict[str, Any]) -> list[float] | None:
    """A confidence interval for pass@1, when the result reports one: the first field
    whose name says interval (or ci) holding `[low, high]` or `{low, high}`."""
    for key, value in row.items():
        lowered = key.lower()
        if "interval" not in lowered and not lowered.endswith("_ci"):
            continue
        if isinstance(value, dict):
            value = [value.get("low", value.get("lower")), value.get("high", value.get("upper"))]
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
        ):
            return [float(value[0]), float(value[1])]
    return None


async def report(request: Request) -> Response:
    """`GET /ui/report` (behind the admin key): the latest benchmark run's HTML report."""
    _proxy(request)
    bench: BenchScheduler | None = getattr(request.app.state, "bench", None)
    doc = bench.latest() if bench is not None else None
    run_id = str(doc.get("run_id", "")) if doc else ""
    found = sorted(bench.state_dir.glob(f"bench-*-{run_id}.html")) if bench and run_id else []
    if not run_id.isalnum() or not found:
        raise EndpointNotFound("no benchmark report yet: run `variant-proxy bench` or schedule one")
    return FileResponse(
        found[-1], media_type="text/html; charset=utf-8", headers=_headers(REPORT_CSP)
    )
