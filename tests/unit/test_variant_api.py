"""A variant's `api`, `defaults` and `caps` (issue 17): the config keys, the router's
"needs a chat variant" constraint and its fallback, `Runtime.upstream_for` (the path and
body one attempt sends) and `ChatAnswerSend` (the answer converted on the way out)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from proxy.adapt import ChatAnswerSend, UpstreamRequest
from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.fim import PromptFim
from proxy.routing import Needs, Router
from proxy.runtime import Runtime

URL = "http://127.0.0.1:1"
CHAT = [{"role": "user", "content": "hi"}]


def config(**routes: Any) -> dict[str, Any]:
    return {
        "backends": {"b": {"kind": "openai", "url": URL}},
        "variants": {
            "chat": {"backend": "b", "model": "m-chat"},
            "base": {
                "backend": "b",
                "model": "m-base",
                "api": "completion",
                "defaults": {"temperature": 0.1, "max_tokens": 100},
                "caps": {"max_tokens": 200},
            },
            "fim": {"backend": "b", "model": "m-fim", "api": "completion", "fim": "starcoder"},
        },
        "routes": {"default": "chat", **routes},
    }


def runtime(**routes: Any) -> Runtime:
    return Runtime(parse_config(config(**routes)), "<test>", {})


def test_api_defaults_to_chat() -> None:
    cfg = parse_config(config())
    assert cfg.variants["chat"].api == "chat"
    assert cfg.variants["chat"].defaults == {}
    assert cfg.variants["chat"].caps.max_tokens is None
    assert cfg.variants["base"].api == "completion"


@pytest.mark.parametrize(
    ("variant", "needle"),
    [
        ({"api": "base"}, "variants.v.api"),
        ({"defaults": {"model": "x"}}, "defaults may not set model"),
        ({"defaults": {"messages": [], "stream": True}}, "messages, stream"),
        ({"caps": {"max_tokens": 0}}, "variants.v.caps.max_tokens"),
        ({"caps": {"temperature": 1}}, "variants.v.caps.temperature"),
    ],
)
def test_bad_variant_keys_name_the_path(variant: dict[str, Any], needle: str) -> None:
    data = config()
    data["variants"]["v"] = {"backend": "b", "model": "m", **variant}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert needle in " ".join(str(i) for i in info.value.issues)


@pytest.mark.parametrize(
    ("needs", "name", "why"),
    [
        (Needs(chat=True), "base", "base model (api: completion): chat only as a plain transcript"),
        (Needs(chat=True), "chat", None),
        (Needs(), "base", None),
        (Needs(infill=True, chat=False), "base", "cannot fill in the middle (no fim format)"),
        (Needs(infill=True), "fim", None),
    ],
)  # fmt: skip
def test_unable(needs: Needs, name: str, why: str | None) -> None:
    assert Router(parse_config(config())).unable(name, needs) == why


@pytest.mark.parametrize(
    ("endpoint", "payload", "candidates", "skipped", "adapted"),
    [
        # a chat variant is left: the base model is skipped, with the reason
        ("chat", {"model": "instruction", "messages": CHAT}, ("chat",), ("base",), None),
        # only base models on the route: served as a transcript
        ("chat", {"model": "complex", "messages": CHAT}, ("base",), (), "transcript"),
        # named directly
        ("chat", {"model": "base", "messages": CHAT}, ("base",), (), "transcript"),
        # a plain completion to a base model goes as sent
        ("completions", {"model": "complex", "prompt": "x"}, ("base",), (), None),
        # infill prefers the FIM variant; without one on the route, prefix-only
        ("completions", {"model": "completion", "prompt": "a", "suffix": "b"}, ("fim",),
         ("base",), None),
        ("completions", {"model": "complex", "prompt": "a", "suffix": "b"}, ("base",), (),
         "prefix-only"),
    ],
    ids=["prefers-chat", "only-base", "direct", "plain", "fim-first", "prefix-only"],
)  # fmt: skip
def test_decide(
    endpoint: str,
    payload: dict[str, Any],
    candidates: tuple[str, ...],
    skipped: tuple[str, ...],
    adapted: str | None,
) -> None:
    rt = runtime(instruction=["base", "chat"], complex=["base"], completion=["base", "fim"])
    decision = rt.decide(endpoint, payload)
    assert decision.candidates == candidates
    assert tuple(decision.skipped) == skipped
    applied = decision.as_dict().get("applied", {})
    assert applied.get("adapted") == adapted
    if candidates[0] == "base":
        assert applied["temperature"] == 0.1 and applied["max_tokens"] == 100


def test_explanation_shows_the_cap() -> None:
    rt = runtime(complex=["base"])
    decision = rt.decide("completions", {"model": "complex", "prompt": "x", "max_tokens": 999})
    assert decision.as_dict()["applied"] == {
        "temperature": 0.1,
        "capped": {"max_tokens": [999, 200]},
    }
    # a variant without defaults or caps that takes the request as sent shows nothing
    assert "applied" not in rt.decide("chat", {"model": "chat", "messages": CHAT}).as_dict()


def test_upstream_for() -> None:
    rt = runtime()
    plain = rt.upstream_for("chat", "chat", {"model": "chat", "messages": CHAT})
    assert plain == UpstreamRequest("/v1/chat/completions", plain.body, None)
    assert json.loads(plain.body) == {"model": "m-chat", "messages": CHAT}
    assert plain.headers() == []

    base = rt.upstream_for("base", "chat", {"model": "base", "messages": CHAT, "max_tokens": 500})
    assert base.path == "/v1/completions" and base.adaptation == "transcript"
    assert json.loads(base.body) == {
        "model": "m-base",
        "prompt": "User: hi\nAssistant:",
        "stop": ["\nUser:", "\nAssistant:"],
        "max_tokens": 200,
        "temperature": 0.1,
    }
    assert base.headers() == [(b"x-route-chat", b"transcript")]

    body = {"model": "x", "prompt": "<fim_prefix>a<fim_suffix>b<fim_middle>"}
    prefix = rt.upstream_for("base", "completions", body, b"", PromptFim.of(body))
    assert prefix.adaptation == "prefix-only"
    assert json.loads(prefix.body)["prompt"] == "a"
    assert prefix.headers() == [(b"x-route-fim", b"prefix-only")]
    # the FIM variant renders its own format as before
    fim = rt.upstream_for("fim", "completions", body, b"", PromptFim.of(body))
    assert fim.adaptation is None and json.loads(fim.body)["prompt"] == body["prompt"]


# -- the answer on its way out ------------------------------------------------------------------


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def start(status: int = 200, ctype: bytes = b"application/json") -> dict[str, Any]:
    headers = [(b"x-route-variant", b"base"), (b"content-type", ctype)]
    if not ctype.startswith(b"text/event-stream"):
        headers.append((b"content-length", b"999"))
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_whole_answer_is_converted_with_its_length() -> None:
    async def main() -> None:
        sent = Sent()
        send = ChatAnswerSend(sent)
        await send(start())
        assert sent.messages == []  # held until the body is known
        answer = {
            "id": "cmpl-1",
            "model": "m",
            "choices": [{"text": " hi", "finish_reason": "stop"}],
        }
        await send(body(orjson.dumps(answer)))
        out = json.loads(sent.body)
        assert out["object"] == "chat.completion"
        assert out["choices"][0]["message"]["content"] == "hi"
        headers = dict(sent.messages[0]["headers"])
        assert headers[b"content-length"] == str(len(sent.body)).encode()
        assert headers[b"x-route-variant"] == b"base"

    asyncio.run(main())


def test_error_answer_passes_through() -> None:
    async def main() -> None:
        sent = Sent()
        send = ChatAnswerSend(sent)
        await send(start(400))
        await send(body(b'{"error": {"message": "no"}}'))
        assert sent.messages[0]["status"] == 400
        assert sent.body == b'{"error": {"message": "no"}}'

    asyncio.run(main())


def test_stream_is_converted_as_it_arrives() -> None:
    async def main() -> None:
        sent = Sent()
        send = ChatAnswerSend(sent)
        await send(start(ctype=b"text/event-stream; charset=utf-8"))
        assert len(sent.messages) == 1  # the stream's headers go at once
        await send(body(b": keep-alive\n\n", more=True))
        assert sent.messages[-1]["body"] == b": keep-alive\n\n"
        await send(body(b'data: {"id": "cmpl-1", "choices": [{"index": 0, "te', more=True))
        assert len(sent.messages) == 2  # half an event: nothing to send yet
        await send(body(b'xt": "Hi", "finish_reason": null}]}\n\n', more=True))
        event = json.loads(sent.messages[-1]["body"].removeprefix(b"data: "))
        assert event["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
        await send(body(b"data: [DONE]\n\n", more=True))
        await send(body(b""))
        assert sent.messages[-2]["body"] == b"data: [DONE]\n\n"
        assert sent.messages[-1] == body(b"")

    asyncio.run(main())
