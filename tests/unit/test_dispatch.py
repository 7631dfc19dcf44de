"""The attempt logic of `Dispatcher.dispatch`, against a scripted fake relay.

The fake has `Relay.run`'s signature and, per attempt, plays one scripted step:
fail before the commit (an `UpstreamError`), answer, commit and then fail
in-stream (`obs.error`), or see the client leave (`ClientGone`). Like the real
relay it runs the target's `prepare` (start the backend, take the slot) first.
What is checked is what the dispatcher owns: the order of attempts, fallback
and its headers, the breaker's verdict, in-flight counts, the concurrency
slot, and the metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest

from proxy.config import parse_config
from proxy.dispatch import Dispatcher, Outcome, header_safe
from proxy.errors import (
    ClientGone,
    UpstreamBusy,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    VersionMismatch,
)
from proxy.metrics import Metrics
from proxy.runtime import Runtime
from proxy.upstream import AttemptTarget, Headers, Observation, Send
from tests.helpers.config import make_config

URL = "http://127.0.0.1:1"

Step = Callable[[Observation, Send], Awaitable[None]]


# -- scripted steps ------------------------------------------------------------------------------


def fail(exc: UpstreamError, took: float = 0.0) -> Step:
    """Fail before anything was sent: the caller may fall back."""

    async def step(obs: Observation, send: Send) -> None:
        obs.started = time.perf_counter() - took
        obs.error = exc  # as the real relay does before re-raising
        raise exc

    return step


def answer(status: int = 200, body: bytes = b'{"ok":true}', took: float = 0.0) -> Step:
    async def step(obs: Observation, send: Send) -> None:
        now = time.perf_counter()
        obs.started, obs.first_byte, obs.last_byte = now - took, now, now
        await send({"type": "http.response.start", "status": status, "headers": []})
        obs.committed, obs.status = True, status
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return step


def fail_in_stream(exc: UpstreamError) -> Step:
    """Commit a 200 stream, send one event, then fail: reported in-stream, returns normally."""

    async def step(obs: Observation, send: Send) -> None:
        obs.started = time.perf_counter()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        obs.committed, obs.status = True, 200
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        obs.error = exc
        await send({"type": "http.response.body", "body": b"data: error\n\n", "more_body": False})

    return step


def gone() -> Step:
    async def step(obs: Observation, send: Send) -> None:
        obs.started = time.perf_counter()
        raise ClientGone

    return step


@dataclass
class Call:
    target: AttemptTarget
    content: bytes
    stream: bool
    headers: Headers

    @property
    def where(self) -> tuple[str, str]:
        return (self.target.variant, self.target.backend)

    def header(self, name: bytes) -> bytes | None:
        found = [v for k, v in self.headers if k == name]
        assert len(found) <= 1, f"{name!r} sent twice"
        return found[0] if found else None


class FakeRelay:
    """`Relay.run`'s signature; plays `steps` in order and records every call."""

    def __init__(self, *steps: Step, probe: Callable[[AttemptTarget], None] | None = None) -> None:
        self.steps = list(steps)
        self.calls: list[Call] = []
        self.probe = probe

    async def run(
        self,
        target: AttemptTarget,
        content: bytes,
        *,
        stream: bool,
        headers: Headers,
        send: Send,
        watch: asyncio.Future[Any],
        obs: Observation,
    ) -> None:
        self.calls.append(Call(target, content, stream, list(headers)))
        if target.prepare is not None:
            await target.prepare()
        if self.probe is not None:
            self.probe(target)
        assert self.steps, f"unexpected attempt on {target.variant} ({target.backend})"
        await self.steps.pop(0)(obs, send)


class Guard:
    """The pin guard's per-request surface."""

    def __init__(self, drifted: tuple[str, ...] = (), pins: dict[str, bytes] | None = None) -> None:
        self.drifted = drifted
        self.pins = pins or {}
        self.direct: list[str] = []

    def eligible(self, variant: str) -> str | None:
        return "pin drifted" if variant in self.drifted else None

    def check_direct(self, variant: str) -> None:
        self.direct.append(variant)
        if variant in self.drifted:
            raise VersionMismatch(f"variant {variant!r} drifted from its pin")

    def header(self, variant: str) -> bytes | None:
        return self.pins.get(variant)


# -- the harness ---------------------------------------------------------------------------------


def runtime() -> Runtime:
    """`make_config` (complex: ghost on the dead backend, then big on spare), plus a
    backend with one slot and no queue (`tight`) and variants replicated across backends."""
    data = make_config(URL)
    data["backends"]["tight"] = {
        "kind": "openai",
        "url": URL,
        "max_concurrency": 1,
        "max_queue": 0,
        "queue_timeout": 4,
    }
    data["variants"]["crowded"] = {"backend": "tight", "model": "up-crowded"}
    data["variants"]["pair"] = {"backend": "main", "replicas": ["spare"], "model": "up-pair"}
    data["variants"]["trio"] = {
        "backend": "main",
        "replicas": ["spare", "tight"],
        "model": "up-trio",
    }
    return Runtime(parse_config(data), "<test>", {})


@dataclass
class Harness:
    relay: FakeRelay
    guard: Guard = field(default_factory=Guard)
    rt: Runtime = field(default_factory=runtime)
    metrics: Metrics = field(default_factory=Metrics)
    outcome: Outcome = field(default_factory=Outcome)
    headers: Headers = field(default_factory=lambda: [(b"x-request-id", b"rid-1")])
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.metrics,
            cast(Any, None),  # the fake relay never touches the HTTP client
            native=None,
            managed={},
            pins=cast(Any, self.guard),
        )
        self.dispatcher.relay = lambda rt: cast(Any, self.relay)  # type: ignore[method-assign]

    def run(self, model: str, endpoint: str = "chat", **extra: Any) -> Outcome:
        field_name = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
        value: Any = [{"role": "user", "content": "hi"}] if endpoint == "chat" else "hi"
        payload = {"model": model, field_name[endpoint]: value, **extra}

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        async def main() -> None:
            # the client never leaves: a future that never completes
            watch: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            try:
                await self.dispatcher.dispatch(
                    self.rt,
                    endpoint,
                    payload,
                    orjson.dumps(payload),
                    headers=self.headers,
                    watch=watch,
                    send=send,
                    outcome=self.outcome,
                )
            finally:
                watch.cancel()

        asyncio.run(main())
        return self.outcome

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def in_flight(self, variant: str) -> float:
        return self.value("variant_proxy_in_flight_requests", variant=variant)

    def breaker(self, backend: str) -> Any:
        return self.rt.backends[backend].breaker


def open_breaker(h: Harness, backend: str, ago: float = 0.0) -> None:
    breaker = h.breaker(backend)
    for _ in range(breaker.threshold):
        breaker.failure(time.monotonic() - ago)


def half_open(h: Harness, backend: str) -> None:
    open_breaker(h, backend, ago=h.breaker(backend).cooldown + 1)
    assert h.breaker(backend).state(time.monotonic()) == "half-open"


# -- fallback ------------------------------------------------------------------------------------


def test_early_failure_falls_back_to_the_next_candidate() -> None:
    h = Harness(FakeRelay(fail(UpstreamUnreachable("refused")), answer()))
    outcome = h.run("complex")
    first, second = h.relay.calls
    assert (first.where, second.where) == (("ghost", "dead"), ("big", "spare"))
    for call in (first, second):
        assert call.header(b"x-request-id") == b"rid-1"
        assert call.header(b"x-route-class") == b"complex"
        assert call.header(b"x-route-reason") == b"client asked for class complex"
    assert first.header(b"x-route-variant") == b"ghost"
    assert first.header(b"x-route-fallback-from") is None
    assert second.header(b"x-route-variant") == b"big"
    assert second.header(b"x-route-fallback-from") == b"ghost"
    # each attempt gets the body for its own variant
    assert orjson.loads(first.content)["model"] == "up-ghost"
    assert orjson.loads(second.content)["model"] == "up-big"
    assert h.value("variant_proxy_fallbacks_total", from_variant="ghost", to_variant="big") == 1
    assert h.value("variant_proxy_upstream_errors_total", backend="dead", kind="unreachable") == 1
    assert (h.breaker("dead").failures, h.breaker("spare").failures) == (1, 0)
    assert (outcome.cls, outcome.variant, outcome.status) == ("complex", "big", 200)
    assert [m["type"] for m in h.sent] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize(
    ("error", "kind", "judged"),
    [
        (UpstreamUnreachable("refused"), "unreachable", True),
        (UpstreamTimeout("no first byte"), "timeout", True),
        (UpstreamStatusError("answered 502", upstream_status=502), "status_error", True),
        # a 500 is about the request: one alone is no verdict on a healthy backend
        (UpstreamStatusError("answered 500", upstream_status=500), "status_error", False),
        (UpstreamProtocolError("closed"), "protocol_error", True),
        # a full queue says nothing about the backend's health
        (UpstreamBusy("queue full", retry_after=1.0), "backend_busy", False),
    ],
)
def test_early_failure_kinds_and_the_breaker(error: UpstreamError, kind: str, judged: bool) -> None:
    h = Harness(FakeRelay(fail(error), answer()))
    assert h.run("complex").variant == "big"
    assert h.value("variant_proxy_upstream_errors_total", backend="dead", kind=kind) == 1
    assert h.breaker("dead").failures == (1 if judged else 0)


def test_every_attempt_failing_raises_the_last_error() -> None:
    last = UpstreamTimeout("big sent nothing")
    h = Harness(FakeRelay(fail(UpstreamUnreachable("refused")), fail(last)))
    with pytest.raises(UpstreamTimeout) as info:
        h.run("complex")
    assert info.value is last
    assert [c.where for c in h.relay.calls] == [("ghost", "dead"), ("big", "spare")]
    assert (h.breaker("dead").failures, h.breaker("spare").failures) == (1, 1)
    assert h.sent == []
    # the edge renders the error with the route headers dispatch added to its list
    assert (b"x-route-class", b"complex") in h.headers
    assert (h.outcome.cls, h.outcome.variant) == ("complex", "ghost")


def test_upstream_seconds_add_up_over_attempts() -> None:
    h = Harness(FakeRelay(fail(UpstreamUnreachable("x"), took=0.5), answer(took=0.25)))
    assert 0.75 <= h.run("complex").upstream_seconds < 0.95


# -- breakers ------------------------------------------------------------------------------------


def test_open_breaker_is_skipped_when_there_are_other_attempts() -> None:
    error = UpstreamUnreachable("spare refused")
    h = Harness(FakeRelay(fail(error)))
    open_breaker(h, "main")
    with pytest.raises(UpstreamUnreachable) as info:
        h.run("pair")  # main's breaker is open, so only spare is tried
    assert info.value is error
    assert [c.where for c in h.relay.calls] == [("pair", "spare")]


def test_every_breaker_open_is_unreachable() -> None:
    h = Harness(FakeRelay())
    open_breaker(h, "main")
    open_breaker(h, "spare")
    with pytest.raises(UpstreamUnreachable, match="every candidate's circuit breaker is open"):
        h.run("pair")
    assert h.relay.calls == []


def test_single_direct_candidate_goes_despite_an_open_breaker() -> None:
    h = Harness(FakeRelay(answer()))
    open_breaker(h, "dead")
    assert h.run("ghost").variant == "ghost"
    assert [c.where for c in h.relay.calls] == [("ghost", "dead")]
    assert h.breaker("dead").state(time.monotonic()) == "closed"  # what it found: it is back


@pytest.mark.parametrize(
    ("step", "raises", "after"),
    [
        (gone(), ClientGone, "half-open"),  # no verdict: the trial is given back
        (fail(UpstreamBusy("queue full")), UpstreamBusy, "half-open"),  # no verdict either
        (fail(UpstreamUnreachable("refused")), UpstreamUnreachable, "open"),
        (answer(), None, "closed"),
        (answer(404), None, "closed"),  # the backend's own 4xx is an answer
        (fail_in_stream(UpstreamTimeout("stalled")), None, "open"),
    ],
    ids=["client-gone", "busy", "early-failure", "answer", "answer-4xx", "in-stream-failure"],
)
def test_half_open_trial_verdicts(step: Step, raises: type[Exception] | None, after: str) -> None:
    h = Harness(FakeRelay(step))
    half_open(h, "dead")
    if raises is None:
        h.run("ghost")
    else:
        with pytest.raises(raises):
            h.run("ghost")
    breaker = h.breaker("dead")
    assert breaker.state(time.monotonic()) == after
    # released (or judged): the next request may take a trial if still half-open
    assert breaker.allow(time.monotonic()) is (after != "open")


def test_direct_request_without_the_trial_does_not_release_it() -> None:
    h = Harness(FakeRelay(gone()))
    half_open(h, "dead")
    assert h.breaker("dead").allow(time.monotonic())  # another request holds the trial
    with pytest.raises(ClientGone):
        h.run("ghost")  # a single direct candidate goes anyway, without the trial
    assert not h.breaker("dead").allow(time.monotonic())  # the trial is still out


def test_client_gone_is_counted_and_not_judged() -> None:
    h = Harness(FakeRelay(gone()))
    with pytest.raises(ClientGone):
        h.run("complex")
    assert len(h.relay.calls) == 1  # no fallback for a client who left
    assert h.value("variant_proxy_client_disconnects_total", variant="ghost") == 1
    assert h.breaker("dead").failures == 0
    assert h.in_flight("ghost") == 0
    assert h.rt.backends["dead"].in_flight == 0


# -- after the commit ----------------------------------------------------------------------------


def test_in_stream_failure_is_judged_without_fallback() -> None:
    error = UpstreamTimeout("stalled mid-stream")
    h = Harness(FakeRelay(fail_in_stream(error)))
    outcome = h.run("complex", stream=True)
    assert [c.where for c in h.relay.calls] == [("ghost", "dead")]
    assert h.relay.calls[0].stream is True
    assert h.value("variant_proxy_fallbacks_total", from_variant="ghost", to_variant="big") == 0
    assert h.breaker("dead").failures == 1
    assert h.value("variant_proxy_upstream_errors_total", backend="dead", kind="timeout") == 1
    assert (outcome.variant, outcome.status) == ("ghost", 200)
    assert outcome.obs is not None and outcome.obs.error is error
    assert h.sent[-1]["more_body"] is False


# -- success, in-flight counts and the slot -------------------------------------------------------


def test_success_judges_the_breaker_and_releases_everything() -> None:
    seen: dict[str, float] = {}
    h = Harness(FakeRelay(answer(201)), guard=Guard(pins={"crowded": b"ok"}))

    def probe(target: AttemptTarget) -> None:
        state = h.rt.backends[target.backend]
        seen.update(
            gauge=h.in_flight(target.variant),
            in_flight=state.in_flight,
            active=state.limiter.active,
        )

    h.relay.probe = probe
    h.breaker("tight").failures = 2  # two strikes, still closed
    outcome = h.run("crowded")
    assert seen == {"gauge": 1, "in_flight": 1, "active": 1}
    assert (outcome.cls, outcome.variant, outcome.status) == ("direct", "crowded", 201)
    assert outcome.obs is not None and outcome.obs.slot_acquired
    assert h.breaker("tight").failures == 0
    state = h.rt.backends["tight"]
    assert (h.in_flight("crowded"), state.in_flight, state.limiter.active) == (0, 0, 0)
    assert h.relay.calls[0].header(b"x-route-pin") == b"ok"
    assert h.value("variant_proxy_queue_wait_seconds_count", backend="tight") == 1


@pytest.mark.parametrize(
    ("step", "raises"),
    [
        (fail(UpstreamUnreachable("refused")), UpstreamUnreachable),
        (gone(), ClientGone),
        (fail_in_stream(UpstreamProtocolError("cut")), None),
    ],
    ids=["early-failure", "client-gone", "in-stream-failure"],
)
def test_slot_and_counts_released_whatever_the_end(
    step: Step, raises: type[Exception] | None
) -> None:
    h = Harness(FakeRelay(step))
    if raises is None:
        h.run("crowded")
    else:
        with pytest.raises(raises):
            h.run("crowded")
    state = h.rt.backends["tight"]
    assert (h.in_flight("crowded"), state.in_flight, state.limiter.active) == (0, 0, 0)


def test_full_backend_is_busy_and_not_judged() -> None:
    """No free slot and no queue: the slot wait (`prepare`) raises UpstreamBusy."""
    h = Harness(FakeRelay())
    h.rt.backends["tight"].limiter.active = 1
    with pytest.raises(UpstreamBusy) as info:
        h.run("crowded")
    assert info.value.retry_after == 4 / 4  # queue_timeout / 4
    assert "max_concurrency (1) and its queue is full" in info.value.message
    assert h.breaker("tight").failures == 0
    assert h.value("variant_proxy_upstream_errors_total", backend="tight", kind="backend_busy") == 1
    assert h.rt.backends["tight"].limiter.active == 1  # the slot it never got is not released


@pytest.mark.parametrize(
    ("in_flight", "busy", "order"),
    [
        ({"main": 2, "spare": 0, "tight": 1}, False, ["spare", "tight", "main"]),
        ({"main": 0, "spare": 0, "tight": 0}, False, ["main", "spare", "tight"]),  # stable
        ({"main": 2, "spare": 1, "tight": 0}, True, ["spare", "main", "tight"]),
    ],
)
def test_replicas_usable_first_then_fewest_in_flight(
    in_flight: dict[str, int], busy: bool, order: list[str]
) -> None:
    h = Harness(FakeRelay())
    for backend, n in in_flight.items():
        h.rt.backends[backend].in_flight = n
    if busy:
        h.rt.backends["tight"].limiter.active = 1  # one slot taken, no queue: busy
    # every attempt fails; a busy backend fails in prepare, before a step is played
    h.relay.steps = [fail(UpstreamUnreachable(b)) for b in order if not (busy and b == "tight")]
    with pytest.raises(UpstreamError):
        h.run("trio")
    assert [c.where[1] for c in h.relay.calls] == order
    for backend, n in in_flight.items():
        assert h.rt.backends[backend].in_flight == n


# -- pins and the decision -------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["ci", "instruct"])
def test_direct_checks_the_pin_and_409_propagates(model: str) -> None:
    h = Harness(FakeRelay(), guard=Guard(drifted=("instruct",)))
    with pytest.raises(VersionMismatch):
        h.run(model)
    assert h.guard.direct == ["instruct"]
    assert h.relay.calls == []


@pytest.mark.parametrize("model", ["auto", "instruction"])
def test_routed_requests_do_not_check_direct(model: str) -> None:
    h = Harness(FakeRelay(answer()), guard=Guard())
    h.run(model)
    assert h.guard.direct == []
    assert h.relay.calls[0].header(b"x-route-pin") is None


@pytest.mark.parametrize(
    ("model", "endpoint", "classified"),
    [
        ("auto", "chat", ("instruction", "default")),
        ("instruction", "chat", None),  # a class the client named is not a classification
        ("ci", "chat", None),
        ("auto", "embeddings", None),
    ],
)
def test_classification_metrics(
    model: str, endpoint: str, classified: tuple[str, str] | None
) -> None:
    h = Harness(FakeRelay(answer()))
    h.run(model, endpoint)
    samples = {
        (s.labels["class"], s.labels["rule"]): s.value
        for metric in h.metrics.classifications.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert samples == ({classified: 1.0} if classified else {})
    assert h.value("variant_proxy_classification_seconds_count") == 1


@pytest.mark.parametrize(
    ("endpoint", "stream", "relayed"),
    [
        ("chat", True, True),
        ("chat", False, False),
        ("completions", True, True),
        ("embeddings", True, False),  # embeddings never stream
    ],
)
def test_stream_flag(endpoint: str, stream: bool, relayed: bool) -> None:
    h = Harness(FakeRelay(answer()))
    h.run("auto", endpoint, stream=stream)
    assert h.relay.calls[0].stream is relayed


def test_reason_header_names_the_route() -> None:
    h = Harness(FakeRelay(answer()))
    h.run("ci")
    assert h.relay.calls[0].header(b"x-route-reason") == b"model 'ci' names variant instruct"


@pytest.mark.parametrize(
    ("text", "limit", "value"),
    [
        ("plain", 200, b"plain"),
        ("r\u00e9sum\u00e9\r\nx: y", 200, b"r?sum???x: y"),
        ("\x00\x7f~ ", 200, b"??~ "),
        ("abcdef", 3, b"abc"),
    ],
)
def test_header_safe(text: str, limit: int, value: bytes) -> None:
    assert header_safe(text, limit) == value


# -- record ----------------------------------------------------------------------------------------


def test_record_counts_the_request_and_the_overhead() -> None:
    h = Harness(FakeRelay())
    outcome = Outcome(cls="instruction", variant="instruct", status=200, upstream_seconds=0.75)
    h.dispatcher.record("chat", outcome, time.perf_counter() - 1.0)
    labels = {"endpoint": "chat", "class": "instruction", "variant": "instruct", "status": "200"}
    assert h.value("variant_proxy_requests_total", **labels) == 1
    assert h.value("variant_proxy_overhead_seconds_count", endpoint="chat") == 1
    assert 0.25 <= h.value("variant_proxy_overhead_seconds_sum", endpoint="chat") < 0.45
    duration = h.value(
        "variant_proxy_request_duration_seconds_sum", endpoint="chat", variant="instruct"
    )
    assert 1.0 <= duration < 1.2


def test_record_never_counts_negative_overhead() -> None:
    h = Harness(FakeRelay())
    h.dispatcher.record("chat", Outcome(status=499, upstream_seconds=5.0), time.perf_counter())
    assert h.value("variant_proxy_overhead_seconds_sum", endpoint="chat") == 0
    labels = {"endpoint": "chat", "class": "none", "variant": "none", "status": "499"}
    assert h.value("variant_proxy_requests_total", **labels) == 1


def test_record_after_dispatch() -> None:
    h = Harness(FakeRelay(fail(UpstreamUnreachable("x")), answer(took=0.2)))
    started = time.perf_counter()
    outcome = h.run("complex")
    h.dispatcher.record("chat", outcome, started)
    labels = {"endpoint": "chat", "class": "complex", "variant": "big", "status": "200"}
    assert h.value("variant_proxy_requests_total", **labels) == 1
    # the time spent waiting on backends is not the proxy's overhead
    assert h.value("variant_proxy_overhead_seconds_sum", endpoint="chat") < 0.1
