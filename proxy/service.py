"""`Proxy`: the long-lived state behind the app, and the life of one request.

It owns one shared httpx client, the metrics, the managed backend processes,
and per backend a health result, a circuit breaker, a concurrency limiter
and an in-flight count. The config-derived `Runtime` is swapped whole on
reload; per-backend state survives a reload when the backend is unchanged.

One request: read the body (bounded), parse what routing needs, decide the
ordered candidates, then for each candidate variant its replicas by fewest
in-flight requests, attempt the relay. An attempt that fails before its
first byte falls through to the next; the client sees the first success or
the last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .auth import KeyRing, load_keys
from .backends import HealthResult, adapter_for
from .backends.identity import FileHashCache
from .config import CLASSES, RouterConfig, load_config
from .errors import (
    ConfigError,
    ConfigIssue,
    HeadersTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    ProxyError,
    UpstreamBusy,
    UpstreamError,
    UpstreamUnreachable,
    error_body,
    status_of,
)
from .httpclient import NativeClient
from .limits import QueueFull, QueueTimeout
from .metrics import Metrics
from .pinning import (
    Lockfile,
    LockfileError,
    PinChecker,
    PinState,
    expectations,
    lockfile_path,
    read_lockfile,
    resolve_target,
    version_mismatch,
)
from .resources import ResourceSampler
from .routing import Decision
from .runtime import ENDPOINTS, BackendState, Runtime, parse_payload
from .streammeter import StreamMeter, observe
from .supervisor import BackendStartError, ManagedProcess, find_free_port, render_command
from .upstream import ClientGone, Headers, Observation, Receive, Relay, Send, Target

__all__ = ["BackendState", "Proxy"]

log = logging.getLogger("variant_proxy")


@dataclass(slots=True)
class _Upstream:
    """Seconds spent waiting on backends, over every attempt of one request."""

    seconds: float = 0.0


@dataclass(slots=True)
class _Attempt:
    variant: str
    backend: str


def _header_safe(text: str, limit: int = 200) -> bytes:
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean[:limit].encode("ascii")


def _identity_label(fields: Mapping[str, Any]) -> str:
    """A short, stable rendering of identity fields for a metric label."""
    keys = ("sha256", "digest", "quantization", "id")
    parts = [f"{k}={str(fields[k])[:12]}" for k in keys if fields.get(k) not in (None, "")]
    return ",".join(parts) or "-"


def _kind(exc: ProxyError) -> str:
    return exc.code.removeprefix("upstream_")


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
    ) -> None:
        self.metrics = metrics or Metrics()
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
        #: extra eligibility checks (pin drift); each returns None or why the variant can't serve
        self.eligibility_hooks: list[Callable[[str], str | None]] = []
        #: run with the variant a client named directly; may raise (409 on pin drift)
        self.direct_hooks: list[Callable[[str], None]] = []
        #: awaited when a backend (re)becomes healthy (re-verify pins)
        self.on_ready_hooks: list[Callable[[str], Awaitable[None]]] = []
        self.last_request = time.monotonic()
        self.pins: PinChecker | None = None
        #: orders `order: benchmark` routes by the latest benchmark (set by the scheduler)
        self.rank: Callable[[list[str], str], list[str]] | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
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

    async def start(self) -> None:
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
        self.pins = PinChecker(
            self.client,
            lambda v: resolve_target(self.runtime.cfg, v, self.runtime.urls),
            expected=self._expectations(cfg),
            policy=cfg.pinning.policy,
            hashes=FileHashCache() if cfg.pinning.hash_files else None,
            verified_on_start=lambda v: (
                self.runtime.cfg.backends[self.runtime.cfg.variants[v].backend].managed
            ),
            on_state=self._pin_metrics,
        )
        self.eligibility_hooks.append(self.pins.eligible)
        self.direct_hooks.append(self._check_direct_pin)
        self.on_ready_hooks.append(self._recheck_pins)
        eager = [p for n, p in self.managed.items() if cfg.backends[n].start == "eager"]
        results = await asyncio.gather(*(p.start() for p in eager), return_exceptions=True)
        for result in results:
            if isinstance(result, BackendStartError):
                log.error("%s", result)
            elif isinstance(result, BaseException):
                raise result
        if cfg.pinning.policy != "off":
            await self.pins.check_all(self._pinned())
            self.spawn(self._pin_loop(), "pins")
        self.sampler = ResourceSampler(
            self.metrics,
            lambda: dict(self.runtime.urls),
            pids=lambda: {n: p.pid for n, p in self.managed.items()},
            pid_files={n: b.pid_file for n, b in cfg.backends.items() if b.pid_file},
            interval=cfg.server.resource_interval,
        )
        self.spawn(self.sampler.run(), "resources")
        self.spawn(self._health_loop(), "health")
        if cfg.server.watch_config and Path(self.runtime.source).is_file():
            self.spawn(self._watch_config(), "config-watch")

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
        await self._backend_up(proc.name)

    async def _backend_up(self, name: str) -> None:
        """A backend (re)started or answers again: trust it again, let hooks (pin checks) run."""
        state = self.backends.get(name)
        if state is not None:
            state.breaker.success()
        for hook in self.on_ready_hooks:
            await hook(name)

    # -- pins ----------------------------------------------------------------------------------

    def _expectations(self, cfg: RouterConfig) -> dict[str, dict[str, Any]]:
        path = lockfile_path(self.runtime.source, cfg.pinning)
        try:
            lockfile = read_lockfile(path)
        except LockfileError as exc:
            log.error("ignoring unreadable lockfile %s: %s", path, exc)
            lockfile = Lockfile()
        return expectations(cfg, lockfile)

    def _pin_metrics(self, state: PinState) -> None:
        observed = state.observed.fields if state.observed is not None else {}
        self.metrics.set_pin(
            state.variant,
            expected=_identity_label(state.expected),
            observed=_identity_label(observed) if observed else state.status,
            ok=state.serving_ok,
        )

    def _pinned(self, backend: str | None = None) -> list[str]:
        """Variants with something to verify (a pin or a lockfile entry), optionally on one
        backend. Unpinned variants are never probed for identity."""
        if self.pins is None:
            return []
        variants = self.runtime.cfg.variants
        return [
            v
            for v, fields in self.pins.expected.items()
            if fields and v in variants and (backend is None or backend in variants[v].backends)
        ]

    async def _pin_loop(self) -> None:
        assert self.pins is not None
        while True:
            await asyncio.sleep(self.runtime.cfg.pinning.interval)
            if self.runtime.cfg.pinning.policy != "off":
                try:
                    await self.pins.check_all(self._pinned())
                except Exception:  # never let one bad answer end the loop
                    log.exception("pin check failed")

    async def _recheck_pins(self, backend: str) -> None:
        """A backend came (back) up: what it serves now may not be what it served before."""
        if self.pins is None or self.runtime.cfg.pinning.policy == "off":
            return
        with contextlib.suppress(Exception):
            await self.pins.check_all(self._pinned(backend))

    def _check_direct_pin(self, variant: str) -> None:
        if self.pins is not None:
            state = self.pins.mismatch(variant)
            if state is not None:
                raise version_mismatch(state)

    def pin_header(self, variant: str) -> bytes | None:
        if self.pins is None:
            return None
        state = self.pins.states.get(variant)
        return state.status.encode() if state is not None else None

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
        except (ConfigError, OSError) as exc:
            self.metrics.reloads.labels("error").inc()
            if isinstance(exc, OSError):
                raise ConfigError(source, [ConfigIssue("server.auth", str(exc))]) from exc
            raise
        self.runtime, self.keys = runtime, keys
        if self.pins is not None:
            self.pins.set_expected(self._expectations(cfg), cfg.pinning.policy)
            if cfg.pinning.policy != "off" and self._client is not None:
                self.spawn(self.pins.check_all(self._pinned()), "pins-after-reload")
        self._config_stamp = self._stamp(source)
        self._set_config_info(source)
        self.metrics.reloads.labels("ok").inc()
        log.info("config reloaded from %s", source)
        return cfg

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
            }
            proc = self.managed.get(name)
            if proc is not None:
                item["managed"] = {
                    "state": proc.state,
                    "pid": proc.pid,
                    "restarts": proc.restarts,
                    "log_file": str(proc.log_path),
                }
            out[name] = item
        return out

    # -- eligibility ---------------------------------------------------------------------------

    @staticmethod
    def _backend_usable(rt: Runtime, name: str, now: float) -> str | None:
        state = rt.backends.get(name)
        if state is None:
            return "unknown backend"
        if not state.breaker.available(now):
            return f"backend {name} circuit open"
        if state.limiter.busy():
            return f"backend {name} busy (queue full)"
        return None

    def eligibility(self, rt: Runtime) -> Callable[[str], str | None]:
        """Routing's eligibility hook for one config: None when a variant may serve, else
        why not. Bound to `rt` so a reload mid-request can't mix two configs."""

        def eligible(variant: str) -> str | None:
            return self._eligible(rt, variant)

        return eligible

    def _eligible(self, rt: Runtime, variant: str) -> str | None:
        for hook in self.eligibility_hooks:
            why = hook(variant)
            if why is not None:
                return why
        now = time.monotonic()
        reasons = [self._backend_usable(rt, b, now) for b in rt.cfg.variants[variant].backends]
        if all(r is not None for r in reasons):
            return "; ".join(r for r in reasons if r)
        return None

    def _replicas(self, rt: Runtime, variant: str) -> list[str]:
        """The variant's backends, usable ones first, by fewest requests in flight."""
        names = list(rt.cfg.variants[variant].backends)
        if len(names) == 1:
            return names
        now = time.monotonic()

        def key(b: str) -> tuple[bool, int]:
            state = rt.backends[b]
            return (self._backend_usable(rt, b, now) is not None, state.in_flight)

        return sorted(names, key=key)

    # -- requests -------------------------------------------------------------------------------

    def _target(self, rt: Runtime, attempt: _Attempt, endpoint: str, obs: Observation) -> Target:
        backend = rt.cfg.backends[attempt.backend]
        state = rt.backends[attempt.backend]
        proc = self.managed.get(attempt.backend)
        needs_slot = state.limiter.max_concurrency is not None

        async def prepare() -> None:
            if proc is not None:
                proc.touch()
                if proc.state != "ready":
                    try:
                        await proc.ensure_started()
                    except BackendStartError as exc:
                        raise UpstreamUnreachable(str(exc)) from exc
            if needs_slot:
                waited = time.perf_counter()
                self.metrics.queue_depth.labels(attempt.backend).set(state.limiter.queued + 1)
                try:
                    await state.limiter.acquire()
                except QueueFull:
                    raise UpstreamBusy(
                        f"backend {attempt.backend!r} is at max_concurrency "
                        f"({backend.max_concurrency}) and its queue is full",
                        retry_after=backend.queue_timeout / 4,
                    ) from None
                except QueueTimeout:
                    raise UpstreamBusy(
                        f"backend {attempt.backend!r}: waited over queue_timeout "
                        f"({backend.queue_timeout:g}s) for a free slot",
                        retry_after=backend.queue_timeout / 4,
                    ) from None
                finally:
                    self.metrics.queue_depth.labels(attempt.backend).set(state.limiter.queued)
                obs.slot_acquired = True
                self.metrics.queue_wait.labels(attempt.backend).observe(
                    time.perf_counter() - waited
                )

        return Target(
            backend=attempt.backend,
            variant=attempt.variant,
            url=rt.urls[attempt.backend] + ENDPOINTS[endpoint][0],
            headers=rt.headers[attempt.backend],
            timeouts=rt.timeouts(attempt.variant, attempt.backend),
            prepare=prepare if (needs_slot or proc is not None) else None,
        )

    def _check_headers(self, scope: Mapping[str, Any], limit: int) -> None:
        size = 0
        user = True
        for key, value in scope.get("headers", ()):
            size += len(key) + len(value) + 4
            if key == b"x-variant-proxy-bench":
                user = False  # the scheduled benchmark's own traffic doesn't make us busy
        if user:
            self.last_request = time.monotonic()
        if size > limit:
            raise HeadersTooLarge(
                f"request headers of {size} bytes are over the limit of {limit} bytes "
                "(server.max_header_bytes)"
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
        upstream = _Upstream()
        try:
            self._check_headers(scope, rt.cfg.server.max_header_bytes)
            self.keys.check(scope.get("headers", ()))
            body = await _read_body(scope, receive, rt.cfg.server.max_body_bytes)
            payload = parse_payload(endpoint, body)
            if rt.cfg.server.log_prompts:
                log.info(
                    "request %s body: %s",
                    request_id.decode(),
                    body[:4000].decode("utf-8", "replace"),
                )
            t0 = time.perf_counter()
            decision = rt.decide(endpoint, payload, self.eligibility(rt), self.rank)
            self.metrics.classification_seconds.observe(time.perf_counter() - t0)
            if decision.cls in CLASSES and decision.rule != "model":
                self.metrics.classifications.labels(decision.cls, decision.rule).inc()
            if decision.cls == "direct":
                for hook in self.direct_hooks:
                    hook(decision.candidates[0])
            cls, variant = decision.cls, decision.candidates[0]
            headers += [
                (b"x-route-class", decision.cls.encode()),
                (b"x-route-reason", _header_safe(decision.reason)),
            ]
            stream = bool(payload.get("stream", False)) and endpoint != "embeddings"
            watch: asyncio.Future[Any] = asyncio.ensure_future(receive())
            try:
                variant, obs = await self._attempts(
                    rt, endpoint, decision, payload, body, stream, headers, send, watch, upstream
                )
                status = obs.status or 200
            finally:
                watch.cancel()
        except ClientGone:
            status = 499
        except ProxyError as exc:
            status = status_of(exc)
            await _send_error(send, exc, headers)
        except Exception:
            log.exception("request %s failed", request_id.decode())
            await _send_error(send, ProxyError("internal error in variant-proxy"), headers)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.overhead.labels(endpoint).observe(max(0.0, elapsed - upstream.seconds))
            self.metrics.requests.labels(endpoint, cls, variant, str(status)).inc()
            self.metrics.request_duration.labels(endpoint, variant).observe(elapsed)
            if obs is not None:
                self.after_request(endpoint, variant, started, obs)

    def after_request(self, endpoint: str, variant: str, started: float, obs: Observation) -> None:
        if obs.meter is not None:
            obs.meter.started = started
            observe(self.metrics, endpoint, variant, obs.meter.result())

    async def _attempts(
        self,
        rt: Runtime,
        endpoint: str,
        decision: Decision,
        payload: dict[str, Any],
        raw: bytes,
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
        upstream: _Upstream,
    ) -> tuple[str, Observation]:
        relay = Relay(
            self.client,
            native=self.native,
            keepalive_after=rt.cfg.server.keepalive_after,
            keepalive_interval=rt.cfg.server.keepalive_interval,
            max_response_bytes=rt.cfg.server.max_response_bytes,
        )
        attempts = [_Attempt(v, b) for v in decision.candidates for b in self._replicas(rt, v)]
        first = attempts[0].variant
        last_error: UpstreamError | None = None
        previous: str | None = None
        for attempt in attempts:
            name = attempt.variant
            state = rt.backends[attempt.backend]
            breaker = state.breaker
            trial = breaker.state(time.monotonic()) == "half-open"
            # A half-open breaker lets one trial through; a request that names its variant
            # directly (a single candidate) goes anyway and reports what it finds.
            if not breaker.allow(time.monotonic()) and len(attempts) > 1:
                continue
            judged = early = False
            if previous is not None and previous != name:
                self.metrics.fallbacks.labels(previous, name).inc()
            previous = name
            attempt_headers = headers + [(b"x-route-variant", name.encode())]
            pin = self.pin_header(name)
            if pin is not None:
                attempt_headers.append((b"x-route-pin", pin))
            if name != first:
                attempt_headers.append((b"x-route-fallback-from", first.encode()))
            obs = Observation()
            self.prepare_observation(obs, endpoint, name, stream)
            target = self._target(rt, attempt, endpoint, obs)
            content = rt.body_for(name, endpoint, payload, raw)
            gauge = self.metrics.in_flight.labels(name)
            gauge.inc()
            state.in_flight += 1
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
                early = True
                self.metrics.upstream_errors.labels(target.backend, _kind(exc)).inc()
                if not isinstance(exc, UpstreamBusy):
                    breaker.failure(time.monotonic())
                    judged = True
                log.warning(
                    "variant %s (%s) failed before its first byte: %s",
                    name,
                    attempt.backend,
                    exc.message,
                )
                last_error = exc
                continue
            except ClientGone:
                self.metrics.client_disconnects.labels(name).inc()
                raise
            finally:
                gauge.dec()
                if obs.started:
                    upstream.seconds += (obs.last_byte or time.perf_counter()) - obs.started
                state.in_flight -= 1
                if obs.slot_acquired:
                    state.limiter.release()
                if early:
                    pass  # failed before the first byte: handled above
                elif obs.error is not None:  # reported in-stream after the commit
                    self.metrics.upstream_errors.labels(target.backend, _kind(obs.error)).inc()
                    breaker.failure(time.monotonic())
                    judged = True
                elif obs.status is not None and obs.status < 500:
                    breaker.success()
                    judged = True
                if trial and not judged:
                    # the trial ended without a verdict (client gone, queue full): give it back
                    breaker.release_trial()
            return name, obs
        if last_error is None:
            last_error = UpstreamUnreachable("every candidate's circuit breaker is open")
        raise last_error

    def prepare_observation(
        self, obs: Observation, endpoint: str, variant: str, stream: bool
    ) -> None:
        """Let a `StreamMeter` read the answer as it passes (TTFT, tokens, tokens/s)."""
        meter = StreamMeter(started=time.perf_counter(), stream=stream)
        obs.meter, obs.on_chunk = meter, meter.feed

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
            }
            if variant.replicas:
                info["replicas"] = list(variant.replicas)
            if variant.description:
                info["description"] = variant.description
            if self.pins is not None and name in self.pins.states:
                pin = self.pins.states[name].as_dict()
                info["pin"] = {k: pin.get(k) for k in ("status", "reason", "expected", "observed")}
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
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        extra.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    with contextlib.suppress(OSError, RuntimeError):
        await send(
            {"type": "http.response.start", "status": status_of(exc), "headers": headers + extra}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
