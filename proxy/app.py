"""The ASGI application: wiring only.

The OpenAI endpoints are raw ASGI callables handing straight to
`Proxy.handle`, so the relay controls exactly when headers and bytes go out.
The admin and status endpoints are small Starlette functions. Errors of
every kind leave as OpenAI-style JSON.
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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bench.ranking import rank
from .bench.scheduler import BenchScheduler
from .config import RouterConfig, load_config
from .errors import (
    ConfigError,
    InvalidRequest,
    MethodNotAllowed,
    ProxyError,
    RequestError,
    error_body,
    status_of,
)
from .metrics import Metrics
from .runtime import ENDPOINTS, PATH_TO_ENDPOINT, Runtime, parse_payload
from .service import Proxy
from .upstream import Receive, Send

__all__ = ["Proxy", "ProxyApp", "Runtime", "app_from_env", "create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _OpenAIEndpoint:
    """A raw ASGI endpoint, so the relay decides when headers and bytes go out."""

    def __init__(self, proxy: Proxy, endpoint: str) -> None:
        self.proxy = proxy
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await self.proxy.handle(self.endpoint, scope, receive, send)


class ProxyApp:
    """The ASGI app: the OpenAI POST paths go straight to the relay, the rest to Starlette.

    Starlette's middleware wraps every `send`; skipping it on the hot path saves two
    coroutine layers per relayed chunk. Everything else (405s, admin endpoints,
    lifespan) is Starlette's.
    """

    def __init__(self, app: Starlette, fast: dict[str, _OpenAIEndpoint]) -> None:
        self.app = app
        self.fast = fast

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _json_error(exc: ProxyError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(exc), status_code=status_of(exc), media_type="application/json", headers=headers
    )


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


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

    def admin(func: Endpoint, *, metrics_endpoint: bool = False) -> Endpoint:
        """Put an admin endpoint behind the API keys when `server.auth` asks for it."""

        async def guarded(request: Request) -> Response:
            keys = proxy.keys
            if keys.protect_metrics if metrics_endpoint else keys.protect_admin:
                keys.check(request.headers.raw)
            return await func(request)

        return guarded

    async def models(request: Request) -> Response:
        proxy.keys.check(request.headers.raw)
        return _json(proxy.models())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        results = await proxy.probe_all()
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
        return Response(generate_latest(proxy.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def pins(request: Request) -> Response:
        if proxy.pins is None:
            return _json({"policy": proxy.runtime.cfg.pinning.policy, "variants": {}})
        return _json(proxy.pins.snapshot())

    async def backends(request: Request) -> Response:
        return _json({"backends": proxy.backend_status()})

    async def explain(request: Request) -> Response:
        path = request.query_params.get("endpoint", "/v1/chat/completions")
        endpoint = PATH_TO_ENDPOINT.get(path)
        if endpoint is None:
            raise InvalidRequest(
                f"unknown endpoint {path!r}; use one of {', '.join(PATH_TO_ENDPOINT)}",
                param="endpoint",
            )
        payload = parse_payload(endpoint, await request.body())
        rt = proxy.runtime
        decision = rt.decide(endpoint, payload, proxy.eligibility(rt), proxy.rank)
        return _json(decision.as_dict())

    async def reload(request: Request) -> Response:
        try:
            proxy.reload()
        except ConfigError as exc:
            return _json(
                {
                    "reloaded": False,
                    "error": {
                        "message": "invalid config; the running config is kept",
                        "type": "invalid_request_error",
                        "code": "invalid_config",
                        "param": None,
                        "issues": [str(i) for i in exc.issues],
                    },
                },
                400,
            )
        return _json({"reloaded": True, "source": proxy.runtime.source})

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            err: ProxyError = MethodNotAllowed(
                f"method {request.method} is not allowed on {request.url.path}"
            )
            return _json_error(err, dict(exc.headers or {}))
        code = "not_found" if exc.status_code == 404 else str(exc.status_code)
        detail = f"no such endpoint: {request.url.path}" if exc.status_code == 404 else exc.detail
        err = RequestError(str(detail), code=code)
        return Response(error_body(err), status_code=exc.status_code, media_type="application/json")

    async def on_proxy_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProxyError)
        return _json_error(exc)

    outer: list[ProxyApp] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        bench = BenchScheduler(
            proxy.runtime.cfg.benchmark,
            app=outer[0],
            proxy=proxy,
            idle_for=lambda: time.monotonic() - proxy.last_request,
        )
        app.state.bench = bench
        proxy.rank = lambda names, cls: rank(names, cls, bench.figures)
        if proxy.runtime.cfg.benchmark.schedule is not None:
            proxy.spawn(bench.run(), "bench")
        try:
            yield
        finally:
            await proxy.stop()

    fast = {path: _OpenAIEndpoint(proxy, name) for name, (path, _) in ENDPOINTS.items()}
    routes = [Route(path, endpoint, methods=["POST"]) for path, endpoint in fast.items()]
    routes += [
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", admin(metrics_endpoint, metrics_endpoint=True), methods=["GET"]),
        Route("/backends", admin(backends), methods=["GET"]),
        Route("/pins", admin(pins), methods=["GET"]),
        Route("/route/explain", admin(explain), methods=["POST"]),
        Route("/admin/reload", admin(reload), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: on_http_exception, ProxyError: on_proxy_error},
    )
    app.state.proxy = proxy
    outer.append(ProxyApp(app, fast))
    return outer[0]


def app_from_env() -> ProxyApp:
    """The app for `serve --workers N`: each worker builds its own from the environment."""
    from .settings import Settings

    return create_app(Settings().config)
