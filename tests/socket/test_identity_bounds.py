"""The pin checker and the window learner read a bounded amount of a server's answers
(real sockets).

A server that answers its model list or `/props` with an endless or huge body must not
make the checker hold it: the read stops past the probe limit and the identity is
"unavailable", with the reason, while memory stays flat.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import psutil
import pytest

from proxy import contextwindow
from proxy.backends.base import MAX_PROBE_BYTES
from proxy.backends.identity import Identity, IdentityUnavailable, fetch_identity

_CHUNK = b"x" * 65536


async def _endless(writer: asyncio.StreamWriter, head: bytes) -> None:
    """An endless chunked JSON string: `{"data": "xxxx…` that never closes."""
    writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
    first = b'{"data": "'
    writer.write(b"%x\r\n%s\r\n" % (len(first), first))
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK))
        await writer.drain()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Ollama-like: /api/tags is a normal model list, everything else is endless."""
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            await reader.readexactly(length)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if path == "/api/tags":
                body = json.dumps(
                    {"models": [{"name": "m:latest", "model": "m:latest", "digest": "ab" * 32}]}
                ).encode()
                writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                continue
            await _endless(writer, head)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _identity(kind: str) -> object:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient() as client:
        return await asyncio.wait_for(
            fetch_identity(kind, client, f"http://127.0.0.1:{port}", {}, "m", hashes=None), 30
        )


@pytest.mark.parametrize("kind", ["llamacpp", "openai", "lmstudio"])
def test_an_endless_model_list_is_cut_at_the_probe_limit(kind: str) -> None:
    rss = psutil.Process().memory_info().rss
    with pytest.raises(IdentityUnavailable, match=f"over {MAX_PROBE_BYTES} bytes"):
        asyncio.run(_identity(kind))
    assert psutil.Process().memory_info().rss - rss < 64 * 1024 * 1024


def test_an_endless_show_answer_leaves_the_listed_identity() -> None:
    """Ollama: the tags entry is the identity; an endless /api/show (a POST) is cut and
    only its extra fields go unreported."""
    found = asyncio.run(_identity("ollama"))
    assert isinstance(found, Identity)
    assert found.fields["digest"] == "ab" * 32
    assert "sha256" not in found.fields


async def _windows(kind: str) -> object:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient() as client:
        return await asyncio.wait_for(
            contextwindow.learn(kind, client, f"http://127.0.0.1:{port}", {}, ["m"]), 30
        )


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "ollama"])
def test_an_endless_props_answer_teaches_no_window(kind: str) -> None:
    """The serving window is read the same bounded way (`/props`, `/v1/models`,
    `/api/ps`, `/api/show`): nothing learned, memory flat."""
    rss = psutil.Process().memory_info().rss
    assert asyncio.run(_windows(kind)) == {}
    assert psutil.Process().memory_info().rss - rss < 64 * 1024 * 1024
