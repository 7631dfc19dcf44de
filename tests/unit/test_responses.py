"""The Responses API translation (`proxy.responses`): pure tables, and every event the
stream translator writes validated against the openai SDK's own types and fed through
the SDK's stream accumulator, whatever byte boundaries the chat stream arrives in."""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from proxy.config import parse_config
from proxy.errors import InvalidRequest
from proxy.responses import ResponseStream, chat_to_response, check, to_chat, with_limits
from proxy.runtime import Runtime
from proxy.sse import SSEDecoder
from proxy.streammeter import StreamMeter
from tests.helpers.openai_wire import (
    DONE,
    chunk,
    event,
    full,
    full_tool_calls,
    responses_full,
    responses_stream_events,
    tool_call_chunks,
)

EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
CALL = {"name": "get_weather", "arguments": '{"city": "Paris"}'}


# -- the request --------------------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    out = to_chat(
        {
            "model": "m",
            "input": "hi",
            "instructions": "be brief",
            "max_output_tokens": 12,
            "temperature": 0.5,
            "top_p": 0.9,
        }
    )
    assert out == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 12,
        "temperature": 0.5,
        "top_p": 0.9,
    }


def test_message_items_and_parts() -> None:
    out = to_chat(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look: "},
                        {"type": "input_text", "text": "this"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "and"},
                        {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                    ],
                },
            ],
        }
    )
    assert out["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "look: this"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
    ]


def test_function_calls_and_outputs() -> None:
    out = to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "weather in Paris and Rome?"},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"c":"P"}'},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"c":"R"}'},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
            ],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"},
            "parallel_tool_calls": True,
        }
    )
    call = {"type": "function", "function": {"name": "w", "arguments": '{"c":"P"}'}, "id": "c1"}
    assert out["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            call,
            {"type": "function", "function": {"name": "w", "arguments": '{"c":"R"}'}, "id": "c2"},
        ],
    }
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]
    assert out["tools"] == [
        {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "w"}}
    assert out["parallel_tool_calls"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}}, None),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
        (
            {"format": {"type": "json_schema", "name": "A", "schema": {"type": "object"}}},
            {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"}}},
        ),
        ({"verbosity": "low"}, None),
    ],
)
def test_text_format(text: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = to_chat({"model": "m", "input": "x", "text": text})
    assert out.get("response_format") == expected


def test_stream_asks_for_usage_and_service_fields_are_dropped() -> None:
    out = to_chat(
        {
            "model": "m",
            "input": "x",
            "stream": True,
            "store": False,
            "metadata": {"a": "b"},
            "include": ["reasoning.encrypted_content"],
            "truncation": "auto",
            "reasoning": {"effort": "low"},
            "top_k": 40,  # not a Responses field: the backend's business
        }
    )
    assert out == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "top_k": 40,
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": {"id": "conv_1"}}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
        ({"input": [{"type": "computer_call_output"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_file"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": [{"role": "system", "content": "only rules"}]}, "input"),
        ({"instructions": ["x"]}, "instructions"),
        ({"text": {"format": {"type": "grammar"}}}, "text.format"),
    ],
)
def test_check_names_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check({"model": "m", "input": "hi", **fields})
    assert caught.value.param == param


def test_check_passes_the_stateless_subset() -> None:
    check({"model": "m", "input": "hi", "store": False, "background": False})


@pytest.mark.parametrize(
    ("payload", "defaults", "cap", "expected"),
    [
        ({"input": "x"}, {}, None, {"input": "x"}),
        ({"input": "x"}, {}, 64, {"input": "x", "max_output_tokens": 64}),
        ({"input": "x", "max_output_tokens": 500}, {}, 64, {"input": "x", "max_output_tokens": 64}),
        ({"input": "x", "max_output_tokens": 5}, {}, 64, {"input": "x", "max_output_tokens": 5}),
        (
            {"input": "x"},
            {"temperature": 0.1, "max_tokens": 9},
            None,
            {"input": "x", "temperature": 0.1, "max_output_tokens": 9},
        ),
        (
            {"input": "x", "max_output_tokens": 5},
            {"max_tokens": 9},
            None,
            {"input": "x", "max_output_tokens": 5},
        ),
    ],
)
def test_with_limits(
    payload: dict[str, Any], defaults: dict[str, Any], cap: int | None, expected: dict[str, Any]
) -> None:
    assert with_limits(payload, defaults, cap) == expected


# -- whole answers ------------------------------------------------------------------------------


def test_whole_text_answer() -> None:
    request = {"model": "auto", "input": "hi", "instructions": "brief", "temperature": 0.3}
    out = json.loads(chat_to_response(json.dumps(full(True, "up", "hello")).encode(), request))
    response = Response.model_validate(out)
    assert response.output_text == "hello"
    assert response.status == "completed"
    assert response.model == "up"
    assert response.instructions == "brief" and response.temperature == 0.3
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 5)


def test_whole_tool_call_answer() -> None:
    body = json.dumps(full_tool_calls("up", [CALL])).encode()
    response = Response.model_validate(json.loads(chat_to_response(body, {"input": "x"})))
    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == (
        "get_weather",
        CALL["arguments"],
        "call0-fake",
    )


def test_whole_answer_cut_by_the_limit_is_incomplete() -> None:
    answer = full(True, "up", "hel")
    answer["choices"][0]["finish_reason"] = "length"
    response = Response.model_validate(
        json.loads(chat_to_response(json.dumps(answer).encode(), {}))
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_whole_reasoning_comes_first() -> None:
    answer = full(True, "up", "42")
    answer["choices"][0]["message"]["reasoning_content"] = "think"
    response = Response.model_validate(
        json.loads(chat_to_response(json.dumps(answer).encode(), {}))
    )
    assert [item.type for item in response.output] == ["reasoning", "message"]


@pytest.mark.parametrize("body", [b"not json", b'{"error": {"message": "x"}}', b"[]"])
def test_whole_non_answers_pass_unchanged(body: bytes) -> None:
    assert chat_to_response(body, {}) == body


# -- streams ------------------------------------------------------------------------------------


def text_stream(words: list[str], finish: str = "stop", usage: bool = True) -> bytes:
    out = b"".join(event(chunk(True, "up", w, i == 0, None)) for i, w in enumerate(words))
    out += event(chunk(True, "up", "", False, finish))
    if usage:
        tail = chunk(True, "up", "", False, None)
        tail["choices"] = []
        tail["usage"] = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 9}
        out += event(tail)
    return out + DONE


def tool_stream(calls: list[dict[str, str]]) -> bytes:
    return b"".join(event(c) for c in tool_call_chunks("up", calls)) + DONE


def run(
    stream: bytes, request: dict[str, Any] | None = None, cuts: list[int] | None = None
) -> bytes:
    """Translate `stream` fed in pieces cut at `cuts`, then flushed."""
    translator = ResponseStream(request or {"model": "auto", "input": "x"})
    out, at = b"", 0
    for cut in [*(cuts or []), len(stream)]:
        out += translator.feed(stream[at:cut])
        at = cut
    return out + translator.flush()


def events(out: bytes) -> list[dict[str, Any]]:
    decoded = list(SSEDecoder().feed(out)) + list(SSEDecoder().flush())
    found = []
    for e in decoded:
        data = json.loads(e.data)
        assert e.event == data["type"]  # the `event:` line names the type, as OpenAI's does
        found.append(data)
    return found


def sdk_final(found: list[dict[str, Any]]) -> Any:
    """Every event validated by the SDK's types, then accumulated as
    `client.responses.stream` does; its final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    final = None
    for data in found:
        parsed = EVENTS.validate_python(data)  # strict: every required field is present
        for out in state.handle_event(parsed):
            if out.type == "response.completed":
                final = out.response
    return final


_IDS = re.compile(rb'"(resp|msg|fc|rs|call)_[0-9a-f]{32}"')
_TIMES = re.compile(rb'"(created_at|completed_at)":[0-9]+')


def normalized(out: bytes) -> bytes:
    return _TIMES.sub(rb'"\1":0', _IDS.sub(rb'"\1_"', out))


def test_text_stream_events_and_final_response() -> None:
    found = events(run(text_stream(["Hel", "lo", "!"])))
    kinds = [e["type"] for e in found]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in found] == list(range(len(found)))
    assert found[7]["text"] == "Hello!"
    final = sdk_final(found)
    assert final.output_text == "Hello!"
    assert final.model == "up"
    assert final.usage.input_tokens == 3 and final.usage.output_tokens == 3
    assert b"[DONE]" not in run(text_stream(["x"]))  # the Responses stream has no [DONE]


def test_tool_call_stream_events_and_final_response() -> None:
    calls = [CALL, {"name": "get_time", "arguments": "{}"}]
    found = events(run(tool_stream(calls)))
    kinds = [e["type"] for e in found]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.content_part.added" not in kinds  # null content: no message item
    assert kinds.count("response.function_call_arguments.done") == 2
    assert kinds[-1] == "response.completed"
    final = sdk_final(found)
    assert [(o.name, o.arguments, o.call_id) for o in final.output] == [
        ("get_weather", CALL["arguments"], "call0-fake"),
        ("get_time", "{}", "call1-fake"),
    ]


def test_text_then_tool_call() -> None:
    stream = event(chunk(True, "up", "Let me check.", True, None))
    stream += b"".join(event(c) for c in tool_call_chunks("up", [CALL])[1:])
    final = sdk_final(events(run(stream + DONE)))
    assert [o.type for o in final.output] == ["message", "function_call"]
    assert final.output_text == "Let me check."


def test_reasoning_stream() -> None:
    think = chunk(True, "up", "", True, None)
    think["choices"][0]["delta"] = {"role": "assistant", "reasoning_content": "hmm"}
    found = events(run(event(think) + text_stream(["42"])))
    kinds = [e["type"] for e in found]
    assert "response.reasoning_text.delta" in kinds
    final = sdk_final(found)
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "hmm"


def test_length_cut_ends_incomplete() -> None:
    found = events(run(text_stream(["a", "b"], finish="length")))
    assert found[-1]["type"] == "response.incomplete"
    assert found[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    for data in found:
        EVENTS.validate_python(data)


def test_finish_without_done_completes_at_flush() -> None:
    stream = text_stream(["a"], usage=False).removesuffix(DONE)
    assert events(run(stream))[-1]["type"] == "response.completed"


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(event(chunk(True, "up", "half", True, None)), id="cut-short"),
        pytest.param(b"", id="empty"),
        pytest.param(
            event(chunk(True, "up", "half", True, None))
            + b"\n\n"
            + event({"error": {"message": "backend 'main' stalled", "code": "upstream_timeout"}}),
            id="error-event",
        ),
    ],
)
def test_failures_end_with_error_and_response_failed(stream: bytes) -> None:
    found = events(run(stream))
    assert [e["type"] for e in found[-2:]] == ["error", "response.failed"]
    assert found[-1]["response"]["status"] == "failed"
    assert found[-1]["response"]["error"]["code"] == "server_error"
    for data in found:
        EVENTS.validate_python(data)
    if b"stalled" in stream:
        assert found[-2]["message"] == "backend 'main' stalled"
        assert found[-2]["code"] == "upstream_timeout"


def test_nothing_after_the_end() -> None:
    translator = ResponseStream({"model": "m", "input": "x"})
    out = translator.feed(text_stream(["a"]))
    assert translator.feed(event(chunk(True, "up", "late", False, None))) == b""
    assert translator.flush() == b""
    assert events(out)[-1]["type"] == "response.completed"


@pytest.mark.parametrize("kind", ["text", "tools"])
def test_any_byte_split_gives_the_same_events(kind: str) -> None:
    stream = text_stream(["Hé", "llo", " wörld"]) if kind == "text" else tool_stream([CALL])
    whole = normalized(run(stream))
    for cut in range(1, len(stream)):
        assert normalized(run(stream, cuts=[cut])) == whole, cut
    # and in many small pieces
    assert normalized(run(stream, cuts=list(range(3, len(stream), 7)))) == whole


def test_keeps_the_request_echo() -> None:
    request = {
        "model": "auto",
        "input": "x",
        "tools": [{"type": "function", "name": "w", "parameters": {}, "strict": True}],
        "tool_choice": "required",
        "max_output_tokens": 5,
    }
    created = events(run(text_stream(["a"]), request))[0]["response"]
    assert created["tools"] == request["tools"]
    assert created["tool_choice"] == "required"
    assert created["max_output_tokens"] == 5
    assert created["status"] == "in_progress"


# -- metering a Responses stream relayed as is ----------------------------------------------------


def test_streammeter_reads_a_native_responses_stream() -> None:
    meter = StreamMeter(started=0.0, stream=True)
    for i, piece in enumerate(responses_stream_events("m", "a b c")):
        meter.feed(piece, 1.0 + i)
    assert meter.ended()
    stats = meter.result()
    assert stats.token_events == 3
    assert stats.ttft == 4.0  # created, in_progress, item added, then the first delta
    assert stats.output_tokens == 2 and stats.prompt_tokens == 7  # the reported usage wins


def test_streammeter_native_stream_cut_short_has_not_ended() -> None:
    meter = StreamMeter(started=0.0, stream=True)
    for piece in responses_stream_events("m", "a b")[:-1]:
        meter.feed(piece, 1.0)
    assert not meter.ended()


def test_streammeter_reads_a_whole_responses_usage() -> None:
    meter = StreamMeter(started=0.0, stream=False)
    meter.feed(json.dumps(responses_full("m", "hi")).encode(), 1.0)
    stats = meter.result()
    assert (stats.prompt_tokens, stats.output_tokens) == (7, 2)


# -- what one attempt sends (Runtime.upstream_for) ----------------------------------------------


def runtime() -> Runtime:
    url = "http://127.0.0.1:1"
    limits = {"defaults": {"temperature": 0.1}, "caps": {"max_tokens": 50}}
    cfg = {
        "backends": {
            "local": {"kind": "llamacpp", "url": url},
            "served": {"kind": "openai", "url": url, "responses_api": True},
        },
        "variants": {
            "chat": {"backend": "local", "model": "m-chat", "replicas": ["served"], **limits},
            "base": {"backend": "served", "model": "m-base", "api": "completion"},
        },
        "routes": {"default": "chat"},
    }
    return Runtime(parse_config(cfg), "<test>", {})


def test_upstream_for_translates_unless_the_backend_serves_the_api() -> None:
    rt = runtime()
    payload = {"model": "auto", "input": "hi", "max_output_tokens": 500, "stream": True}
    translated = rt.upstream_for("chat", "responses", payload, backend="local")
    assert (translated.path, translated.responses) == ("/v1/chat/completions", "translated")
    sent = json.loads(translated.body)
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("m-chat", 50, 0.1)
    assert (b"x-route-responses", b"translated") in translated.headers()
    # the replica on a backend that serves the API: as sent, with the variant's limits
    native = rt.upstream_for("chat", "responses", payload, backend="served")
    assert (native.path, native.responses) == ("/v1/responses", "native")
    assert json.loads(native.body) == {
        "model": "m-chat",
        "input": "hi",
        "max_output_tokens": 50,
        "stream": True,
        "temperature": 0.1,
    }
    # a base model is always translated, then rendered as a transcript
    base = rt.upstream_for("base", "responses", payload, backend="served")
    assert (base.path, base.responses, base.adaptation) == (
        "/v1/completions",
        "translated",
        "transcript",
    )
    assert json.loads(base.body)["prompt"] == "User: hi\nAssistant:"


def test_decide_classifies_the_chat_it_becomes() -> None:
    rt = runtime()
    decision = rt.decide(
        "responses",
        {"model": "auto", "input": [{"role": "user", "content": "hi"}], "tools": []},
    )
    assert decision.variant == "chat"
    assert decision.reading is not None and decision.reading["ask"] == "hi"
