"""Reasoning models, over a real socket: the bench times the first reasoning token and the
first answer token separately, counts reasoning tokens, keeps reasoning out of the scored
answer, and computes tokens/s over a window that holds every token the usage counts.

The upstream streams what llama-server sends for a reasoning model (`delta.reasoning_content`,
then `delta.content`, then a usage chunk with `completion_tokens_details.reasoning_tokens`),
or the same thoughts inline as `<think>…</think>` in the content. Only lower bounds on
times are asserted (sleeps guarantee them), so a loaded machine cannot make it flaky.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from proxy.bench.client import run_request
from tests.helpers.fakeupstream import run_server

GAP = 0.15
THOUGHTS = ["Let me think.", " Double it.", " Easy.", " Done thinking."]
ANSWER = ["```python\n", "def double(x):\n    return 2 * x\n", "```"]


class ReasoningUpstream:
    def __init__(self, inline: bool) -> None:
        self.inline = inline

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            for _ in range(2):
                message = await receive()
                await send({"type": message["type"] + ".complete"})
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def event(delta: dict[str, Any], **extra: Any) -> None:
            chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}], **extra}
            body = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})

        if self.inline:
            await event({"content": "<think>"})
        for thought in THOUGHTS:
            await asyncio.sleep(GAP)
            await event({"content": thought} if self.inline else {"reasoning_content": thought})
        if self.inline:
            await event({"content": "</think>\n\n"})
        for piece in ANSWER:
            await asyncio.sleep(GAP)
            await event({"content": piece})
        usage = {
            "prompt_tokens": 5,
            "completion_tokens": len(THOUGHTS) + len(ANSWER),
            "completion_tokens_details": {"reasoning_tokens": len(THOUGHTS)},
        }
        body = b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


@pytest.mark.parametrize("inline", [False, True], ids=["reasoning_content", "think-tags"])
def test_reasoning_is_timed_and_counted_apart(inline: bool) -> None:
    with run_server(ReasoningUpstream(inline)) as url:

        async def go() -> Any:
            async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
                return await run_request(client, "/v1/chat/completions", body)

        sample = asyncio.run(go())
    assert sample.error is None
    assert sample.text.strip() == "".join(ANSWER).strip()  # the scored answer: no thoughts
    assert "think" not in sample.text.lower() and "Easy" not in sample.text
    assert sample.reasoning_tokens == len(THOUGHTS)
    assert sample.ttft_reasoning_s is not None and sample.ttft_answer_s is not None
    assert sample.ttft_reasoning_s >= GAP * 0.9
    # the answer starts only after every thought and one more gap
    assert sample.ttft_answer_s - sample.ttft_reasoning_s >= GAP * len(THOUGHTS) * 0.9
    # ttft is the first generated token of any kind, as the server's own timing counts it
    assert sample.ttft_s is not None and sample.ttft_s <= sample.ttft_reasoning_s
    # 7 tokens spread over >= 6 gaps: counting only the answer's window would give >= 10/s
    window = GAP * (len(THOUGHTS) + len(ANSWER) - 1) * 0.9
    assert sample.tokens_per_s is not None
    assert sample.tokens_per_s <= (sample.output_tokens - 1) / window
    assert sample.output_tokens == len(THOUGHTS) + len(ANSWER)
