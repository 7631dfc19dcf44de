"""The ASGI application: wiring only.

`ProxyApp` sends the OpenAI POST paths straight to their raw ASGI endpoints
(`edge.OpenAIEndpoint`), so the relay controls exactly when headers and bytes
go out, and everything else to a Starlette app: the status and admin
endpoints below (small functions reading `request.app.state.proxy`), 404/405
and the lifespan, which starts the `Proxy` and the benchmark scheduler.
Every error leaves as OpenAI-style JSON through `errors.render`.

Before either, every HTTP request passes the browser-origin rules of
`origin.OriginPolicy` (Host allowlist, no cross-origin pages, JSON bodies,
opt-in CORS): one walk over the header list, so the hot path stays lean. The
policy is compiled from the running config and rebuilt when a reload swaps it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import statuspage
from .bench.scheduler import BenchScheduler
from .config import RouterConfig, load_config
from .edge import OpenAIEndpoint, read_body
from .errors import (
    ClientGone,
    ConfigError,
    EndpointNotFound,
    InvalidConfig,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    ProxyError,
    RequestError,
    render,
)
from .explain import endpoint_of, explain
from .metrics import Metrics
from .origin import PASS, OriginPolicy, Verdict, preflight_headers, response_headers
from .runtime import ENDPOINTS, parse_payload
from .service import Proxy
from .upstream import Receive

__all__ = ["Proxy", "ProxyApp", "app_from_env", "create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("variant_proxy")


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


async def model(request: Request) -> Response:
    """One entry of `/v1/models` (OpenAI's `models.retrieve`), or 404 `model_not_found`."""
    proxy = _proxy(request)
    proxy.keys.check(request.headers.raw)
    name = request.path_params["model"]
    for entry in proxy.models()["data"]:
        if entry["id"] == name:
            return _json(entry)
    raise ModelNotFound(
        f"The model {name[:100]!r} does not exist; GET /v1/models lists them", param="model"
    )


async def health(request: Request) -> Response:
    return _json({"status": "ok"})


async def ready(request: Request) -> Response:
    results = await _proxy(request).probe_shared()
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
    proxy = _proxy(request)
    return _json({"backends": proxy.backend_status(), "groups": proxy.swapper.status()})


async def load_backend(request: Request) -> Response:
    proxy = _proxy(request)
    await _body(request)  # none is needed; one sent is read within the limits
    return _json(await proxy.load_backend(request.path_params["backend"]))


async def unload_backend(request: Request) -> Response:
    proxy = _proxy(request)
    await _body(request)
    return _json(await proxy.unload_backend(request.path_params["backend"]))


async def _body(request: Request) -> bytes:
    """The request body through the one bounded reader (size limit and read timeout)."""
    server = _proxy(request).runtime.cfg.server
    try:
        return await read_body(
            request.scope,
            cast(Receive, request.receive),
            server.max_body_bytes,
            server.body_timeout,
        )
    except ClientGone as exc:  # nobody reads the answer; a 400 instead of a 500 traceback
        raise InvalidRequest("the client disconnected while sending the body") from exc


async def route_explain(request: Request) -> Response:
    proxy = _proxy(request)
    # it runs the classifier on any text sent: with keys set, it needs one (protect_admin
    # or not), like every endpoint that reads a body
    proxy.keys.check(request.headers.raw)
    endpoint = endpoint_of(request.query_params.get("endpoint", "/v1/chat/completions"))
    body = await _body(request)
    dispatcher = proxy.dispatcher
    rt = proxy.runtime
    # decided as a request would be, a llama-server's /tokenize count included
    decided = await dispatcher.decide_counted(
        rt, endpoint, parse_payload(endpoint, body), learn=False
    )
    return _json(explain(endpoint, body, lambda _payload: decided))


async def route_replay(request: Request) -> Response:
    """The decision a past request got, by the replay id its answer carried."""
    proxy = _proxy(request)
    proxy.keys.check(request.headers.raw)  # it shows what requests asked: keys apply
    replay_id = request.path_params["replay_id"]
    found = proxy.dispatcher.replays.get(replay_id)
    if found is None:
        raise EndpointNotFound(
            f"no decision kept for replay id {replay_id[:80]!r} (the log keeps the last "
            "server.replay_size requests of this process)"
        )
    return _json(found.as_dict(replay_id))


async def reload(request: Request) -> Response:
    proxy = _proxy(request)
    await _body(request)  # not used, but read within the limits like every body
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

    #: POST endpoints that read a JSON body besides the OpenAI ones
    BODY_PATHS = ("/route/explain", "/admin/reload")

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        #: the benchmark scheduler, once the lifespan has started it
        self.bench: BenchScheduler | None = None
        self.fast = {path: OpenAIEndpoint(proxy, name) for name, (path, _) in ENDPOINTS.items()}
        self._policy = self._policy_for(proxy.runtime.cfg)
        routes = [Route(path, self.fast[path], methods=["POST"]) for path in self.fast]
        routes += [
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", model, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", _admin(metrics_endpoint, metrics_endpoint=True), methods=["GET"]),
            Route("/backends", _admin(backends), methods=["GET"]),
            Route("/pins", _admin(pins), methods=["GET"]),
            Route("/route/explain", _admin(route_explain), methods=["POST"]),
            Route("/route/explain/{replay_id}", _admin(route_replay), methods=["GET"]),
            Route("/admin/reload", _admin(reload), methods=["POST"]),
            Route("/admin/load/{backend}", _admin(load_backend), methods=["POST"]),
            Route("/admin/unload/{backend}", _admin(unload_backend), methods=["POST"]),
            # the status page (statuspage.py): the files hold no data, the JSON is admin
            Route("/", statuspage.page, methods=["GET"]),
            Route("/ui", statuspage.page, methods=["GET"]),
            Route("/ui/app.js", statuspage.asset("app.js"), methods=["GET"]),
            Route("/ui/app.css", statuspage.asset("app.css"), methods=["GET"]),
            Route("/status.json", _admin(statuspage.status_json), methods=["GET"]),
            Route("/ui/report", _admin(statuspage.report), methods=["GET"]),
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

    def _policy_for(self, cfg: RouterConfig) -> tuple[Any, OriginPolicy]:
        server = cfg.server
        policy = OriginPolicy(
            allowed_hosts=server.allowed_hosts,
            cors_origins=server.cors_origins,
            listen_host=self.proxy.listen_host,
            body_paths=[*self.fast, *self.BODY_PATHS, *_admin_paths(cfg)],
        )
        return server, policy

    def policy(self) -> OriginPolicy:
        """The browser-origin policy of the running config (rebuilt after a reload)."""
        server = self.proxy.runtime.cfg.server
        if self._policy[0] is not server:
            self._policy = self._policy_for(self.proxy.runtime.cfg)
        return self._policy[1]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            verdict = self.policy().check(
                scope["method"], scope["path"], scope["headers"], server[0] if server else None
            )
            if verdict is not PASS:
                await self._apply(verdict, scope, receive, send)
                return
            if scope["method"] == "POST":
                endpoint = self.fast.get(scope["path"])
                if endpoint is not None:
                    await endpoint(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _apply(self, verdict: Verdict, scope: Any, receive: Any, send: Any) -> None:
        """Refuse, answer a preflight, or serve an allowed origin with CORS headers."""
        origin = verdict.cors_origin
        if origin is not None:
            if verdict.preflight:
                start = {"type": "http.response.start", "status": 204}
                await send({**start, "headers": preflight_headers(origin)})
                await send({"type": "http.response.body", "body": b""})
                return
            send = _with_headers(send, response_headers(origin))
        if verdict.error is not None:
            status, headers, body = render(verdict.error)
            if verdict.error.code != "unsupported_media_type":
                log.warning(
                    "refused a browser request: %s %s: %s",
                    scope["method"],
                    scope["path"],
                    verdict.error.message,
                )
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["method"] == "POST" and scope["path"] in self.fast:
            await self.fast[scope["path"]](scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _admin_paths(cfg: RouterConfig) -> list[str]:
    """`/admin/load/<b>` and `/admin/unload/<b>` of every managed backend: a body sent there
    must be JSON like any other."""
    managed = [name for name, backend in cfg.backends.items() if backend.managed]
    return [f"/admin/{op}/{name}" for name in managed for op in ("load", "unload")]


def _with_headers(send: Any, extra: list[tuple[bytes, bytes]]) -> Any:
    """`send` with `extra` headers added to the response start (CORS for allowed origins)."""

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return wrapped


def create_app(
    cfg: RouterConfig | str | os.PathLike[str],
    *,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    upstream_client: str | None = None,
    listen_host: str | None = None,
    allow_remote: bool = False,
) -> ProxyApp:
    """Build the ASGI app from a config (object or path).

    `upstream_client` is `native` (the default: a lean HTTP/1.1 client for plain
    http:// backends) or `httpx`; None reads `VARIANT_PROXY_UPSTREAM_CLIENT`.
    `listen_host` is the address `serve` binds (None: loopback, as in tests): the
    `Host` allowlist accepts it, and a reload may not leave it without keys unless
    `allow_remote` (`--allow-remote`) says something else guards it.
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
        listen_host=listen_host,
        allow_remote=allow_remote,
    )
    return ProxyApp(proxy)


def app_from_env() -> ProxyApp:
    """The app for `serve --workers N`: each worker builds its own from the environment."""
    from .settings import Settings

    settings = Settings()
    return create_app(
        settings.config, listen_host=settings.host, allow_remote=settings.allow_remote
    )
