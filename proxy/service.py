"""`Proxy`: the long-lived service behind the app.

It owns what outlives one request: the running config's `Runtime` (swapped
whole on reload; per-backend state survives a reload when the backend is
unchanged), the API keys, one shared httpx client and the native relay
client, the metrics, the managed backend processes, the pin guard, and the
background tasks (health probes, pin checks, resource sampling, config
watching). Requests themselves are read by `edge.py` and dispatched by the
`Dispatcher` this service builds when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx

from . import contextwindow
from .activity import ActivityLog, ResourceHistory
from .auth import KeyRing, load_keys
from .backends import HealthResult, adapter_for
from .backends.loaded import LOADED_KINDS, fetch_loaded
from .classify import CLASSES
from .config import RouterConfig, load_config
from .dispatch import Dispatcher
from .errors import (
    BackendStartError,
    ConfigError,
    ConfigIssue,
    EndpointNotFound,
    InvalidRequest,
    UpstreamUnreachable,
)
from .httpclient import NativeClient
from .metrics import Metrics
from .origin import open_listener_problem
from .pinning.guard import PinGuard
from .resources import ResourceSampler
from .routing import Ranker
from .runtime import BackendState, Runtime
from .supervisor import ManagedProcess, find_free_port, render_command
from .swapper import Swapper

__all__ = ["BackendState", "Proxy"]

log = logging.getLogger("variant_proxy")

#: `/ready` calls this close together share one round of probes
READY_SHARE_SECONDS = 1.0


class Proxy:
    """Long-lived state shared by all requests."""

    def __init__(
        self,
        cfg: RouterConfig,
        *,
        source: str = "<config>",
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        upstream_client: str = "native",
        listen_host: str | None = None,
        allow_remote: bool = False,
    ) -> None:
        self.metrics = metrics or Metrics()
        #: the address `serve` binds (None: loopback) and whether `--allow-remote` was given:
        #: a reload may not leave a non-loopback listener without keys (see `_check_keys`)
        self.listen_host = listen_host
        self.allow_remote = allow_remote
        self.transport = transport
        #: relay requests with the lean native client (plain http:// backends), or httpx
        self.use_native = upstream_client == "native" and transport is None
        self.native: NativeClient | None = None
        self.ports: dict[str, int] = {}
        for name, backend in cfg.backends.items():
            if backend.url is None:
                self.ports[name] = backend.port or find_free_port()
        self.runtime = Runtime(cfg, source, self.ports)
        self.keys = self._keyring(cfg)
        self.managed: dict[str, ManagedProcess] = {}
        self.last_request = time.monotonic()
        #: what the status page reads: finished requests, and backend CPU/RSS readings
        self.activity = ActivityLog(_history(cfg))
        self.resource_history = ResourceHistory()
        self._pins: PinGuard | None = None
        self._dispatcher: Dispatcher | None = None
        self._swapper: Swapper | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: the latest `/ready` round of probes and when it started (see `probe_shared`)
        self._ready: tuple[float, asyncio.Future[dict[str, HealthResult]]] | None = None
        self._config_stamp = self._stamp(source)
        self._set_config_info(source)

    @property
    def backends(self) -> dict[str, BackendState]:
        """Per-backend state of the running config."""
        return self.runtime.backends

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the proxy is not started (use the app's lifespan)")
        return self._client

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("the proxy is not started (use the app's lifespan)")
        return self._dispatcher

    @property
    def swapper(self) -> Swapper:
        """Loads managed backends within their groups' budgets (`proxy.swapper`)."""
        if self._swapper is None:
            raise RuntimeError("the proxy is not started (use the app's lifespan)")
        return self._swapper

    @property
    def pins(self) -> PinGuard | None:
        """The pin guard (None until started)."""
        return self._pins

    async def start(self, *, rank: Ranker | None = None) -> None:
        """Start the clients, managed backends and background tasks; requests may come.

        `rank` orders `order: benchmark` routes by evidence (the benchmark scheduler's).
        """
        self._client = httpx.AsyncClient(
            transport=self.transport,
            # idle connections expire before servers drop them (cpp-httplib: 5 s)
            limits=httpx.Limits(
                max_connections=1000, max_keepalive_connections=200, keepalive_expiry=2.0
            ),
            timeout=httpx.Timeout(30.0),
            trust_env=False,
        )
        if self.use_native:
            self.native = NativeClient()
        cfg = self.runtime.cfg
        self._start_managed(cfg)
        pins = self._pins = PinGuard(
            self.client,
            self.metrics,
            config=lambda: self.runtime.cfg,
            source=lambda: self.runtime.source,
            urls=lambda: self.runtime.urls,
        )
        swapper = self._swapper = Swapper(
            cfg,
            self.managed,
            self.metrics,
            in_flight=lambda b: self.backends[b].in_flight if b in self.backends else 0,
        )
        self._dispatcher = Dispatcher(
            self.metrics,
            self.client,
            native=self.native,
            managed=self.managed,
            pins=pins,
            rank=rank,
            swapper=swapper,
        )
        eager = [n for n in self.managed if cfg.backends[n].start == "eager"]
        results = await asyncio.gather(
            *(self.managed[n].start() for n in eager if swapper.group_of(n) is None),
            swapper.start_fitting([n for n in eager if swapper.group_of(n) is not None]),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BackendStartError):
                log.error("%s", result)
            elif isinstance(result, BaseException):
                raise result
        if pins.active:
            await pins.check()
            self.spawn(pins.run(), "pins")
        self.sampler = ResourceSampler(
            self.metrics,
            lambda: dict(self.runtime.urls),
            pids=lambda: {n: p.pid for n, p in self.managed.items()},
            pid_files={n: b.pid_file for n, b in cfg.backends.items() if b.pid_file},
            interval=cfg.server.resource_interval,
            history=self.resource_history,
        )
        self.spawn(self.sampler.run(), "resources")
        self.spawn(self._health_loop(), "health")
        if cfg.server.watch_config and Path(self.runtime.source).is_file():
            self.spawn(self._watch_config(), "config-watch")

    def _start_managed(self, cfg: RouterConfig) -> None:
        """A `ManagedProcess` for every backend variant-proxy runs itself (not started yet)."""
        state_dir = Path(cfg.server.state_dir)
        for name, backend in cfg.backends.items():
            if backend.command is None:
                continue
            port = self.ports[name]
            argv = render_command(backend.command, port, backend.model_file or "")
            log_path = Path(backend.log_file or state_dir / "logs" / f"{name}.log")
            self.managed[name] = ManagedProcess(
                argv,
                name=name,
                health_url=self.runtime.urls[name] + adapter_for(backend.kind).health_path,
                log_path=log_path,
                env=backend.env,
                start_timeout=backend.start_timeout,
                idle_ttl=backend.idle_ttl,
                restart_initial_backoff=backend.restart_backoff.initial,
                restart_max_backoff=backend.restart_backoff.max,
                on_ready=self._on_backend_ready,
            )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.native is not None:
            await self.native.aclose()
            self.native = None
        # managed backends last: nothing can reach them any more
        await asyncio.gather(*(p.stop() for p in self.managed.values()), return_exceptions=True)

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"variant-proxy-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_backend_ready(self, proc: ManagedProcess) -> None:
        seconds = proc.loading_for
        if seconds is not None:
            self.metrics.backend_load_seconds.labels(proc.name).observe(seconds)
        await self._backend_up(proc.name)

    async def _backend_up(self, name: str) -> None:
        """A backend (re)started or answers again: trust it again and re-check its pins."""
        state = self.backends.get(name)
        if state is not None:
            state.breaker.success()
        if self._pins is not None:
            await self._pins.backend_up(name)

    # -- config --------------------------------------------------------------------------------

    @staticmethod
    def _keyring(cfg: RouterConfig) -> KeyRing:
        auth = cfg.server.auth
        return KeyRing(
            load_keys(auth),
            protect_admin=auth.protect_admin,
            protect_metrics=auth.protect_metrics,
        )

    @staticmethod
    def _stamp(source: str) -> tuple[float, int] | None:
        try:
            st = Path(source).stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    def _set_config_info(self, source: str) -> None:
        digest = ""
        with contextlib.suppress(OSError):
            digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
        self.metrics.config_info.info({"source": source, "sha256": digest})

    def reload(self, path: str | None = None) -> RouterConfig:
        """Load, validate and swap in a new config; on any error keep the old one.

        Requests in flight keep the `Runtime` they started with. Backend state
        (breaker, queue, in-flight) carries over for backends whose settings
        did not change. Managed backends keep running; changing how one is
        launched needs a restart.
        """
        source = path or self.runtime.source
        try:
            cfg = load_config(source)
            issues = [
                ConfigIssue(f"backends.{name}.command", "a new managed backend needs a restart")
                for name, backend in cfg.backends.items()
                if backend.url is None and name not in self.ports
            ]
            if issues:
                raise ConfigError(source, issues)
            runtime = Runtime(cfg, source, self.ports, previous=self.runtime.backends)
            keys = self._keyring(cfg)
            self._check_keys(cfg, keys, source)
        except (ConfigError, OSError) as exc:
            self.metrics.reloads.labels("error").inc()
            if isinstance(exc, OSError):
                raise ConfigError(source, [ConfigIssue("server.auth", str(exc))]) from exc
            raise
        self.runtime, self.keys = runtime, keys
        self.activity.resize(_history(cfg))
        if self._swapper is not None:
            self._swapper.configure(cfg)
        if self._pins is not None:
            self._pins.reconfigure(cfg, source)
            if self._pins.active:
                self.spawn(self._pins.check(), "pins-after-reload")
        self._config_stamp = self._stamp(source)
        self._set_config_info(source)
        self.metrics.reloads.labels("ok").inc()
        log.info("config reloaded from %s", source)
        return cfg

    def _check_keys(self, cfg: RouterConfig, keys: KeyRing, source: str) -> None:
        """Refuse a reload that would switch auth off; log any change of the key set.

        The startup rule (`origin.open_listener_problem`) holds on every reload, and
        going from some keys to none needs `server.auth.allow_disable_on_reload`:
        a config edit or an emptied key file must not silently open the proxy.
        """
        old, new = set(self.keys.keys), set(keys.keys)
        issues: list[str] = []
        if old and not new and not cfg.server.auth.allow_disable_on_reload:
            issues.append(
                f"the new config leaves no API keys where {len(old)} were in use; keeping "
                "them (set server.auth.allow_disable_on_reload: true to switch auth off)"
            )
        host = self.listen_host or "127.0.0.1"
        problem = open_listener_problem(host, keys=bool(new), allow_remote=self.allow_remote)
        if problem is not None:
            issues.append(problem.replace("refusing to listen", "refusing a reload that listens"))
        if issues:
            log.error("config reload refused, keeping the running config: %s", "; ".join(issues))
            raise ConfigError(source, [ConfigIssue("server.auth", issue) for issue in issues])
        if old != new:
            log.warning(
                "config reload changes the API keys: %d before, %d after (%d added, %d removed)",
                len(old),
                len(new),
                len(new - old),
                len(old - new),
            )

    async def _watch_config(self) -> None:
        """Reload when the config file changes (polled, debounced)."""
        while True:
            await asyncio.sleep(1.0)
            stamp = self._stamp(self.runtime.source)
            if stamp is None or stamp == self._config_stamp:
                continue
            await asyncio.sleep(0.5)  # debounce editors that write in several steps
            stamp = self._stamp(self.runtime.source)
            if stamp == self._config_stamp:
                continue
            self._config_stamp = stamp
            try:
                self.reload()
            except ConfigError as exc:
                log.error("config reload failed, keeping the running config: %s", exc)

    # -- health --------------------------------------------------------------------------------

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
        state = self.backends.get(name)
        if state is not None:
            was_ok = state.health.ok if state.health is not None else None
            state.health = result
            if result.ok and was_ok is False:
                await self._backend_up(name)
            if result.ok and (was_ok is not True or not state.windows):
                await self._learn_windows(name, state, result)
        self.metrics.backend_up.labels(name).set(1 if result.ok else 0)
        stopped = proc is not None and proc.state == "stopped"
        self.metrics.backend_stopped.labels(name).set(1 if stopped else 0)
        return result

    async def _learn_windows(self, name: str, state: BackendState, health: HealthResult) -> None:
        """What the backend serves (its context windows, its version), read when it comes
        up and kept until it next does: never on a request's path."""
        rt = self.runtime
        kind = rt.cfg.backends[name].kind
        if kind == "ollama" and health.detail.startswith("ollama "):
            state.version = health.detail.removeprefix("ollama ")
        models = {v.model for v in rt.cfg.variants.values() if name in v.backends}
        state.windows = await contextwindow.learn(
            kind,
            self.client,
            rt.urls[name],
            rt.headers[name],
            sorted(models),
            version=state.version,
        )
        if state.windows:
            log.info(
                "backend %s serves context windows %s",
                name,
                ", ".join(f"{m}: {w.tokens} ({w.source})" for m, w in state.windows.items()),
            )

    async def probe_all(self) -> dict[str, HealthResult]:
        names = list(self.runtime.cfg.backends)
        results = await asyncio.gather(*(self.probe(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def probe_shared(self) -> dict[str, HealthResult]:
        """`probe_all` for `/ready`: callers within `READY_SHARE_SECONDS` of one another
        share one round of probes (the one running, or the one just finished), so a burst
        of readiness checks costs the backends one probe each, not one per call."""
        now = time.monotonic()
        shared = self._ready
        if shared is None or (shared[1].done() and now - shared[0] > READY_SHARE_SECONDS):
            task = asyncio.ensure_future(self.probe_all())
            self._ready = shared = (now, task)
        # shielded: a caller that goes away doesn't cancel the others' probe
        return await asyncio.shield(shared[1])

    async def _health_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.probe_all()
            with contextlib.suppress(Exception):
                await self.poll_loaded()
            await asyncio.sleep(self.runtime.cfg.server.health_interval)

    async def poll_loaded(self) -> None:
        """Ask Ollama and LM Studio backends which models they hold, for warm-aware routing;
        only when a route has a `max_cold_start` budget to apply."""
        rt = self.runtime
        if not rt.cfg.routes.max_cold_start or self._swapper is None:
            return
        names = [
            n
            for n, b in rt.cfg.backends.items()
            if b.kind in LOADED_KINDS and n not in self.managed
        ]
        found = await asyncio.gather(
            *(
                fetch_loaded(rt.cfg.backends[n].kind, self.client, rt.urls[n], rt.headers[n])
                for n in names
            )
        )
        for name, models in zip(names, found, strict=True):
            self._swapper.set_loaded(name, rt.cfg.backends[name].kind, models)

    def backend_status(self) -> dict[str, Any]:
        now = time.monotonic()
        out: dict[str, Any] = {}
        for name, spec in self.runtime.cfg.backends.items():
            state = self.backends[name]
            item: dict[str, Any] = {
                "kind": spec.kind,
                "url": self.runtime.urls[name],
                "healthy": state.health.ok if state.health else None,
                "health_detail": state.health.detail if state.health else "not probed yet",
                "breaker": state.breaker.state(now),
                "consecutive_failures": state.breaker.failures,
                "in_flight": state.in_flight,
                "queued": state.limiter.queued,
                "max_concurrency": spec.max_concurrency,
                "context_windows": {
                    m: {"tokens": w.tokens, "source": w.source} for m, w in state.windows.items()
                },
            }
            if state.version is not None:
                item["version"] = state.version
            loaded = self._swapper.loaded_models(name) if self._swapper is not None else None
            if loaded is not None:
                item["loaded_models"] = loaded
            proc = self.managed.get(name)
            if proc is not None:
                item["managed"] = {
                    "state": proc.state,
                    "pid": proc.pid,
                    "restarts": proc.restarts,
                    "log_file": str(proc.log_path),
                }
                if self._swapper is not None:
                    item["managed"].update(self._swapper.backend_info(name))
            out[name] = item
        return out

    # -- loading (admin) ------------------------------------------------------------------------

    def _managed_backend(self, name: str) -> ManagedProcess:
        proc = self.managed.get(name)
        if proc is not None:
            return proc
        if name in self.runtime.cfg.backends:
            raise InvalidRequest(
                f"backend {name!r} is not managed (it has a url, no command): variant-proxy "
                "can only load and unload servers it runs itself",
                param="backend",
            )
        known = ", ".join(sorted(self.managed)) or "none"
        raise EndpointNotFound(
            f"no backend {name!r} (managed backends: {known})", code="backend_not_found"
        )

    async def load_backend(self, name: str) -> dict[str, Any]:
        """`POST /admin/load/<backend>`: start it (making room in its group) and wait."""
        proc = self._managed_backend(name)
        was, began = proc.state, time.monotonic()
        try:
            await self.swapper.ensure(name, self.runtime.cfg.backends[name].queue_timeout)
        except BackendStartError as exc:
            raise UpstreamUnreachable(str(exc)) from exc
        seconds = round(time.monotonic() - began, 3)
        return {"backend": name, "state": proc.state, "was": was, "seconds": seconds}

    async def unload_backend(self, name: str) -> dict[str, Any]:
        """`POST /admin/unload/<backend>`: stop it unless it has requests in flight."""
        proc = self._managed_backend(name)
        was = proc.state
        stopped = await self.swapper.unload(name)
        return {"backend": name, "state": proc.state, "was": was, "unloaded": stopped}

    # -- listings -------------------------------------------------------------------------------

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
            info: dict[str, Any] = {
                "kind": "variant",
                "backend": variant.backend,
                "backend_model": variant.model,
                "aliases": list(variant.aliases),
                # what a client (the bench's --url mode) needs to ask it the right way
                "api": variant.api,
                "fim": variant.fim,
            }
            if variant.replicas:
                info["replicas"] = list(variant.replicas)
            if variant.description:
                info["description"] = variant.description
            state = self._pins.state(name) if self._pins is not None else None
            if state is not None:
                pin = state.as_dict()
                info["pin"] = {k: pin.get(k) for k in ("status", "reason", "expected", "observed")}
            data.append(_model(name, created, info))
            for alias in variant.aliases:
                data.append(_model(alias, created, {"kind": "alias", "variant": name}))
        return {"object": "list", "data": data}


def _history(cfg: RouterConfig) -> int:
    """The status page's ring size: 0 (appends keep nothing) when the page is off."""
    page = cfg.server.status_page
    return page.history if page.enabled else 0


def _model(name: str, created: int, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "variant-proxy",
        "variant_proxy": info,
    }
