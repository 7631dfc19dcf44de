"""Requests adapted to the variant that serves them, through the whole app with respx:
chat to a base model (`api: completion`) as a transcript on `/v1/completions` and
the answer back in chat's shape, whole and streamed; infill to a model without FIM
as prefix-only; per-variant defaults and caps; and what explanations show."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from starlette.testclient import TestClient

from proxy.app import create_app as _create_app
from proxy.config import parse_config
from proxy.metrics import Metrics
from tests.helpers.config import make_config

create_app = functools.partial(_create_app, upstream_client="httpx")

UP = "http://up.test"
MESSAGES = [
    {"role": "system", "content": "You write Python."},
    {"role": "user", "content": "Reverse a string."},
]


def config() -> dict[str, Any]:
    cfg = make_config(UP)
    cfg["variants"]["base"] = {
        "backend": "main",
        "model": "up-base",
        "api": "completion",
        "defaults": {"temperature": 0.2},
        "caps": {"max_tokens": 64},
    }
    cfg["variants"]["plain"] = {"backend": "main", "model": "up-plain", "api": "completion"}
    # a chat route whose only candidate is a base model, and one that prefers chat
    cfg["routes"]["instruction"] = ["base"]
    cfg["routes"]["complex"] = ["base", "big"]
    cfg["routes"]["completion"] = ["plain"]
    return cfg


def completion_answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "id": "cmpl-9",
            "object": "text_completion",
            "created": 3,
            "model": body["model"],
            "choices": [{"index": 0, "text": " return s[::-1]", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        },
    )


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def text_event(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-9",
        "object": "text_completion",
        "created": 3,
        "model": "up-base",
        "choices": [{"index": 0, "text": text, "finish_reason": finish}],
    }


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{UP}/v1/models").respond(200, json={"object": "list", "data": []})
        yield router


@pytest.fixture
def client(mock: respx.MockRouter) -> Iterator[TestClient]:
    cfg = config()
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with TestClient(create_app(parse_config(cfg), metrics=Metrics())) as c:
        yield c


@pytest.mark.parametrize("model", ["base", "instruction"])
def test_chat_to_a_base_model_is_a_transcript(
    client: TestClient, mock: respx.MockRouter, model: str
) -> None:
    chat_route = mock.post(f"{UP}/v1/chat/completions").respond(500)
    route = mock.post(f"{UP}/v1/completions").mock(side_effect=completion_answer)
    r = client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "max_tokens": 500, "stop": "###"},
    )
    assert r.status_code == 200, r.text
    assert not chat_route.called
    sent = json.loads(route.calls.last.request.content)
    assert sent["prompt"] == "You write Python.\n\nUser: Reverse a string.\nAssistant:"
    assert sent["stop"] == ["###", "\nUser:", "\nAssistant:"]
    assert "messages" not in sent
    assert sent["model"] == "up-base"
    assert sent["max_tokens"] == 64  # capped
    assert sent["temperature"] == 0.2  # a default the client didn't set
    assert r.headers["x-route-variant"] == "base"
    assert r.headers["x-route-chat"] == "transcript"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "return s[::-1]"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5
    assert int(r.headers["content-length"]) == len(r.content)


def test_chat_stream_to_a_base_model(client: TestClient, mock: respx.MockRouter) -> None:
    stream = sse(text_event(" return"), text_event(" s[::-1]"), text_event("", "stop"))
    route = mock.post(f"{UP}/v1/completions").respond(
        200, content=stream, headers={"content-type": "text/event-stream"}
    )
    r = client.post(
        "/v1/chat/completions", json={"model": "base", "messages": MESSAGES, "stream": True}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True and sent["prompt"].endswith("Assistant:")
    events = [e.removeprefix("data: ") for e in r.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "return s[::-1]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_chat_prefers_a_chat_variant(client: TestClient, mock: respx.MockRouter) -> None:
    mock.post(f"{UP}/v1/chat/completions").respond(
        200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "y"}}]}
    )
    r = client.post("/v1/chat/completions", json={"model": "complex", "messages": MESSAGES})
    assert r.status_code == 200
    assert r.headers["x-route-variant"] == "big"
    assert "x-route-chat" not in r.headers


def test_base_model_error_passes_through(client: TestClient, mock: respx.MockRouter) -> None:
    mock.post(f"{UP}/v1/completions").respond(400, json={"error": {"message": "bad"}})
    r = client.post("/v1/chat/completions", json={"model": "base", "messages": MESSAGES})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "bad"}}


@pytest.mark.parametrize(
    ("payload", "prompt"),
    [
        ({"prompt": "def f():\n    ", "suffix": "\n    return x"}, "def f():\n    "),
        ({"prompt": "<fim_prefix>def f():\n    <fim_suffix>\n<fim_middle>"}, "def f():\n    "),
    ],
)
def test_infill_without_fim_is_prefix_only(
    client: TestClient, mock: respx.MockRouter, payload: dict[str, Any], prompt: str
) -> None:
    route = mock.post(f"{UP}/v1/completions").mock(side_effect=completion_answer)
    r = client.post("/v1/completions", json={"model": "completion", **payload})
    assert r.status_code == 200, r.text
    sent = json.loads(route.calls.last.request.content)
    assert sent["prompt"] == prompt
    assert "suffix" not in sent
    assert r.headers["x-route-fim"] == "prefix-only"
    assert r.json()["object"] == "text_completion"  # a completion stays a completion


def test_plain_completion_to_a_base_model_is_untouched(
    client: TestClient, mock: respx.MockRouter
) -> None:
    route = mock.post(f"{UP}/v1/completions").mock(side_effect=completion_answer)
    r = client.post("/v1/completions", json={"model": "plain", "prompt": "def f():"})
    assert r.status_code == 200
    assert json.loads(route.calls.last.request.content) == {
        "model": "up-plain",
        "prompt": "def f():",
    }
    assert "x-route-fim" not in r.headers


def test_explain_shows_what_applies(client: TestClient) -> None:
    r = client.post(
        "/route/explain",
        json={"model": "instruction", "messages": MESSAGES, "max_tokens": 1000},
    )
    assert r.status_code == 200, r.text
    applied = r.json()["applied"]
    assert applied == {
        "temperature": 0.2,
        "capped": {"max_tokens": [1000, 64]},
        "adapted": "transcript",
    }
    r = client.post("/route/explain", json={"model": "complex", "messages": MESSAGES})
    body = r.json()
    assert body["variant"] == "big"
    assert body["skipped"]["base"].startswith("base model (api: completion)")
    assert "applied" not in body
