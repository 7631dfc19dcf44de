"""The ASGI app with TestClient (runs lifespan) and respx standing in for the backend."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from proxy.app import create_app as _create_app
from proxy.config import parse_config
from proxy.metrics import Metrics
from tests.helpers.config import make_config

# respx mocks httpx, so these apps relay through httpx rather than the native client
create_app = functools.partial(_create_app, upstream_client="httpx")

UP = "http://up.test"


def chat(model: str = "instruct", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def ok_chat(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "yo"},
                    "finish_reason": "stop",
                }
            ],
        },
    )


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{UP}/v1/models").respond(200, json={"object": "list", "data": []})
        yield router


@pytest.fixture
def client(mock: respx.MockRouter) -> Iterator[TestClient]:
    cfg = make_config(UP)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with TestClient(create_app(parse_config(cfg), metrics=Metrics())) as c:
        yield c


def test_forwards_with_model_rewritten_and_everything_else_untouched(
    client: TestClient, mock: respx.MockRouter
) -> None:
    route = mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    extra = {
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "seed": 7,
        "temperature": 0.25,
        "my_vendor_field": {"nested": [1, 2, None]},
    }
    r = client.post(
        "/v1/chat/completions",
        json=chat("ci", **extra),
        headers={"authorization": "Bearer client-secret", "x-request-id": "req-42"},
    )
    assert r.status_code == 200
    assert r.json()["model"] == "up-instruct"
    sent = json.loads(route.calls.last.request.content)
    assert sent == {**chat("up-instruct"), **extra}
    assert "authorization" not in route.calls.last.request.headers
    assert r.headers["x-request-id"] == "req-42"
    assert r.headers["x-route-variant"] == "instruct"
    assert r.headers["x-route-class"] == "direct"
    assert "instruct" in r.headers["x-route-reason"]


def test_backend_key_is_sent(mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_KEY", "backend-secret")
    cfg = make_config(UP)
    cfg["backends"]["main"]["api_key_env"] = "UP_KEY"
    route = mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    with TestClient(create_app(parse_config(cfg))) as c:
        r = c.post("/v1/chat/completions", json=chat(), headers={"authorization": "Bearer x"})
    assert r.status_code == 200
    assert route.calls.last.request.headers["authorization"] == "Bearer backend-secret"


def test_generated_request_id(client: TestClient, mock: respx.MockRouter) -> None:
    mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    r = client.post("/v1/chat/completions", json=chat())
    assert len(r.headers["x-request-id"]) == 32


def test_auto_uses_a_route(client: TestClient, mock: respx.MockRouter) -> None:
    route = mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    r = client.post("/v1/chat/completions", json=chat("auto"))
    assert r.status_code == 200
    assert r.headers["x-route-class"] in {"instruction", "complex", "multi-language", "completion"}
    assert json.loads(route.calls.last.request.content)["model"].startswith("up-")


def test_class_name_skips_classification(client: TestClient, mock: respx.MockRouter) -> None:
    route = mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    r = client.post("/v1/chat/completions", json=chat("multi-language"))
    assert r.headers["x-route-class"] == "multi-language"
    assert r.headers["x-route-variant"] == "big"
    assert json.loads(route.calls.last.request.content)["model"] == "up-big"


def test_fallback_before_first_byte(client: TestClient, mock: respx.MockRouter) -> None:
    mock.post("http://dead.test/v1/chat/completions").mock(side_effect=httpx.ConnectError("no"))
    mock.post(f"{UP}/v1/chat/completions").mock(side_effect=ok_chat)
    r = client.post("/v1/chat/completions", json=chat("complex"))
    assert r.status_code == 200
    assert r.headers["x-route-variant"] == "big"
    assert r.headers["x-route-fallback-from"] == "ghost"
    metrics = client.get("/metrics").text
    assert 'variant_proxy_fallbacks_total{from_variant="ghost",to_variant="big"} 1.0' in metrics


def test_completions_fim_is_rerendered_for_the_variant(
    client: TestClient, mock: respx.MockRouter
) -> None:
    route = mock.post(f"{UP}/v1/completions").respond(200, json={"choices": []})
    r = client.post(
        "/v1/completions",
        json={
            "model": "auto",
            "prompt": "<PRE> def f(): <SUF>\n    return 1 <MID>",
            "max_tokens": 16,
        },
    )
    assert r.status_code == 200
    assert r.headers["x-route-class"] == "completion"
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "up-code"
    assert sent["prompt"].startswith("<fim_prefix>") and "<fim_suffix>" in sent["prompt"]


def test_completions_fim_stops_are_translated_with_the_prompt(
    client: TestClient, mock: respx.MockRouter
) -> None:
    route = mock.post(f"{UP}/v1/completions").respond(200, json={"choices": []})
    qwen_stops = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "\n\n"]
    r = client.post(
        "/v1/completions",
        json={
            "model": "code",  # starcoder FIM
            "prompt": "<|fim_prefix|>def f():<|fim_suffix|>\n    return 1<|fim_middle|>",
            "stop": qwen_stops,
        },
    )
    assert r.status_code == 200
    sent = json.loads(route.calls.last.request.content)
    assert sent["prompt"] == "<fim_prefix>def f():<fim_suffix>\n    return 1<fim_middle>"
    assert sent["stop"] == [
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        "<file_sep>",
        "\n\n",
        "<|endoftext|>",
    ]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (b"{not json", 400, "invalid_request", None),
        (b"[1, 2]", 400, "invalid_request", None),
        (b"", 400, "invalid_request", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request", "model"),
        (b'{"model": "instruct"}', 400, "invalid_request", "messages"),
        (b'{"model": "instruct", "messages": []}', 400, "invalid_request", "messages"),
        (b'{"model": 5, "messages": [1]}', 400, "invalid_request", "model"),
        (
            b'{"model": "instruct", "messages": [1], "stream": "yes"}',
            400,
            "invalid_request",
            "stream",
        ),
        (b'{"model": "gpt-4", "messages": [1]}', 404, "model_not_found", "model"),
    ],
)
def test_client_errors_are_openai_shaped(
    client: TestClient, body: bytes, status: int, code: str, param: str | None
) -> None:
    r = client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert (error["code"], error["param"]) == (code, param)
    assert "x-request-id" in r.headers


def test_unknown_model_lists_valid_names(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=chat("codelama"))
    message = r.json()["error"]["message"]
    assert "codelama" in message and "instruct" in message and "auto" in message and "ci" in message


def test_wrong_method_and_unknown_path(client: TestClient) -> None:
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_body_over_limit_is_413(mock: respx.MockRouter) -> None:
    cfg = make_config(UP, max_body_bytes=2048)
    with TestClient(create_app(parse_config(cfg))) as c:
        r = c.post("/v1/chat/completions", json=chat(pad="x" * 5000))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_unreachable_is_502_and_timeout_is_504(client: TestClient, mock: respx.MockRouter) -> None:
    mock.post(f"{UP}/v1/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
    r = client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unreachable"
    mock.post(f"{UP}/v1/chat/completions").mock(side_effect=httpx.ConnectTimeout("slow"))
    r = client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"


def test_backend_4xx_passes_through_and_5xx_is_502(
    client: TestClient, mock: respx.MockRouter
) -> None:
    err = {"error": {"message": "context too long", "type": "invalid_request_error", "code": 400}}
    mock.post(f"{UP}/v1/chat/completions").respond(400, json=err)
    r = client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 400 and r.json() == err
    mock.post(f"{UP}/v1/chat/completions").respond(500, json={"error": {"message": "oom"}})
    r = client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 502
    assert "oom" in r.json()["error"]["message"]


def test_embeddings(client: TestClient, mock: respx.MockRouter) -> None:
    route = mock.post(f"{UP}/v1/embeddings").respond(200, json={"object": "list", "data": []})
    r = client.post("/v1/embeddings", json={"model": "auto", "input": "x"})
    assert r.status_code == 200
    assert json.loads(route.calls.last.request.content)["model"] == "up-instruct"
    assert client.post("/v1/embeddings", json={"model": "auto"}).status_code == 400


def test_models_lists_variants_aliases_auto_and_classes(client: TestClient) -> None:
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    for name in [
        "auto",
        "completion",
        "instruction",
        "complex",
        "multi-language",
        "instruct",
        "ci",
        "code",
        "big",
        "ghost",
    ]:
        assert name in ids
    assert all(m["object"] == "model" for m in data["data"])


def test_health_ready_metrics(client: TestClient, mock: respx.MockRouter) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    mock.get("http://dead.test/v1/models").mock(side_effect=httpx.ConnectError("no"))
    r = client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["backends"]["dead"]["ok"] is False
    assert "variant_proxy_requests_total" in client.get("/metrics").text


def test_not_ready_when_nothing_answers(mock: respx.MockRouter) -> None:
    mock.get(f"{UP}/v1/models").mock(side_effect=httpx.ConnectError("no"))
    mock.get("http://dead.test/v1/models").mock(side_effect=httpx.ConnectError("no"))
    cfg = make_config(UP)
    cfg["backends"]["dead"]["url"] = "http://dead.test"
    with TestClient(create_app(parse_config(cfg))) as c:
        assert c.get("/ready").status_code == 503


def test_explain_forwards_nothing(client: TestClient, mock: respx.MockRouter) -> None:
    route = mock.post(f"{UP}/v1/completions")
    r = client.post(
        "/route/explain?endpoint=/v1/completions",
        json={"model": "auto", "prompt": "def f(", "suffix": "\n", "max_tokens": 8},
    )
    assert r.status_code == 200
    decision = r.json()
    assert decision["class"] == "completion" and decision["variant"] == "code"
    assert {"class", "variant", "rule", "candidates"} <= set(decision)
    assert not route.called
