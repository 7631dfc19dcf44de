"""The rest of the OpenAI surface, driven by the real `openai` SDK over real sockets:
`models.retrieve` for every kind of id, and the Responses API (plain, streamed with
`client.responses.stream`, a function-tool round trip, base-model variants, the 400s
for stateful fields, mid-stream failures, the relay to a backend that serves the API
itself) in front of a fake upstream speaking llama-server's chat wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest

from proxy.app import create_app
from tests.helpers.config import write_config
from tests.helpers.fakeupstream import FakeUpstream, Seen, run_server
from tests.helpers.openai_wire import responses_stream_events

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
CALL = {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}


def config(url: str) -> dict[str, Any]:
    return {
        "backends": {
            "main": {"kind": "llamacpp", "url": url, "timeouts": {"first_byte": 5, "idle": 2}},
            "native": {"kind": "llamacpp", "url": url, "responses_api": True},
        },
        "variants": {
            "instruct": {"backend": "main", "model": "up-instruct", "aliases": ["ci"]},
            "base": {"backend": "main", "model": "up-base", "api": "completion"},
            "org/slashed": {"backend": "main", "model": "up-slashed"},
            "served": {"backend": "native", "model": "up-served"},
        },
        "routes": {
            "completion": ["instruct"],
            "instruction": ["instruct"],
            "complex": ["instruct"],
            "multi-language": ["instruct"],
            "default": "instruct",
        },
    }


@pytest.fixture
def proxy_url(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> Iterator[str]:
    _, upstream = fake_server
    with run_server(create_app(write_config(tmp_path, config(upstream)))) as url:
        yield url


_OPEN: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test made (an unclosed pool is a ResourceWarning)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(url: str, key: str = "unused") -> openai.OpenAI:
    sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=20)
    _OPEN.append(sdk)
    return sdk


def seen(fake: FakeUpstream) -> list[Seen]:
    with fake.lock:
        return list(fake.seen)


# -- GET /v1/models/{id} ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("auto", "auto"),
        ("instruction", "class"),
        ("instruct", "variant"),
        ("ci", "alias"),
        ("org/slashed", "variant"),
    ],
)
def test_models_retrieve_every_kind_of_id(proxy_url: str, name: str, kind: str) -> None:
    model = client(proxy_url).models.retrieve(name)
    assert model.id == name
    assert model.object == "model"
    assert model.owned_by == "variant-proxy"
    assert isinstance(model.created, int)
    assert (model.model_extra or {})["variant_proxy"]["kind"] == kind


def test_models_retrieve_matches_the_listing(proxy_url: str) -> None:
    listed = httpx.get(proxy_url + "/v1/models").json()["data"]
    for entry in listed:
        one = httpx.get(f"{proxy_url}/v1/models/{entry['id']}")
        assert one.status_code == 200
        assert one.json() == entry


def test_models_retrieve_unknown_is_openai_404(proxy_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy_url).models.retrieve("no-such-model")
    body: Any = caught.value.body
    assert body["code"] == "model_not_found"
    assert body["type"] == "invalid_request_error"
    assert body["param"] == "model"
    assert "no-such-model" in body["message"]


def test_models_retrieve_follows_the_origin_rules(proxy_url: str) -> None:
    page = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    r = httpx.get(proxy_url + "/v1/models/auto", headers=page)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_origin"
    r = httpx.get(proxy_url + "/v1/models/auto", headers={"host": "rebind.example"})
    assert r.status_code == 421


def test_models_retrieve_needs_the_key_when_keys_are_set(
    fake_server: tuple[FakeUpstream, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T21_KEYS", "sekrit")
    data = config(fake_server[1])
    data["server"] = {"auth": {"api_keys_env": "T21_KEYS"}}
    with run_server(create_app(write_config(tmp_path, data))) as url:
        assert httpx.get(url + "/v1/models/auto").status_code == 401
        with pytest.raises(openai.AuthenticationError):
            client(url).models.retrieve("auto")
        assert client(url, "sekrit").models.retrieve("auto").id == "auto"


# -- POST /v1/responses, translated to chat -------------------------------------------------------


def test_responses_create_plain(proxy_url: str, fake: FakeUpstream) -> None:
    raw = client(proxy_url).responses.with_raw_response.create(
        model="instruct",
        instructions="Answer briefly.",
        input="Say hello",
        max_output_tokens=40,
        temperature=0.2,
    )
    response = raw.parse()
    assert response.object == "response"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output_text == "hello from the fake upstream"
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 5)
    assert response.usage.total_tokens == 12
    assert response.instructions == "Answer briefly."
    assert raw.headers["x-route-responses"] == "translated"
    assert raw.headers["x-route-variant"] == "instruct"
    sent = seen(fake)[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "up-instruct"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Say hello"},
    ]
    assert sent.body["max_tokens"] == 40
    assert sent.body["temperature"] == 0.2
    assert "input" not in sent.body and "instructions" not in sent.body


def test_responses_auto_is_classified_like_chat(proxy_url: str, fake: FakeUpstream) -> None:
    raw = client(proxy_url).responses.with_raw_response.create(
        model="auto",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "write hello world in C"}]}
        ],
    )
    response = raw.parse()
    assert response.output_text == "hello from the fake upstream"
    assert raw.headers["x-route-class"] in ("completion", "instruction", "complex")
    # the variant the proxy chose, not the backend's own model name
    assert response.model == raw.headers["x-route-variant"]
    assert seen(fake)[-1].body["messages"] == [
        {"role": "user", "content": "write hello world in C"}
    ]


def test_responses_stream_helper(proxy_url: str, fake: FakeUpstream) -> None:
    sdk = client(proxy_url)
    with sdk.responses.stream(
        model="instruct", input="count", extra_body={"fake": {"chunks": 3}}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert final.model == "up-instruct"  # a named variant: the backend's name, as for chat
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [d.snapshot for d in deltas] == ["tok0 ", "tok0 tok1 ", "tok0 tok1 tok2 "]
    assert final.output_text == "tok0 tok1 tok2 "
    assert final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 3
    sent = seen(fake)[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_responses_auto_stream_names_the_variant(proxy_url: str) -> None:
    with client(proxy_url).responses.stream(
        model="auto", input="write hello world in C", extra_body={"fake": {"chunks": 2}}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    created = next(e for e in events if e.type == "response.created")
    assert final.model == created.response.model
    assert final.model == "instruct"


def test_responses_function_tool_round_trip(proxy_url: str, fake: FakeUpstream) -> None:
    sdk = client(proxy_url)
    first = sdk.responses.create(
        model="instruct",
        input="What's the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="auto",
        extra_body={"fake": {"tool_calls": [CALL]}},
    )
    [call] = first.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}
    assert call.call_id == "call0-fake"
    sent = seen(fake)[-1].body
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == "auto"
    # the second turn sends the call and its output back, as the SDK's docs show
    second = sdk.responses.create(
        model="instruct",
        input=[
            {"role": "user", "content": "What's the weather in Paris?"},
            *first.output,  # the model's call sent back as it came, as OpenAI's docs do
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "hello from the fake upstream"
    messages = seen(fake)[-1].body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call0-fake",
                "type": "function",
                "function": {"name": "get_weather", "arguments": CALL["arguments"]},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call0-fake", "content": "18C, sunny"}


def test_responses_function_call_streamed(proxy_url: str, fake: FakeUpstream) -> None:
    sdk = client(proxy_url)
    with sdk.responses.stream(
        model="instruct",
        input="What's the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        extra_body={"fake": {"tool_calls": [CALL, {"name": "get_time", "arguments": "{}"}]}},
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert final.model == "up-instruct"  # a named variant: the backend's name, as for chat
    assert kinds.count("response.output_item.added") == 2
    assert kinds.count("response.function_call_arguments.done") == 2
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    weather = [d for d in deltas if d.output_index == 0]
    assert len(weather) > 1  # sent in fragments, as they came
    assert weather[-1].snapshot == CALL["arguments"]
    assert kinds[-1] == "response.completed"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", CALL["arguments"]),
        ("get_time", "{}"),
    ]
    assert [c.call_id for c in calls] == ["call0-fake", "call1-fake"]


def test_responses_json_schema_becomes_response_format(proxy_url: str, fake: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    client(proxy_url).responses.create(
        model="instruct",
        input="give me a",
        text={"format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}},
    )
    assert seen(fake)[-1].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }


def test_responses_parse_structured_output(proxy_url: str, fake: FakeUpstream) -> None:
    class Answer(pydantic.BaseModel):
        a: int

    parsed = client(proxy_url).responses.parse(
        model="instruct",
        input="give me a",
        text_format=Answer,
        extra_body={"fake": {"text": '{"a": 42}'}},
    )
    assert parsed.output_parsed == Answer(a=42)
    fmt = seen(fake)[-1].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Answer"
    assert fmt["json_schema"]["schema"]["properties"]["a"]["type"] == "integer"


def test_responses_on_a_base_model_variant(proxy_url: str, fake: FakeUpstream) -> None:
    sdk = client(proxy_url)
    raw = sdk.responses.with_raw_response.create(model="base", input="Say hi")
    assert raw.parse().output_text == "hello from the fake upstream"
    assert raw.headers["x-route-chat"] == "transcript"
    assert raw.headers["x-route-responses"] == "translated"
    sent = seen(fake)[-1]
    assert sent.path == "/v1/completions"
    assert sent.body["prompt"] == "User: Say hi\nAssistant:"
    with sdk.responses.stream(
        model="base", input="Say hi", extra_body={"fake": {"chunks": 2}}
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == "tok0 tok1 "


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ],
)
def test_responses_stateful_fields_are_400(
    proxy_url: str, fake: FakeUpstream, fields: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "instruct", "input": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy_url).responses.create(**body)
    error: Any = caught.value.body
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert param.split("[")[0] in error["message"] or "item_reference" in error["message"]
    assert seen(fake) == []  # refused before anything reached a backend


def test_responses_store_false_is_fine(proxy_url: str) -> None:
    out = client(proxy_url).responses.create(model="instruct", input="hi", store=False)
    assert out.status == "completed"


def test_responses_stream_failing_midway_ends_with_response_failed(
    proxy_url: str, fake: FakeUpstream
) -> None:
    sdk = client(proxy_url)
    with sdk.responses.stream(
        model="instruct", input="count", extra_body={"fake": {"chunks": 5, "die_after": 2}}
    ) as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds.count("response.output_text.delta") == 2
    assert kinds[-2:] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_metrics_count_tokens_and_ttft(proxy_url: str, fake: FakeUpstream) -> None:
    sdk = client(proxy_url)
    with sdk.responses.stream(
        model="instruct", input="count", extra_body={"fake": {"chunks": 4}}
    ) as stream:
        stream.get_final_response()
    text = httpx.get(proxy_url + "/metrics").text
    ttft = "variant_proxy_time_to_first_token_seconds_count"
    assert f'{ttft}{{endpoint="responses",variant="instruct"}} 1.0' in text
    assert 'variant_proxy_completion_tokens_total{variant="instruct"} 4.0' in text
    assert (
        'variant_proxy_requests_total{class="direct",endpoint="responses",status="200",'
        'variant="instruct"} 1.0'
    ) in text


# -- POST /v1/responses relayed to a backend that serves it -------------------------------------


def test_responses_native_backend_relays_byte_for_byte(proxy_url: str, fake: FakeUpstream) -> None:
    body = {"model": "served", "input": "hi", "stream": True, "max_output_tokens": 9}
    with httpx.stream("POST", proxy_url + "/v1/responses", json=body, timeout=20) as r:
        got = b"".join(r.iter_raw())
        assert r.headers["x-route-responses"] == "native"
    assert got == b"".join(responses_stream_events("up-served", "hello from the fake upstream"))
    sent = seen(fake)[-1]
    assert sent.path == "/v1/responses"
    assert sent.body == {**body, "model": "up-served"}
    whole = httpx.post(proxy_url + "/v1/responses", json={**body, "stream": False}).json()
    assert whole["object"] == "response"
    assert whole["output"][0]["content"][0]["text"] == "hello from the fake upstream"
    text = httpx.get(proxy_url + "/metrics").text
    assert 'variant_proxy_completion_tokens_total{variant="served"}' in text
