"""What one attempt sends upstream, and the answer's way back when it was adapted.

`Runtime.upstream_for` decides, per variant, what the backend receives
(`UpstreamRequest`: the path, the body and which adaptation of
`proxy.prompting` was made, if any). The dispatcher then sends to that path and,
for a chat request served by a base model, hands the relay `ChatAnswerSend`
in place of the ASGI `send` (and, for a Responses request served as chat,
`ResponsesAnswerSend`; the two stack): the relay stays a byte pump that knows
nothing of protocols, and the conversion happens on the way out, message by
message.

`AnswerSend` (the shape of both) decides at `http.response.start`:

* an error status passes through (the backend's 4xx is already OpenAI-shaped);
* an event stream is converted event by event (`prompting.ChatStream`), so a
  streamed answer still reaches the client token by token; keep-alive
  comments pass as they are;
* a whole JSON answer (the relay has read it whole already) is converted once,
  and `content-length` is set for the converted body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .prompting import ChatStream, completion_to_chat
from .responses import ResponseStream, chat_to_response

__all__ = [
    "Adaptation",
    "AnswerSend",
    "ChatAnswerSend",
    "ResponsesAnswerSend",
    "Send",
    "UpstreamRequest",
    "header_value",
    "send_whole",
]

Send = Callable[[dict[str, Any]], Awaitable[None]]
#: "transcript": a chat request rendered as a plain prompt for a base model;
#: "prefix-only": an infill request sent without its suffix to a model without FIM;
#: "ollama-native": a chat request sent to Ollama's /api/chat to set num_ctx
Adaptation = Literal["transcript", "prefix-only", "ollama-native"]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The path and body one attempt sends, and how the request was adapted."""

    path: str
    body: bytes
    adaptation: Adaptation | None = None
    #: the variant's defaults and caps that changed the body (see `prompting.apply_limits`)
    applied: dict[str, Any] = field(default_factory=dict)
    #: a Responses request: "translated" to chat (the answer is converted back) or
    #: relayed to a backend that serves the API itself ("native")
    responses: Literal["translated", "native"] | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Response headers that tell the client how its request was served."""
        out: list[tuple[bytes, bytes]] = []
        if self.responses is not None:
            out.append((b"x-route-responses", self.responses.encode()))
        if self.adaptation == "transcript":
            out.append((b"x-route-chat", b"transcript"))
        elif self.adaptation == "prefix-only":
            out.append((b"x-route-fim", b"prefix-only"))
        elif self.adaptation == "ollama-native":
            out.append((b"x-route-chat", b"ollama-native"))
        return out


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    """The value of header `name` (lower case) in ASGI `headers`, or b""."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return b""


async def send_whole(send: Send, start: Mapping[str, Any] | None, body: bytes) -> None:
    """Send a whole converted answer: `start` (the upstream's; a 200 when there was none)
    with its content-length set to `body`'s, then `body`. Every answer-converting `send`
    ends a JSON answer here."""
    start = dict(start or {"type": "http.response.start", "status": 200})
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    start["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Stream(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class AnswerSend:
    """An ASGI `send` that converts a successful answer on its way to the client:
    `whole` for a JSON body, `stream` for an event stream."""

    def __init__(self, send: Send, whole: Callable[[bytes], bytes], stream: _Stream) -> None:
        self._send = send
        self._whole = whole
        self._mode: Literal["pass", "stream", "whole"] = "pass"
        self._start: dict[str, Any] | None = None
        self._body = bytearray()
        self._stream = stream

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            ctype = header_value(headers, b"content-type").lower()
            if message["status"] >= 400:
                self._mode = "pass"
            elif ctype.startswith(b"text/event-stream"):
                self._mode = "stream"
            else:
                self._mode, self._start = "whole", message  # sent with the converted body
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body" or self._mode == "pass":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self._mode == "whole":
            self._body += body
            if not more:
                await self._send_whole()
            return
        if body.startswith(b":") and body.endswith(b"\n\n") and b"\ndata" not in body:
            out = body  # a keep-alive comment: it keeps the client's connection warm as is
        else:
            out = self._stream.feed(body)
        if not more:
            out += self._stream.flush()
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    async def _send_whole(self) -> None:
        await send_whole(self._send, self._start, self._whole(bytes(self._body)))


class ChatAnswerSend(AnswerSend):
    """An ASGI `send` that turns a completion answer into the chat answer asked for."""

    def __init__(self, send: Send) -> None:
        super().__init__(send, completion_to_chat, ChatStream())


class ResponsesAnswerSend(AnswerSend):
    """An ASGI `send` that turns a chat answer into the Responses answer asked for
    (`proxy.responses`); `request` is the client's Responses request, which the
    response object echoes."""

    def __init__(self, send: Send, request: Mapping[str, Any]) -> None:
        whole = lambda body: chat_to_response(body, request)  # noqa: E731
        super().__init__(send, whole, ResponseStream(request))
