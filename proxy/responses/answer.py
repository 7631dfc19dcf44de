"""The answer side: a chat completion answer as a Responses answer, whole or streamed.

See the package docstring for the event sequence and how a failed stream ends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from ..sse import SSEDecoder
from .request import new_id

__all__ = ["ResponseStream", "chat_to_response", "responses_usage"]


def responses_usage(usage: Any) -> dict[str, Any] | None:
    """Chat's `usage` in the Responses shape (None when there is none)."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    prompt = prompt if isinstance(prompt, int) else 0
    completion = completion if isinstance(completion, int) else 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _shell(request: Mapping[str, Any], rid: str, created: int, model: str) -> dict[str, Any]:
    """The response object's fields that echo the request."""
    text = request.get("text")
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": request.get("temperature"),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _finish(response: dict[str, Any], finish: Any, usage: Any) -> None:
    """Mark `response` completed, or incomplete when the token limit cut it."""
    if finish == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"
    response["completed_at"] = int(time.time())
    response["usage"] = responses_usage(usage)


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _reasoning_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "id": item_id, "summary": [], "status": status}
    if status == "completed":
        item["content"] = [{"type": "reasoning_text", "text": text}]
    return item


def chat_to_response(body: bytes, request: Mapping[str, Any]) -> bytes:
    """A whole `chat.completion` answer as a Responses `response` object; anything else
    (an error, a shape it doesn't know) unchanged."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return body
    choice = choices[0]
    found = choice.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    created = data.get("created")
    response = _shell(
        request,
        new_id("resp"),
        created if isinstance(created, int) else int(time.time()),
        str(data.get("model") or request.get("model") or ""),
    )
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(_reasoning_item(new_id("rs"), reasoning, "completed"))
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(_message_item(new_id("msg"), content, "completed"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        call_id = call.get("id") or new_id("call")
        arguments = function.get("arguments")
        output.append(
            _call_item(
                new_id("fc"),
                str(call_id),
                str(function.get("name") or ""),
                arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
                "completed",
            )
        )
    response["output"] = output
    _finish(response, choice.get("finish_reason"), data.get("usage"))
    return orjson.dumps(response)


class _Open:
    """An output item being streamed."""

    __slots__ = ("call_id", "id", "index", "kind", "name", "text")

    def __init__(self, kind: str, index: int, item_id: str, name: str = "", call_id: str = ""):
        self.kind, self.index, self.id = kind, index, item_id
        self.name, self.call_id = name, call_id
        self.text = ""


class ResponseStream:
    """A chat completion SSE stream, converted to Responses events as it arrives.

    `feed(chunk) -> bytes` returns the events completed by `chunk` (an event split
    across chunks waits for its end, never the stream); `flush()` finishes at the end
    of the stream: with `response.completed` after a finished answer, with
    `response.failed` after one that stopped short.
    """

    def __init__(self, request: Mapping[str, Any]) -> None:
        self._decoder = SSEDecoder()
        self._request = request
        self._seq = 0
        self._response = _shell(request, new_id("resp"), int(time.time()), "")
        self._response["model"] = str(request.get("model") or "")
        self._started = False
        self._finished = False
        self._finish: Any = None
        self._usage: Any = None
        #: every output item so far, by output index (completed ones in their final shape)
        self._output: list[dict[str, Any]] = []
        self._text: _Open | None = None  # the open message or reasoning item
        self._calls: dict[int, _Open] = {}  # open function calls by chat tool-call index

    # -- input -------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        out = [self._start()]
        for event in self._decoder.feed(chunk):
            out.append(self._convert(event.data))
        return b"".join(out)

    def flush(self) -> bytes:
        out = [self._start()]
        out += [self._convert(e.data) for e in self._decoder.flush()]
        if not self._finished:
            if self._finish is not None:
                out.append(self._complete())
            else:
                why = "the backend's stream ended before the answer did"
                out.append(self._fail(why, "server_error"))
        return b"".join(out)

    # -- events ------------------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snapshot = dict(self._response)
        return self._emit("response.created", response=snapshot) + self._emit(
            "response.in_progress", response=snapshot
        )

    def _convert(self, data: bytes) -> bytes:
        if self._finished:
            return b""
        if data.strip() == b"[DONE]":
            return self._complete()
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(event, dict):
            return b""
        if "error" in event and "choices" not in event:
            error = event["error"] if isinstance(event["error"], dict) else {}
            message = str(error.get("message") or "the backend failed mid-stream")
            return self._fail(message, str(error.get("code") or "server_error"))
        if isinstance(event.get("model"), str) and event["model"]:
            self._response["model"] = event["model"]
        if event.get("usage") is not None:
            self._usage = event["usage"]
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return b""
        choice = choices[0]
        out = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(self._text_delta("reasoning", reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(self._text_delta("message", content))
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out.append(self._call_delta(call))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def _text_delta(self, kind: str, text: str) -> bytes:
        out = b""
        item = self._text
        if item is None or item.kind != kind:
            out += self._close_text()
            prefix = "msg" if kind == "message" else "rs"
            item = self._text = _Open(kind, len(self._output), new_id(prefix))
            if kind == "message":
                added = _message_item(item.id, "", "in_progress")
                self._output.append(added)
                out += self._emit("response.output_item.added", output_index=item.index, item=added)
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                out += self._emit(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    part=part,
                )
            else:
                added = _reasoning_item(item.id, "", "in_progress")
                self._output.append(added)
                out += self._emit("response.output_item.added", output_index=item.index, item=added)
        item.text += text
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        if kind == "message":
            return out + self._emit("response.output_text.delta", **where, delta=text, logprobs=[])
        return out + self._emit("response.reasoning_text.delta", **where, delta=text)

    def _close_text(self) -> bytes:
        item, self._text = self._text, None
        if item is None:
            return b""
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        if item.kind == "reasoning":
            done = _reasoning_item(item.id, item.text, "completed")
            self._output[item.index] = done
            out = self._emit("response.reasoning_text.done", **where, text=item.text)
            return out + self._emit("response.output_item.done", output_index=item.index, item=done)
        done = _message_item(item.id, item.text, "completed")
        self._output[item.index] = done
        out = self._emit("response.output_text.done", **where, text=item.text, logprobs=[])
        out += self._emit("response.content_part.done", **where, part=done["content"][0])
        return out + self._emit("response.output_item.done", output_index=item.index, item=done)

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        key = index if isinstance(index, int) else 0
        found = call.get("function")
        function: dict[str, Any] = found if isinstance(found, dict) else {}
        item = self._calls.get(key)
        if item is None:
            out += self._close_text()
            call_id = str(call.get("id") or new_id("call"))
            item = _Open("function_call", len(self._output), new_id("fc"), "", call_id)
            item.name = str(function.get("name") or "")
            self._calls[key] = item
            added = _call_item(item.id, item.call_id, item.name, "", "in_progress")
            self._output.append(added)
            out += self._emit("response.output_item.added", output_index=item.index, item=added)
        elif function.get("name") and not item.name:
            item.name = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            out += self._emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=item.index,
                delta=arguments,
            )
        return out

    def _close_calls(self) -> bytes:
        out = b""
        for item in sorted(self._calls.values(), key=lambda c: c.index):
            done = _call_item(item.id, item.call_id, item.name, item.text, "completed")
            self._output[item.index] = done
            out += self._emit(
                "response.function_call_arguments.done",
                item_id=item.id,
                output_index=item.index,
                name=item.name,
                arguments=item.text,
            )
            out += self._emit("response.output_item.done", output_index=item.index, item=done)
        self._calls = {}
        return out

    def _complete(self) -> bytes:
        self._finished = True
        out = self._close_text() + self._close_calls()
        response = self._response
        response["output"] = self._output
        _finish(response, self._finish, self._usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._emit(kind, response=response)

    def _fail(self, message: str, code: str) -> bytes:
        """End the stream with an `error` event and `response.failed`."""
        self._finished = True
        out = self._emit("error", code=code, message=message, param=None)
        response = self._response
        response["status"] = "failed"
        response["error"] = {"code": "server_error", "message": message}
        response["output"] = self._output
        response["usage"] = responses_usage(self._usage)
        return out + self._emit("response.failed", response=response)
