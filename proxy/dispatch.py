"""One request after the edge has read it: decide, then attempt candidates until one answers.

`Dispatcher.decide` asks the config's `Runtime` for a decision (classification
and route) with this process's live eligibility (breakers, full queues, pins)
and the benchmark ranking. `Dispatcher.dispatch` then walks the candidates,
each variant's replicas by fewest requests in flight, and runs one `Relay`
attempt per replica: an attempt that fails before its first byte falls through
to the next, and the client sees the first success or the last error.

The dispatcher owns what one attempt changes: the breaker's verdict, the
concurrency slot, in-flight counts, fallback and upstream-error metrics, and
the WARNING line every failed attempt writes (variant, backend, kind and the
log-side `detail`; a backend's own error text, which may echo the prompt, only
with `server.log_prompts`). The breaker hears *backend faults* as failures;
a 5xx other than 502/503/504 is about the request, so it counts as a fault
only while the backend's health probe fails too, and otherwise only across
`breaker.request_errors` distinct requests (`CircuitBreaker.request_failure`).
An error answer carries `x-route-variant` (and `x-route-fallback-from`) of
the last attempt, like a success. What
it needs from the long-lived service (HTTP clients, managed processes, the pin
guard, the ranking) is handed to it when it is built; it never calls back up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from . import contextwindow
from .adapt import ChatAnswerSend, ResponsesAnswerSend, UpstreamRequest
from .classify import CLASSES
from .errors import (
    BackendStartError,
    ClientGone,
    ContextLengthExceeded,
    ProxyError,
    QueueFull,
    QueueTimeout,
    UpstreamBusy,
    UpstreamError,
    UpstreamStatusError,
    UpstreamUnreachable,
    status_of,
)
from .httpclient import NativeClient
from .metrics import Metrics
from .ollamanative import NativeAnswerSend
from .pinning.guard import PinGuard
from .quirks import StreamRepair, repairs_for
from .replay import Replay, ReplayLog
from .rewrite import AnswerRewrite, Shown
from .routing import Decision, Eligibility, Ranker
from .runtime import BackendState, Runtime
from .sticky import TaskMemory
from .streammeter import StreamMeter, StreamStats, observe
from .supervisor import ManagedProcess
from .swapper import Swapper
from .upstream import AttemptTarget, Headers, Observation, Relay, Send
from .warmth import note, prefer_warm

__all__ = ["Dispatcher", "Outcome", "backend_usable", "header_safe"]

log = logging.getLogger("variant_proxy")


@dataclass(slots=True)
class Outcome:
    """What one request did, for the edge's request metrics and the status page."""

    cls: str = "none"
    variant: str = "none"
    status: int = 500
    #: seconds spent waiting on backends, over every attempt
    upstream_seconds: float = 0.0
    obs: Observation | None = None
    #: the classifier rule (or `model`) that decided, and its reason
    rule: str = "none"
    reason: str = ""
    #: the variants attempted, in order (more than one: a fallback)
    tried: list[str] = field(default_factory=list)
    #: set by `Dispatcher.record`: the whole request's seconds and what the meter read
    duration: float = 0.0
    stats: StreamStats | None = None


@dataclass(slots=True)
class _Attempt:
    variant: str
    backend: str


def header_safe(text: str, limit: int = 200) -> bytes:
    """`text` as a printable-ASCII header value, cut to `limit` characters."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean[:limit].encode("ascii")


def _reply(
    send: Send,
    upstream: UpstreamRequest,
    payload: Mapping[str, Any],
    obs: Observation,
    shown: Shown | None = None,
) -> Send:
    """The `send` the relay writes to: the client's, or one that converts the answer on
    its way. A chat request a base model served goes back in chat's shape; a Responses
    request served as chat in the Responses shape (both may apply, stacked), labelled with
    `shown` on the chat answer it is made from; Ollama's native answer in OpenAI's shape
    (the meter then reads the translated stream, not the backend's NDJSON)."""
    reply = send
    if upstream.responses == "translated":
        if shown is None:
            reply = ResponsesAnswerSend(send, payload)
        else:  # the variant from the first event on (`response.created` echoes the request)
            reply = ResponsesAnswerSend(send, {**payload, "model": shown.variant})
            reply = AnswerRewrite(reply, repair=None, shown=shown)
    if upstream.adaptation == "transcript":
        reply = ChatAnswerSend(reply)
    elif upstream.adaptation == "ollama-native":
        options = payload.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        meter, obs.on_chunk = obs.on_chunk, None
        reply = NativeAnswerSend(reply, include_usage=usage, meter=meter)
    return reply


def _kind(exc: ProxyError) -> str:
    return exc.code.removeprefix("upstream_")


#: upstream statuses that say the backend (or what stands in front of it) is down
_BACKEND_DOWN = frozenset((502, 503, 504))


def _log_text(exc: ProxyError, log_prompts: bool) -> str:
    """What the log says about an error: never a backend's own words unless log_prompts."""
    if not isinstance(exc, UpstreamError):
        return exc.message
    return exc.message if log_prompts else exc.detail


def backend_usable(rt: Runtime, name: str, now: float) -> str | None:
    """None if backend `name` can take a request now, else why not."""
    state = rt.backends.get(name)
    if state is None:
        return "unknown backend"
    if not state.breaker.available(now):
        return f"backend {name} {state.breaker.describe()}"
    if state.limiter.busy():
        return f"backend {name} busy (queue full)"
    return None


def _judge(state: BackendState, exc: UpstreamError, content: bytes) -> bool:
    """Tell the backend's breaker about a failed attempt; True if that was a verdict."""
    breaker, now = state.breaker, time.monotonic()
    request_specific = (
        isinstance(exc, UpstreamStatusError) and exc.upstream_status not in _BACKEND_DOWN
    )
    health_failing = state.health is not None and not state.health.ok
    if request_specific and not health_failing:
        breaker.request_failure(now, hash(content), exc.summary)
        return breaker.state(now) != "half-open"  # a trial it answered is no verdict
    breaker.failure(now, exc.summary)
    return True


class Dispatcher:
    """Decides and relays requests; built once per started service."""

    def __init__(
        self,
        metrics: Metrics,
        client: httpx.AsyncClient,
        *,
        native: NativeClient | None,
        managed: Mapping[str, ManagedProcess],
        pins: PinGuard,
        rank: Ranker | None = None,
        memory: TaskMemory | None = None,
        swapper: Swapper | None = None,
    ) -> None:
        self.metrics = metrics
        self.client = client
        self.native = native
        self.managed = managed
        self.pins = pins
        self.rank = rank
        #: task stickiness, kept across reloads (its bounds follow the running config)
        self.memory = memory or TaskMemory()
        #: recent decisions by replay id, for `GET /route/explain/{replay_id}`
        self.replays = ReplayLog()
        #: loads managed backends within their groups; knows what is warm
        self.swapper = swapper or Swapper(None, managed, metrics, in_flight=lambda _: 0)

    # -- deciding -----------------------------------------------------------------------------

    def eligibility(self, rt: Runtime) -> Eligibility:
        """None when a variant may serve, else why not. Bound to `rt` so a reload
        mid-request can't mix two configs."""

        def eligible(variant: str) -> str | None:
            why = self.pins.eligible(variant)
            if why is not None:
                return why
            now = time.monotonic()
            reasons = [backend_usable(rt, b, now) for b in rt.cfg.variants[variant].backends]
            if all(r is not None for r in reasons):
                return "; ".join(r for r in reasons if r)
            return None

        return eligible

    def decide(
        self,
        rt: Runtime,
        endpoint: str,
        payload: Mapping[str, Any],
        *,
        learn: bool = True,
        counted: tuple[int, str] | None = None,
    ) -> Decision:
        """The routing decision for one parsed request; `learn=False` (an explanation)
        reads the task memory without changing it."""
        sticky = rt.cfg.classifier.stickiness
        self.memory.max_tasks, self.memory.ttl = sticky.max_tasks, sticky.ttl_seconds
        decision = rt.decide(
            endpoint,
            payload,
            self.eligibility(rt),
            self.rank,
            self.memory,
            learn=learn,
            counted=counted,
        )
        budget = rt.cfg.routes.max_cold_start.get(decision.cls)
        if budget is None or decision.cls == "direct":
            return decision
        # warm-aware routing (proxy.warmth): skip what would load too long for the class
        kept, skipped = prefer_warm(
            decision.candidates,
            budget,
            lambda v: self.swapper.variant_warmth(rt.cfg.variants[v]),
        )
        if not skipped:
            return decision
        return replace(
            decision,
            variant=kept[0],
            candidates=tuple(kept),
            skipped={**decision.skipped, **skipped},
            reason=f"{decision.reason}; {note(skipped)}",
            applied=rt.applied(kept[0], endpoint, payload, decision.prompt_fim),
        )

    async def decide_counted(
        self, rt: Runtime, endpoint: str, payload: Mapping[str, Any], *, learn: bool = True
    ) -> Decision:
        """`decide`, then, when the estimated prompt is close to a window that mattered and
        a llama-server serves one of those variants, again with its `/tokenize` count."""
        try:
            decision = self.decide(rt, endpoint, payload, learn=learn)
        except ContextLengthExceeded as exc:
            counted = await self._count(rt, payload, exc.variants, exc.extra)
            if counted is None:
                raise
            # the first decide has already learned the task's class
            return self.decide(rt, endpoint, payload, learn=False, counted=counted)
        context = decision.context
        if context is None or context.get("counted_by") != "estimate":
            return decision
        windows = {k: v["tokens"] for k, v in context["windows"].items()}
        facts = {"prompt_tokens": context["prompt_tokens"], "windows": windows}
        counted = await self._count(rt, payload, tuple(windows), facts)
        if counted is None:
            return decision
        return self.decide(rt, endpoint, payload, learn=False, counted=counted)

    async def _count(
        self,
        rt: Runtime,
        payload: Mapping[str, Any],
        variants: tuple[str, ...],
        facts: Mapping[str, Any],
    ) -> tuple[int, str] | None:
        """The prompt's tokens by a healthy llama-server serving one of `variants`, when
        the estimate in `facts` is close enough to a window for the count to matter."""
        windows = facts.get("windows") or {"": facts.get("context_window", 0)}
        max_tokens = payload.get("max_tokens")
        reserve = max_tokens if isinstance(max_tokens, int) else None
        if not contextwindow.borderline(int(facts["prompt_tokens"]), windows.values(), reserve):
            return None
        for variant in variants:
            for backend in rt.cfg.variants[variant].backends:
                state = rt.backends[backend]
                if rt.cfg.backends[backend].kind != "llamacpp" or not state.windows:
                    continue
                if state.health is None or not state.health.ok:
                    continue
                tokens = await contextwindow.count(
                    self.client, rt.urls[backend], rt.headers[backend], payload
                )
                if tokens is not None:
                    return tokens, f"llama-server /tokenize ({backend})"
        return None

    def _replicas(self, rt: Runtime, variant: str) -> list[str]:
        """The variant's backends, usable ones first, by fewest requests in flight."""
        names = list(rt.cfg.variants[variant].backends)
        if len(names) == 1:
            return names
        now = time.monotonic()

        def key(b: str) -> tuple[bool, int]:
            return (backend_usable(rt, b, now) is not None, rt.backends[b].in_flight)

        return sorted(names, key=key)

    def relay(self, rt: Runtime) -> Relay:
        """The relay for one request under `rt`'s server settings."""
        return Relay(
            self.client,
            native=self.native,
            keepalive_after=rt.cfg.server.keepalive_after,
            keepalive_interval=rt.cfg.server.keepalive_interval,
            max_response_bytes=rt.cfg.server.max_response_bytes,
            expose_errors=rt.cfg.server.expose_upstream_errors,
        )

    # -- one request ----------------------------------------------------------------------------

    async def dispatch(
        self,
        rt: Runtime,
        endpoint: str,
        payload: dict[str, Any],
        raw: bytes,
        *,
        headers: Headers,
        watch: asyncio.Future[Any],
        send: Send,
        outcome: Outcome,
    ) -> None:
        """Decide, then relay to the first candidate that answers. Fills `outcome`."""
        t0 = time.perf_counter()
        decision = await self.decide_counted(rt, endpoint, payload)
        self.metrics.classification_seconds.observe(time.perf_counter() - t0)
        if decision.cls in CLASSES and decision.rule != "model":
            self.metrics.classifications.labels(decision.cls, decision.rule).inc()
        # before the pin check, so a 409 is counted (and shown) against the variant asked for
        outcome.cls, outcome.variant = decision.cls, decision.candidates[0]
        outcome.rule, outcome.reason = decision.rule, decision.reason
        if decision.cls == "direct":
            self.pins.check_direct(decision.candidates[0])
        headers += [
            (b"x-route-class", decision.cls.encode()),
            (b"x-route-reason", header_safe(decision.reason)),
        ]
        replay: Replay | None = None
        replay_id: str | None = None
        if rt.cfg.server.replay_size > 0:
            replay_id, replay = self.replays.new_id(), Replay(endpoint, decision)
            self.replays.size = rt.cfg.server.replay_size
            self.replays.add(replay_id, replay)
            headers.append((b"x-route-replay", replay_id.encode()))
        stream = bool(payload.get("stream", False)) and endpoint != "embeddings"
        try:
            await self._attempts(
                rt,
                endpoint,
                decision,
                payload,
                raw,
                stream,
                headers,
                send,
                watch,
                outcome,
                replay_id,
            )
        except ProxyError as exc:
            if replay is not None:
                replay.served_by, replay.status = None, status_of(exc)
            raise
        except ClientGone:
            if replay is not None:
                replay.served_by, replay.status = outcome.variant, 499
            raise
        if replay is not None:
            replay.served_by, replay.status = outcome.variant, outcome.status

    def _labelled(
        self,
        rt: Runtime,
        endpoint: str,
        attempt: _Attempt,
        decision: Decision,
        stream: bool,
        send: Send,
        replay_id: str | None,
    ) -> Send:
        """The `send` one attempt's answer goes through: as it is, or repaired (a backend
        with a known quirk, `proxy.quirks`) and labelled (`server.show_variant`). A
        Responses answer is labelled in `_reply`, on the chat answer it is made from."""
        if endpoint not in ("chat", "completions"):
            return send  # embeddings; a Responses answer has its own shape
        server = rt.cfg.server
        repairs: frozenset[str] = frozenset()
        if stream and endpoint == "chat" and "all" not in server.repairs_off:
            kind = rt.cfg.backends[attempt.backend].kind
            version = rt.backends[attempt.backend].version
            repairs = repairs_for(kind, version, frozenset(server.repairs_off))
        shown = self._shown(rt, attempt, decision, replay_id)
        if not repairs and shown is None:
            return send
        repair = StreamRepair(repairs) if repairs else None
        return AnswerRewrite(send, repair=repair, shown=shown)

    @staticmethod
    def _shown(
        rt: Runtime, attempt: _Attempt, decision: Decision, replay_id: str | None
    ) -> Shown | None:
        """What the answer says about the routing (`server.show_variant`), if anything."""
        mode = rt.cfg.server.show_variant
        if mode == "always" or (mode == "auto" and decision.cls != "direct"):
            return Shown(attempt.variant, decision.cls, replay_id)
        return None

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
        outcome: Outcome,
        replay_id: str | None = None,
    ) -> None:
        relay = self.relay(rt)
        attempts = [_Attempt(v, b) for v in decision.candidates for b in self._replicas(rt, v)]
        first = attempts[0].variant
        last_error: UpstreamError | None = None
        tried: Headers = []
        previous: str | None = None
        for attempt in attempts:
            name = attempt.variant
            breaker = rt.backends[attempt.backend].breaker
            now = time.monotonic()
            half_open = breaker.state(now) == "half-open"
            # A half-open breaker lets one trial through; a request that names its variant
            # directly (a single candidate) goes anyway and reports what it finds.
            allowed = breaker.allow(now)
            if not allowed and len(attempts) > 1:
                continue
            # only the attempt that took the trial may give it back
            trial = half_open and allowed
            if previous is not None and previous != name:
                self.metrics.fallbacks.labels(previous, name).inc()
            if previous != name:
                outcome.tried.append(name)
            previous = name
            attempt_headers = self._route_headers(headers, name, first)
            upstream = rt.upstream_for(
                name, endpoint, payload, raw, decision.prompt_fim, attempt.backend, decision.chat
            )
            attempt_headers += upstream.headers()
            tried = attempt_headers[len(headers) :]
            obs = Observation()
            meter = StreamMeter(started=time.perf_counter(), stream=stream)
            obs.meter, obs.on_chunk = meter, meter.feed
            target = self._target(rt, attempt, upstream.path, obs)
            content = upstream.body
            labelled = self._labelled(rt, endpoint, attempt, decision, stream, send, replay_id)
            shown = self._shown(rt, attempt, decision, replay_id) if upstream.responses else None
            reply = _reply(labelled, upstream, payload, obs, shown)
            try:
                await self._attempt(
                    relay,
                    rt,
                    target,
                    content,
                    stream,
                    attempt_headers,
                    reply,
                    watch,
                    obs,
                    trial,
                    outcome,
                )
            except UpstreamError as exc:
                last_error = exc
                continue
            outcome.variant, outcome.obs = name, obs
            outcome.status = obs.status or 200
            self.swapper.note_served(attempt.backend, rt.cfg.variants[name].model)
            return
        if last_error is None:
            why = "; ".join(
                f"backend {a.backend} {rt.backends[a.backend].breaker.describe()}" for a in attempts
            )
            last_error = UpstreamUnreachable(f"every candidate's circuit breaker is open: {why}")
        # the error answer says which variant failed, as a success would
        headers += tried
        raise last_error

    def _route_headers(self, headers: Headers, name: str, first: str) -> Headers:
        """`headers` and the routing headers of an attempt on variant `name`."""
        out = headers + [(b"x-route-variant", name.encode())]
        pin = self.pins.header(name)
        if pin is not None:
            out.append((b"x-route-pin", pin))
        if name != first:
            out.append((b"x-route-fallback-from", first.encode()))
        return out

    async def _attempt(
        self,
        relay: Relay,
        rt: Runtime,
        target: AttemptTarget,
        content: bytes,
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
        obs: Observation,
        trial: bool,
        outcome: Outcome,
    ) -> None:
        """One relay attempt and its bookkeeping: in-flight counts, the slot, the breaker."""
        name, backend = target.variant, target.backend
        state = rt.backends[backend]
        breaker = state.breaker
        log_prompts = rt.cfg.server.log_prompts
        judged = early = False
        gauge = self.metrics.in_flight.labels(name)
        gauge.inc()
        state.in_flight += 1
        try:
            await relay.run(
                target, content, stream=stream, headers=headers, send=send, watch=watch, obs=obs
            )
        except UpstreamError as exc:
            early = True
            self.metrics.upstream_errors.labels(backend, _kind(exc)).inc()
            if not isinstance(exc, UpstreamBusy):
                judged = _judge(state, exc, content)
            log.warning(
                "variant %s (%s) failed before its first byte: %s: %s",
                name,
                backend,
                _kind(exc),
                _log_text(exc, log_prompts),
            )
            raise
        except ClientGone:
            self.metrics.client_disconnects.labels(name).inc()
            raise
        finally:
            gauge.dec()
            if obs.started:
                outcome.upstream_seconds += (obs.last_byte or time.perf_counter()) - obs.started
            state.in_flight -= 1
            if obs.slot_acquired:
                state.limiter.release()
            if early:
                pass  # failed before the first byte: judged above
            elif isinstance(obs.error, UpstreamError):  # reported in-stream after the commit
                self.metrics.upstream_errors.labels(backend, _kind(obs.error)).inc()
                judged = _judge(state, obs.error, content)
                log.warning(
                    "variant %s (%s) failed mid-stream after %d bytes: %s: %s",
                    name,
                    backend,
                    obs.nbytes,
                    _kind(obs.error),
                    _log_text(obs.error, log_prompts),
                )
            elif obs.error is not None:  # cut by the shutdown drain: not the backend's fault
                log.warning("variant %s (%s) cut at shutdown: %s", name, backend, obs.error.message)
            elif obs.status is not None and obs.status < 500:
                breaker.success()
                judged = True
            if trial and not judged:
                # the trial ended without a verdict (client gone, queue full): give it back
                breaker.release_trial()

    def _target(self, rt: Runtime, attempt: _Attempt, path: str, obs: Observation) -> AttemptTarget:
        backend = rt.cfg.backends[attempt.backend]
        state = rt.backends[attempt.backend]
        proc = self.managed.get(attempt.backend)
        needs_slot = state.limiter.max_concurrency is not None
        metrics, swapper = self.metrics, self.swapper

        async def prepare() -> None:
            if proc is not None:
                proc.touch()
                if swapper.needs_work(attempt.backend):
                    try:
                        # starts it, first stopping idle members of its group if needed
                        await swapper.ensure(attempt.backend, backend.queue_timeout)
                    except BackendStartError as exc:
                        raise UpstreamUnreachable(str(exc)) from exc
            if needs_slot:
                waited = time.perf_counter()
                metrics.queue_depth.labels(attempt.backend).set(state.limiter.queued + 1)
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
                    metrics.queue_depth.labels(attempt.backend).set(state.limiter.queued)
                obs.slot_acquired = True
                metrics.queue_wait.labels(attempt.backend).observe(time.perf_counter() - waited)

        return AttemptTarget(
            backend=attempt.backend,
            variant=attempt.variant,
            url=rt.urls[attempt.backend] + path,
            headers=rt.headers[attempt.backend],
            timeouts=rt.timeouts(attempt.variant, attempt.backend),
            prepare=prepare if (needs_slot or proc is not None) else None,
        )

    def record(self, endpoint: str, outcome: Outcome, started: float) -> None:
        """The request's metrics: overhead, count, duration, and what the meter read
        (the duration and the meter's reading are kept in `outcome` for the status page)."""
        elapsed = outcome.duration = time.perf_counter() - started
        metrics = self.metrics
        metrics.overhead.labels(endpoint).observe(max(0.0, elapsed - outcome.upstream_seconds))
        metrics.requests.labels(endpoint, outcome.cls, outcome.variant, str(outcome.status)).inc()
        metrics.request_duration.labels(endpoint, outcome.variant).observe(elapsed)
        obs = outcome.obs
        if obs is not None and obs.meter is not None:
            obs.meter.started = started
            outcome.stats = stats = obs.meter.result()
            observe(metrics, endpoint, outcome.variant, stats)
