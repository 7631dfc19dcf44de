"""Issue 16, the upstream side, on real sockets: one test (or a few) per finding.

3  error hygiene: capped and scrubbed messages, no prompt text in WARNING logs;
6  bounds: the upstream's response headers, the stream meter's event buffer;
10 no silent truncation: streams that end without `[DONE]` end with an error
   event the `openai` SDK raises, and so do streams cut at the drain limit;
11 one try: a request the server dropped is sent once, a stale idle
   keep-alive connection is replaced before anything is written;
12 breaker: faults open it, request-specific 500s don't, its 503 names why;
13 diagnostics: `x-route-variant` on errors, a WARNING on a mid-stream cut.

The proxy runs under uvicorn in a thread (`test_faults.running`) in front of
`FaultyUpstream`s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from proxy.httpclient import NativeClient
from tests.helpers.faultyupstream import FaultyUpstream, closed_port
from tests.socket.test_faults import (
    assert_openai_error,
    chat,
    config,
    events,
    post,
    running,
    wait_for,
)

MARKER = "PURPLE-ELEPHANT-7731"


@pytest.fixture
def flaky() -> Any:
    with FaultyUpstream() as up:
        yield up


@pytest.fixture
def steady() -> Any:
    with FaultyUpstream() as up:
        yield up


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- 3. error hygiene ------------------------------------------------------------------------


def test_a_5mb_error_body_is_capped_in_the_answer_and_the_log(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="variant_proxy")
    flaky.mode, flaky.options = "status", {"status": 500, "pad": 5 << 20}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, chat("instruction"))
    err = assert_openai_error(r, 502, "upstream_status_error")
    assert "faulty upstream says 500" in err["message"]
    assert len(err["message"]) < 600 and len(r.content) < 2000
    lines = _warnings(caplog)
    assert lines and max(len(line) for line in lines) < 2000


def test_a_5xx_echoing_the_prompt_keeps_it_out_of_the_logs(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="variant_proxy")
    flaky.mode, flaky.options = "status", {"status": 500, "echo": True}
    body = chat("instruction", messages=[{"role": "user", "content": f"say {MARKER}"}])
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, body)
        streamed = post(h.url, {**body, "stream": True})
    assert r.status_code == 502 and streamed.status_code == 502
    assert MARKER in r.text  # the client may read its own prompt back
    text = caplog.text
    assert "answered 500" in text
    assert MARKER not in text


def test_the_5xx_text_reaches_the_log_with_log_prompts(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="variant_proxy")
    flaky.mode, flaky.options = "status", {"status": 500, "echo": True}
    body = chat("instruction", messages=[{"role": "user", "content": f"say {MARKER}"}])
    with running(tmp_path, config(flaky.url, steady.url, log_prompts=True)) as h:
        post(h.url, body)
    assert any(MARKER in line for line in _warnings(caplog))


@pytest.mark.parametrize("expose", [False, True])
def test_errors_name_the_backend_not_its_url_or_an_exception(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, expose: bool
) -> None:
    refused = f"http://127.0.0.1:{closed_port()}"
    cfg = config(refused, steady.url, expose_upstream_errors=expose)
    cfg["backends"]["cut"] = {"kind": "openai", "url": flaky.url}
    cfg["variants"]["cut"] = {"backend": "cut", "model": "up-cut"}
    flaky.mode, flaky.options = "reset_mid_stream", {"after": 2}
    with running(tmp_path, cfg) as h:
        r = post(h.url, chat("instruction"))
        cut = post(h.url, chat("cut", True))
    err = assert_openai_error(r, 502, "upstream_unreachable")
    event = json.loads(events(cut.text)[-1])["error"]
    assert "backend 'flaky' is unreachable (connection refused)" in err["message"]
    assert "backend 'cut' closed the connection mid-stream" in event["message"]
    for message in (err["message"], event["message"]):
        leaked = "http://127.0.0.1" in message or "Error(" in message
        assert leaked is expose, message


# -- 6. bounds -------------------------------------------------------------------------------


class PeakRSS:
    """Samples this process's RSS in a thread: the proxy, the fake and the client all run here."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    @property
    def grew_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def test_endless_upstream_headers_are_a_protocol_error_in_bounded_memory(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "endless_headers", {"size": 96 << 20}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        post(h.url, chat("steady"))  # warm-up
        with PeakRSS() as rss:
            r = post(h.url, chat("instruction"), timeout=60)
    err = assert_openai_error(r, 502, "upstream_protocol_error")
    assert "headers over the limit" in err["message"]
    assert rss.grew_mb < 40, rss.grew_mb


def test_an_event_that_never_ends_is_relayed_with_bounded_meter_memory(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    size = 96 << 20
    flaky.mode, flaky.options = "endless_event", {"size": size}
    backend = {"timeouts": {"first_byte": 5, "idle": 5}}
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        post(h.url, chat("steady", True))  # warm-up
        relayed, tail = 0, b""
        with PeakRSS() as rss:
            with httpx.stream(
                "POST", h.url + "/v1/chat/completions", json=chat("flaky", True), timeout=60
            ) as r:
                for piece in r.iter_raw():
                    relayed += len(piece)
                    tail = (tail + piece)[-2000:]
    assert r.status_code == 200
    assert relayed >= size - (64 << 10)  # every byte sent (whole pieces) reached the client
    error = json.loads(tail.rsplit(b"\n\ndata: ", 1)[1])["error"]
    assert error["code"] == "upstream_protocol_error" and "[DONE]" in error["message"]
    assert rss.grew_mb < 48, rss.grew_mb


# -- 10. no silent truncation ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["close_framed", "empty_stream", "html"])
def test_a_stream_without_done_raises_in_the_openai_sdk(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, mode: str
) -> None:
    flaky.mode, flaky.options = mode, {"after": 2}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        client = openai.OpenAI(base_url=h.url + "/v1", api_key="x", max_retries=0, timeout=10)
        stream = client.chat.completions.create(
            model="flaky", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        got: list[str] = []
        with pytest.raises(openai.APIError) as info:
            for chunk in stream:
                got.extend(c.delta.content or "" for c in chunk.choices)
        client.close()
    assert got == (["tok0 ", "tok1 "] if mode == "close_framed" else [])
    assert "without data: [DONE]" in str(info.value.message)


def test_a_complete_close_framed_stream_is_not_flagged(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, chat("flaky", True))
    assert events(r.text)[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_a_request_cut_at_the_drain_limit_gets_an_openai_error(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, stream: bool
) -> None:
    flaky.options = {"chunks": 40, "chunk_delay": 0.2} if stream else {"first_delay": 8}
    backend = {"timeouts": {"first_byte": 20, "idle": 5}}
    out: list[httpx.Response] = []
    with running(tmp_path, config(flaky.url, steady.url, flaky_backend=backend)) as h:
        thread = threading.Thread(
            target=lambda: out.append(post(h.url, chat("flaky", stream), timeout=20)), daemon=True
        )
        thread.start()
        wait_for(lambda: bool(flaky.posts()) and flaky.posts()[0].events_sent >= (2 * stream))
        # leaving `running` stops uvicorn: 1 s of drain (timeout_graceful_shutdown), then cancel
    thread.join(10)
    r = out[0]
    if stream:
        assert r.status_code == 200
        err = json.loads(events(r.text)[-1])["error"]
        assert err["code"] == "server_shutting_down" and "drain" in err["message"]
    else:
        err = assert_openai_error(r, 503, "server_shutting_down")
        assert r.headers["x-route-variant"] == "flaky"


# -- 11. one try -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["close_before_headers", "reset_before_headers"])
def test_a_request_that_drops_the_connection_is_sent_once(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, fault: str
) -> None:
    # on a new connection: a request that failed there may have been run, so it is not
    # resent (a reused keep-alive connection that answered nothing is; see httpclient)
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, chat("flaky", fault={"mode": fault}))
    assert r.status_code == 502
    assert [hit.mode for hit in flaky.posts()] == [fault]


def test_a_stale_idle_keepalive_is_replaced_and_the_request_served(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.options = {"idle_close": 0.2}
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        assert post(h.url, chat("flaky")).status_code == 200
        time.sleep(0.5)  # the server closed the kept-alive connection meanwhile
        r = post(h.url, chat("flaky"))
        native = h.proxy.native
        assert native is not None and native.connects == 2
    assert r.status_code == 200
    assert len(flaky.posts()) == 2


def test_native_client_replaces_a_closed_connection_before_writing(
    flaky: FaultyUpstream,
) -> None:
    """The event loop has not yet seen the server's FIN (it was busy): the socket poll
    before reuse catches it, so the request goes out once, on a new connection."""
    flaky.options = {"idle_close": 0.1}

    async def scenario() -> list[int]:
        statuses = []
        async with NativeClient() as client:
            for _ in range(2):
                response = await client.send(
                    "POST",
                    flaky.url + "/v1/chat/completions",
                    {"content-type": "application/json"},
                    json.dumps(chat("up-flaky")).encode(),
                    connect_timeout=2,
                    write_timeout=2,
                )
                await response.aread()
                await response.aclose()
                statuses.append(response.status_code)
                time.sleep(0.4)  # blocks the loop: the FIN arrives unseen
        return statuses

    assert asyncio.run(scenario()) == [200, 200]
    assert len(flaky.posts()) == 2 and flaky.total_connections == 2


# -- 12. breaker -----------------------------------------------------------------------------


def _breaker_cfg(flaky_url: str, steady: FaultyUpstream) -> dict[str, Any]:
    return config(flaky_url, steady.url, breaker={"failures": 3, "cooldown": 60})


def test_500s_from_a_healthy_backend_do_not_open_the_breaker(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 500}
    with running(tmp_path, _breaker_cfg(flaky.url, steady)) as h:
        answers = [post(h.url, chat("instruction", seq=i)) for i in range(4)]
        state = h.status("flaky")
    assert [r.json()["error"]["code"] for r in answers] == ["upstream_status_error"] * 4
    assert state["breaker"] == "closed"
    assert len(flaky.posts()) == 4


def test_refused_connections_open_the_breaker_and_its_503_names_the_cause(
    tmp_path: Path, steady: FaultyUpstream
) -> None:
    with running(tmp_path, _breaker_cfg(f"http://127.0.0.1:{closed_port()}", steady)) as h:
        for _ in range(3):
            assert post(h.url, chat("instruction")).status_code == 502
        r = post(h.url, chat("instruction"))
        state = h.status("flaky")
    assert state["breaker"] == "open"
    err = assert_openai_error(r, 503, "no_backend_available")
    assert "circuit open after 3 failures" in err["message"]
    assert "connection refused" in err["message"]


def test_502s_open_the_breaker_and_its_503_says_so(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 502, "echo": True}
    with running(tmp_path, _breaker_cfg(flaky.url, steady)) as h:
        for i in range(3):
            post(h.url, chat("instruction", seq=i))
        r = post(h.url, chat("instruction"))
    err = assert_openai_error(r, 503, "no_backend_available")
    assert "backend 'flaky' answered 502" in err["message"]
    assert "seq" not in err["message"]  # another request's echoed body is not repeated


# -- 13. diagnostics -------------------------------------------------------------------------


def test_error_answers_carry_the_variant_and_the_fallback_chain(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream
) -> None:
    flaky.mode, flaky.options = "status", {"status": 500}
    cfg = config(flaky.url, steady.url)
    cfg["routes"]["complex"] = ["flaky", "flaky2"]
    cfg["variants"]["flaky2"] = {"backend": "flaky", "model": "up-flaky2"}
    with running(tmp_path, cfg) as h:
        alone = post(h.url, chat("instruction"))
        chain = post(h.url, chat("complex"))
    assert alone.status_code == 502 and alone.headers["x-route-variant"] == "flaky"
    assert chain.status_code == 502 and chain.headers["x-route-variant"] == "flaky2"
    assert chain.headers["x-route-fallback-from"] == "flaky"


def test_a_mid_stream_cut_writes_a_warning_without_the_prompt(
    tmp_path: Path, flaky: FaultyUpstream, steady: FaultyUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="variant_proxy")
    flaky.mode, flaky.options = "reset_mid_stream", {"after": 2}
    body = chat("flaky", True, messages=[{"role": "user", "content": MARKER}])
    with running(tmp_path, config(flaky.url, steady.url)) as h:
        r = post(h.url, body)
    assert json.loads(events(r.text)[-1])["error"]["code"] == "upstream_protocol_error"
    lines = [line for line in _warnings(caplog) if "mid-stream" in line]
    assert lines and "flaky" in lines[0] and "protocol_error" in lines[0]
    assert MARKER not in caplog.text
