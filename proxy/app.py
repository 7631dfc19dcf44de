"""The ASGI application: wiring only.

`ProxyApp` sends the OpenAI POST paths straight to their raw ASGI endpoints
(`edge.OpenAIEndpoint`), so the relay controls exactly when headers and bytes
go out, and everything else to a Starlette app: the status and admin
endpoints below (small functions reading `request.app.state.proxy`), 404/405
and the lifespan, which starts the `Proxy` and the benchmark scheduler.
Every error leaves as OpenAI-style JSON through `errors.render`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bench.scheduler import BenchScheduler
from .config import RouterConfig, load_config
from .edge import OpenAIEndpoint
from .errors import (
    ConfigError,
    EndpointNotFound,
    InvalidConfig,
    MethodNotAllowed,
    ProxyError,
    RequestError,
    render,
)
from .explain import endpoint_of, explain
from .metrics import Metrics
from .runtime import ENDPOINTS
from .service import Proxy

__all__ = ["Proxy", "ProxyApp", "app_from_env", "create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _error(exc: ProxyError, extra: dict[str, Any] | None = None) -> Response:
    status, headers, body = render(exc, extra)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _proxy(request: Request) -> Proxy:
    proxy: Proxy = request.app.state.proxy
    return proxy


def _admin(func: Endpoint, *, metrics_endpoint: bool = False) -> Endpoint:
    """Put an admin endpoint behind the API keys when `server.auth` asks for it."""

    async def guarded(request: Request) -> Response:
        keys = _proxy(request).keys
        if keys.protect_metrics if metrics_endpoint else keys.protect_admin:
            keys.check(request.headers.raw)
        return await func(request)

    return guarded


async def models(request: Request) -> Response:
    proxy = _proxy(request)
    proxy.keys.check(request.headers.raw)
    return _json(proxy.models())


async def health(request: Request) -> Response:
    return _json({"status": "ok"})


async def ready(request: Request) -> Response:
    results = await _proxy(request).probe_all()
    ok = any(r.ok for r in results.values())
    body = {
        "ready": ok,
        "backends": {
            name: {"ok": r.ok, "detail": r.detail, "latency_seconds": round(r.latency_s, 4)}
            for name, r in results.items()
        },
    }
    return _json(body, 200 if ok else 503)


async def metrics_endpoint(request: Request) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # several workers: aggregate every worker's values from the shared directory
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    registry = _proxy(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def pins(request: Request) -> Response:
    proxy = _proxy(request)
    if proxy.pins is None:
        return _json({"policy": proxy.runtime.cfg.pinning.policy, "variants": {}})
    return _json(proxy.pins.snapshot())


async def backends(request: Request) -> Response:
    return _json({"backends": _proxy(request).backend_status()})


async def route_explain(request: Request) -> Response:
    proxy = _proxy(request)
    endpoint = endpoint_of(request.query_params.get("endpoint", "/v1/chat/completions"))
    dispatcher = proxy.dispatcher
    rt = proxy.runtime
    decision = explain(
        endpoint,
        await request.body(),
        lambda payload: dispatcher.decide(rt, endpoint, payload, learn=False),
    )
    return _json(decision)


async def reload(request: Request) -> Response:
    proxy = _proxy(request)
    try:
        proxy.reload()
    except ConfigError as exc:
        return _error(InvalidConfig(exc), {"reloaded": False})
    return _json({"reloaded": True, "source": proxy.runtime.source})


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
        response = _error(err)
        response.headers.update(dict(exc.headers or {}))
        return response
    if exc.status_code == 404:
        return _error(EndpointNotFound(f"no such endpoint: {request.url.path}"))
    response = _error(RequestError(str(exc.detail), code=str(exc.status_code)))
    response.status_code = exc.status_code
    return response


async def on_proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    return _error(exc)


class ProxyApp:
    """The ASGI app: the OpenAI POST paths go straight to the relay, the rest to Starlette.

    Starlette's middleware wraps every `send`; skipping it on the hot path saves two
    coroutine layers per relayed chunk. Everything else (405s, admin endpoints,
    lifespan) is Starlette's.
    """

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        #: the benchmark scheduler, once the lifespan has started it
        self.bench: BenchScheduler | None = None
        self.fast = {path: OpenAIEndpoint(proxy, name) for name, (path, _) in ENDPOINTS.items()}
        routes = [Route(path, self.fast[path], methods=["POST"]) for path in self.fast]
        routes += [
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", _admin(metrics_endpoint, metrics_endpoint=True), methods=["GET"]),
            Route("/backends", _admin(backends), methods=["GET"]),
            Route("/pins", _admin(pins), methods=["GET"]),
            Route("/route/explain", _admin(route_explain), methods=["POST"]),
            Route("/admin/reload", _admin(reload), methods=["POST"]),
        ]
        self.app = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: on_http_exception, ProxyError: on_proxy_error},
        )
        self.app.state.proxy = proxy

    @property
    def state(self) -> Any:
        return self.app.state

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        proxy = self.proxy
        bench = BenchScheduler(
            proxy.runtime.cfg.benchmark,
            app=self,
            proxy=proxy,
            idle_for=lambda: time.monotonic() - proxy.last_request,
        )
        app.state.bench = self.bench = bench
        await proxy.start(rank=bench.rank)
        if proxy.runtime.cfg.benchmark.schedule is not None:
            proxy.spawn(bench.run(), "bench")
        try:
            yield
        finally:
            await proxy.stop()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    cfg: RouterConfig | str | os.PathLike[str],
    *,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    upstream_client: str | None = None,
) -> ProxyApp:
    """Build the ASGI app from a config (object or path).

    `upstream_client` is `native` (the default: a lean HTTP/1.1 client for plain
    http:// backends) or `httpx`; None reads `VARIANT_PROXY_UPSTREAM_CLIENT`.
    """
    if isinstance(cfg, RouterConfig):
        source, config = "<config>", cfg
    else:
        source, config = str(cfg), load_config(cfg)
    if upstream_client is None:
        upstream_client = os.environ.get("VARIANT_PROXY_UPSTREAM_CLIENT", "native")
    proxy = Proxy(
        config,
        source=source,
        metrics=metrics,
        transport=transport,
        upstream_client=upstream_client,
    )
    return ProxyApp(proxy)


def app_from_env() -> ProxyApp:
    """The app for `serve --workers N`: each worker builds its own from the environment."""
    from .settings import Settings

    return create_app(Settings().config)
