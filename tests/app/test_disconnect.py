"""Disconnects, driving the ASGI app directly with hand-written receive/send."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from proxy.app import create_app
from proxy.config import parse_config
from tests.helpers.config import asgi_scope as scope
from tests.helpers.config import make_config
from tests.helpers.fakeupstream import FakeUpstream, Recorder


async def drive(url: str, body: dict[str, Any], disconnect_when: Any) -> tuple[Recorder, float]:
    app = create_app(parse_config(make_config(url)))
    proxy = app.state.proxy
    await proxy.start()
    sent_body = False
    recorder = Recorder()
    gone = asyncio.Event()
    disconnected_at = 0.0

    async def receive() -> dict[str, Any]:
        nonlocal sent_body, disconnected_at
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}
        await gone.wait()
        disconnected_at = time.monotonic()
        return {"type": "http.disconnect"}

    async def trigger() -> None:
        while not disconnect_when(recorder):
            await asyncio.sleep(0.01)
        gone.set()

    try:
        trig = asyncio.ensure_future(trigger())
        await asyncio.wait_for(app(scope(), receive, recorder), timeout=5)
        trig.cancel()
    finally:
        await proxy.stop()
    return recorder, disconnected_at


def body(**fake: Any) -> dict[str, Any]:
    return {
        "model": "instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": fake.pop("stream", True),
        "fake": fake,
    }


def chunks(rec: Recorder) -> list[bytes]:
    return [m["body"] for _, m in rec.messages if m["type"] == "http.response.body" and m["body"]]


@pytest.mark.parametrize(
    ("payload", "when", "expect_start"),
    [
        # before the first token: nothing sent yet, client leaves after 0.2 s
        (body(first_delay=30), "timer", False),
        # mid-stream: after two chunks
        (body(chunks=200, chunk_delay=0.05), "two-chunks", True),
        # during a non-streaming request
        (body(first_delay=30, stream=False), "timer", False),
    ],
)
def test_disconnect_cancels_upstream(
    fake_server: tuple[FakeUpstream, str],
    fake: FakeUpstream,
    payload: dict[str, Any],
    when: str,
    expect_start: bool,
) -> None:
    _, url = fake_server
    t0 = time.monotonic()

    def condition(rec: Recorder) -> bool:
        if when == "timer":
            return time.monotonic() - t0 > 0.2 and bool(fake.seen)
        return len(chunks(rec)) >= 2

    rec, gone_at = asyncio.run(drive(url, payload, condition))
    returned = time.monotonic()
    assert returned - gone_at < 1.0, "the app must return as soon as the client is gone"
    started = any(m["type"] == "http.response.start" for _, m in rec.messages)
    assert started is expect_start
    seen = fake.seen[-1]
    deadline = time.monotonic() + 2
    while seen.outcome == "open" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen.outcome == "client-closed"
    assert seen.finished is not None and seen.finished - gone_at < 1.0
