"""Signals: one request body read into named facts (:class:`Signals`). Pure.

The body is read in two stages, so that autocomplete traffic never pays for prose
analysis:

* Cheap signals (``endpoint``, ``has_suffix``, ``fim_*``, ``max_tokens``, ``has_stop``,
  ``n_messages``, ``tokens``, ``user_tokens``) are read when a request is classified:
  a walk over the messages and a few field lookups.
* Deep signals (code/prose split, languages, human language, vocabulary scores, log
  lines, ``instruction_like``) are computed, all together, the first time a rule asks
  for one of them (:class:`LazySignals`). Each one, or each group that shares its
  inputs, is a small function below; :func:`_deep_signals` only wires them together.

Expensive scans read bounded windows of text (the head and tail of the last user
message; the head and tail of all user text for file headers and log lines), and
vocabulary is matched by dictionary lookups on word tokens rather than by big regex
alternations, so the cost stays flat for long prompts. Language and intent signals read
what the user wrote (the last user message, or the one before it when the last is only
code); system prompts count only toward ``tokens``.

The caller passes the endpoint *name* (``"chat"``, ``"completions"``); it is not
guessed from a path. FIM markers are read through :class:`proxy.fim.PromptFim` when the
caller has one for this request, so a prompt is scanned for them only once.

Extraction is total: any input, however malformed, gives signals and never raises.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from proxy import fim

from .languages import (
    core_languages,
    file_names,
    human_language,
    prose_languages,
    segment_languages,
    settle_code_languages,
    shebang_languages,
)
from .lexicon import (
    BULLETS,
    CHAT_TEMPLATE_MARKS,
    CHAT_TEMPLATE_RE,
    CJK_TRANSLATE,
    DEFAULT_PRIMARY_LANGUAGES,
    HOLE_RE,
    IMPERATIVE_RE,
    LOG_MARKERS,
    LOG_TIMESTAMP_RE,
    NUMBERED_RE,
    SYMBOLIC,
    TEMPLATE_TOKEN_RE,
    V_EXACT,
    V_PHRASES,
    V_STEMS,
    VOCAB,
    Term,
)
from .text import (
    Split,
    content_text,
    ends_in_code,
    estimate_tokens,
    split_prose_code,
    window,
    word_tokens,
)

__all__ = [
    "CHEAP_SIGNALS",
    "SIGNAL_KINDS",
    "LazySignals",
    "SignalKind",
    "Signals",
    "extract_signals",
    "jsonable",
]

# Window sizes (characters) for the scans that are not O(1) per character in C.
_HEAD, _TAIL = 2500, 800  # of the last user message: prose/code split, vocabulary
# Past ~12 KB of user text the long-context rule (3000 tokens) decides anyway, so file
# headers and log lines are counted in the first 8 KB and the last 4 KB only.
_FILE_WINDOW = 12000  # file names and headers
_LOG_WINDOW = 12000  # log marker counts

SignalKind = Literal["num", "bool", "str", "set"]

#: Every signal name → its kind; the rule validator and the docs use this table.
SIGNAL_KINDS: dict[str, SignalKind] = {
    "endpoint": "str", "has_suffix": "bool", "fim_family": "str", "fim_marker": "bool",
    "max_tokens": "num", "has_stop": "bool", "n_messages": "num", "tokens": "num",
    "user_tokens": "num", "code_chars": "num", "code_ratio": "num", "code_blocks": "num",
    "n_files": "num", "languages": "set", "code_languages": "set", "n_languages": "num",
    "n_core_languages": "num", "non_primary_languages": "set", "human_language": "str",
    "non_english": "bool", "translation_intent": "bool", "interop_intent": "bool",
    "instruction_like": "bool", "prose_words": "num", "step_count": "num",
    "constraint_count": "num", "design_score": "num", "debug_score": "num",
    "concurrency_score": "num", "performance_score": "num", "proof_score": "num",
    "algorithm_score": "num", "complexity_score": "num", "log_lines": "num",
}  # fmt: skip

#: Read before any rule runs; everything else is computed on first use.
CHEAP_SIGNALS = frozenset(
    {"endpoint", "has_suffix", "fim_family", "fim_marker", "max_tokens", "has_stop",
     "n_messages", "tokens", "user_tokens"}
)  # fmt: skip

# The endpoint names the classifier knows; any other value is the endpoint "other".
_ENDPOINT_KINDS = ("chat", "completions")


@dataclass(frozen=True)
class Signals:
    """Named facts about one request; see ``docs/classifier.md`` for each one."""

    endpoint: str = "other"
    has_suffix: bool = False
    fim_family: str | None = None
    fim_marker: bool = False
    max_tokens: int | None = None
    has_stop: bool = False
    n_messages: int = 0
    tokens: int = 0
    user_tokens: int = 0
    code_chars: int = 0
    code_ratio: float = 0.0
    code_blocks: int = 0
    n_files: int = 0
    languages: frozenset[str] = frozenset()
    code_languages: frozenset[str] = frozenset()
    n_languages: int = 0
    n_core_languages: int = 0
    non_primary_languages: frozenset[str] = frozenset()
    human_language: str = "en"
    non_english: bool = False
    translation_intent: bool = False
    interop_intent: bool = False
    instruction_like: bool = False
    prose_words: int = 0
    step_count: int = 0
    constraint_count: int = 0
    design_score: int = 0
    debug_score: int = 0
    concurrency_score: int = 0
    performance_score: int = 0
    proof_score: int = 0
    algorithm_score: int = 0
    complexity_score: float = 0.0
    log_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        """All signals as a JSON-able dict (sets become sorted lists)."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


_DEFAULTS: dict[str, Any] = asdict(Signals())
assert {f.name for f in fields(Signals)} == set(SIGNAL_KINDS)


def jsonable(value: object) -> object:
    """A signal value as JSON can hold it (sets become sorted lists)."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    return value


def _endpoint_kind(endpoint: object) -> str:
    return endpoint if isinstance(endpoint, str) and endpoint in _ENDPOINT_KINDS else "other"


def _as_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


# --- cheap stage ---------------------------------------------------------------------------


@dataclass
class _Context:
    """What the cheap stage read and the deep stage needs."""

    kind: str
    user_msgs: list[str]
    prompt_text: str
    fim_parts: fim.FimParts | None
    user_tokens: int
    primary: frozenset[str]


def _read_messages(messages: object) -> tuple[list[str], int, int]:
    """User texts, the token estimate of every other message, and the message count."""
    user_msgs: list[str] = []
    tokens = 0
    n_messages = 0
    if isinstance(messages, list):
        for msg in messages:
            if not isinstance(msg, Mapping):
                continue
            n_messages += 1
            text = content_text(msg.get("content"))
            role = msg.get("role")
            if role == "user" or role is None:
                user_msgs.append(text)
            else:  # system/developer prompts and replies count only toward `tokens`
                tokens += estimate_tokens(text)
    return user_msgs, tokens, n_messages


def _read_prompt(body: Mapping[str, Any]) -> tuple[str, bool]:
    """The completion prompt as one text (a batch joined, llama.cpp ``/infill`` fields
    appended) and whether an ``input_suffix`` field was among them."""
    prompt = body.get("prompt")
    prompt_text = ""
    if isinstance(prompt, str):
        prompt_text = prompt
    elif isinstance(prompt, list):
        prompt_text = "\n".join(p for p in prompt if isinstance(p, str))
    has_suffix = False
    for key in ("input_prefix", "input_suffix"):  # llama.cpp /infill
        value = body.get(key)
        if isinstance(value, str):
            has_suffix = has_suffix or key == "input_suffix"
            prompt_text = prompt_text + "\n" + value if prompt_text else value
    return prompt_text, has_suffix


def _read_fim(
    candidates: list[str], has_suffix: bool, prompt_fim: fim.PromptFim | None
) -> tuple[fim.FimParts | None, bool]:
    """FIM markers in the first candidate text that has them, and whether the last one
    has a chat-style "fill the hole" marker instead."""
    detect = fim.detect if prompt_fim is None else prompt_fim.parts_of
    fim_parts = None
    for text in candidates:
        if text and fim_parts is None:
            fim_parts = detect(text)
    hole = False
    if fim_parts is None and not has_suffix and candidates:
        last = candidates[-1]
        low = last.lower()  # cheap probes first: the regex is slower on big bodies
        if "fill" in low or "cursor" in low or "hole" in low or "insert>" in low:
            hole = HOLE_RE.search(last) is not None
    return fim_parts, hole


def _read_max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "n_predict"):
        max_tokens = _as_int(body.get(key))
        if max_tokens is not None:
            return max_tokens
    options = body.get("options")
    if isinstance(options, Mapping):
        return _as_int(options.get("num_predict"))
    return None


def _cheap_stage(
    endpoint: object, body: object, primary: frozenset[str], prompt_fim: fim.PromptFim | None
) -> tuple[dict[str, Any], _Context]:
    kind = _endpoint_kind(endpoint)
    cheap: dict[str, Any] = {name: _DEFAULTS[name] for name in CHEAP_SIGNALS}
    cheap["endpoint"] = kind
    if not isinstance(body, Mapping):
        return cheap, _Context(kind, [], "", None, 0, primary)

    user_msgs, tokens, n_messages = _read_messages(body.get("messages"))
    prompt_text, has_suffix = _read_prompt(body)
    suffix = body.get("suffix")
    if isinstance(suffix, str):
        has_suffix = True
        tokens += estimate_tokens(suffix)
    if prompt_text:
        user_msgs.append(prompt_text)
    candidates = [prompt_text] if prompt_text else user_msgs[-2:]
    fim_parts, hole = _read_fim(candidates, has_suffix, prompt_fim)
    user_tokens = sum(estimate_tokens(t) for t in user_msgs)
    stop = body.get("stop")
    cheap.update(
        has_suffix=has_suffix,
        fim_family=fim_parts.family if fim_parts is not None else None,
        fim_marker=fim_parts is not None or hole,
        max_tokens=_read_max_tokens(body),
        has_stop=bool(stop) and isinstance(stop, str | list),
        n_messages=n_messages,
        tokens=tokens + user_tokens,
        user_tokens=user_tokens,
    )
    return cheap, _Context(kind, user_msgs, prompt_text, fim_parts, user_tokens, primary)


# --- deep stage: the text the user wrote -------------------------------------------------------


@dataclass
class _UserText:
    """The last user text (windowed, chat-template tokens removed), its prose/code
    split, and the prose's word tokens as written and lower-cased."""

    last: str
    split: Split
    prose: str
    tokens: list[str]
    lower: list[str]


def _user_text(ctx: _Context) -> _UserText:
    user_msgs = ctx.user_msgs
    last = user_msgs[-1] if user_msgs else ""
    if ctx.fim_parts is not None:
        last = ctx.fim_parts.prefix + "\n" + ctx.fim_parts.suffix
    last = window(last, _HEAD, _TAIL)
    if "<" in last or "[" in last:
        last = TEMPLATE_TOKEN_RE.sub(" ", last)
    split = split_prose_code(last)
    prose = split.prose
    if len(prose) < 40 and len(user_msgs) > 1:
        # The last message is (almost) only code: the instruction is in an earlier one.
        earlier = split_prose_code(window(user_msgs[-2], _HEAD // 2, _TAIL // 2))
        prose = earlier.prose + "\n" + prose
        split.code_segments.extend(earlier.code_segments)
    tokens = word_tokens(prose)
    lower = " ".join(tokens).lower().split(" ") if tokens else []
    return _UserText(last, split, prose, tokens, lower)


# --- deep stage: one function per signal or group of signals ----------------------------------


def _code_signals(text: _UserText) -> dict[str, Any]:
    """``code_chars``, ``code_ratio``, ``code_blocks``."""
    split = text.split
    return {
        "code_chars": split.code_chars,
        "code_ratio": round(min(1.0, split.code_chars / (len(text.last) or 1)), 3),
        "code_blocks": split.code_blocks,
    }


def _language_signals(
    text: _UserText, scan: str, translate: bool, primary: frozenset[str]
) -> dict[str, Any]:
    """The language signals, from fences, syntax, file names, shebangs and prose, in
    ``scan`` (all user text, windowed) and the last user text."""
    segments = text.split.code_segments
    files, file_langs = file_names(text.prose, segments, scan)
    code = settle_code_languages(segment_languages(segments) | file_langs | shebang_languages(scan))
    languages = frozenset(code | prose_languages(text.tokens, text.lower))
    return {
        "n_files": len(files),
        "languages": languages,
        "code_languages": code,
        "n_languages": len(languages),
        "n_core_languages": len(core_languages(languages, code, translate)),
        "non_primary_languages": frozenset(languages - primary),
        "translation_intent": translate and len(languages) >= 2,
    }


def _translate_words(prose: str, counts: Mapping[str, int]) -> bool:
    """Words asking to translate, port or rewrite (in any language)."""
    return counts["translate"] > 0 or any(w in prose for w in CJK_TRANSLATE)


def _step_count(prose: str, counts: Mapping[str, int]) -> int:
    """Sequence words, numbered items and bullet lines."""
    steps = counts["sequence"] + len(NUMBERED_RE.findall(prose))
    return steps + sum(1 for line in prose.splitlines() if line.lstrip()[:2] in BULLETS)


def _log_lines(text: str) -> int:
    """Lines that look like log output or a stack trace (marker and timestamp count)."""
    n = sum(text.count(marker) for marker in LOG_MARKERS)
    if "\n" in text:
        n += len(LOG_TIMESTAMP_RE.findall(text))
    return n


def _difficulty_signals(
    scores: Mapping[str, int], steps: int, constraints: int, logs: int, user_tokens: int
) -> dict[str, Any]:
    """The per-topic scores and ``complexity_score``, their sum plus many steps, many
    constraints and length."""
    debug = scores["debug"] + (2 if logs >= 5 else 0)
    complexity = (
        scores["design"] + debug + scores["concurrency"] + scores["performance"]
        + scores["proof"] + scores["algorithm"]
        + max(0, steps - 3) * 0.5 + max(0, constraints - 2) * 0.5
        + min(4.0, user_tokens / 1000)
    )  # fmt: skip
    return {
        "design_score": scores["design"],
        "debug_score": debug,
        "concurrency_score": scores["concurrency"],
        "performance_score": scores["performance"],
        "proof_score": scores["proof"],
        "algorithm_score": scores["algorithm"],
        "complexity_score": round(complexity, 2),
    }


def _instruction_like(ctx: _Context, text: _UserText) -> bool:
    """A chat request, a prompt in a chat template, or a raw prompt that reads as an
    instruction (imperative or question, or mostly prose) and does not stop inside code."""
    if ctx.kind == "chat":
        return True
    prompt = ctx.prompt_text or text.last
    if any(m in prompt for m in CHAT_TEMPLATE_MARKS) or CHAT_TEMPLATE_RE.search(prompt[:4000]):
        return True
    lower = text.lower
    return not ends_in_code(prompt) and (
        (len(lower) >= 4 and any(IMPERATIVE_RE.match(ln) for ln in text.prose.splitlines()))
        or (len(lower) >= 8 and text.split.code_chars < 0.4 * len(text.last))
    )


def _deep_signals(ctx: _Context) -> dict[str, Any]:
    """Every signal that is not cheap, computed together: they share the text reading."""
    text = _user_text(ctx)
    joined = "\n".join(ctx.user_msgs)
    scan = window(joined, _FILE_WINDOW * 2 // 3, _FILE_WINDOW // 3)
    scores, counts = _vocab_scores(text.lower, text.prose)
    translate = _translate_words(text.prose, counts)
    human = human_language(text.prose, text.lower)
    steps = _step_count(text.prose, counts)
    logs = _log_lines(window(joined, _LOG_WINDOW * 2 // 3, _LOG_WINDOW // 3))
    return {
        **_code_signals(text),
        **_language_signals(text, scan, translate, ctx.primary),
        "human_language": human,
        "non_english": human != "en",
        "interop_intent": counts["interop"] > 0,
        "instruction_like": _instruction_like(ctx, text),
        "prose_words": len(text.lower),
        "step_count": steps,
        "constraint_count": counts["constraint"],
        **_difficulty_signals(scores, steps, counts["constraint"], logs, ctx.user_tokens),
        "log_lines": logs,
    }


# --- vocabulary ------------------------------------------------------------------------------


def _vocab_scores(lower: list[str], prose: str) -> tuple[dict[str, int], dict[str, int]]:
    """Weighted scores per table (distinct terms) and raw hit counts per table."""
    hits: dict[Term, int] = {}
    covered: set[int] = set()  # words inside a matched phrase don't count again alone
    n = len(lower)
    firsts = V_PHRASES.keys() & set(lower)
    for i, word in enumerate(lower):
        if word not in firsts:
            continue
        for rest, is_stem, term in V_PHRASES[word]:
            k = len(rest)
            if i + k >= n:
                continue
            if all(lower[i + 1 + j] == rest[j] for j in range(k - 1)) and (
                lower[i + k].startswith(rest[-1]) if is_stem else lower[i + k] == rest[-1]
            ):
                hits[term] = hits.get(term, 0) + 1
                covered.update(range(i, i + k + 1))
    words = [w for i, w in enumerate(lower) if i not in covered] if covered else lower
    for word, count in Counter(words).items():
        for term in V_EXACT.get(word, ()):
            hits[term] = hits.get(term, 0) + count
        for stem, term in V_STEMS.get(word[:3], ()):
            if word.startswith(stem):
                hits[term] = hits.get(term, 0) + count
    scores: dict[str, int] = dict.fromkeys(VOCAB, 0)
    counts: dict[str, int] = dict.fromkeys(VOCAB, 0)
    for term, count in hits.items():
        scores[term.table] += term.weight
        counts[term.table] += count
    for probe, table, weight, pattern in SYMBOLIC:
        if probe in prose:
            found = len(pattern.findall(prose))
            if found:
                scores[table] += weight
                counts[table] += found
                if table == "algorithm":
                    counts["constraint"] += found
    return scores, counts


# --- laziness ------------------------------------------------------------------------------


class LazySignals:
    """Signals computed on first use: the cheap ones up front, the rest on demand."""

    __slots__ = ("_cheap", "_ctx", "_deep")

    def __init__(
        self,
        endpoint: object,
        body: object,
        primary: frozenset[str],
        prompt_fim: fim.PromptFim | None = None,
    ) -> None:
        try:
            self._cheap, self._ctx = _cheap_stage(endpoint, body, primary, prompt_fim)
        except Exception:  # noqa: BLE001 - the classifier is total: odd input → defaults
            self._cheap = {name: _DEFAULTS[name] for name in CHEAP_SIGNALS}
            self._cheap["endpoint"] = _endpoint_kind(endpoint)
            self._ctx = _Context("other", [], "", None, 0, primary)
        self._deep: dict[str, Any] | None = None

    def get(self, name: str) -> Any:
        """One signal's value (computes every deep signal on the first deep one asked)."""
        if name in self._cheap:
            return self._cheap[name]
        if self._deep is None:
            try:
                self._deep = _deep_signals(self._ctx)
            except Exception:  # noqa: BLE001 - see above
                self._deep = {k: v for k, v in _DEFAULTS.items() if k not in CHEAP_SIGNALS}
        return self._deep[name]

    def full(self) -> Signals:
        """Every signal."""
        self.get("log_lines")
        assert self._deep is not None
        return Signals(**self._cheap, **self._deep)


def extract_signals(
    endpoint: str,
    body: Mapping[str, Any],
    primary_languages: Iterable[str] = DEFAULT_PRIMARY_LANGUAGES,
) -> Signals:
    """Read ``body`` (an OpenAI chat or completion request to endpoint ``endpoint``,
    ``"chat"`` or ``"completions"``) into :class:`Signals`.

    Total: any input, however malformed, gives a result and never raises.
    """
    return LazySignals(endpoint, body, frozenset(primary_languages)).full()
