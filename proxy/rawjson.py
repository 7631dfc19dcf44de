"""The client's JSON body, written back for the backend without re-encoding it. Pure.

Routing changes one thing in most bodies: the top-level ``model``. Encoding the parsed
body again costs as much as parsing it (~40 ms for a 30 MB body, all of it holding the
event loop, since orjson keeps the GIL) and rounds what the parser could not hold exactly
(an integer beyond 64 bits comes back as a float). So when only ``model`` changes, the
new value is spliced into the raw bytes instead, and everything else reaches the backend
exactly as the client wrote it.

The splice must hit the top-level key, never a nested ``"model"`` (a tool's parameter, a
metadata field) and never leave a second top-level ``model`` behind for the backend's
parser to prefer (duplicate keys: most parsers keep the last). It is done only when that
is certain from two byte searches:

* ``"model"`` occurs exactly once in the body. Inside a JSON string a quote is always
  escaped, so text can't hold that sequence; the one occurrence is a key.
* No ``\\u006`` escape occurs. The letters of ``model`` (0x64-0x6f) can be written as
  ``\\u006d`` and so on, and only that way; without it, every top-level ``model`` key
  is spelled literally, and there is one and it is the one found.

Anything else (a nested ``model`` key, such escapes, a value that is not a plain
string) returns ``None`` and the caller encodes the body as usual.
"""

from __future__ import annotations

import re

import orjson

__all__ = ["replace_model"]

_KEY = b'"model"'
_LETTER_ESCAPE = b"\\u006"
#: the key, the colon and the whole string value (escapes included)
_MEMBER = re.compile(rb'"model"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*")', re.DOTALL)


def replace_model(raw: bytes, old: str, new: str) -> bytes | None:
    """``raw`` with its top-level ``model`` (whose parsed value is ``old``) set to
    ``new``, or ``None`` when the key can't be located with certainty."""
    if raw.count(_KEY) != 1 or _LETTER_ESCAPE in raw:
        return None
    found = _MEMBER.match(raw, raw.find(_KEY))
    if found is None:
        return None
    start, end = found.span(1)
    try:
        if orjson.loads(raw[start:end]) != old:
            return None
    except orjson.JSONDecodeError:
        return None
    # joined from views: slicing first would copy the body twice more
    view = memoryview(raw)
    return b"".join((view[:start], orjson.dumps(new), view[end:]))
