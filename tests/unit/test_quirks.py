"""The quirk table and the stream repairs (`proxy.quirks`): which servers get which
repair, and what each repair does to chunks in the shapes those servers send."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from proxy.quirks import QUIRKS, StreamRepair, parse_version, repairs_for

BOTH = frozenset({"tool_call_index", "finish_reason"})


@pytest.mark.parametrize(
    ("kind", "version", "off", "expected"),
    [
        ("ollama", "0.20.4", frozenset(), BOTH),
        ("ollama", "0.3.14", frozenset(), BOTH),
        ("ollama", None, frozenset(), BOTH),  # unknown version: the repairs are safe
        ("ollama", "0.20.4", frozenset({"tool_call_index"}), frozenset({"finish_reason"})),
        ("ollama", "0.20.4", frozenset({"ollama-finish-reason"}), frozenset({"tool_call_index"})),
        # an old server is repaired by the "missing" entry, a new one by the "zero" entry
        ("ollama", "0.3.14", frozenset({"ollama-tool-call-index-zero"}), BOTH),
        ("ollama", "0.20.4", frozenset({"ollama-tool-call-index-zero"}), {"finish_reason"}),
        ("llamacpp", "b5000", frozenset(), frozenset()),
        ("vllm", None, frozenset(), frozenset()),
        ("lmstudio", None, frozenset(), frozenset()),
        ("openai", None, frozenset(), frozenset()),
    ],
)
def test_repairs_by_kind_and_version(
    kind: str, version: str | None, off: frozenset[str], expected: frozenset[str]
) -> None:
    assert repairs_for(kind, version, off) == expected


def test_every_quirk_says_where_it_was_reported() -> None:
    assert all(q.reported and q.repair in BOTH for q in QUIRKS)
    assert len({q.name for q in QUIRKS}) == len(QUIRKS)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("0.20.4", (0, 20, 4)), ("v0.5", (0, 5, 0)), (" 0.4.7-rc1", (0, 4, 7)), ("b5000", None)],
)
def test_versions(text: str, parsed: tuple[int, ...] | None) -> None:
    assert parse_version(text) == parsed


def ollama_call(i: int, city: str, index: int | None = 0) -> dict[str, Any]:
    """One of Ollama's streamed chunks: a whole tool call, `index` 0 (or none, < 0.4.7)."""
    call: dict[str, Any] = {"id": f"call_{i}", "type": "function"}
    if index is not None:
        call["index"] = index
    call["function"] = {"name": "get_weather", "arguments": f'{{"city":"{city}"}}'}
    delta = {"role": "assistant", "content": "", "tool_calls": [call]}
    return {
        "id": "chatcmpl-317",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "qwen2.5:7b",
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def finish(reason: str) -> dict[str, Any]:
    delta = {"role": "assistant", "content": ""}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}


def indexes(chunk: dict[str, Any]) -> list[int]:
    return [c["index"] for c in chunk["choices"][0]["delta"]["tool_calls"]]


@pytest.mark.parametrize("index", [0, None])
def test_each_new_call_gets_the_next_index(index: int | None) -> None:
    repair = StreamRepair(BOTH)
    first, second, third = (ollama_call(i, c, index) for i, c in enumerate("ABC"))
    assert repair.chunk(first) is (index is None)  # 0 is already right for the first
    assert repair.chunk(second) and repair.chunk(third)
    assert [indexes(c) for c in (first, second, third)] == [[0], [1], [2]]


def test_a_continuation_keeps_its_calls_index() -> None:
    repair = StreamRepair(BOTH)
    a, b = ollama_call(0, "A"), ollama_call(1, "B")
    more = ollama_call(9, "tail")
    del more["choices"][0]["delta"]["tool_calls"][0]["id"]
    more["choices"][0]["delta"]["tool_calls"][0]["index"] = 0
    for chunk in (a, b, more):
        repair.chunk(chunk)
    assert indexes(more) == [1]  # the backend's index 0 now names the second call


def test_correct_indexes_are_left_alone() -> None:
    """A server that numbers right (llama-server, vLLM: id on the first delta of each
    call, arguments streamed after it) comes out unchanged."""
    repair = StreamRepair(BOTH)
    stream = []
    for n, city in enumerate(("Paris", "Tokyo")):
        head = ollama_call(n, "", n)
        head["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] = ""
        tail = ollama_call(n, city, n)
        del tail["choices"][0]["delta"]["tool_calls"][0]["id"]
        stream += [head, tail]
    before = copy.deepcopy(stream)
    assert not any(repair.chunk(c) for c in stream)
    assert stream == before


def test_stop_after_tool_calls_says_tool_calls() -> None:
    repair = StreamRepair(BOTH)
    repair.chunk(ollama_call(0, "A"))
    end = finish("stop")
    assert repair.chunk(end) and end["choices"][0]["finish_reason"] == "tool_calls"
    assert repair.closing() is None
    plain = StreamRepair(BOTH)
    stop = finish("stop")
    assert not plain.chunk(stop) and stop["choices"][0]["finish_reason"] == "stop"
    length = finish("length")
    repair.chunk(length)
    assert length["choices"][0]["finish_reason"] == "length"


def test_a_stream_without_finish_reason_gets_one_before_done() -> None:
    repair = StreamRepair(BOTH)
    repair.chunk(ollama_call(0, "A"))
    closing = repair.closing()
    assert closing is not None
    assert closing["choices"] == [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    assert closing["id"] == "chatcmpl-317" and closing["model"] == "qwen2.5:7b"
    assert repair.closing() is None  # once
    assert StreamRepair(frozenset({"tool_call_index"})).closing() is None
