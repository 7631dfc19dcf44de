"""Reading text out of a request: message contents, token estimates, windows, words,
and the split of a message into prose and code. Pure functions of strings.

The signals need two views of what the user wrote: the *prose* (for languages named in
words, human language, intent and difficulty vocabulary) and the *code* (for syntax
fingerprints and code ratios). :func:`split_prose_code` separates fenced blocks and
unfenced code lines (by their shape: indentation, trailing ``;{}``, typical openings)
from the sentences around them. Everything here runs on bounded windows chosen by the
caller, so its cost does not grow with the prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .lexicon import (
    CODE_START_RE,
    COMMENT_LINE_RE,
    FENCE_RE,
    PUNCT_TABLE,
    SENTENCE_END_RE,
)


def content_text(content: object) -> str:
    """Text of a message ``content``: a string or a list of parts; other parts ignored."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                kind = part.get("type", "text")
                if isinstance(text, str) and kind in ("text", "input_text", "output_text"):
                    out.append(text)
        return "\n".join(out)
    return ""


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate, close enough for length rules."""
    if not text:
        return 0
    n = len(text)
    non_ascii = n - len(text.encode("ascii", "ignore"))
    # ~3.6 ASCII chars per token (code is denser than prose's ~4); most non-ASCII
    # characters (CJK, Cyrillic…) cost close to one token each.
    return math.ceil((n - non_ascii) / 3.6 + non_ascii * 0.8)


#: The most of one text the classifier reads: a longer message or prompt is read as its
#: first ``READ_HEAD`` and last ``READ_TAIL`` characters. Every class boundary lies far
#: below this (3,000 tokens is ~11,000 characters), and reading a 30 MB message whole
#: would hold the event loop for a quarter of a second.
READ_HEAD = 192 * 1024
READ_TAIL = 64 * 1024


def bounded(text: str) -> str:
    """``text`` as the classifier reads it: all of it, or its head and tail when huge."""
    return window(text, READ_HEAD, READ_TAIL)


def window(text: str, head: int, tail: int) -> str:
    """The first ``head`` and last ``tail`` characters of ``text`` (all of a short one)."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


def word_tokens(text: str) -> list[str]:
    """Word tokens: punctuation (except ``+`` and ``#``) becomes a space, then split."""
    return text.translate(PUNCT_TABLE).split()


def looks_like_sentence(line: str) -> bool:
    words = line.split()
    if len(words) < 4:
        return False
    if not line.isascii() or SENTENCE_END_RE.search(line):
        return not any(c in line for c in ";{}=")
    alpha = sum(1 for w in words if w.isalpha())
    return alpha >= 0.7 * len(words)


def is_code_line(line: str) -> bool:
    stripped = line.rstrip()
    if not stripped:
        return False
    if stripped[-1] in ";{}" or line.startswith(("    ", "\t")):
        return not looks_like_sentence(line)
    return bool(CODE_START_RE.match(line)) and not looks_like_sentence(line)


@dataclass
class Split:
    prose: str
    code_segments: list[tuple[str, str]]  # (fence info string or "", code)
    code_chars: int
    code_blocks: int


def split_prose_code(text: str) -> Split:
    """Separate fenced and unfenced code from prose."""
    segments: list[tuple[str, str]] = []
    prose_parts: list[str] = []
    code_chars = 0
    blocks = 0
    pos = 0
    if "```" in text or "~~~" in text:
        for m in FENCE_RE.finditer(text):
            prose_parts.append(text[pos : m.start()])
            segments.append((m.group(2).strip(), m.group(3)))
            code_chars += len(m.group(3))
            blocks += 1
            pos = m.end()
    prose_parts.append(text[pos:])
    prose_lines: list[str] = []
    unfenced: list[str] = []
    for part in prose_parts:
        for line in part.splitlines():
            if is_code_line(line):
                unfenced.append(line)
                code_chars += len(line)
            elif line.strip():
                if unfenced:
                    segments.append(("", "\n".join(unfenced)))
                    unfenced = []
                prose_lines.append(line)
    if unfenced:
        segments.append(("", "\n".join(unfenced)))
    prose = "\n".join(prose_lines)
    if "`" in prose:
        prose = re.sub(r"`[^`\n]{1,200}`", " ", prose)
    return Split(prose, segments, code_chars, blocks)


def ends_in_code(text: str) -> bool:
    """A raw completion prompt that stops inside code (a continuation, not a question)."""
    tail = text[-400:]
    if tail.endswith((" ", "\t")) and "\n" in tail and tail.rsplit("\n", 1)[1].strip() == "":
        return True  # ends on indentation: the cursor is inside a block
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return False
    line = lines[-1]
    if looks_like_sentence(line):
        return False
    if line.rstrip().endswith((":", "{", "(", "[", "=", ",", "=>", "->")):
        return True
    return is_code_line(line) or bool(COMMENT_LINE_RE.match(line))


# Words that carry an agent task on ("ok, go ahead", "continue", "start with step 1"),
# in the main languages users write to coding agents.
_CONTINUE_WORDS = frozenset(
    "continue go ahead proceed yes yep yeah ok okay sure do start keep carry resume next "
    "lgtm approve approved fine good great perfect thanks retry again finish "
    "continúa continua sigue adelante dale vas-y continuez weiter mach los да давай "
    "продолжай продолжи evet devam tak dalej sim segue avanti vai 继续 続けて 계속".split()
)
# Words that say nothing of their own in such a reply.
_FILLER_WORDS = frozenset(
    "the a an to with and it this that these those now then please just on of in for me "
    "you we i it's let's lets step steps plan mode act switch first second one two three "
    "same as so all rest remaining work task same way".split()
)


def is_continuation(ask: str) -> bool:
    """A short reply that carries the task on rather than asking something new: at most
    12 words, one of them a go-on word, at most two others of substance."""
    words = [w.strip("!?.,:;\"'`()") for w in ask.lower().split()]
    words = [w for w in words if w and not w.isdigit()]
    if not words or len(words) > 12:
        return False
    if not any(w in _CONTINUE_WORDS for w in words):
        return False
    content = [w for w in words if w not in _CONTINUE_WORDS and w not in _FILLER_WORDS]
    return len(content) <= 2
