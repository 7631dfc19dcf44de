"""proxy.httpclient against real loopback servers: the fake upstream (uvicorn) for normal
behaviour and timings, and a raw asyncio server for faults uvicorn would never commit."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.app import create_app
from proxy.httpclient import (
    ConnectError,
    ConnectTimeout,
    NativeClient,
    NativeResponse,
    ReadError,
    RemoteProtocolError,
    UnsupportedProtocol,
    WriteTimeout,
)
from proxy.upstream import AttemptTarget, _translate
from tests.helpers.config import make_config, write_config
from tests.helpers.fakeupstream import FakeUpstream, Seen, free_port, run_server

JSON = {"content-type": "application/json", "accept": "*/*"}
T = {"connect_timeout": 5.0, "write_timeout": 5.0}


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "messages": [], **fields}).encode()


async def post(client: NativeClient, url: str, content: bytes = b"{}") -> NativeResponse:
    return await client.send("POST", url, JSON, content, **T)


async def read_all(response: NativeResponse) -> bytes:
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- a raw server for faults ---------------------------------------------------------------


class Raw:
    """Counts connections and closes; `handle(reader, writer)` serves one connection."""

    def __init__(
        self, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ):
        self.handle = handle
        self.connections = 0
        self.closed_by_client = 0
        self.url = ""
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Raw]:
    raw = Raw(handle)
    server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    raw.port = port
    raw.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        yield raw
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head and content-length body); IncompleteReadError at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def answer(payload: bytes = b'{"ok":true}', *extra: str, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(payload)}\r\n" + "".join(f"{h}\r\n" for h in extra)
    return head.encode() + b"\r\n" + payload


def keepalive(response: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(response)
            await writer.drain()

    return handle


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- normal behaviour against the fake upstream ------------------------------------------


def test_content_length_body(fake_server: tuple[FakeUpstream, str]) -> None:
    _, url = fake_server

    async def run() -> None:
        async with NativeClient() as client:
            response = await post(client, url + "/v1/chat/completions", body())
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            data = json.loads(await read_all(response))
            assert data["object"] == "chat.completion"
            assert int(response.headers["content-length"]) > 0

    asyncio.run(run())


def test_chunked_stream_arrives_as_sent(fake: FakeUpstream, fake_server: Any) -> None:
    _, url = fake_server

    async def run() -> list[tuple[float, bytes]]:
        async with NativeClient() as client:
            response = await post(
                client,
                url + "/v1/chat/completions",
                body(stream=True, fake={"chunks": 5, "chunk_delay": 0.15}),
            )
            assert response.headers["transfer-encoding"] == "chunked"
            got = [(time.monotonic(), chunk) async for chunk in response.aiter_raw()]
            await response.aclose()
            return got

    got = asyncio.run(run())
    seen = fake.seen[-1]
    assert seen.outcome == "completed" and seen.finished is not None
    # the first event came long before the server finished, one item per server write
    assert got[0][0] < seen.finished - 0.4
    assert got[0][1].startswith(b"data: {")
    assert len(got) == 6
    assert b"".join(c for _, c in got).endswith(b"data: [DONE]\n\n")


def test_keepalive_reuses_one_connection() -> None:
    async def run() -> None:
        async with raw_server(keepalive(answer())) as server, NativeClient() as client:
            for _ in range(5):
                assert await read_all(await post(client, server.url)) == b'{"ok":true}'
            assert server.connections == 1
            assert client.idle_connections("127.0.0.1", server.port) == 1

    asyncio.run(run())


def test_keepalive_reuse_against_uvicorn(fake_server: tuple[FakeUpstream, str]) -> None:
    _, url = fake_server

    async def run() -> None:
        async with NativeClient() as client:
            for stream in (False, True, False, True):
                response = await post(client, url + "/v1/chat/completions", body(stream=stream))
                await read_all(response)
            assert client.connects == 1

    asyncio.run(run())


def test_pool_drops_connection_the_server_closed() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer())  # keep-alive by default, then an idle close
        await writer.drain()
        await asyncio.sleep(0.05)

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            port = server.port
            await read_all(await post(client, server.url))
            assert client.idle_connections("127.0.0.1", port) == 1
            await wait_until(lambda: client.idle_connections("127.0.0.1", port) == 0)
            assert await read_all(await post(client, server.url)) == b'{"ok":true}'
            assert server.connections == 2

    asyncio.run(run())


def test_connection_close_answer_is_not_pooled() -> None:
    async def run() -> None:
        handle = keepalive(answer(b"{}", "connection: close"))
        async with raw_server(handle) as server, NativeClient() as client:
            port = server.port
            for _ in range(3):
                assert await read_all(await post(client, server.url)) == b"{}"
                assert client.idle_connections("127.0.0.1", port) == 0
            assert server.connections == 3

    asyncio.run(run())


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"], ids=["204", "304"])
def test_no_body_answers_keep_the_connection(status: str) -> None:
    # a 304 may announce the length of the body it doesn't send
    head = f"HTTP/1.1 {status}\r\nx-a: 1\r\n"
    head += "content-length: 10\r\n\r\n" if status.startswith("304") else "\r\n"

    async def run() -> None:
        async with raw_server(keepalive(head.encode())) as server, NativeClient() as client:
            for _ in range(3):
                response = await post(client, server.url)
                assert response.status_code == int(status[:3])
                assert response.headers["x-a"] == "1"
                assert await read_all(response) == b""
            assert server.connections == 1

    asyncio.run(run())


def test_interim_1xx_answer_is_skipped() -> None:
    async def run() -> None:
        early = b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
        async with raw_server(keepalive(early + answer())) as server, NativeClient() as client:
            for _ in range(2):
                response = await post(client, server.url)
                assert response.status_code == 200
                assert "link" not in response.headers
                assert await read_all(response) == b'{"ok":true}'
            assert server.connections == 1

    asyncio.run(run())


def test_body_delimited_by_close() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"part two")
        await writer.drain()

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            response = await post(client, server.url)
            assert [c async for c in response.aiter_raw()] == [b"part one, ", b"part two"]
            await response.aclose()
            assert client.idle_connections("127.0.0.1", server.port) == 0

    asyncio.run(run())


def test_repeated_headers_are_joined_case_insensitively() -> None:
    async def run() -> None:
        reply = answer(b"{}", "X-Thing: a", "x-thing: b", "Content-Type-Extra: z")
        async with raw_server(keepalive(reply)) as server, NativeClient() as client:
            response = await post(client, server.url)
            await read_all(response)
            assert response.headers["x-thing"] == "a, b"
            assert response.headers.get("content-type") == "application/json"

    asyncio.run(run())


def test_request_is_well_formed() -> None:
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            requests.append(await read_request(reader))
            writer.write(answer())
            await writer.drain()

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            headers = {"Authorization": "Bearer k", "Content-Length": "999", "Host": "evil"}
            r = await client.send("POST", server.url + "?a=1", headers, b'{"x":1}', **T)
            await read_all(r)
            r = await client.send("GET", server.url, {}, b"", **T)
            await read_all(r)
            with pytest.raises(httpx.LocalProtocolError):
                await client.send("POST", server.url, {"x-bad": "a\r\nx-injected: 1"}, b"", **T)

    asyncio.run(run())
    port = requests[0].split(b"host: 127.0.0.1:")[1].split(b"\r\n")[0]
    assert requests[0] == (
        b"POST /v1/chat/completions?a=1 HTTP/1.1\r\nhost: 127.0.0.1:" + port + b"\r\n"
        b"Authorization: Bearer k\r\ncontent-length: 7\r\n\r\n"
        b'{"x":1}'
    )
    assert (
        requests[1] == b"GET /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:" + port + b"\r\n\r\n"
    )


def test_idle_connection_past_expiry_is_not_reused() -> None:
    async def run() -> None:
        async with raw_server(keepalive(answer())) as server:
            async with NativeClient(keepalive_expiry=0.05) as client:
                await read_all(await post(client, server.url))
                await asyncio.sleep(0.1)
                await read_all(await post(client, server.url))
                assert server.connections == 2
                await read_all(await post(client, server.url))
                assert server.connections == 2

    asyncio.run(run())


def test_idle_cap_per_host() -> None:
    async def run() -> None:
        async with raw_server(keepalive(answer())) as server:
            async with NativeClient(max_idle_per_host=2) as client:
                responses = await asyncio.gather(*(post(client, server.url) for _ in range(5)))
                for response in responses:
                    await read_all(response)
                assert server.connections == 5
                assert client.idle_connections("127.0.0.1", server.port) == 2

    asyncio.run(run())


def test_bad_requests_are_refused_locally() -> None:
    async def run() -> None:
        async with NativeClient() as client:
            with pytest.raises(httpx.LocalProtocolError):
                await client.send("POST", "http://127.0.0.1:9/x", {"x-k": "\u20ac"}, b"", **T)
            with pytest.raises(UnsupportedProtocol):
                await client.send("HEAD", "http://127.0.0.1:9/x", {}, b"", **T)
            assert client.connects == 0

    asyncio.run(run())


def test_large_bodies_both_ways() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            assert request.endswith(big)
            # the answer: 1 MiB with a content-length, then 1 MiB chunked in 64 KiB chunks
            writer.write(answer(big))
            await writer.drain()
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(0, len(big), 65536):
                writer.write(b"%x\r\n" % 65536 + big[i : i + 65536] + b"\r\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            assert await read_all(await post(client, server.url, big)) == big
            assert await read_all(await post(client, server.url, big)) == big
            assert server.connections == 1

    asyncio.run(run())


def test_slow_reader_backpressures_the_server() -> None:
    total = 16 * 2**20
    sent = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n".encode())
        piece = b"x" * 65536
        while sent < total:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            response = await post(client, server.url)
            await asyncio.sleep(0.5)  # read nothing
            assert response._buffered < 2 * 2**20  # the socket stopped being read
            assert sent < total
            assert len(await read_all(response)) == total

    asyncio.run(run())


def test_fifty_parallel_requests(fake_server: tuple[FakeUpstream, str]) -> None:
    _, url = fake_server

    async def one(client: NativeClient, i: int) -> bytes:
        stream = i % 2 == 0
        fake = {"chunks": 3, "chunk_delay": 0.01, "text": f"n{i}"}
        response = await post(client, url + "/v1/chat/completions", body(stream=stream, fake=fake))
        assert response.status_code == 200
        return await read_all(response)

    async def run() -> None:
        async with NativeClient() as client:
            for _ in range(2):
                answers = await asyncio.gather(*(one(client, i) for i in range(50)))
                for i, data in enumerate(answers):
                    if i % 2:
                        assert json.loads(data)["choices"][0]["message"]["content"] == f"n{i}"
                    else:
                        assert data.endswith(b"data: [DONE]\n\n")
            assert client.connects <= 50  # the second round reused the first round's
            assert client.idle_connections("127.0.0.1", int(url.rsplit(":", 1)[1])) == 50

    asyncio.run(run())


# -- faults -------------------------------------------------------------------------------


def test_connection_refused() -> None:
    async def run() -> None:
        async with NativeClient() as client:
            with pytest.raises(ConnectError) as info:
                await post(client, f"http://127.0.0.1:{free_port()}/v1/chat/completions")
            assert isinstance(info.value, httpx.ConnectError)

    asyncio.run(run())


def test_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()

        async def hang(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(10)

        monkeypatch.setattr(loop, "create_connection", hang)
        async with NativeClient() as client:
            started = time.monotonic()
            with pytest.raises(ConnectTimeout):
                await client.send(
                    "POST", "http://10.1.2.3:1/x", {}, b"", connect_timeout=0.1, write_timeout=1
                )
            assert time.monotonic() - started < 1

    asyncio.run(run())


def test_only_plain_http() -> None:
    async def run() -> None:
        async with NativeClient() as client:
            with pytest.raises(UnsupportedProtocol):
                await post(client, "https://127.0.0.1:1/x")

    asyncio.run(run())


@pytest.mark.parametrize(("how", "error"), [("close", RemoteProtocolError), ("reset", ReadError)])
def test_server_gone_before_headers(how: str, error: type[Exception]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if how == "reset":
            reset(writer)

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            with pytest.raises(error):
                await post(client, server.url)
            assert client.idle_connections("127.0.0.1", server.port) == 0

    asyncio.run(run())


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("how", "error"), [("close", RemoteProtocolError), ("reset", ReadError)])
def test_server_gone_mid_body(how: str, error: type[Exception], chunked: bool) -> None:
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        served += 1
        await read_request(reader)
        if served > 1:
            writer.write(answer())
            await writer.drain()
            await read_request(reader)
            return
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello")
        await writer.drain()
        await asyncio.sleep(0.05)
        if how == "reset":
            reset(writer)

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            response = await post(client, server.url)
            chunks = response.aiter_raw()
            assert await chunks.__anext__() == b"hello"
            with pytest.raises(error):
                await chunks.__anext__()
            await response.aclose()
            # the pool is not poisoned: the next request gets a new, working connection
            assert await read_all(await post(client, server.url)) == b'{"ok":true}'
            assert server.connections == 2

    asyncio.run(run())


def test_malformed_answer() -> None:
    async def run() -> None:
        async with raw_server(keepalive(b"HTTP/1.1 abc\r\n\r\n")) as server, NativeClient() as c:
            with pytest.raises(RemoteProtocolError):
                await post(c, server.url)

    asyncio.run(run())


def test_write_timeout_when_the_server_stops_reading() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # never reads

    loop_errors: list[dict[str, Any]] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        async with raw_server(handle) as server, NativeClient() as client:
            started = time.monotonic()
            with pytest.raises(WriteTimeout):
                await client.send(
                    "POST",
                    server.url,
                    {},
                    b"x" * (64 * 2**20),
                    connect_timeout=1,
                    write_timeout=0.3,
                )
            assert time.monotonic() - started < 3
        gc.collect()
        await asyncio.sleep(0.05)

    asyncio.run(run())
    # the raw server's handler being cancelled at shutdown is its own business
    assert [c["message"] for c in loop_errors if "never retrieved" in c["message"]] == []


# -- cancellation ---------------------------------------------------------------------------


def last_seen(fake: FakeUpstream) -> Seen:
    with fake.lock:
        return fake.seen[-1]


def test_cancel_mid_stream_closes_the_connection(fake: FakeUpstream, fake_server: Any) -> None:
    _, url = fake_server
    port = int(url.rsplit(":", 1)[1])

    async def run() -> None:
        async with NativeClient() as client:
            response = await post(
                client,
                url + "/v1/chat/completions",
                body(stream=True, fake={"chunks": 50, "chunk_delay": 0.1}),
            )
            chunks = response.aiter_raw()
            await chunks.__anext__()
            reader = asyncio.ensure_future(chunks.__anext__())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            reader.cancel()  # e.g. the relay's pump task, when the client left
            with pytest.raises(asyncio.CancelledError):
                await reader
            await response.aclose()
            await wait_until(lambda: last_seen(fake).outcome != "open")
            assert last_seen(fake).outcome == "client-closed"
            assert client.idle_connections("127.0.0.1", port) == 0
            # the next request works, on a fresh connection
            response = await post(client, url + "/v1/chat/completions", body())
            assert json.loads(await read_all(response))["object"] == "chat.completion"
            assert client.connects == 2
            assert client.idle_connections("127.0.0.1", port) == 1

    asyncio.run(run())


def test_cancel_before_headers_closes_the_connection(fake: FakeUpstream, fake_server: Any) -> None:
    _, url = fake_server

    async def run() -> None:
        async with NativeClient() as client:
            sending = asyncio.ensure_future(
                post(client, url + "/v1/chat/completions", body(fake={"first_delay": 2}))
            )
            await wait_until(lambda: bool(fake.seen))
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            await wait_until(lambda: last_seen(fake).outcome != "open")
            assert last_seen(fake).outcome == "client-closed"
            assert client.idle_connections("127.0.0.1", int(url.rsplit(":", 1)[1])) == 0
            response = await post(client, url + "/v1/chat/completions", body())
            assert response.status_code == 200
            await read_all(response)

    asyncio.run(run())


def test_unread_answer_closed_early_is_not_pooled() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
            await writer.drain()

    async def run() -> None:
        async with raw_server(handle) as server, NativeClient() as client:
            response = await post(client, server.url)
            await response.aclose()  # half the body still to come: the connection must go
            assert client.idle_connections("127.0.0.1", server.port) == 0
            await wait_until(lambda: server.connections == 1)

    asyncio.run(run())


# -- through the proxy's unmodified Relay ---------------------------------------------------


def test_translate_maps_native_errors() -> None:
    target = AttemptTarget("b", "v", "http://x", {}, None)  # type: ignore[arg-type]
    assert _translate(ConnectError("refused"), target, "x").code == "upstream_unreachable"
    assert _translate(ConnectTimeout("slow"), target, "x").code == "upstream_timeout"
    assert _translate(WriteTimeout("slow"), target, "x").code == "upstream_timeout"
    for exc in (ReadError("reset"), RemoteProtocolError("bad")):
        assert _translate(exc, target, "x").code == "upstream_protocol_error"


def test_proxy_relays_through_native_client(fake_server: Any, tmp_path: Path) -> None:
    _, upstream = fake_server
    app = create_app(write_config(tmp_path, make_config(upstream)))  # native by default
    with run_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        req = {"model": "instruct", "messages": [{"role": "user", "content": "hi"}]}
        r = client.post("/v1/chat/completions", json=req)
        assert r.status_code == 200, r.text
        assert r.json()["object"] == "chat.completion"
        with client.stream(
            "POST", "/v1/chat/completions", json={**req, "stream": True, "fake": {"chunks": 4}}
        ) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            text = b"".join(s.iter_raw())
        assert text.count(b"data: ") == 6
        # an upstream 4xx passes through; a 5xx is an upstream error
        r = client.post("/v1/chat/completions", json={**req, "fake": {"status": 404}})
        assert r.status_code == 404
        # health probes still go through httpx
        assert client.get("/ready").status_code == 200
        proxy = app.state.proxy
        assert proxy.native is not None and proxy.native.connects == 1
