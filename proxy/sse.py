"""An incremental Server-Sent Events parser. Pure: bytes in, events out.

Feed it chunks exactly as they come off the socket; it keeps the partial
line and the partial event between calls, so a chunk may end anywhere — mid
line, mid `\\r\\n`, mid event. It follows the WHATWG event-stream rules:

* lines end with `\\r\\n`, `\\n` or `\\r`;
* a line starting with `:` is a comment (`: keep-alive`) and is ignored;
* `field: value` (one leading space of the value dropped), a line without a
  colon is a field with an empty value, unknown fields are ignored;
* several `data:` lines join with `\\n`; an empty line dispatches the event,
  and an event without any `data:` line is not dispatched;
* `id` persists until changed (an id containing NUL is ignored), `retry`
  must be all digits.

Three deliberate leniencies, because the parser meters streams rather than
drives a reconnecting client: `flush()` dispatches an event the stream
ended without its blank line, a line longer than `max_line` bytes is
dropped whole, and an event whose `data:` lines add up to more than
`max_event` bytes (a stream that never sends its blank line) is dropped
whole and flagged in `overflowed`. So memory stays bounded by
`max_line + max_event` whatever the stream does.

The line handling follows httpx's `LineDecoder` (`_decoders.py`): a chunk
ending in `\\r` holds it back, since the next chunk may start with `\\n`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "SSEDecoder"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event. `data` stays bytes: callers hand it to orjson as is."""

    data: bytes
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """`feed(chunk) -> events`, then `flush() -> events` at the end of the stream."""

    def __init__(self, max_line: int = 4 << 20, max_event: int = 4 << 20) -> None:
        self.max_line = max_line
        self.max_event = max_event
        #: an event grew past `max_event` and was dropped
        self.overflowed = False
        self._data_size = 0
        self._dropping = False  # inside an event that grew past max_event
        self._partial = bytearray()
        self._skipping = False  # inside a line that grew past max_line
        self._trailing_cr = False
        self._at_start = True
        self._head = b""
        self._data: list[bytes] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if self._at_start:
            self._head += chunk
            if len(self._head) < len(_BOM) and _BOM.startswith(self._head):
                return []  # maybe a byte-order mark split across chunks
            chunk = bytes(self._head)
            self._head = b""
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._trailing_cr:
            chunk = b"\r" + chunk
            self._trailing_cr = False
        if chunk.endswith(b"\r"):
            self._trailing_cr = True
            chunk = chunk[:-1]
        if not chunk:
            return []
        complete = chunk[-1:] in (b"\n", b"\r")
        lines = chunk.splitlines()
        tail = b"" if complete else lines.pop()
        events: list[Event] = []
        for i, line in enumerate(lines):
            if i == 0:
                if self._skipping:
                    self._skipping = False
                    continue
                if self._partial:
                    line = bytes(self._partial) + line
                    self._partial.clear()
            if len(line) > self.max_line:
                continue
            event = self._line(line)
            if event is not None:
                events.append(event)
        if tail and not self._skipping:
            self._partial += tail
            if len(self._partial) > self.max_line:
                self._partial.clear()
                self._skipping = True
        return events

    def flush(self) -> list[Event]:
        """End of stream: finish the last line and dispatch a pending event."""
        events: list[Event] = []
        if self._at_start:
            self._at_start = False
            if not _BOM.startswith(self._head):
                self._partial += self._head
            self._head = b""
        if self._partial and not self._skipping:
            event = self._line(bytes(self._partial))
            if event is not None:
                events.append(event)
        self._partial.clear()
        self._skipping = False
        self._trailing_cr = False
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: bytes) -> Event | None:
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return None
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._dropping:
                return None
            self._data_size += len(value) + 1
            if self._data_size > self.max_event:
                self._data = []
                self._dropping = self.overflowed = True
                return None
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():
                self._retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self._dropping = False
        self._data_size = 0
        if not self._data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = Event(data, self._event or "message", self._last_id, self._retry)
        self._data = []
        self._event = ""
        self._retry = None
        return event
