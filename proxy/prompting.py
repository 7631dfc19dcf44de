"""Serving a request a variant can't take as sent: pure rewrites, no I/O.

Three adaptations, each decided per variant (so a fallback to a variant of the
other kind adapts again):

* **Chat to a base model** (`api: completion`). A pretrained model has no chat
  template; a model server asked for `/v1/chat/completions` falls back to some
  other family's template (ChatML), which the model has never seen and answers
  with template tokens until the context runs out. Instead the conversation is
  rendered as a plain transcript (:func:`render_transcript`) and sent to
  `/v1/completions` with stop sequences that end the assistant's turn; the
  answer is converted back to the chat shape the client asked for
  (:func:`completion_to_chat` for a whole answer, :class:`ChatStream` event by
  event for a stream, so nothing is buffered).
* **Infill to a model without FIM** (`fim` absent): only the prefix is sent
  (:func:`prefix_only`); the suffix and any FIM markers are dropped rather than
  rendered in another family's tokens.
* **Per-variant defaults and caps** (:func:`apply_limits`): fields the client
  didn't set are filled from `defaults`; `caps.max_tokens` lowers a larger (or
  missing) `max_tokens`/`max_completion_tokens`.

The transcript format::

    {system and developer messages, one paragraph each}

    User: {content}
    Assistant: {content}
    Tool: {content}
    User: {content}
    Assistant:

with stop sequences `TRANSCRIPT_STOP` added to the client's own `stop`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from .fim import FimParts
from .sse import SSEDecoder

__all__ = [
    "TRANSCRIPT_STOP",
    "ChatStream",
    "apply_limits",
    "chat_to_completion",
    "completion_to_chat",
    "prefix_only",
    "render_transcript",
]

#: where the assistant's turn ends: the model starting the next turn itself
TRANSCRIPT_STOP: tuple[str, ...] = ("\nUser:", "\nAssistant:")
_SPEAKERS = {"user": "User", "assistant": "Assistant", "tool": "Tool", "function": "Tool"}
#: chat-only request fields a completion endpoint doesn't know (or reads differently:
#: chat's `logprobs` is a boolean, completion's a count)
_CHAT_ONLY = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "parallel_tool_calls",
        "response_format",
        "logprobs",
        "top_logprobs",
        "max_completion_tokens",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "store",
        "metadata",
        "web_search_options",
    }
)


def _text(content: Any) -> str:
    """A message's text: the string, or its text parts joined (images etc. dropped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def render_transcript(messages: Any) -> tuple[str, list[str]]:
    """The conversation as a plain prompt ending with `Assistant:`, and its stop sequences.

    System and developer messages open the prompt as paragraphs; every other turn is
    one `Speaker: text` block. A trailing assistant message is continued (the prompt
    ends with its text), as a prefilled answer would be.
    """
    head: list[str] = []
    turns: list[str] = []
    items = messages if isinstance(messages, list) else []
    for i, message in enumerate(items):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "user"))
        text = _text(message.get("content")).strip()
        if role in ("system", "developer"):
            if text and turns:
                turns.append(f"System: {text}")  # an instruction mid-conversation
            elif text:
                head.append(text)
            continue
        speaker = _SPEAKERS.get(role, role.capitalize() or "User")
        if role == "assistant" and i == len(items) - 1:
            turns.append(f"Assistant: {text}" if text else "Assistant:")
            break
        turns.append(f"{speaker}: {text}")
    else:
        turns.append("Assistant:")
    prompt = "\n".join(turns)
    if head:
        prompt = "\n\n".join(head) + "\n\n" + prompt
    return prompt, list(TRANSCRIPT_STOP)


def _stops(client: Any, extra: list[str]) -> list[str]:
    """The client's stop sequences, then ours, without repeats."""
    mine = [client] if isinstance(client, str) else client if isinstance(client, list) else []
    out: list[str] = []
    for stop in [*mine, *extra]:
        if isinstance(stop, str) and stop and stop not in out:
            out.append(stop)
    return out


def chat_to_completion(body: Mapping[str, Any]) -> dict[str, Any]:
    """A chat request as a completion request: the transcript as `prompt`, its stops
    added, chat-only fields dropped, `max_completion_tokens` read as `max_tokens`."""
    prompt, stop = render_transcript(body.get("messages"))
    out = {k: v for k, v in body.items() if k not in _CHAT_ONLY}
    out["prompt"] = prompt
    out["stop"] = _stops(body.get("stop"), stop)
    limit = body.get("max_completion_tokens")
    if "max_tokens" not in out and limit is not None:
        out["max_tokens"] = limit
    return out


def prefix_only(body: Mapping[str, Any], parts: FimParts | None) -> dict[str, Any]:
    """An infill request for a model without FIM: the text before the cursor only.

    `parts` is the prompt's FIM reading (markers found); without markers the prompt is
    already the prefix and only the `suffix` field goes.
    """
    out = dict(body)
    out.pop("suffix", None)
    if parts is not None:
        out["prompt"] = parts.prefix
    return out


def apply_limits(
    body: dict[str, Any],
    defaults: Mapping[str, Any],
    max_tokens_cap: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`body` with the variant's defaults filled in and its cap enforced, and what changed.

    A default applies only to a field the client didn't send (`max_tokens` counts as
    sent when the client set `max_completion_tokens`). The cap lowers a larger token
    limit, and sets one when the request has none. Returns `body` itself when nothing
    changes; the second value is `{field: value, ..., "capped": {field: [asked, cap]}}`.
    """
    applied: dict[str, Any] = {}
    token_fields = ("max_tokens", "max_completion_tokens")
    out = body
    for key, value in defaults.items():
        taken = key in body or (key in token_fields and any(f in body for f in token_fields))
        if not taken:
            out = dict(out) if out is body else out
            out[key] = value
            applied[key] = value
    if max_tokens_cap is not None:
        capped: dict[str, list[Any]] = {}
        present = [f for f in token_fields if out.get(f) is not None]
        if not present:
            field = "max_tokens"
            out = dict(out) if out is body else out
            out[field] = max_tokens_cap
            capped[field] = [None, max_tokens_cap]
        for field in present:
            asked = out[field]
            if not isinstance(asked, int) or asked > max_tokens_cap:
                out = dict(out) if out is body else out
                out[field] = max_tokens_cap
                capped[field] = [asked, max_tokens_cap]
        if capped:
            applied["capped"] = capped
    return out, applied


# -- answers ----------------------------------------------------------------------------------


def _chat_id(raw: Any) -> str:
    text = str(raw) if raw else ""
    if text.startswith("chatcmpl-"):
        return text
    return "chatcmpl-" + (text.removeprefix("cmpl-") or str(time.time_ns()))


def completion_to_chat(body: bytes) -> bytes:
    """A whole completion answer as a `chat.completion`; anything else (an error, a
    shape it doesn't know) unchanged."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        return body
    choices = []
    for n, choice in enumerate(data["choices"]):
        if not isinstance(choice, dict):
            continue
        text = choice.get("text")
        choices.append(
            {
                "index": choice.get("index", n),
                "message": {
                    "role": "assistant",
                    "content": text.lstrip() if isinstance(text, str) else "",
                },
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
        )
    out: dict[str, Any] = {
        "id": _chat_id(data.get("id")),
        "object": "chat.completion",
        "created": data.get("created", int(time.time())),
        "model": data.get("model", ""),
        "choices": choices,
    }
    for key in ("usage", "system_fingerprint"):
        if key in data:
            out[key] = data[key]
    return orjson.dumps(out)


class ChatStream:
    """A completion SSE stream, converted to `chat.completion.chunk` events as it arrives.

    `feed(chunk) -> bytes` returns the converted events completed by `chunk` (maybe
    none: an event split across chunks waits for its end, never the stream); `flush()`
    finishes at the end. Each choice's first event carries `role: assistant`, the
    whitespace the model writes after `Assistant:` is dropped, `[DONE]` and usage pass
    on, and an event that is not a completion chunk (an error) passes unchanged.
    """

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        #: per choice index: has the role been sent, has text other than spaces begun
        self._started: set[int] = set()
        self._spoken: set[int] = set()
        #: id, created and model of the stream, for events that leave them out (usage)
        self._ids: dict[str, Any] = {"created": int(time.time()), "model": ""}

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._convert(e.data) for e in self._decoder.feed(chunk))

    def flush(self) -> bytes:
        return b"".join(self._convert(e.data) for e in self._decoder.flush())

    def _convert(self, data: bytes) -> bytes:
        if data.strip() == b"[DONE]":
            return b"data: [DONE]\n\n"
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b"data: " + data + b"\n\n"
        if not isinstance(event, dict) or not isinstance(event.get("choices"), list):
            return b"data: " + data + b"\n\n"
        choices = [c for c in (self._choice(n, c) for n, c in enumerate(event["choices"])) if c]
        if not choices and not event.get("usage"):
            return b""  # only the spaces before the answer: nothing to say yet
        ids = self._ids
        for key in ("id", "created", "model"):
            if event.get(key) is not None:
                ids[key] = event[key]
        out: dict[str, Any] = {
            "id": _chat_id(ids.get("id")),
            "object": "chat.completion.chunk",
            "created": ids["created"],
            "model": ids["model"],
            "choices": choices,
        }
        for key in ("usage", "system_fingerprint"):
            if key in event:
                out[key] = event[key]
        return b"data: " + orjson.dumps(out) + b"\n\n"

    def _choice(self, n: int, choice: Any) -> dict[str, Any] | None:
        if not isinstance(choice, dict):
            return None
        index = choice.get("index", n)
        key = index if isinstance(index, int) else n
        text = choice.get("text")
        text = text if isinstance(text, str) else ""
        if key not in self._spoken:
            text = text.lstrip()
            if text:
                self._spoken.add(key)
        finish = choice.get("finish_reason")
        delta: dict[str, Any] = {}
        if key not in self._started:
            self._started.add(key)
            delta["role"] = "assistant"
        if text or delta:
            delta["content"] = text
        if not delta and finish is None:
            return None
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
