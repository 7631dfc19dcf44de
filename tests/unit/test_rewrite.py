"""`AnswerRewrite`: the answer relabelled and repaired on its way out, event by event,
with everything it doesn't change left byte for byte (driven as an ASGI `send`)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest

from proxy.quirks import StreamRepair
from proxy.rewrite import AnswerRewrite, Shown

SSE = [(b"content-type", b"text/event-stream")]
SHOWN = Shown("qwen", "instruction", "rpl_1")


def llama_chunk(text: str, reason: str | None = None) -> bytes:
    """llama-server's shape: compact JSON, `model` after `choices`."""
    delta = {"content": text} if reason is None else {}
    obj = {
        "choices": [{"finish_reason": reason, "index": 0, "delta": delta}],
        "created": 1,
        "id": "chatcmpl-x",
        "model": "gemma3-270m",
        "system_fingerprint": "b1",
        "object": "chat.completion.chunk",
    }
    return b"data: " + orjson.dumps(obj) + b"\n\n"


STREAM = llama_chunk("Hel") + llama_chunk("lo") + llama_chunk("", "stop") + b"data: [DONE]\n\n"


async def run(
    pieces: list[bytes],
    *,
    repair: StreamRepair | None = None,
    shown: Shown | None = SHOWN,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] = SSE,
) -> tuple[list[dict[str, Any]], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    rewrite = AnswerRewrite(send, repair=repair, shown=shown)
    await rewrite({"type": "http.response.start", "status": status, "headers": headers})
    for i, piece in enumerate(pieces):
        more = i < len(pieces) - 1
        await rewrite({"type": "http.response.body", "body": piece, "more_body": more})
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent, body


def events(body: bytes) -> list[Any]:
    out = []
    for event in body.split(b"\n\n"):
        if event.startswith(b"data: ") and event != b"data: [DONE]":
            out.append(orjson.loads(event[6:]))
    return out


def test_model_is_the_variant_in_every_chunk_and_the_route_in_the_last() -> None:
    _, body = asyncio.run(run([STREAM]))
    chunks = events(body)
    assert [c["model"] for c in chunks] == ["qwen"] * 3
    assert [("x_route" in c) for c in chunks] == [False, False, True]
    assert chunks[-1]["x_route"] == {
        "variant": "qwen",
        "class": "instruction",
        "replay_id": "rpl_1",
    }
    # only the model changed in the chunks that carry no route: the rest is their bytes
    first = body.split(b"\n\n")[0]
    assert first == STREAM.split(b"\n\n")[0].replace(b'"gemma3-270m"', b'"qwen"')
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("cut", [1, 7, 40, len(llama_chunk("Hel")) + 3, len(STREAM) - 4])
def test_an_event_split_across_reads_is_held_until_complete(cut: int) -> None:
    _, whole = asyncio.run(run([STREAM]))
    sent, split = asyncio.run(run([STREAM[:cut], STREAM[cut:]]))
    assert split == whole
    assert sent[-1]["more_body"] is False


def test_keepalives_errors_and_unshown_streams_pass_as_they_are() -> None:
    keepalive = b": keep-alive\n\n"
    _, body = asyncio.run(run([keepalive, STREAM]))
    assert body.startswith(keepalive)
    error = b'{"error":{"message":"bad","code":400}}'
    sent, body = asyncio.run(
        run([error], status=400, headers=[(b"content-type", b"application/json")])
    )
    assert body == error and sent[0]["status"] == 400
    # a repair that changes nothing leaves a healthy stream byte for byte
    _, body = asyncio.run(
        run([STREAM], repair=StreamRepair(frozenset({"tool_call_index"})), shown=None)
    )
    assert body == STREAM


def test_a_whole_answer_gets_model_and_route_and_a_new_length() -> None:
    answer = {"id": "c", "object": "chat.completion", "model": "gemma3-270m", "choices": []}
    raw = orjson.dumps(answer)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    sent, body = asyncio.run(run([raw[:10], raw[10:]], headers=headers))
    got = orjson.loads(body)
    assert got["model"] == "qwen" and got["x_route"]["variant"] == "qwen"
    start = sent[0]
    assert (b"content-length", str(len(body)).encode()) in start["headers"]
    assert [k for k, _ in start["headers"]].count(b"content-length") == 1


def test_a_missing_finish_reason_is_added_before_done() -> None:
    cut = llama_chunk("Hel") + llama_chunk("lo") + b"data: [DONE]\n\n"
    _, body = asyncio.run(run([cut], repair=StreamRepair(frozenset({"finish_reason"})), shown=None))
    chunks = events(body)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert body.startswith(llama_chunk("Hel") + llama_chunk("lo"))
    assert body.endswith(b"data: [DONE]\n\n")


def test_crlf_streams_and_a_cut_tail() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    _, body = asyncio.run(
        run([crlf], shown=None, repair=StreamRepair(frozenset({"finish_reason"})))
    )
    assert body == STREAM  # normalised to \n\n, otherwise the same
    _, body = asyncio.run(run([STREAM[:-6]]))
    assert body.endswith(b"\n\ndata: [D")  # the unfinished tail goes out as it came


def test_the_model_pattern_skips_escaped_text() -> None:
    from proxy.rewrite import _MODEL

    line = b'{"choices":[{"delta":{"content":"say \\"model\\":\\"x\\""}}],"model":"m"}'
    assert _MODEL.sub(b'"model":"v"', line, count=1).endswith(b'"model":"v"}')
    assert re.search(rb"\\\"model", line)
