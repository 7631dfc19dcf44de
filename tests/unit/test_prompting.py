"""Adapting a request to a variant (`proxy.prompting`): the chat transcript for a base
model, its answer converted back (whole and streamed, split anywhere), prefix-only
infill, and per-variant defaults and caps. Tables, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.fim import FimParts
from proxy.prompting import (
    TRANSCRIPT_STOP,
    ChatStream,
    apply_limits,
    chat_to_completion,
    completion_to_chat,
    prefix_only,
    render_transcript,
)


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(
    ("messages", "prompt"),
    [
        ([user("hi")], "User: hi\nAssistant:"),
        (
            [{"role": "system", "content": "Be brief."}, user("hi")],
            "Be brief.\n\nUser: hi\nAssistant:",
        ),
        (
            [{"role": "developer", "content": "A"}, {"role": "system", "content": "B"}, user("x")],
            "A\n\nB\n\nUser: x\nAssistant:",
        ),
        (
            [user("hi"), {"role": "assistant", "content": "hello"}, user("  more  ")],
            "User: hi\nAssistant: hello\nUser: more\nAssistant:",
        ),
        # a trailing assistant message is continued, as a prefilled answer
        ([user("hi"), {"role": "assistant", "content": "Sure,"}], "User: hi\nAssistant: Sure,"),
        # text parts joined, images dropped
        (
            [user([{"type": "text", "text": "a"}, {"type": "image_url"},
                   {"type": "text", "text": "b"}])],
            "User: a\nb\nAssistant:",
        ),
        ([user("q"), {"role": "tool", "content": "42"}], "User: q\nTool: 42\nAssistant:"),
        ([user("q"), {"role": "system", "content": "now in French"}],
         "User: q\nSystem: now in French\nAssistant:"),
        ([user(None)], "User: \nAssistant:"),
        ("not a list", "Assistant:"),
    ],
    ids=["one", "system", "two-system", "turns", "prefill", "parts", "tool", "mid-system",
         "null", "garbage"],
)  # fmt: skip
def test_render_transcript(messages: Any, prompt: str) -> None:
    got, stop = render_transcript(messages)
    assert got == prompt
    assert stop == list(TRANSCRIPT_STOP)
    for token in ("<|im_", "<start_of_turn>", "[INST]"):
        assert token not in got


@pytest.mark.parametrize(
    ("extra", "want"),
    [
        ({}, {"stop": ["\nUser:", "\nAssistant:"]}),
        ({"stop": "END"}, {"stop": ["END", "\nUser:", "\nAssistant:"]}),
        ({"stop": ["\nUser:", "x"]}, {"stop": ["\nUser:", "x", "\nAssistant:"]}),
        ({"max_completion_tokens": 9}, {"max_tokens": 9}),
        ({"max_tokens": 5, "max_completion_tokens": 9}, {"max_tokens": 5}),
        ({"temperature": 0.2, "top_k": 4, "stream": True},
         {"temperature": 0.2, "top_k": 4, "stream": True}),
    ],
)  # fmt: skip
def test_chat_to_completion(extra: dict[str, Any], want: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [user("hi")], "tools": [], "logprobs": True, **extra}
    out = chat_to_completion(body)
    assert out["prompt"] == "User: hi\nAssistant:"
    for key in ("messages", "tools", "logprobs", "max_completion_tokens"):
        assert key not in out
    for key, value in want.items():
        assert out[key] == value
    assert out["model"] == "m"


@pytest.mark.parametrize(
    ("body", "parts", "want"),
    [
        ({"prompt": "def f():\n", "suffix": "\n  return 1"}, None, {"prompt": "def f():\n"}),
        ({"prompt": "<PRE> a <SUF>b <MID>"}, FimParts("codellama", "a", "b"), {"prompt": "a"}),
        ({"prompt": "x", "suffix": "y", "max_tokens": 3}, None, {"prompt": "x", "max_tokens": 3}),
    ],
)
def test_prefix_only(body: dict[str, Any], parts: FimParts | None, want: dict[str, Any]) -> None:
    assert prefix_only(body, parts) == want


@pytest.mark.parametrize(
    ("body", "defaults", "cap", "want", "applied"),
    [
        ({}, {}, None, {}, {}),
        ({}, {"max_tokens": 256, "temperature": 0.2}, None,
         {"max_tokens": 256, "temperature": 0.2}, {"max_tokens": 256, "temperature": 0.2}),
        # the client's own value wins over a default
        ({"temperature": 1.0}, {"temperature": 0.2}, None, {"temperature": 1.0}, {}),
        # max_completion_tokens counts as a token limit the client set
        ({"max_completion_tokens": 50}, {"max_tokens": 256}, None,
         {"max_completion_tokens": 50}, {}),
        ({"stop": None}, {"stop": ["\n\n"]}, None, {"stop": None}, {}),
        # caps lower a larger limit, set a missing one, keep a smaller one
        ({"max_tokens": 4096}, {}, 512, {"max_tokens": 512},
         {"capped": {"max_tokens": [4096, 512]}}),
        ({}, {}, 512, {"max_tokens": 512}, {"capped": {"max_tokens": [None, 512]}}),
        ({"max_tokens": 100}, {}, 512, {"max_tokens": 100}, {}),
        ({"max_completion_tokens": 9000}, {}, 512, {"max_completion_tokens": 512},
         {"capped": {"max_completion_tokens": [9000, 512]}}),
        # a default above the cap is capped too
        ({}, {"max_tokens": 1000}, 300, {"max_tokens": 300},
         {"max_tokens": 1000, "capped": {"max_tokens": [1000, 300]}}),
        ({"max_tokens": "lots"}, {}, 10, {"max_tokens": 10},
         {"capped": {"max_tokens": ["lots", 10]}}),
    ],
)  # fmt: skip
def test_apply_limits(
    body: dict[str, Any],
    defaults: dict[str, Any],
    cap: int | None,
    want: dict[str, Any],
    applied: dict[str, Any],
) -> None:
    before = dict(body)
    out, got = apply_limits(body, defaults, cap)
    assert out == want
    assert got == applied
    assert body == before  # the client's body is never changed in place
    if not applied:
        assert out is body


def test_completion_to_chat_whole() -> None:
    answer = {
        "id": "cmpl-7",
        "object": "text_completion",
        "created": 5,
        "model": "base",
        "choices": [{"index": 0, "text": " Hello.", "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    out = orjson.loads(completion_to_chat(orjson.dumps(answer)))
    assert out == {
        "id": "chatcmpl-7",
        "object": "chat.completion",
        "created": 5,
        "model": "base",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": answer["usage"],
    }


@pytest.mark.parametrize("body", [b"not json", b'{"error": {"message": "x"}}', b"[1]"])
def test_completion_to_chat_leaves_other_bodies(body: bytes) -> None:
    assert completion_to_chat(body) == body


def _event(text: str, finish: str | None = None, **extra: Any) -> bytes:
    data = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "base",
            "choices": [{"index": 0, "text": text, "finish_reason": finish}], **extra}  # fmt: skip
    return b"data: " + orjson.dumps(data) + b"\n\n"


STREAM = (
    _event(" ")
    + _event(" Hel")
    + _event("lo")
    + _event("", "stop")
    + b"data: "
    + orjson.dumps({"id": "cmpl-1", "choices": [], "usage": {"completion_tokens": 3}})
    + b"\n\ndata: [DONE]\n\n"
)


def _read(out: bytes) -> list[Any]:
    events = [e for e in out.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    return [e[6:] if e[6:] == b"[DONE]" else orjson.loads(e[6:]) for e in events]


def _convert(chunks: list[bytes]) -> bytes:
    conv = ChatStream()
    return b"".join(conv.feed(c) for c in chunks) + conv.flush()


def test_chat_stream_converts_each_event() -> None:
    events = _read(_convert([STREAM]))
    assert events[-1] == b"[DONE]"
    chunks = events[:-1]
    assert {e["object"] for e in chunks} == {"chat.completion.chunk"}
    assert {e["id"] for e in chunks} == {"chatcmpl-1"}
    assert {e["model"] for e in chunks} == {"base"}
    # the space after "Assistant:" is dropped; the first event carries the role
    assert [(e["choices"][0]["delta"], e["choices"][0]["finish_reason"]) for e in chunks[:4]] == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "stop"),
    ]
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"completion_tokens": 3}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64])
def test_chat_stream_split_anywhere(size: int) -> None:
    """Mid-line, mid-`\\r\\n`, mid-event: the same events as the stream in one piece."""
    whole = _convert([STREAM])
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert _convert(chunks) == whole
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert _convert([crlf[i : i + size] for i in range(0, len(crlf), size)]) == whole


def test_chat_stream_does_not_wait_for_the_end() -> None:
    conv = ChatStream()
    first = conv.feed(_event("Hi"))
    assert _read(first)[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert conv.feed(b'data: {"id": "x", "choices": [{"index": 0, "te') == b""
    rest = conv.feed(b'xt": "!", "finish_reason": null}]}\n\n')
    assert _read(rest)[0]["choices"][0]["delta"] == {"content": "!"}


def test_chat_stream_passes_errors_and_ends_unterminated() -> None:
    conv = ChatStream()
    err = b'data: {"error": {"message": "boom"}}\n\n'
    assert conv.feed(err) == err
    assert conv.feed(b"data: [DONE]") == b""
    assert conv.flush() == b"data: [DONE]\n\n"
