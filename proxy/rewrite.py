"""Answers changed on their way out: quirk repairs and the routed variant made visible.

Like `adapt.ChatAnswerSend`, `AnswerRewrite` stands in for the ASGI `send`
the relay writes to, so the relay stays a byte pump that knows nothing of
what changes. The dispatcher puts it in place only when there is something
to change for this answer:

* *repairs* (`quirks.StreamRepair`): the backend's kind and version match a
  known quirk (Ollama's tool-call indexes, a missing `finish_reason`);
* *show* (`Shown`): `server.show_variant` asks for the answer's `model` to be
  the variant's public name and for an `x_route` object (class, variant,
  replay id) in the body or the stream's finishing chunk.

Everything else is relayed as it came: a stream without a known quirk and
with `show_variant: off` (or a request that named its variant, under the
default `auto`) never reaches this module.

A stream is cut into events at their blank line, so an event split across
two socket reads is held (only that event) until its end arrives: nothing
else is buffered. An event is re-encoded only when a repair changes it or it
is the finishing chunk that carries `x_route`; the `model` field is replaced
in the bytes as they are. Comments (keep-alives) and `[DONE]` pass as they
are; a `finish_reason` the backend never sent is added just before `[DONE]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .adapt import Send, header_value, send_whole
from .quirks import StreamRepair

__all__ = ["EXTENSION", "AnswerRewrite", "Shown"]


#: the extension field with the routing decision, in a body or a finishing chunk
EXTENSION = "x_route"
_MODEL = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')
_FINISHING = re.compile(rb'"finish_reason"\s*:\s*"')
_DONE = b"[DONE]"


@dataclass(frozen=True, slots=True)
class Shown:
    """What the client is told about the route: the variant's public name as `model`, and
    the class, the variant and the replay id in `x_route`."""

    variant: str
    cls: str
    replay_id: str | None

    def extension(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant, "class": self.cls}
        if self.replay_id is not None:
            out["replay_id"] = self.replay_id
        return out


class AnswerRewrite:
    """An ASGI `send` that repairs and labels an answer, event by event."""

    def __init__(self, send: Send, *, repair: StreamRepair | None, shown: Shown | None) -> None:
        self._send = send
        self._repair = repair
        self._shown = shown
        self._model = b'"model":' + orjson.dumps(shown.variant) if shown is not None else b""
        self._mode: Literal["pass", "stream", "whole"] = "pass"
        self._start: dict[str, Any] | None = None
        self._held = bytearray()
        self._labelled = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            ctype = header_value(headers, b"content-type").lower()
            if message["status"] >= 400:
                self._mode = "pass"
            elif ctype.startswith(b"text/event-stream"):
                self._mode = "stream"
            elif ctype.startswith(b"application/json") and self._shown is not None:
                self._mode, self._start = "whole", message  # sent with the changed body
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body" or self._mode == "pass":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self._mode == "whole":
            self._held += body
            if not more:
                await self._send_whole()
            return
        out = self._events(body, final=not more)
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    # -- a stream ---------------------------------------------------------------------------------

    def _events(self, body: bytes, *, final: bool) -> bytes:
        """The complete events in what arrived so far, changed; a partial one is held
        (and at the end of the stream goes out as it is)."""
        data = bytes(self._held) + body if self._held else body
        self._held = bytearray()
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            if final:
                return data
            self._held = bytearray(data)
            return b""
        out = bytearray()
        for event in data[:end].split(b"\n\n"):
            out += (self._event(event) if event else b"") + b"\n\n"
        rest = data[end + 2 :]
        if final:
            out += rest
        else:
            self._held = bytearray(rest)
        return bytes(out)

    def _event(self, event: bytes) -> bytes:
        if not event.startswith(b"data:") or b"\ndata:" in event:
            return event  # a comment, a named event, a multi-line payload: not a chunk
        payload = event[5:].strip()
        if payload == _DONE:
            closing = self._repair.closing() if self._repair is not None else None
            if closing is None:
                return event
            return self._chunk(closing) + b"\n\ndata: [DONE]"
        if self._repair is not None or (
            self._shown is not None and not self._labelled and _FINISHING.search(payload)
        ):
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if isinstance(chunk, dict):
                return self._chunk(chunk, payload)
            return event
        if self._shown is not None:
            return b"data: " + _MODEL.sub(self._model, payload, count=1)
        return event

    def _chunk(self, chunk: dict[str, Any], payload: bytes | None = None) -> bytes:
        """One chunk, repaired and labelled; its bytes unchanged when nothing changed."""
        changed = payload is None
        if self._repair is not None:
            changed |= self._repair.chunk(chunk)
        shown = self._shown
        if shown is not None and not self._labelled and _finishing(chunk):
            chunk[EXTENSION] = shown.extension()
            self._labelled = changed = True
        if not changed and payload is not None:
            if shown is None:
                return b"data: " + payload
            return b"data: " + _MODEL.sub(self._model, payload, count=1)
        if shown is not None:
            chunk["model"] = shown.variant
        return b"data: " + orjson.dumps(chunk)

    # -- a whole answer ---------------------------------------------------------------------------

    async def _send_whole(self) -> None:
        body = bytes(self._held)
        shown = self._shown
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict) and shown is not None and "model" in answer:
            answer["model"] = shown.variant
            answer[EXTENSION] = shown.extension()
            body = orjson.dumps(answer)
        await send_whole(self._send, self._start, body)


def _finishing(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") is not None for c in choices
    )
