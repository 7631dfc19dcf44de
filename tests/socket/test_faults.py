"""Faults on real sockets: what a client sees when a model server misbehaves.

The proxy runs in-process under uvicorn (in a thread) in front of
`FaultyUpstream`s, each on its own loopback port. `flaky` is the backend
under test, `steady` a well-behaved fallback. Before the first byte reaches
the client a failure falls back to the next candidate; after it, the stream
ends with an SSE error event. Then: circuit breaker, queueing, replicas,
and that nothing leaks (connections, tasks, file descriptors).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from proxy.app import create_app
from proxy.service import Proxy
from tests.helpers.config import write_config
from tests.helpers.fakeupstream import run_server
from tests.helpers.faultyupstream import FaultyUpstream, LoopCapture, closed_port

# -- harness ----------------------------------------------------------------------------------


@dataclass
class Harness:
    url: str
    proxy: Proxy
    app: LoopCapture

    def status(self, backend: str) -> dict[str, Any]:
        return dict(self.proxy.backend_status()[backend])


@contextlib.contextmanager
def running(tmp_path: Path, cfg: dict[str, Any]) -> Iterator[Harness]:
    app = create_app(write_config(tmp_path, cfg))
    capture = LoopCapture(app)
    with run_server(capture) as url:
        yield Harness(url, app.state.proxy, capture)


def config(
    flaky: str,
    steady: str,
    *,
    flaky_backend: dict[str, Any] | None = None,
    **server: Any,
) -> dict[str, Any]:
    """`complex` tries flaky then steady; `instruction` (and `flaky`) has no fallback."""
    return {
        "server": {
            "keepalive_after": 30,
            "health_interval": 3600,
            "watch_config": False,
            "breaker": {"failures": 1000, "cooldown": 60},
            **server,
        },
        "backends": {
            "flaky": {
                "kind": "openai",
                "url": flaky,
                "timeouts": {"connect": 1, "first_byte": 1, "idle": 0.5},
                **(flaky_backend or {}),
            },
            "steady": {"kind": "openai", "url": steady},
        },
        "variants": {
            "flaky": {"backend": "flaky", "model": "up-flaky"},
            "steady": {"backend": "steady", "model": "up-steady"},
        },
        "routes": {
            "complex": ["flaky", "steady"],
            "instruction": ["flaky"],
            "default": "flaky",
        },
    }


def chat(model: str, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **extra,
    }


def post(url: str, body: dict[str, Any], timeout: float = 15) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=timeout)


def events(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [
        block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")
    ]


def assert_openai_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code", "param"}
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    return dict(err)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def steady_server() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


@pytest.fixture
def steady(steady_server: FaultyUpstream) -> FaultyUpstream:
    steady_server.reset_stats()
    return steady_server


@pytest.fixture
def flaky() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


# fault name → (server mode, options); "refused" is a port nothing listens on
FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "refused": ("refused", {}),
    "reset_before_headers": ("reset_before_headers", {}),
    "close_before_headers": ("close_before_headers", {}),
    "500": ("status", {"status": 500}),
    "502": ("status", {"status": 502}),
    "503": ("status", {"status": 503}),
    "slow_first_byte": ("slow_first_byte", {"delay": 10}),
}


def flaky_url(flaky: FaultyUpstream, fault: str) -> str:
    mode, options = FAULTS[fault]
    if mode == "refused":
        return f"http://127.0.0.1:{closed_port()}"
    flaky.mode, flaky.options = mode, options
    return flaky.url


# -- before the first byte: fall back --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_before_first_byte_falls_back(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, fault: str, stream: bool
) -> None:
    with running(tmp_path, config(flaky_url(flaky, fault), steady.url)) as h:
        started = time.monotonic()
        r = post(h.url, chat("complex", stream))
        elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.headers["x-route-variant"] == "steady"
    assert r.headers["x-route-fallback-from"] == "flaky"
    if stream:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert events(r.text)[-1] == "[DONE]"
        # the class was asked for, so the answer names the variant that served it
        # (server.show_variant: auto), in every chunk
        assert json.loads(events(r.text)[0])["model"] == "steady"
    else:
        assert r.json()["choices"][0]["message"]["content"] == "hello from the faulty upstream"
    if fault != "refused":
        # sent once, even when the connection was lost before an answer: the server may
        # have run it (issue 16, finding 11); then the fallback
        assert [h.body["model"] for h in flaky.posts()] == ["up-flaky"]
    # a slow first byte costs timeouts.first_byte (1 s), never the upstream's 10 s delay
    assert elapsed < (4 if fault == "slow_first_byte" else 2)


def test_oversized_answer_falls_back(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "huge", {"size": 20_000}
    with running(tmp_path, config(flaky.url, steady.url, max_response_bytes=4096)) as h:
        r = post(h.url, chat("complex"))
    assert r.status_code == 200
    assert r.headers["x-route-fallback-from"] == "flaky"


# -- no fallback left: a clean OpenAI error --------------------------------------------------

NO_FALLBACK = [
    ("refused", 502, "upstream_unreachable", "unreachable"),
    ("500", 502, "upstream_status_error", "faulty upstream says 500"),
    ("502", 502, "upstream_status_error", "faulty upstream says 502"),
    ("503", 502, "upstream_status_error", "faulty upstream says 503"),
    ("slow_first_byte", 504, "upstream_timeout", "timeouts.first_byte"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("fault", "status", "code", "says"), NO_FALLBACK)
def test_fault_without_fallback_is_an_openai_error(
    tmp_path: Path,
    flaky: FaultyUpstream,
    steady: FaultyUpstream,
    fault: str,
    status: int,
    code: str,
    says: str,
    stream: bool,
) -> None:
    with running(tmp_path, config(flaky_url(flaky, fault), steady.url)) as h:
        r = post(h.url, chat("instruction", stream))
    err = assert_openai_error(r, status, code)
    assert says in err["message"]
    assert r.headers["x-route-class"] == "instruction" and r.headers["x-request-id"]
    assert "x-route-fallback-from" not in r.headers
    assert steady.url not in r.text


@pytest.mark.parametrize("fault", ["reset_before_headers", "close_before_headers"])
def test_connection_lost_before_headers_is_a_502(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, fault: str
) -> None:
    with running(tmp_path, config(flaky_url(flaky, fault), steady.url)) as h:
        r = post(h.url, chat("instruction"))
    assert r.status_code == 502
    assert r.json()["error"]["code"] in ("upstream_unreachable", "upstream_protocol_error")


def test_reset_before_headers_has_the_documented_code(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    with running(tmp_path, config(flaky_url(flaky, "reset_before_headers"), steady.url)) as h:
        r = post(h.url, chat("instruction"))
    assert_openai_error(r, 502, "upstream_protocol_error")


def test_oversized_answer_is_a_protocol_error(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "huge", {"size": 20_000}
    with running(tmp_path, config(flaky.url, steady.url, max_response_bytes=4096)) as h:
        r = post(h.url, chat("instruction"))
        assert h.status("flaky")["in_flight"] == 0
    err = assert_openai_error(r, 502, "upstream_protocol_error")
    assert "max_response_bytes" in err["message"]
    assert len(r.content) < 1000
    wait_for(lambda: flaky.open_connections == 0)


# -- after the first byte: an SSE error event ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code", "says"),
    [
        ("reset_mid_stream", "upstream_protocol_error", "mid-stream"),
        ("stall", "upstream_timeout", "timeouts.idle"),
    ],
)
def test_failure_after_first_byte_ends_with_an_error_event(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, mode: str, code: str, says: str
) -> None:
    flaky.mode, flaky.options = mode, {"after": 2, "stall": 10}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        started = time.monotonic()
        r = post(h.url, chat("complex", True))
        elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "x-route-fallback-from" not in r.headers  # too late to fall back
    data = events(r.text)
    assert [json.loads(d)["choices"][0]["delta"]["content"] for d in data[:2]] == ["tok0 ", "tok1 "]
    assert len(data) == 3 and "[DONE]" not in data
    err = json.loads(data[-1])["error"]
    assert err["code"] == code and says in err["message"]
    assert r.text.endswith("\n\n")
    assert steady.posts() == []
    assert elapsed < 5
    if mode == "stall":
        wait_for(lambda: flaky.posts()[0].outcome == "client-closed")


def test_mid_stream_failure_reaches_the_openai_sdk_as_api_error(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "reset_mid_stream", {"after": 3}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        client = openai.OpenAI(base_url=h.url + "/v1", api_key="x", max_retries=0, timeout=10)
        stream = client.chat.completions.create(
            model="flaky", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        got: list[str] = []
        with pytest.raises(openai.APIError) as info:
            for chunk in stream:
                got.append(chunk.choices[0].delta.content or "")
        client.close()
    assert got == ["tok0 ", "tok1 ", "tok2 "]
    assert "closed the connection mid-stream" in str(info.value.message)


def test_stream_committed_by_keepalives_reports_first_byte_timeout_in_stream(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "slow_first_byte", {"delay": 10}
    cfg = config(flaky.url, steady.url, keepalive_after=0.2, keepalive_interval=0.2)
    with running(tmp_path, cfg) as h:
        r = post(h.url, chat("complex", True))
    assert r.status_code == 200
    assert r.text.startswith(": keep-alive\n\n")
    err = json.loads(events(r.text)[-1])["error"]
    assert err["code"] == "upstream_timeout" and "timeouts.first_byte" in err["message"]
    assert steady.posts() == []


def test_total_timeout_mid_stream(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"chunks": 50, "chunk_delay": 0.1}
    backend = {"timeouts": {"first_byte": 5, "idle": 2, "total": 0.8}}
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        r = post(h.url, chat("flaky", True))
    data = events(r.text)
    assert 3 <= len(data) < 50
    err = json.loads(data[-1])["error"]
    assert err["code"] == "upstream_timeout" and "timeouts.total" in err["message"]


def test_per_variant_timeout_override(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "slow_first_byte", {"delay": 0.6}
    cfg = config(flaky.url, steady.url)
    cfg["variants"]["patient"] = {
        "backend": "flaky",
        "model": "up-patient",
        "timeouts": {"first_byte": 5},
    }
    with running(tmp_path, cfg) as h:
        assert post(h.url, chat("patient")).status_code == 200
        flaky.options = {"delay": 1.5}
        assert post(h.url, chat("flaky")).status_code == 504  # the backend's first_byte: 1


# -- answers that are not what was asked for -------------------------------------------------


def test_malformed_sse_is_relayed_unchanged(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode = "malformed_sse"
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, chat("flaky", True))
        assert h.status("flaky")["in_flight"] == 0
        after = post(h.url, chat("flaky", fault={"mode": "ok"}))
    assert r.status_code == 200
    garbage = b"\x00\xff\xfegarbagedata: {not json\r\r\rdata:"
    assert r.content.startswith(garbage)
    # relayed unchanged, then flagged: it never said [DONE] (issue 16, finding 10)
    assert json.loads(events(r.content[len(garbage) :].decode())[-1])["error"]["code"] == (
        "upstream_protocol_error"
    )
    assert after.status_code == 200


def test_wrong_content_type_keeps_its_label(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    """An HTML page for a stream request is relayed as text/html, never relabelled as SSE."""
    flaky.mode = "html"
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, chat("flaky", True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert b"<h1>It works!</h1>" in r.content


# -- busy: max_concurrency + max_queue -------------------------------------------------------


def _in_background(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def test_busy_backend_gives_503(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"first_delay": 0.8}
    backend = {"max_concurrency": 1, "max_queue": 0}
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        thread, out = _in_background(lambda: post(h.url, chat("instruction")))
        wait_for(lambda: h.status("flaky")["in_flight"] == 1)
        r = post(h.url, chat("instruction"))
        # a route with another candidate skips the busy backend without trying it
        spill = post(h.url, chat("complex"))
        thread.join(5)
    assert r.status_code == 503
    assert r.json()["error"]["type"] and r.json()["error"]["message"]
    assert out[0].status_code == 200
    assert spill.status_code == 200 and spill.headers["x-route-variant"] == "steady"
    assert len(flaky.posts()) == 1


def test_busy_backend_503_carries_retry_after(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"first_delay": 0.8}
    backend = {"max_concurrency": 1, "max_queue": 0}
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        thread, _ = _in_background(lambda: post(h.url, chat("instruction")))
        wait_for(lambda: h.status("flaky")["in_flight"] == 1)
        r = post(h.url, chat("instruction"))
        thread.join(5)
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1


def test_queue_timeout_gives_503_with_retry_after(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"first_delay": 0.8}
    backend = {"max_concurrency": 1, "max_queue": 4, "queue_timeout": 0.3}
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        thread, out = _in_background(lambda: post(h.url, chat("flaky")))
        wait_for(lambda: h.status("flaky")["in_flight"] == 1)
        r = post(h.url, chat("flaky"))
        thread.join(5)
        status = h.status("flaky")
    err = assert_openai_error(r, 503, "backend_busy")
    assert "queue_timeout" in err["message"]
    assert int(r.headers["retry-after"]) >= 1
    assert out[0].status_code == 200
    assert status["queued"] == 0 and status["in_flight"] == 0
    assert status["breaker"] == "closed" and status["consecutive_failures"] == 0


def test_queue_serves_one_at_a_time_in_fifo_order(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"first_delay": 0.15}
    backend = {"max_concurrency": 1, "max_queue": 16}
    n = 6
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        threads, outs = [], []
        depths: list[int] = []
        for i in range(n):
            t, out = _in_background(lambda i=i: post(h.url, chat("flaky", seq=i)))
            threads.append(t)
            outs.append(out)
            # the next request arrives only once this one is running or queued
            wait_for(lambda i=i: h.status("flaky")["in_flight"] + sum(map(len, outs)) == i + 1)
            depths.append(h.status("flaky")["queued"])
        listed = httpx.get(h.url + "/backends", timeout=5).json()["backends"]["flaky"]
        for t in threads:
            t.join(10)
        final = h.status("flaky")
    assert all(out[0].status_code == 200 for out in outs)
    assert [hit.body["seq"] for hit in flaky.posts()] == list(range(n))
    assert flaky.max_active == 1
    assert max(depths) >= 3
    assert listed["max_concurrency"] == 1 and listed["queued"] >= 1
    assert final["queued"] == 0 and final["in_flight"] == 0


# -- replicas --------------------------------------------------------------------------------


def test_replicas_spread_concurrent_requests_by_fewest_in_flight(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        ups = [stack.enter_context(FaultyUpstream("ok", {"first_delay": 0.6})) for _ in range(3)]
        cfg: dict[str, Any] = {
            "server": {"health_interval": 3600, "watch_config": False},
            "backends": {f"r{i}": {"kind": "openai", "url": up.url} for i, up in enumerate(ups)},
            "variants": {"pool": {"backend": "r0", "replicas": ["r1", "r2"], "model": "up-pool"}},
            "routes": {"default": "pool"},
        }
        h = stack.enter_context(running(tmp_path, cfg))
        with ThreadPoolExecutor(6) as pool:
            futures = []
            for i in range(6):
                futures.append(pool.submit(post, h.url, chat("pool")))
                wait_for(lambda i=i: sum(up.active for up in ups) == i + 1)
            peak = [up.active for up in ups]
            results = [f.result() for f in futures]
        assert all(r.status_code == 200 for r in results)
        assert peak == [2, 2, 2]
        assert [len(up.posts()) for up in ups] == [2, 2, 2]
        assert {r.headers["x-route-variant"] for r in results} == {"pool"}
        assert all(s["in_flight"] == 0 for s in h.proxy.backend_status().values())


def test_replica_failure_falls_back_to_the_next_replica(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 503}
    cfg = config(flaky.url, steady.url)
    cfg["variants"]["flaky"]["replicas"] = ["steady"]
    with running(tmp_path, cfg) as h:
        r = post(h.url, chat("flaky"))
    assert r.status_code == 200
    assert r.headers["x-route-variant"] == "flaky"
    assert r.json()["model"] == "up-flaky"  # same model id, other server
    assert len(flaky.posts()) == 1


# -- circuit breaker -------------------------------------------------------------------------


def breaker_config(flaky: FaultyUpstream, steady: FaultyUpstream, cooldown: float) -> Any:
    return config(flaky.url, steady.url, breaker={"failures": 2, "cooldown": cooldown})


def test_breaker_opens_and_routes_skip_the_backend_without_trying(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 503}
    with running(tmp_path, breaker_config(flaky, steady, cooldown=60)) as h:
        for _ in range(2):
            r = post(h.url, chat("complex"))
            assert r.headers["x-route-fallback-from"] == "flaky"
        listed = httpx.get(h.url + "/backends", timeout=5).json()["backends"]
        connections = flaky.total_connections
        r = post(h.url, chat("complex"))
        alone = post(h.url, chat("instruction"))
        skipped, conns = len(flaky.posts()), flaky.total_connections
        direct = post(h.url, chat("flaky"))  # naming the variant is not routing: it is tried
    assert listed["flaky"]["breaker"] == "open"
    assert listed["flaky"]["consecutive_failures"] == 2
    assert listed["steady"]["breaker"] == "closed"
    assert r.status_code == 200
    assert r.headers["x-route-variant"] == "steady"
    assert "x-route-fallback-from" not in r.headers  # skipped, not tried
    assert skipped == 2 and conns == connections  # not even a connect
    err = assert_openai_error(alone, 503, "no_backend_available")
    assert "circuit open" in err["message"]
    assert direct.status_code == 502 and len(flaky.posts()) == 3


def test_breaker_half_open_trial_closes_it_when_the_backend_is_back(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.pause()  # down: connections refused
    with running(tmp_path, breaker_config(flaky, steady, cooldown=0.5)) as h:
        for _ in range(3):
            assert post(h.url, chat("complex")).headers["x-route-variant"] == "steady"
        assert h.status("flaky")["breaker"] == "open"
        flaky.resume()  # comes back while the breaker is open
        r = post(h.url, chat("complex"))
        assert r.headers["x-route-variant"] == "steady" and not flaky.posts()
        wait_for(lambda: h.status("flaky")["breaker"] == "half-open", timeout=2)
        trial = post(h.url, chat("complex"))
        after = h.status("flaky")
    assert trial.status_code == 200
    assert trial.headers["x-route-variant"] == "flaky"
    assert "x-route-fallback-from" not in trial.headers
    assert after["breaker"] == "closed" and after["consecutive_failures"] == 0


def test_breaker_half_open_trial_that_fails_reopens(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 503}  # a 500 alone is no fault (issue 16)
    with running(tmp_path, breaker_config(flaky, steady, cooldown=0.3)) as h:
        for _ in range(2):
            post(h.url, chat("complex"))
        wait_for(lambda: h.status("flaky")["breaker"] == "half-open", timeout=2)
        r = post(h.url, chat("complex"))
        state = h.status("flaky")["breaker"]
    assert r.headers["x-route-fallback-from"] == "flaky"
    assert len(flaky.posts()) == 3
    assert state == "open"


def test_breaker_trial_abandoned_by_the_client_is_given_back(
    tmp_path: Path, flaky: FaultyUpstream
) -> None:
    # `complex` = [flaky, steady]; here `steady` is the backend whose breaker we watch
    flaky.mode, flaky.options = "status", {"status": 503}
    with FaultyUpstream("status", {"status": 503}) as watched:
        cfg = config(flaky.url, watched.url, breaker={"failures": 1, "cooldown": 0.3})
        cfg["routes"]["multi-language"] = ["steady"]
        with running(tmp_path, cfg) as h:
            assert post(h.url, chat("steady")).status_code == 502  # one failure: open
            wait_for(lambda: h.status("steady")["breaker"] == "half-open", timeout=2)
            # flaky fails, the fallback to steady takes the trial, and the client leaves
            watched.mode, watched.options = "slow_first_byte", {"delay": 10}
            with pytest.raises(httpx.ReadTimeout):
                post(h.url, chat("complex"), timeout=0.5)
            wait_for(lambda: h.status("steady")["in_flight"] == 0)
            watched.mode = "ok"
            time.sleep(0.5)  # well past the cooldown
            r = post(h.url, chat("multi-language"))
    assert r.status_code == 200, r.text


# -- nothing leaks ---------------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _connections_to(port: int) -> int:
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


# fault, stream, the statuses the client may see
MIX: list[tuple[dict[str, Any], bool, set[int]]] = [
    ({"mode": "ok"}, False, {200}),
    ({"mode": "ok"}, True, {200}),
    ({"mode": "reset_before_headers"}, False, {502}),
    ({"mode": "close_before_headers"}, True, {502}),
    # a RST discards what the proxy had not read yet, so this one may fail before its first byte
    ({"mode": "reset_mid_stream", "after": 2}, True, {200, 502}),
    ({"mode": "status", "status": 503}, False, {502}),
    ({"mode": "status", "status": 500}, True, {502}),
    ({"mode": "slow_first_byte", "delay": 5}, False, {504}),
    ({"mode": "stall", "after": 1, "stall": 5}, True, {200}),
    ({"mode": "malformed_sse"}, True, {200}),
    ({"mode": "html"}, True, {200}),
    ({"mode": "huge", "size": 20_000}, False, {502}),
]


def test_no_leaks_after_many_faulty_requests(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    backend = {"timeouts": {"connect": 1, "first_byte": 1, "idle": 1}}
    cfg = config(flaky.url, steady.url, flaky_backend=backend, max_response_bytes=4096)
    with running(tmp_path, cfg) as h:
        for body in (chat("flaky"), chat("flaky", True)):
            assert post(h.url, body).status_code == 200  # warm-up: pools, caches, imports
        time.sleep(0.2)
        fds, tasks = _fds(), h.app.tasks()
        rounds = 5

        def one(i: int) -> None:
            fault, stream, expected = MIX[i % len(MIX)]
            status = post(h.url, chat("flaky", stream, fault=fault)).status_code
            assert status in expected, (fault, stream, status)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(rounds * len(MIX))))
        wait_for(lambda: h.app.tasks() <= tasks, timeout=5)
        # the only connections left are idle keep-alives: the relay's pool (as many as
        # requests that ended well at once, up to the 8 in parallel) and the one the probe
        # client (httpx: health, identity, serving window) keeps; none held by a finished
        # request, none half-closed
        native = h.proxy.native
        assert native is not None

        def kept() -> int:
            return native.idle_connections("127.0.0.1", flaky.port) + 1

        wait_for(lambda: flaky.open_connections <= kept() <= 9, timeout=10)
        wait_for(lambda: _connections_to(flaky.port) <= kept(), timeout=10)
        status = h.status("flaky")
        after_fds = _fds()
    assert status["in_flight"] == 0 and status["queued"] == 0
    assert after_fds <= fds + 6, (fds, after_fds)
