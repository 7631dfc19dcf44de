"""A base model used as what it is (issue 17), end to end: the official `openai` client →
variant-proxy (uvicorn, real socket) → a managed `llama-server` with the gemma 3 270M base
GGUF, described as `api: completion` and without `fim`.

A chat to it is sent as a plain transcript to `/v1/completions` and comes back in chat's
shape, whole and streamed, with none of another family's chat-template tokens; an infill
request is sent prefix-only and says so in `x-route-fim`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from proxy.app import create_app
from tests.helpers.config import ROOT, require_real_server
from tests.helpers.fakeupstream import run_server

pytestmark = pytest.mark.real_server

TEMPLATE_TOKENS = ("<|im_", "<start_of_turn>", "<end_of_turn>", "<MID>", "<SUF>", "<PRE>")
CAP = 48
ASK = [
    {"role": "system", "content": "You are a helpful Python programmer."},
    {"role": "user", "content": "Write a Python function that reverses a string."},
]


def base_config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "tests" / "real" / "single-gemma.yaml").read_text())
    data["server"]["state_dir"] = str(tmp / "state")
    model = "gemma3-270m"
    data["variants"] = {
        "gemma-base": {
            "backend": "gemma",
            "model": model,
            "api": "completion",
            "defaults": {"temperature": 0},
            "caps": {"max_tokens": CAP},
        },
        "gemma-prefix": {"backend": "gemma", "model": model, "api": "completion"},
    }
    data["routes"] = {
        "completion": ["gemma-prefix"],
        "instruction": ["gemma-base"],
        "default": "gemma-base",
    }
    path = tmp / "base.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    require_real_server()
    app = create_app(base_config(tmp_path_factory.mktemp("base")))
    with run_server(app) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)


def clean(text: str) -> None:
    for token in TEMPLATE_TOKENS:
        assert token not in text, f"{token!r} in {text!r}"


@pytest.mark.parametrize("model", ["gemma-base", "instruction"])
def test_chat_to_a_base_model(client: openai.OpenAI, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=ASK,
        max_tokens=4000,  # capped to CAP
    )
    reply = raw.parse()
    assert raw.headers["x-route-variant"] == "gemma-base"
    assert raw.headers["x-route-chat"] == "transcript"
    assert reply.object == "chat.completion"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    clean(choice.message.content)
    assert "\nUser:" not in choice.message.content  # the stop sequence ended the turn
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= CAP


def test_chat_stream_to_a_base_model(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemma-base",
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks: list[Any] = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text.strip()
    clean(text)
    assert with_choices[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= CAP


@pytest.mark.parametrize(
    "request_",
    [
        {"prompt": "def reverse_string(s):\n    ", "suffix": "\n\nprint(reverse_string('ab'))"},
        {"prompt": "<PRE> def reverse_string(s):\n     <SUF>\n\nprint(1) <MID>"},
    ],
    ids=["suffix-field", "fim-markers"],
)
def test_infill_to_a_model_without_fim_is_prefix_only(
    client: openai.OpenAI, request_: dict[str, Any]
) -> None:
    suffix = request_.get("suffix")
    raw = client.completions.with_raw_response.create(
        model="completion",
        prompt=request_["prompt"],
        suffix=suffix if suffix is not None else openai.NOT_GIVEN,
        max_tokens=24,
        temperature=0,
    )
    assert raw.headers["x-route-fim"] == "prefix-only"
    assert raw.headers["x-route-variant"] == "gemma-prefix"
    reply = raw.parse()
    assert reply.object == "text_completion"
    clean(reply.choices[0].text)
    assert reply.usage is not None and reply.usage.completion_tokens > 0
