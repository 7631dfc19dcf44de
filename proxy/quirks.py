"""What model servers are known to get wrong, by server kind and version, and the repairs.

Every entry of `QUIRKS` names one deviation from OpenAI's wire format that
breaks real clients, the server kind and versions it is known in, and where
it was reported. The relay repairs a stream only when its backend's kind and
version match an entry (`repairs_for`); every other stream stays byte for
byte, untouched by any of this.

The repairs work on decoded `chat.completion.chunk` objects (`StreamRepair`,
pure: a chunk in, the chunk out) and are safe on a correct stream, so an
entry whose fix version is unknown can stay open-ended:

* `tool_call_index`: Ollama numbers every streamed tool call `index: 0`
  (ollama/ollama#15457, seen in 0.20.x; before 0.4.7 it sent no `index` at
  all, #7881). SDKs merge deltas by index, so parallel calls arrive as one
  call with the arguments of all of them run together, and the next turn
  fails. The repair gives each new call (a delta with an `id`) the next
  index, and a continuation delta (no `id`) the index its call got.
* `finish_reason`: a stream that ends (`data: [DONE]`) without any
  `finish_reason` reads as cut short to clients, and Ollama's older servers
  close a tool-call turn with `"stop"` where OpenAI says `"tool_calls"`. The
  repair adds a final chunk with `finish_reason` (`tool_calls` after tool
  calls, else `stop`) before `[DONE]`, and says `tool_calls` for a `stop`
  after tool calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["QUIRKS", "Quirk", "StreamRepair", "parse_version", "repairs_for"]

Version = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Quirk:
    """One known deviation: which servers (`kind`, versions from `since` up to but not
    including `fixed`; None: open) and which repair undoes it."""

    name: str
    kind: str
    repair: str
    since: Version | None
    fixed: Version | None
    reported: str

    def applies(self, kind: str, version: Version | None) -> bool:
        if kind != self.kind:
            return False
        if version is None:
            return True  # an unknown version is treated as affected: the repairs are safe
        if self.since is not None and version < self.since:
            return False
        return self.fixed is None or version < self.fixed


QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        "ollama-tool-call-index-missing",
        "ollama",
        "tool_call_index",
        None,
        (0, 4, 7),
        "https://github.com/ollama/ollama/issues/7881",
    ),
    Quirk(
        "ollama-tool-call-index-zero",
        "ollama",
        "tool_call_index",
        (0, 4, 7),
        None,
        "https://github.com/ollama/ollama/issues/15457",
    ),
    Quirk(
        "ollama-finish-reason",
        "ollama",
        "finish_reason",
        None,
        None,
        "ollama/ollama middleware/openai.go: ChatWriter.toolCallSent (older servers said stop)",
    ),
)


def parse_version(text: str | None) -> Version | None:
    """`"0.20.4"`, `"v0.5"` → a comparable tuple; None when there is none."""
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", (text or "").strip())
    if found is None:
        return None
    return tuple(int(part or 0) for part in found.groups())


def repairs_for(kind: str, version: str | None, disabled: frozenset[str]) -> frozenset[str]:
    """The repairs a stream from this server needs, less those the config turned off
    (by repair or by quirk name)."""
    parsed = parse_version(version)
    return frozenset(
        q.repair
        for q in QUIRKS
        if q.applies(kind, parsed) and q.repair not in disabled and q.name not in disabled
    )


class StreamRepair:
    """The repairs of one stream, chunk by chunk. Pure: plain dicts in and out."""

    def __init__(self, repairs: frozenset[str]) -> None:
        self.repairs = repairs
        self._next = 0
        #: per choice: the backend's index → ours, for the call that last used it
        self._calls: dict[tuple[int, int], int] = {}
        self._current: dict[int, int] = {}
        self.tool_calls = False
        self.finished = False
        self.last: dict[str, Any] | None = None

    def chunk(self, chunk: dict[str, Any]) -> bool:
        """Repair `chunk` in place; True if anything changed."""
        changed = False
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return False
        self.last = chunk
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if isinstance(calls, list) and calls:
                self.tool_calls = True
                if "tool_call_index" in self.repairs:
                    changed |= self._renumber(choice.get("index", 0), calls)
            reason = choice.get("finish_reason")
            if reason is not None:
                self.finished = True
                if reason == "stop" and self.tool_calls and "finish_reason" in self.repairs:
                    choice["finish_reason"] = "tool_calls"
                    changed = True
        return changed

    def _renumber(self, choice: Any, calls: list[Any]) -> bool:
        changed = False
        for call in calls:
            if not isinstance(call, dict):
                continue
            theirs = call.get("index")
            key = (
                choice if isinstance(choice, int) else 0,
                theirs if isinstance(theirs, int) else 0,
            )
            if call.get("id"):
                ours = self._next
                self._next += 1
                self._calls[key] = ours
            else:
                ours = self._calls.get(key, max(self._next - 1, 0))
            if theirs != ours:
                call["index"] = ours
                changed = True
        return changed

    def closing(self) -> dict[str, Any] | None:
        """At `[DONE]`: the chunk to send first when no `finish_reason` came, else None."""
        if self.finished or "finish_reason" not in self.repairs:
            return None
        self.finished = True
        last = self.last or {}
        return {
            "id": last.get("id", "chatcmpl-variant-proxy"),
            "object": last.get("object", "chat.completion.chunk"),
            "created": last.get("created", 0),
            "model": last.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "tool_calls" if self.tool_calls else "stop",
                }
            ],
        }
