"""Real sockets: the proxy under uvicorn in front of a real-socket fake upstream,
driven by the official `openai` client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from proxy.app import create_app
from tests.helpers.config import make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream, Seen, run_server


@pytest.fixture
def proxy_url(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> Iterator[str]:
    _, upstream = fake_server
    path = write_config(tmp_path, make_config(upstream))
    with run_server(create_app(path)) as url:
        yield url


def sync_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20)


def last_seen(fake: FakeUpstream) -> Seen:
    with fake.lock:
        return fake.seen[-1]


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_sync_chat_non_streaming(proxy_url: str, fake: FakeUpstream) -> None:
    client = sync_client(proxy_url)
    raw = client.chat.completions.with_raw_response.create(
        model="instruct", messages=[{"role": "user", "content": "hi"}], extra_body={"fake": {}}
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "hello from the fake upstream"
    assert reply.model == "up-instruct"
    assert raw.headers["x-route-variant"] == "instruct"
    assert last_seen(fake).body["model"] == "up-instruct"


def test_sync_completions_streaming(proxy_url: str, fake: FakeUpstream) -> None:
    client = sync_client(proxy_url)
    stream = client.completions.create(
        model="code", prompt="def f(", max_tokens=8, stream=True, extra_body={"fake": {"chunks": 4}}
    )
    texts = [c.choices[0].text for c in stream if c.choices]
    assert "".join(texts) == "tok0 tok1 tok2 tok3 "


def test_sync_chat_streaming_with_usage(proxy_url: str, fake: FakeUpstream) -> None:
    client = sync_client(proxy_url)
    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "write hello world in python"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"fake": {"chunks": 3}},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "tok0 tok1 tok2 "
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_async_chat_and_completions(proxy_url: str, fake: FakeUpstream) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=proxy_url + "/v1", api_key="x", max_retries=0)
        reply = await client.completions.create(model="code", prompt="x = ", max_tokens=4)
        assert reply.choices[0].text == "hello from the fake upstream"
        stream = await client.chat.completions.create(
            model="ci",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_body={"fake": {"chunks": 5}},
        )
        parts = [c.choices[0].delta.content async for c in stream if c.choices]
        assert "".join(p or "" for p in parts) == "tok0 tok1 tok2 tok3 tok4 "
        await client.close()

    asyncio.run(main())


def test_errors_reach_the_sdk_as_api_errors(proxy_url: str) -> None:
    client = sync_client(proxy_url)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="instruct", messages=[])


def test_first_chunk_arrives_before_upstream_finishes(proxy_url: str, fake: FakeUpstream) -> None:
    client = sync_client(proxy_url)
    stream = client.chat.completions.create(
        model="instruct",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"fake": {"chunks": 10, "chunk_delay": 0.2}},
    )
    first = next(iter(stream))
    received_first = time.monotonic()
    seen = last_seen(fake)
    assert first.choices[0].delta.content == "tok0 "
    assert seen.last_sent is not None
    # the upstream is still producing: 9 more chunks, 0.2 s apart
    assert seen.outcome == "open"
    assert seen.chunks_sent < 10
    for _ in stream:
        pass
    assert seen.outcome == "completed"
    assert seen.finished is not None and seen.finished - received_first > 1.0


def test_client_disconnect_mid_stream_closes_upstream(proxy_url: str, fake: FakeUpstream) -> None:
    client = sync_client(proxy_url)
    stream = client.chat.completions.create(
        model="instruct",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"fake": {"chunks": 100, "chunk_delay": 0.1}},
    )
    next(iter(stream))
    stream.close()
    closed = time.monotonic()
    seen = last_seen(fake)
    wait_for(lambda: seen.outcome != "open", timeout=3)
    assert seen.outcome == "client-closed"
    assert seen.finished is not None and seen.finished - closed < 1.0
    assert seen.chunks_sent < 50


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_before_first_byte_closes_upstream(
    proxy_url: str, fake: FakeUpstream, stream: bool
) -> None:
    body = {
        "model": "instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        "fake": {"first_delay": 30},
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proxy_url + "/v1/chat/completions", json=body, timeout=0.1)
    gone = time.monotonic()
    wait_for(lambda: len(fake.seen) == 1)
    seen = last_seen(fake)
    wait_for(lambda: seen.outcome != "open", timeout=3)
    assert seen.outcome == "client-closed"
    assert seen.finished is not None and seen.finished - gone < 1.0


def test_keepalive_while_backend_is_silent(proxy_url: str, fake: FakeUpstream) -> None:
    body = {
        "model": "instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "fake": {"first_delay": 1.0, "chunks": 2},
    }
    with httpx.stream("POST", proxy_url + "/v1/chat/completions", json=body, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    assert text.startswith(": keep-alive\n\n")
    assert text.count(": keep-alive") >= 2
    assert text.rstrip().endswith("data: [DONE]")


def test_upstream_dying_mid_stream_becomes_an_error_event(
    proxy_url: str, fake: FakeUpstream
) -> None:
    client = sync_client(proxy_url)
    stream = client.chat.completions.create(
        model="instruct",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"fake": {"chunks": 10, "die_after": 3}},
    )
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert got == ["tok0 ", "tok1 ", "tok2 "]
    assert "closed the connection mid-stream" in str(info.value.message)


def test_upstream_5xx_before_first_byte_falls_back_or_errors(proxy_url: str) -> None:
    client = sync_client(proxy_url)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model="instruct",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"fake": {"status": 503}},
        )
    assert info.value.status_code == 502
    # a route with a dead first candidate falls back to the next one
    raw = client.chat.completions.with_raw_response.create(
        model="complex", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-route-variant"] == "big"
    assert raw.headers["x-route-fallback-from"] == "ghost"


def test_idle_timeout_mid_stream(proxy_url: str) -> None:
    body = {
        "model": "instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "fake": {"chunks": 3, "chunk_delay": 3},
    }
    with httpx.stream("POST", proxy_url + "/v1/chat/completions", json=body, timeout=10) as r:
        text = r.read().decode()
    assert text.startswith("data: ")
    assert '"code":"upstream_timeout"' in text and "timeouts.idle" in text
