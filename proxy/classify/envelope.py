"""Client envelopes: find the human's ask inside what a coding client sends. Pure.

Real clients wrap a one-line ask in tens of kilobytes: Cline/Roo send a ~50 KB system
prompt and ``<environment_details>`` with every turn, aider appends its edit rules to
the user's message and sends a repo map and example conversations, Continue and Zed
attach files to the user turn, Open WebUI sends background tasks with the chat history
embedded. :func:`read_envelope` recognises these shapes by their FIXED MARKERS (short
strings quoted from each client's source, in the tables below) and returns an
:class:`Envelope`: which client, the current ask, what the user attached, earlier asks,
how much is boilerplate, and a few facts about the request (background task, tool-loop
step, task identity, edit prediction).

Design:

* Every marker is checked with plain ``str`` operations (``startswith``, ``in``,
  ``find``/``rfind`` with bounds) on short windows: the head of the system prompt, the
  head or tail of a message or part. Nothing scans a 60 KB prompt with a regex, so the
  cost is a few microseconds per message whatever the size.
* Recognition is ordered so that the common cases exit early: completions, then the
  system prompt's first words (Cline/Roo, aider, commit, Continue, Zed), then markers in
  the last user message (Open WebUI tasks, commit prompts, Zed context), then tool
  loops, then the generic rule.
* One walk for every chat client (:func:`_walk`): a per-client *reader* says what each
  user or tool message is (a human ask, tool output, a client attachment, or fixed
  boilerplate) and the walk derives the ask (latest human message), the context
  (earlier ones), ``tool_turn`` (no human text since the last assistant turn) and
  ``task_key``. Background tasks and completions are read directly.
* Sizes are characters: ``ask_chars + attached_chars + boilerplate_chars`` is the whole
  request's text (message texts, the JSON of ``tools`` and of assistant ``tool_calls``),
  so earlier asks in ``context`` count as boilerplate.
* FIM tokens are not looked at here (FIM detection lives in :mod:`proxy.fim` and the
  signals); only cursor/edit-prediction markers are, and only where they structure the
  prompt (a completion prompt, or a chat whose system prompt or first line says so).

Total: any input, however malformed, gives an envelope and never raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .text import bounded

__all__ = ["Envelope", "read_envelope"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a request asks, separated from the client's envelope around it.

    ``client``: "aider", "cline", "roo", "continue", "zed", "open-webui", "openai-tools",
    "commit", "generic" or "prompt" (a completion prompt). ``ask``: the latest human
    turn without client boilerplate; ``attached``: what the user attached to it through
    the client; ``context``: up to 3 earlier asks, oldest first. The three ``*_chars``
    add up to the request's text. ``background``: "title", "tags", "follow-ups", "query",
    "emoji", "autocomplete", "commit-message" or "summary". ``task_key``: a hash of the
    system prompt's head and the first ask (the same for every step of one task), None
    without a human ask and for background tasks.
    """

    client: str
    ask: str
    attached: str
    context: tuple[str, ...]
    ask_chars: int
    attached_chars: int
    boilerplate_chars: int
    background: str | None
    tool_turn: bool
    task_key: str | None
    edit_prediction: bool


# --- markers (short, exact strings from the clients' sources) ------------------------------

_SYS_HEAD = 2048  # the part of the system prompt that identifies a client and a task
_CONTEXT_ASKS = 3

_CLINE_SYS = ("You are Cline,", "You are Roo,", "You are Kilo Code,")
_CLINE_FIRST = ("<task>", "<user_message>", "<user_input")
_CLINE_WRAPPERS = (
    ("<user_message>", "</user_message>"), ("<feedback>", "</feedback>"),
    ("<answer>", "</answer>"), ("<user_input", "</user_input>"), ("<task>", "</task>"),
)  # fmt: skip
# Blocks @-mentions expand inside the human text: attached (file, url, problems, terminal)
# or dropped as boilerplate (folder listings, slash-command instructions, mode notices).
_CLINE_ATTACH = (
    ("<file_content", "</file_content>"), ("<url_content", "</url_content>"),
    ("<workspace_diagnostics>", "</workspace_diagnostics>"),
    ("<terminal_output>", "</terminal_output>"),
)  # fmt: skip
_CLINE_DROP = (
    ("<folder_content", "</folder_content>"),
    ("<explicit_instructions", "</explicit_instructions>"), ("<mode_notice>", "</mode_notice>"),
)  # fmt: skip
_ENV_OPEN = "<environment_details>"
_TOOL_HEAD = 400  # human wrappers in a tool result (<answer>, <feedback>) sit at its head

_AIDER_SYS = ("Act as an expert ", "You are an expert on the AI coding tool called Aider.")
_AIDER_SUMMARY = "*Briefly* summarize this partial conversation about programming."
_AIDER_SWITCH = "I switched to a new code base."
_AIDER_ATTACH = (
    "I have *added these files to the chat*", "These are some files we have been discussing",
    "These files have been *added these files to the chat*", "Here are some READ ONLY files",
)  # fmt: skip
_AIDER_FIXED = (
    "Here are summaries of some files present in my git repo",
    "I am working with you on code in a git repository.",
    "Don't try and edit any existing code without asking me",
    "I am not sharing any files that you can edit yet.",
    "I am not sharing the full contents of any files with you yet.",
    "I spoke to you previously about a number of things.",
)  # fmt: skip
# The system prompt sent as a user turn (use_system_prompt: false); not a recognition
# marker on its own, since a human may well start an ask with these words.
_AIDER_SYS_AS_USER = "Act as an expert "
_AIDER_SYNTHETIC = (
    "# Fix any errors below", "I added these files to the chat:", "I ran this command:",
    "I did `git reset --hard HEAD~1`",
)  # fmt: skip
# The first line of each edit format's system_reminder, appended to the user's ask.
_AIDER_RULES = (
    "# *SEARCH/REPLACE block* Rules:", "# File editing rules:", "# V4A Diff Format Rules:",
    "To suggest changes to a file you MUST return the entire content",
    "You are diligent and tireless!", "Pay careful attention to the scope of the user's request.",
    "^C KeyboardInterrupt",
)  # fmt: skip
_AIDER_TAIL = 8000  # the reminder is ~1-4 KB; it is looked for only in the tail

_COMMIT_SYS = (
    "generates concise, one-line Git commit messages", "generates informative git commit messages",
    "You are to act as an author of a commit message in git",
    "Generate a concise git commit message",
)  # fmt: skip
_COMMIT_USER_HEAD = (
    "Based on the provided git diff, generate", "Generate a concise git commit message",
    "I'll send you an output of 'git diff --staged' command",
)  # fmt: skip
_COMMIT_USER_TAIL = ("Generate a commit message for the above set of changes",)

_WEBUI_TASK = "### Task:"
_WEBUI_EMOJI = "Your task is to reflect the speaker's likely facial expression"
_WEBUI_MOA = "You have been provided with a set of responses from various models"
_WEBUI_RAG = "### Task:\nRespond to the user query"
# (probe in the task's first lines, kind); first match wins.
_WEBUI_KINDS = (
    ("autocompletion", "autocomplete"), ("title", "title"), ("follow-up", "follow-ups"),
    ("tags", "tags"), ("search quer", "query"), ("image generation", "query"), ("emoji", "emoji"),
)  # fmt: skip

_CONTINUE_SYS = "<important_rules>"
_CONTINUE_EDIT = "The user has requested a section of code in a file to be rewritten."
_CONTINUE_QUOTES = (
    "The user's request is: \"", 'satisfy the following request: "', 'satisfy this request: "',
)  # fmt: skip
_CONTINUE_HOLE = "You are a HOLE FILLER."
_PREDICT_SYS = ("You are Instinct,", "You are Mercury,")
_ZETA_CHAT = "### Instruction:\nYou are a code completion assistant"

_ZED_SYS = "You are a highly skilled software engineer with extensive knowledge"
_ZED_CONTEXT = "<context>\nThe following items were attached by the user."
_ZED_WINDOW = 8000  # the user's text precedes the context block

# Cursor / editable-region markers of edit-prediction prompts (Zeta 1/2, Continue
# Instinct/Mercury, Copilot NES); looked for in the head and tail of a prompt.
_PREDICT_MARKS = (
    "<|editable_region_start|>", "<|user_cursor_is_here|>", "<|user_cursor|>",
    "<|code_to_edit|>", "<cursorPosition>",
)  # fmt: skip
_PREDICT_HEAD, _PREDICT_TAIL = 4000, 16000

_COPILOT_OPEN, _COPILOT_CLOSE = "<userRequest>", "</userRequest>"


# --- reading messages -------------------------------------------------------------------------


@dataclass(slots=True)
class _Msg:
    role: str
    parts: list[str]
    calls: bool  # an assistant turn that calls tools

    @property
    def text(self) -> str:
        return self.parts[0] if len(self.parts) == 1 else "\n".join(self.parts)


class _Read(NamedTuple):
    kind: str  # "human" | "tool" | "attach" | "fixed"
    ask: str = ""
    attached: str = ""


_TEXT_PARTS = ("text", "input_text", "output_text")
_TOOL = _Read("tool")
_FIXED = _Read("fixed")
_Reader = Callable[[_Msg], _Read]


def _parts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str) and part.get("type", "text") in _TEXT_PARTS:
                    out.append(text)
    return out


def _json_chars(value: object) -> int:
    """Characters of ``value`` as JSON (0 for what JSON cannot hold)."""
    if not value:
        return 0
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str))
    except (ValueError, TypeError, RecursionError):
        return 0


def _calls_chars(calls: object) -> int:
    """About the JSON size of an assistant's ``tool_calls``: names and arguments plus the
    fixed keys (dumping each call costs more than the rest of the envelope)."""
    if not isinstance(calls, list):
        calls = [calls]
    n = 0
    for call in calls:
        fn = call.get("function", call) if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            for key in ("name", "arguments"):
                value = fn.get(key)
                n += len(value) if isinstance(value, str) else 0
            n += 80  # {"id": …, "type": "function", "function": {"name": …, "arguments": …}}
    return n


def _messages(raw: object) -> tuple[list[_Msg], int]:
    """The messages that are mappings, and the characters of their texts and tool calls
    (counted whole: a huge text is read as its head and tail, :func:`~.text.bounded`)."""
    msgs: list[_Msg] = []
    total = 0
    if not isinstance(raw, list):
        return msgs, 0
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        role = item.get("role")
        role = "user" if role is None else role if isinstance(role, str) else "other"
        content = item.get("content")
        if isinstance(content, str):
            parts, total = [bounded(content)], total + len(content)
        else:
            parts = _parts(content)
            total += sum(map(len, parts))
            parts = [bounded(p) for p in parts]
        calls = item.get("tool_calls") or item.get("function_call")
        if calls:
            total += _calls_chars(calls)
        msgs.append(_Msg(role, parts, bool(calls)))
    return msgs, total


def _task_key(system: str, first_ask: str) -> str:
    data = (system[:_SYS_HEAD] + "\0" + first_ask[:_SYS_HEAD]).encode("utf-8", "replace")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _is_tool_result(text: str) -> bool:
    """Cline/Roo-style tool output sent as user text: ``[read_file for 'x'] Result:``."""
    if not text.startswith("["):
        return False
    line = text[:300].split("\n", 1)[0]
    return "] Result:" in line or line.startswith(("[ERROR]", "[TASK RESUMPTION]"))


def _between(text: str, open_tag: str, close_tag: str, start: int) -> tuple[str, int]:
    """The text inside the tag opened at ``start`` (a tag may carry attributes) and the
    index after its close (the end of ``text`` when it is not closed)."""
    body = text.find(">", start + len(open_tag) - 1) + 1
    end = text.find(close_tag, body)
    if end < 0:
        return text[body:], len(text)
    return text[body:end], end + len(close_tag)


def _cut_blocks(text: str, tags: tuple[tuple[str, str], ...], keep: list[str] | None) -> str:
    """``text`` without the ``tags`` blocks; their contents go to ``keep`` if given."""
    for open_tag, close_tag in tags:
        if open_tag not in text:
            continue
        out: list[str] = []
        pos = 0
        while (i := text.find(open_tag, pos)) >= 0:
            out.append(text[pos:i])
            inner, pos = _between(text, open_tag, close_tag, i)
            if keep is not None:
                keep.append(inner.strip("\n"))
        out.append(text[pos:])
        text = "".join(out)
    return text


# --- per-client readers -----------------------------------------------------------------------


def _read_generic(m: _Msg) -> _Read:
    if m.role in ("tool", "function"):
        return _TOOL
    text = m.text
    if _is_tool_result(text):
        return _TOOL
    i = text.rfind(_COPILOT_OPEN, max(0, len(text) - 8000))
    if i >= 0:  # Copilot Chat (BYOK) wraps the human ask in <userRequest>
        inner, _ = _between(text, _COPILOT_OPEN, _COPILOT_CLOSE, i)
        return _Read("human", inner.strip())
    return _Read("human", text.strip())


def _line_find(text: str, tag: str, limit: int) -> int:
    """The first ``tag`` in ``text[:limit]`` that starts a line (-1 when none does)."""
    i = text.find(tag, 0, limit)
    while i > 0 and text[i - 1] != "\n":
        i = text.find(tag, i + 1, limit)
    return i


def _cline_wrapped(text: str, limit: int) -> tuple[str, list[str]] | None:
    """The outermost human wrapper's inner text in ``text[:limit]`` (blocks cut out; the
    attached ones returned), or None when it has none.

    Cline/Roo put each wrapper tag on a line of its own and one wrapper per text part,
    so the first wrapper that starts a line is the outer one, and its last closing tag
    ends it: tags the user typed inside their ask (``why is <feedback> ignored?``) or
    nested in it stay part of the ask."""
    best, best_tag = -1, ("", "")
    for tag in _CLINE_WRAPPERS:
        i = _line_find(text, tag[0], limit)
        if i >= 0 and (best < 0 or i < best):
            best, best_tag = i, tag
    if best < 0:
        return None
    body = text.find(">", best + len(best_tag[0]) - 1) + 1
    end = text.rfind(best_tag[1], body)
    inner = text[body:] if end < 0 else text[body:end]
    attached: list[str] = []
    inner = _cut_blocks(inner, _CLINE_ATTACH, attached)
    inner = _cut_blocks(inner, _CLINE_DROP, None)
    return inner.strip(), attached


def _read_cline(m: _Msg) -> _Read:
    asks: list[str] = []
    attached: list[str] = []
    tool = m.role in ("tool", "function")
    for part in m.parts:
        if part.startswith(_ENV_OPEN):
            continue
        if tool or _is_tool_result(part):
            tool = True
            found = _cline_wrapped(part, _TOOL_HEAD)  # <answer>/<feedback> in a result
        else:
            env = part.rfind(_ENV_OPEN)
            if env >= 0:
                part = part[:env]
            # Attached blocks first, so a file's own "<feedback>" text is never an ask.
            pre: list[str] = []
            part = _cut_blocks(part, _CLINE_ATTACH[:1], pre)
            found = _cline_wrapped(part, len(part))
            if found is not None:
                found[1].extend(pre)
        if found is not None:
            asks.append(found[0])
            attached.extend(found[1])
    if asks:
        return _Read("human", asks[-1], "\n".join(attached))
    return _TOOL if tool or m.parts else _FIXED


def _aider_ask(text: str) -> str:
    """The human's text of an aider user message: cut at the appended edit rules."""
    start = max(0, len(text) - _AIDER_TAIL)
    cut = len(text)
    for marker in _AIDER_RULES:
        i = text.find(marker, start, cut)
        if i >= 0:
            cut = i
    # A "Reply in <language>." line: aider's language reminder, alone or before the rules.
    reply = text.rfind("\n\nReply in ", max(0, cut - 60), cut)
    if reply >= 0 and text[reply:cut].rstrip().endswith("."):
        cut = reply
    return text[:cut].strip()


def _read_aider(m: _Msg) -> _Read:
    if m.role != "user":
        return _TOOL if m.role in ("tool", "function") else _FIXED
    text = m.text
    if text.startswith(_AIDER_ATTACH):
        return _Read("attach", attached=text)
    if text.startswith(_AIDER_FIXED) or text.startswith((_AIDER_SWITCH, _AIDER_SYS_AS_USER)):
        return _FIXED
    head = text[:200]
    if text.startswith(_AIDER_SYNTHETIC) or (
        head.startswith("# ") and "SEARCH/REPLACE block" in head.split("\n", 1)[0]
    ):
        return _TOOL  # lint/test output or failed edits: aider's own follow-up
    return _Read("human", _aider_ask(text))


def _continue_selections(text: str) -> tuple[str, list[str]]:
    """Typed text without code selections (fences whose info string is a path, with or
    without a language and line range); the selections go to the second value."""
    if "```" not in text:
        return text.strip(), []
    out: list[str] = []
    attached: list[str] = []
    pos = 0
    while (i := text.find("```", pos)) >= 0:
        eol = text.find("\n", i)
        end = text.find("\n```", eol) if eol >= 0 else -1
        if end < 0:
            break
        info = text[i + 3 : eol].strip()
        close = text.find("\n", end + 4)
        close = len(text) if close < 0 else close
        words = info.split(" ")
        if words[-1].endswith(")") and " (" in info or any("/" in w or "." in w for w in words[:2]):
            out.append(text[pos:i])
            attached.append(text[eol + 1 : end])
        else:
            out.append(text[pos:close])
        pos = close
    out.append(text[pos:])
    return "".join(out).strip(), attached


def _read_continue(m: _Msg) -> _Read:
    if m.role != "user":
        return _TOOL if m.role in ("tool", "function") else _FIXED
    if not m.parts:
        return _Read("human")
    typed = m.parts[-1]
    if typed.startswith(_CONTINUE_EDIT) or any(q in typed for q in _CONTINUE_QUOTES):
        for quote in _CONTINUE_QUOTES:
            i = typed.rfind(quote)
            if i >= 0:
                start = i + len(quote)
                end = typed.find('"\n', start)
                end = len(typed.rstrip().rstrip(".")) - 1 if end < 0 else end
                ask = typed[start:end]
                return _Read("human", ask, typed[:i] + typed[end:])
    ask, selections = _continue_selections(typed)
    return _Read("human", ask, "\n".join([*m.parts[:-1], *selections]))


def _read_zed(m: _Msg) -> _Read:
    if m.role != "user":
        return _read_generic(m)
    text = m.text
    i = text.find(_ZED_CONTEXT, 0, _ZED_WINDOW)
    if i < 0:
        return _read_generic(m)
    return _Read("human", text[:i].strip(), text[i:])


# --- the walk shared by every chat client -------------------------------------------------------


def _walk(client: str, msgs: list[_Msg], total: int, reader: _Reader, start: int = 0) -> Envelope:
    """Read each user/tool message with ``reader`` and assemble the envelope; messages
    before ``start`` (aider's example conversation) are boilerplate."""
    system = ""
    humans: list[_Read] = []
    attach: list[str] = []
    kinds: list[str] = []  # per message: a _Read kind, or its role for the others
    for i, m in enumerate(msgs):
        if m.role in ("system", "developer", "assistant", "other"):
            if not system and m.role in ("system", "developer"):
                system = m.text
            kinds.append(m.role)
            continue
        r = _FIXED if i < start else reader(m)
        kinds.append(r.kind)
        if r.kind == "human":
            humans.append(r)
        elif r.kind == "attach":
            attach.append(r.attached)
    # The latest turn: after the last assistant message, ignoring a trailing assistant
    # prefill or system reminder.
    end = len(kinds)
    while end > 0 and kinds[end - 1] in ("assistant", "system", "developer"):
        end -= 1
    turn_start = end
    while turn_start > 0 and kinds[turn_start - 1] != "assistant":
        turn_start -= 1
    turn = kinds[turn_start:end]
    tool_turn = "tool" in turn and "human" not in turn
    last = humans[-1] if humans else _Read("human")
    if last.attached:
        attach.append(last.attached)
    attached = "\n".join(a for a in attach if a)
    # the first ask of a task has its key too: that is when the task's class is set
    key = _task_key(system, humans[0].ask) if humans and humans[0].ask else None
    context = tuple(h.ask for h in humans[-1 - _CONTEXT_ASKS : -1])
    return _envelope(client, last.ask, attached, context, total, tool_turn=tool_turn, task_key=key)


def _envelope(
    client: str, ask: str, attached: str, context: tuple[str, ...], total: int, *,
    background: str | None = None, tool_turn: bool = False, task_key: str | None = None,
    edit_prediction: bool = False,
) -> Envelope:  # fmt: skip
    boilerplate = max(0, total - len(ask) - len(attached))
    return Envelope(client, ask, attached, context, len(ask), len(attached), boilerplate,
                    background, tool_turn, task_key, edit_prediction)  # fmt: skip


# --- background tasks and completions ---------------------------------------------------------


def _webui_task(text: str, total: int) -> Envelope | None:
    """An Open WebUI background task (one user message holding the template)."""
    if text.startswith(_WEBUI_EMOJI):
        return _envelope("open-webui", "", "", (), total, background="emoji")
    if text.startswith(_WEBUI_MOA):
        return _envelope("open-webui", "", "", (), total, background="summary")
    if not text.startswith(_WEBUI_TASK) or "<chat_history>" not in text:
        return None
    head = text[:300].lower()
    kind = next((k for probe, k in _WEBUI_KINDS if probe in head), "summary")
    asks: list[str] = []
    i = text.find("<chat_history>")
    if i >= 0:
        history, _ = _between(text, "<chat_history>", "</chat_history>", i)
        for line in history.split("\n"):
            if line.startswith("USER:"):
                asks.append(line[5:].strip())
    ask = asks[-1] if asks else ""
    context = tuple(asks[-1 - _CONTEXT_ASKS : -1])
    return _envelope("open-webui", ask, "", context, total, background=kind)


def _commit_diff(text: str) -> str:
    for marker in ("# Diffs:\n", "diff --git "):
        i = text.find(marker)
        if i >= 0:
            return text[i + len(marker) if marker.startswith("#") else i :]
    return text


def _is_commit(system: str, last: str) -> bool:
    if system and any(m in system[:600] for m in _COMMIT_SYS):
        return True
    if last.startswith(_COMMIT_USER_HEAD) or any(m in last[-600:] for m in _COMMIT_USER_TAIL):
        return True
    # any other generator: an instruction that names a commit message, and a diff
    if "diff --git" not in last and "\n@@ -" not in last:
        return False
    said = (system[:1500] + "\n" + last[:800] + "\n" + last[-600:]).lower()
    return "commit message" in said or "commit msg" in said


def _prompt_envelope(body: Mapping[str, Any]) -> Envelope:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(p for p in prompt if isinstance(p, str))
    text = prompt if isinstance(prompt, str) else ""
    total = len(text)
    suffix = body.get("suffix")
    if isinstance(suffix, str):
        total += len(suffix)
    tail = max(0, len(text) - _PREDICT_TAIL)
    if "<" in text and any(
        text.find(mark, 0, _PREDICT_HEAD) >= 0 or text.find(mark, tail) >= 0
        for mark in _PREDICT_MARKS
    ):
        return _envelope("prompt", "", text, (), total, edit_prediction=True)
    return _envelope("prompt", text, "", (), total)


def _single_shot(client: str, msgs: list[_Msg], total: int, **kw: Any) -> Envelope:
    """A request with no human ask: everything the user turn holds is attached."""
    last = next((m.text for m in reversed(msgs) if m.role == "user"), "")
    return _envelope(client, "", last, (), total, **kw)


# --- recognition ------------------------------------------------------------------------------


def _first_user(msgs: list[_Msg]) -> _Msg | None:
    return next((m for m in msgs if m.role == "user"), None)


def _last_user(msgs: list[_Msg]) -> str:
    return next((m.text for m in reversed(msgs) if m.role == "user"), "")


def _aider_start(msgs: list[_Msg]) -> int:
    """Index after aider's "I switched to a new code base." turn (0 when absent)."""
    for i, m in enumerate(msgs):
        if m.role == "user" and m.parts and m.parts[0].startswith(_AIDER_SWITCH):
            return i + 1
    return 0


def _by_system(msgs: list[_Msg], system: str, total: int) -> Envelope | None:
    """Clients recognised by their system prompt's first words."""
    if system.startswith(_CLINE_SYS):
        client = "roo" if system.startswith("You are Roo,") else "cline"
        return _walk(client, msgs, total, _read_cline)
    if system.startswith(_AIDER_SYS):
        return _walk("aider", msgs, total, _read_aider, _aider_start(msgs))
    if system.startswith(_AIDER_SUMMARY):
        return _single_shot("aider", msgs, total, background="summary")
    if _is_commit(system, _last_user(msgs)):
        return _commit(msgs, total)
    head = system.lstrip()
    if head.startswith(_CONTINUE_SYS):
        return _walk("continue", msgs, total, _read_continue)
    if head.startswith(_CONTINUE_HOLE):
        # Continue's autocomplete through a chat model: editor autocomplete, like a FIM prompt
        return _single_shot("continue", msgs, total, edit_prediction=True)
    if head.startswith(_PREDICT_SYS):
        return _single_shot("continue", msgs, total, edit_prediction=True)
    if head.startswith(_ZED_SYS):
        return _walk("zed", msgs, total, _read_zed)
    if head.startswith(_WEBUI_RAG):
        return _walk("open-webui", msgs, total, _read_generic)
    return None


def _commit(msgs: list[_Msg], total: int) -> Envelope:
    diff = _commit_diff(_last_user(msgs))
    return _envelope("commit", "", diff, (), total, background="commit-message")


def _by_user(msgs: list[_Msg], total: int) -> Envelope | None:
    """Clients recognised by markers in their user messages."""
    first = _first_user(msgs)
    if first is not None and first.parts and first.parts[0].startswith(_CLINE_FIRST):
        client = "roo" if first.parts[0].startswith("<user_message>") else "cline"
        return _walk(client, msgs, total, _read_cline)
    last = _last_user(msgs)
    if last.startswith(("#", "Your task", "You have")) and sum(m.role == "user" for m in msgs) == 1:
        found = _webui_task(last, total)
        if found is not None:
            return found
    if _is_commit("", last):
        return _commit(msgs, total)
    if last.startswith(_ZETA_CHAT):
        return _single_shot("zed", msgs, total, edit_prediction=True)
    if last.startswith(_CONTINUE_EDIT):
        return _walk("continue", msgs, total, _read_continue)
    if last.find(_ZED_CONTEXT, 0, _ZED_WINDOW) >= 0:
        return _walk("zed", msgs, total, _read_zed)
    for m in msgs:
        if m.role == "user" and m.parts and m.parts[0].startswith(_AIDER_FIXED + _AIDER_ATTACH):
            return _walk("aider", msgs, total, _read_aider, _aider_start(msgs))
    return None


def _chat_envelope(body: Mapping[str, Any]) -> Envelope:
    msgs, total = _messages(body.get("messages"))
    tools = body.get("tools") or body.get("functions")
    total += _json_chars(tools)
    first = msgs[0] if msgs else None
    system = first.text if first is not None and first.role in ("system", "developer") else ""
    found = _by_system(msgs, system, total) if system else None
    if found is None:
        found = _by_user(msgs, total)
    if found is not None:
        return found
    agentic = bool(tools) or any(m.calls or m.role in ("tool", "function") for m in msgs)
    return _walk("openai-tools" if agentic else "generic", msgs, total, _read_generic)


def read_envelope(endpoint: str, body: Mapping[str, Any]) -> Envelope:
    """The :class:`Envelope` of ``body``, a request to ``endpoint`` (``"chat"`` or
    ``"completions"``). Total: malformed input gives a generic, empty envelope."""
    try:
        if not isinstance(body, Mapping):
            return _GENERIC
        if endpoint != "chat" and isinstance(body.get("prompt"), str | list):
            return _prompt_envelope(body)
        return _chat_envelope(body)
    except Exception:  # noqa: BLE001 - the classifier is total: odd input → generic
        return _GENERIC


_GENERIC = _envelope("generic", "", "", (), 0)
