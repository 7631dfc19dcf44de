"""The Responses API end to end: the official `openai` client → variant-proxy (uvicorn,
real socket) → a managed `llama-server` with the gemma 3 270M base GGUF.

Three ways through: translated to chat completions (a chat variant), translated to chat
and then to a plain transcript (the same model described as what it is, a base model:
`api: completion`), and relayed as is to llama-server's own `/v1/responses` (a second
backend entry on the same server with `responses_api: true`). A 270M base model answers
nonsense, so the assertions are on the shape of what comes back, never its quality."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from proxy.app import create_app
from tests.helpers.config import ROOT, require_real_server
from tests.helpers.fakeupstream import free_port, run_server

pytestmark = pytest.mark.real_server

CAP = 24


def responses_config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "tests" / "real" / "single-gemma.yaml").read_text())
    data["server"]["state_dir"] = str(tmp / "state")
    port = free_port()
    gemma = data["backends"]["gemma"]
    gemma["port"] = port
    data["backends"]["served"] = {
        "kind": "llamacpp",
        "url": f"http://127.0.0.1:{port}",
        "responses_api": True,
        "timeouts": gemma["timeouts"],
    }
    model = "gemma3-270m"
    limits: dict[str, Any] = {"defaults": {"temperature": 0}, "caps": {"max_tokens": CAP}}
    data["variants"] = {
        "gemma-chat": {"backend": "gemma", "model": model, **limits},
        "gemma-base": {"backend": "gemma", "model": model, "api": "completion", **limits},
        "gemma-native": {"backend": "served", "model": model, **limits},
    }
    data["routes"] = {"default": "gemma-base", "instruction": ["gemma-base"]}
    path = tmp / "responses.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def proxy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_real_server()
    app = create_app(responses_config(tmp_path_factory.mktemp("responses")))
    with run_server(app) as url:
        yield url


@pytest.fixture
def client(proxy_url: str) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=proxy_url + "/v1", api_key="x", max_retries=0, timeout=120)
    yield sdk
    sdk.close()


def assert_response_shape(response: Any) -> None:
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete")
    [message] = [o for o in response.output if o.type == "message"] or [None]
    assert message is not None and message.role == "assistant"
    assert isinstance(response.output_text, str)
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= CAP
    if response.status == "incomplete":
        assert response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(("model", "chat"), [("gemma-chat", None), ("gemma-base", "transcript")])
def test_responses_create(client: openai.OpenAI, model: str, chat: str | None) -> None:
    raw = client.responses.with_raw_response.create(
        model=model,
        instructions="You are a helpful Python programmer.",
        input="Write a Python function that reverses a string.",
        max_output_tokens=4000,  # capped to CAP
    )
    assert raw.headers["x-route-responses"] == "translated"
    assert raw.headers.get("x-route-chat") == chat
    assert_response_shape(raw.parse())


@pytest.mark.parametrize("model", ["gemma-chat", "gemma-base"])
def test_responses_stream(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(
        model=model, input=[{"role": "user", "content": "Name three colours."}]
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    [done] = [e for e in events if e.type == "response.output_text.done"]
    assert deltas == done.text and deltas.strip()
    final = events[-1].response  # type: ignore[union-attr]
    assert_response_shape(final)
    assert final.output_text == deltas


def test_responses_stream_is_metered(client: openai.OpenAI, proxy_url: str) -> None:
    with client.responses.stream(model="gemma-base", input="Count to five.") as stream:
        for _ in stream:
            pass
    text = httpx.get(proxy_url + "/metrics").text
    ttft = [
        line
        for line in text.splitlines()
        if line.startswith("variant_proxy_time_to_first_token_seconds_count")
        and 'endpoint="responses"' in line
        and 'variant="gemma-base"' in line
    ]
    assert ttft and float(ttft[0].rsplit(" ", 1)[1]) >= 1


def test_responses_relayed_to_llama_servers_own_api(proxy_url: str) -> None:
    body = {"model": "gemma-native", "input": "Say hi.", "max_output_tokens": 8}
    r = httpx.post(proxy_url + "/v1/responses", json=body, timeout=120)
    assert r.status_code == 200
    assert r.headers["x-route-responses"] == "native"
    answer = r.json()
    assert answer["object"] == "response"
    assert answer["output"][0]["type"] == "message"
    assert answer["usage"]["output_tokens"] <= 8
    with httpx.stream(
        "POST", proxy_url + "/v1/responses", json={**body, "stream": True}, timeout=120
    ) as r:
        assert r.headers["x-route-responses"] == "native"
        raw = b"".join(r.iter_raw())
    events = [
        json.loads(line[len(b"data: ") :])
        for line in raw.split(b"\n")
        if line.startswith(b"data: ")
    ]
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    # llama-server's own events, as it sent them (it numbers none of them)
    assert all("sequence_number" not in e for e in events)
