"""The ASGI application: wiring only.

`Proxy` owns the long-lived pieces (one shared httpx client, the metrics,
managed backend processes, health state) and a `Runtime`: everything derived
from one config, swapped whole on reload so a request in flight keeps the
config it started with. The OpenAI endpoints are raw ASGI callables so the
relay controls exactly when headers and bytes go out; the rest are small
Starlette endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import fim
from .backends import HealthResult, adapter_for
from .classify import Classifier
from .config import CLASSES, RouterConfig, load_config
from .errors import (
    ConfigError,
    ConfigIssue,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    PayloadTooLarge,
    ProxyError,
    RequestError,
    Unavailable,
    UpstreamError,
    error_body,
    status_of,
)
from .metrics import Metrics
from .routing import Decision, Router
from .supervisor import BackendStartError, ManagedProcess, find_free_port, render_command
from .upstream import ClientGone, Headers, Observation, Receive, Relay, Send, Target

__all__ = ["Proxy", "Runtime", "create_app"]

log = logging.getLogger("variant_proxy")

#: endpoint label → upstream path, and the body field each one requires.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "chat": ("/v1/chat/completions", "messages"),
    "completions": ("/v1/completions", "prompt"),
    "embeddings": ("/v1/embeddings", "input"),
}
_PATH_TO_ENDPOINT = {path: name for name, (path, _) in ENDPOINTS.items()}


def _header_safe(text: str, limit: int = 200) -> bytes:
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean[:limit].encode("ascii")


def parse_payload(endpoint: str, body: bytes) -> dict[str, Any]:
    """The request JSON, checked just enough to route it; the rest is the backend's business."""
    if not body:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = payload.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model must be a non-empty string", param="model")
    field = ENDPOINTS[endpoint][1]
    value = payload.get(field)
    if value is None:
        raise InvalidRequest(f"missing required parameter: {field!r}", param=field)
    if endpoint == "chat" and (not isinstance(value, list) or not value):
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    stream = payload.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream must be a boolean", param="stream")
    return payload


class Runtime:
    """Everything derived from one config. Immutable once built; replaced on reload."""

    def __init__(self, cfg: RouterConfig, source: str, ports: Mapping[str, int]) -> None:
        self.cfg = cfg
        self.source = source
        self.router = Router(cfg)
        self.classifier = Classifier(cfg.classifier)
        self.urls: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        for name, backend in cfg.backends.items():
            if backend.url is not None:
                self.urls[name] = backend.url
            else:
                self.urls[name] = f"http://127.0.0.1:{ports[name]}"
            headers = {"content-type": "application/json", "accept": "*/*"}
            if backend.api_key_env:
                headers["authorization"] = f"Bearer {os.environ.get(backend.api_key_env, '')}"
            self.headers[name] = headers

    def decide(self, endpoint: str, payload: Mapping[str, Any], eligible: Any = None) -> Decision:
        """Classify (when asked to) and order the candidates. Pure apart from a random draw."""
        model = str(payload["model"])
        target = self.router.resolve(model)
        if target is None:
            names = ", ".join(self.router.known_names())
            raise ModelNotFound(
                f"The model {model[:100]!r} does not exist. Choose one of: {names}",
                param="model",
            )
        needs_infill = endpoint == "completions" and (
            isinstance(payload.get("suffix"), str)
            and bool(payload.get("suffix"))
            or fim.detect(_prompt_text(payload.get("prompt"))) is not None
        )
        signals: Mapping[str, Any] = {}
        if target.kind == "variant":
            return Decision(
                cls="direct",
                rule="model",
                reason=f"model {model!r} names variant {target.name}",
                variant=target.name,
                candidates=(target.name,),
            )
        if endpoint == "embeddings":
            cls, rule, reason = "embeddings", "endpoint", "embeddings request"
        elif target.kind == "class":
            cls, rule, reason = target.name, "model", f"client asked for class {target.name}"
        else:
            decision = self.classifier.classify(ENDPOINTS[endpoint][0], payload)
            cls, rule, reason, signals = (
                decision.cls,
                decision.rule,
                decision.reason,
                decision.signals,
            )
        candidates, skipped = self.router.candidates(
            cls, needs_infill=needs_infill, eligible=eligible, draw=random.random()
        )
        if not candidates:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "empty route"
            raise Unavailable(f"no eligible variant for class {cls!r} ({why})")
        return Decision(
            cls=cls,
            rule=rule,
            reason=reason,
            variant=candidates[0],
            candidates=tuple(candidates),
            skipped=skipped,
            signals=signals,
        )

    def body_for(self, variant: str, endpoint: str, payload: dict[str, Any]) -> bytes:
        spec = self.cfg.variants[variant]
        out = dict(payload)
        out["model"] = spec.model
        if endpoint == "completions" and spec.fim is not None:
            out = fim.normalize(ENDPOINTS[endpoint][0], out, spec.fim)
        return orjson.dumps(out)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return str(prompt[0])
    return ""


class Proxy:
    """Long-lived state shared by all requests."""

    def __init__(
        self,
        cfg: RouterConfig,
        *,
        source: str = "<config>",
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.transport = transport
        self.ports: dict[str, int] = {}
        for name, backend in cfg.backends.items():
            if backend.url is None:
                self.ports[name] = backend.port or find_free_port()
        self.runtime = Runtime(cfg, source, self.ports)
        self.managed: dict[str, ManagedProcess] = {}
        self.health: dict[str, HealthResult] = {}
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._set_config_info(source)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the proxy is not started (use the app's lifespan)")
        return self._client

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self.transport,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            timeout=httpx.Timeout(30.0),
            trust_env=False,
        )
        cfg = self.runtime.cfg
        state_dir = Path(cfg.server.state_dir)
        for name, backend in cfg.backends.items():
            if backend.command is None:
                continue
            port = self.ports[name]
            argv = render_command(backend.command, port, backend.model_file or "")
            log_path = Path(backend.log_file or state_dir / "logs" / f"{name}.log")
            proc = ManagedProcess(
                argv,
                name=name,
                health_url=self.runtime.urls[name] + adapter_for(backend.kind).health_path,
                log_path=log_path,
                env=backend.env,
                start_timeout=backend.start_timeout,
                idle_ttl=backend.idle_ttl,
                restart_initial_backoff=backend.restart_backoff.initial,
                restart_max_backoff=backend.restart_backoff.max,
            )
            self.managed[name] = proc
        eager = [p for n, p in self.managed.items() if cfg.backends[n].start == "eager"]
        results = await asyncio.gather(*(p.start() for p in eager), return_exceptions=True)
        for result in results:
            if isinstance(result, BackendStartError):
                log.error("%s", result)
            elif isinstance(result, BaseException):
                raise result
        self._spawn(self._health_loop(), "health")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await asyncio.gather(*(p.stop() for p in self.managed.values()), return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"variant-proxy-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- config --------------------------------------------------------------------------------

    def _set_config_info(self, source: str) -> None:
        digest = ""
        with contextlib.suppress(OSError):
            digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
        self.metrics.config_info.info({"source": source, "sha256": digest})

    def reload(self, path: str | None = None) -> RouterConfig:
        """Load, validate and swap in a new config; on any error keep the old one."""
        source = path or self.runtime.source
        try:
            cfg = load_config(source)
            for name, backend in cfg.backends.items():
                if backend.url is None and name not in self.ports:
                    raise ConfigError(
                        source,
                        [
                            ConfigIssue(
                                f"backends.{name}.command",
                                "a new managed backend needs a restart, not a reload",
                            )
                        ],
                    )
            runtime = Runtime(cfg, source, self.ports)
        except ConfigError:
            self.metrics.reloads.labels("error").inc()
            raise
        self.runtime = runtime
        self._set_config_info(source)
        self.metrics.reloads.labels("ok").inc()
        log.info("config reloaded from %s", source)
        return cfg

    # -- health ---------------------------------------------------------------------------------

    async def probe(self, name: str) -> HealthResult:
        rt = self.runtime
        backend = rt.cfg.backends[name]
        proc = self.managed.get(name)
        if proc is not None and proc.state != "ready":
            result = HealthResult(ok=False, detail=f"managed process {proc.state}", latency_s=0.0)
        else:
            result = await adapter_for(backend.kind).health(
                self.client, rt.urls[name], rt.headers[name]
            )
        self.health[name] = result
        self.metrics.backend_up.labels(name).set(1 if result.ok else 0)
        return result

    async def probe_all(self) -> dict[str, HealthResult]:
        names = list(self.runtime.cfg.backends)
        results = await asyncio.gather(*(self.probe(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def _health_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.probe_all()
            await asyncio.sleep(self.runtime.cfg.server.health_interval)

    # -- requests -------------------------------------------------------------------------------

    def target(self, rt: Runtime, variant: str, endpoint: str) -> Target:
        spec = rt.cfg.variants[variant]
        backend = rt.cfg.backends[spec.backend]
        proc = self.managed.get(spec.backend)
        prepare = None
        if proc is not None:
            proc.touch()
            if proc.state != "ready":
                prepare = proc.ensure_started
        return Target(
            backend=spec.backend,
            variant=variant,
            url=rt.urls[spec.backend] + ENDPOINTS[endpoint][0],
            headers=rt.headers[spec.backend],
            timeouts=spec.timeouts or backend.timeouts,
            prepare=prepare,
        )

    async def handle(
        self, endpoint: str, scope: Mapping[str, Any], receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        rt = self.runtime
        request_id = _request_id(scope)
        headers: Headers = [(b"x-request-id", request_id)]
        cls, variant, status = "none", "none", 500
        obs: Observation | None = None
        try:
            body = await _read_body(scope, receive, rt.cfg.server.max_body_bytes)
            payload = parse_payload(endpoint, body)
            t0 = time.perf_counter()
            decision = rt.decide(endpoint, payload)
            self.metrics.classification_seconds.observe(time.perf_counter() - t0)
            if decision.cls in CLASSES and decision.rule != "model":
                self.metrics.classifications.labels(decision.cls, decision.rule).inc()
            cls = decision.cls
            headers += [
                (b"x-route-class", decision.cls.encode()),
                (b"x-route-reason", _header_safe(decision.reason)),
            ]
            stream = bool(payload.get("stream", False)) and endpoint != "embeddings"
            watch: asyncio.Future[Any] = asyncio.ensure_future(receive())
            try:
                variant, obs = await self._attempts(
                    rt, endpoint, decision, payload, stream, headers, send, watch
                )
                status = obs.status or 200
            finally:
                watch.cancel()
        except ClientGone:
            status = 499
            self.metrics.client_disconnects.labels(variant).inc()
        except ProxyError as exc:
            status = status_of(exc)
            await _send_error(send, exc, headers)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(endpoint, cls, variant, str(status)).inc()
            self.metrics.request_duration.labels(endpoint, variant).observe(elapsed)
            if obs is not None and obs.first_byte is not None:
                self.metrics.ttft.labels(endpoint, variant).observe(obs.first_byte - started)

    async def _attempts(
        self,
        rt: Runtime,
        endpoint: str,
        decision: Decision,
        payload: dict[str, Any],
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
    ) -> tuple[str, Observation]:
        relay = Relay(
            self.client,
            keepalive_after=rt.cfg.server.keepalive_after,
            keepalive_interval=rt.cfg.server.keepalive_interval,
            max_response_bytes=rt.cfg.server.max_response_bytes,
        )
        first = decision.candidates[0]
        last_error: UpstreamError | None = None
        for i, name in enumerate(decision.candidates):
            if i > 0:
                self.metrics.fallbacks.labels(decision.candidates[i - 1], name).inc()
            attempt_headers = headers + [(b"x-route-variant", name.encode())]
            if name != first:
                attempt_headers.append((b"x-route-fallback-from", first.encode()))
            obs = Observation()
            target = self.target(rt, name, endpoint)
            content = rt.body_for(name, endpoint, payload)
            gauge = self.metrics.in_flight.labels(name)
            gauge.inc()
            try:
                await relay.run(
                    target,
                    content,
                    stream=stream,
                    headers=attempt_headers,
                    send=send,
                    watch=watch,
                    obs=obs,
                )
            except UpstreamError as exc:
                self.metrics.upstream_errors.labels(target.backend, _kind(exc)).inc()
                log.warning("variant %s failed before its first byte: %s", name, exc.message)
                last_error = exc
                continue
            except ClientGone:
                self.metrics.client_disconnects.labels(name).inc()
                raise
            except BackendStartError as exc:
                last_error = UpstreamError(str(exc), code="backend_start_failed")
                continue
            finally:
                gauge.dec()
            if obs.error is not None:
                self.metrics.upstream_errors.labels(target.backend, _kind(obs.error)).inc()
            return name, obs
        assert last_error is not None
        raise last_error

    # -- small endpoints -----------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        cfg = self.runtime.cfg
        created = 0
        data: list[dict[str, Any]] = [
            _model("auto", created, {"kind": "auto", "route": "classify each request"})
        ]
        for cls in CLASSES:
            route = [c.variant for c in self.runtime.router.route(cls)]
            data.append(_model(cls, created, {"kind": "class", "candidates": route}))
        for name, variant in cfg.variants.items():
            info = {
                "kind": "variant",
                "backend": variant.backend,
                "backend_model": variant.model,
                "aliases": list(variant.aliases),
            }
            if variant.description:
                info["description"] = variant.description
            data.append(_model(name, created, info))
            for alias in variant.aliases:
                data.append(_model(alias, created, {"kind": "alias", "variant": name}))
        return {"object": "list", "data": data}


def _model(name: str, created: int, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "variant-proxy",
        "variant_proxy": info,
    }


def _kind(exc: ProxyError) -> str:
    return exc.code.removeprefix("upstream_")


def _request_id(scope: Mapping[str, Any]) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id" and value:
            clean = bytes(b for b in value[:128] if 0x21 <= b <= 0x7E)
            if clean:
                return clean
    return uuid.uuid4().hex.encode()


async def _read_body(scope: Mapping[str, Any], receive: Receive, limit: int) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError as exc:
                raise InvalidRequest("invalid content-length header") from exc
            if declared > limit:
                raise PayloadTooLarge(
                    f"request body of {declared} bytes is over the limit of {limit} bytes "
                    "(server.max_body_bytes)"
                )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body is over the limit of {limit} bytes (server.max_body_bytes)"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_error(send: Send, exc: ProxyError, headers: Headers) -> None:
    body = error_body(exc)
    extra: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        extra.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    with contextlib.suppress(OSError, RuntimeError):
        await send(
            {"type": "http.response.start", "status": status_of(exc), "headers": headers + extra}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


class _OpenAIEndpoint:
    """A raw ASGI endpoint, so the relay decides when headers and bytes go out."""

    def __init__(self, proxy: Proxy, endpoint: str) -> None:
        self.proxy = proxy
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await self.proxy.handle(self.endpoint, scope, receive, send)


def _json_error(exc: ProxyError, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        error_body(exc),
        status_code=status_of(exc),
        media_type="application/json",
        headers=dict(headers or {}),
    )


def create_app(
    cfg: RouterConfig | str | os.PathLike[str],
    *,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build the ASGI app from a config (object or path)."""
    if isinstance(cfg, RouterConfig):
        source = "<config>"
        config = cfg
    else:
        source = str(cfg)
        config = load_config(cfg)
    proxy = Proxy(config, source=source, metrics=metrics, transport=transport)

    async def models(request: Request) -> Response:
        return Response(orjson.dumps(proxy.models()), media_type="application/json")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        results = await proxy.probe_all()
        body = {
            "ready": any(r.ok for r in results.values()),
            "backends": {
                name: {"ok": r.ok, "detail": r.detail, "latency_seconds": round(r.latency_s, 4)}
                for name, r in results.items()
            },
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(proxy.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def explain(request: Request) -> Response:
        path = request.query_params.get("endpoint", "/v1/chat/completions")
        endpoint = _PATH_TO_ENDPOINT.get(path)
        if endpoint is None:
            raise InvalidRequest(
                f"unknown endpoint {path!r}; use one of {', '.join(_PATH_TO_ENDPOINT)}",
                param="endpoint",
            )
        payload = parse_payload(endpoint, await request.body())
        decision = proxy.runtime.decide(endpoint, payload)
        return Response(orjson.dumps(decision.as_dict()), media_type="application/json")

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        err: ProxyError
        if exc.status_code == 405:
            err = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
        elif exc.status_code == 404:
            err = RequestError(f"no such endpoint: {request.url.path}", code="not_found")
            return Response(error_body(err), status_code=404, media_type="application/json")
        else:
            err = RequestError(str(exc.detail), code=str(exc.status_code))
            return Response(
                error_body(err), status_code=exc.status_code, media_type="application/json"
            )
        return _json_error(err, exc.headers)

    async def on_proxy_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProxyError)
        return _json_error(exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        try:
            yield
        finally:
            await proxy.stop()

    routes = [
        Route(path, _OpenAIEndpoint(proxy, name), methods=["POST"])
        for name, (path, _) in ENDPOINTS.items()
    ]
    routes += [
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/route/explain", explain, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: on_http_exception, ProxyError: on_proxy_error},
    )
    app.state.proxy = proxy
    return app
