"""Signals: one request read into named facts (:class:`Signals`), each computed when a
rule first asks for it. Pure.

What decides a class is *the ask*: the current human turn, as
:func:`proxy.classify.envelope.read_envelope` finds it inside whatever the client
wrapped it in (system prompts, repo maps, edit rules, file listings, tool output).
Sizes come in three kinds, each its own signal: ``ask_tokens`` (what the user wrote),
``attached_tokens`` (code and files the user attached), ``boilerplate_tokens`` (the
client's envelope, which only constrains which variants can hold the request, through
``tokens``). ``user_tokens`` is what the user supplied: the ask and its attachments.

Signals are computed in groups, each the first time a rule reads one of its members
(:class:`LazySignals`), so a request that an early, cheap rule settles pays for nothing
else: the request's own fields are read at once; the envelope when a rule needs the
ask or a size; the ask's prose/code split, its languages, its vocabulary, its log
lines and its human language each on demand. Every scan reads the ask (and its
attachments for file names and log lines) in bounded windows, so the cost does not
grow with the envelope.

Extraction is total: any input, however malformed, gives signals and never raises.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from proxy import fim

from .envelope import Envelope, read_envelope
from .languages import (
    attached_languages,
    core_languages,
    file_names,
    human_language,
    named_target,
    prose_languages,
    segment_languages,
    settle_code_languages,
    shebang_languages,
    without_file_names,
)
from .lexicon import (
    BULLETS,
    CHAT_TEMPLATE_MARKS,
    CHAT_TEMPLATE_RE,
    CJK_TRANSLATE,
    DEFAULT_PRIMARY_LANGUAGES,
    HOLE_PROBES,
    HOLE_RE,
    IMPERATIVE_RE,
    LOG_MARKERS,
    LOG_TIMESTAMP_RE,
    NUMBERED_RE,
    SUBSTRINGS,
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
    bounded,
    ends_in_code,
    estimate_tokens,
    is_code_line,
    split_prose_code,
    window,
    word_tokens,
)

__all__ = [
    "SIGNAL_KINDS",
    "LazySignals",
    "SignalKind",
    "Signals",
    "extract_signals",
    "jsonable",
]

# Window sizes (characters) for the scans that are not O(1) per character in C.
_HEAD, _TAIL = 2500, 800  # of the ask: prose/code split, vocabulary
_FILE_WINDOW = 12000  # file names and headers, in the ask and its attachments
_LOG_WINDOW = 12000  # log marker counts, likewise

SignalKind = Literal["num", "bool", "str", "set"]

#: Every signal name → its kind; the rule validator and the docs use this table.
SIGNAL_KINDS: dict[str, SignalKind] = {
    "endpoint": "str", "has_suffix": "bool", "fim_family": "str", "fim_marker": "bool",
    "edit_prediction": "bool", "max_tokens": "num", "has_stop": "bool", "n_messages": "num",
    "needs_tools": "bool", "client": "str", "background": "str", "tool_turn": "bool",
    "tokens": "num", "user_tokens": "num", "ask_tokens": "num", "attached_tokens": "num",
    "boilerplate_tokens": "num", "code_chars": "num", "code_ratio": "num",
    "code_blocks": "num", "n_files": "num", "languages": "set", "code_languages": "set",
    "n_languages": "num", "n_core_languages": "num", "non_primary_languages": "set",
    "human_language": "str", "non_english": "bool", "translation_intent": "bool",
    "interop_intent": "bool", "instruction_like": "bool", "prose_words": "num",
    "step_count": "num", "constraint_count": "num", "design_score": "num",
    "debug_score": "num", "concurrency_score": "num", "performance_score": "num",
    "proof_score": "num", "algorithm_score": "num", "complexity_score": "num",
    "log_lines": "num",
}  # fmt: skip

_ENDPOINT_KINDS = ("chat", "completions")


@dataclass(frozen=True)
class Signals:
    """Named facts about one request; see ``docs/classifier.md`` for each one."""

    endpoint: str = "other"
    has_suffix: bool = False
    fim_family: str | None = None
    fim_marker: bool = False
    edit_prediction: bool = False
    max_tokens: int | None = None
    has_stop: bool = False
    n_messages: int = 0
    needs_tools: bool = False
    client: str = "generic"
    background: str | None = None
    tool_turn: bool = False
    tokens: int = 0
    user_tokens: int = 0
    ask_tokens: int = 0
    attached_tokens: int = 0
    boilerplate_tokens: int = 0
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


# --- the request's own fields ------------------------------------------------------------


def _read_max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "n_predict"):
        max_tokens = _as_int(body.get(key))
        if max_tokens is not None:
            return max_tokens
    options = body.get("options")
    if isinstance(options, Mapping):
        return _as_int(options.get("num_predict"))
    return None


def _needs_tools(body: Mapping[str, Any]) -> bool:
    """The client offers tools and lets the model call them."""
    tools = body.get("tools") or body.get("functions")
    if not isinstance(tools, list) or not tools:
        return False
    return body.get("tool_choice") != "none"


def _request_fields(r: _Reading) -> dict[str, Any]:
    body = r.body
    stop = body.get("stop")
    messages = body.get("messages")
    return {
        "endpoint": r.kind,
        "has_suffix": isinstance(body.get("suffix"), str)
        or isinstance(body.get("input_suffix"), str),
        "max_tokens": _read_max_tokens(body),
        "has_stop": bool(stop) and isinstance(stop, str | list),
        "n_messages": sum(1 for m in messages if isinstance(m, Mapping))
        if isinstance(messages, list)
        else 0,
        "needs_tools": _needs_tools(body),
    }


# --- fill-in-the-middle and edit prediction ------------------------------------------------


def _prompt_text(body: Mapping[str, Any]) -> str:
    """The completion prompt as one text (a batch joined, llama.cpp ``/infill`` fields
    appended)."""
    prompt = body.get("prompt")
    text = ""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list):
        text = "\n".join(p for p in prompt if isinstance(p, str))
    for key in ("input_prefix", "input_suffix"):  # llama.cpp /infill
        value = body.get(key)
        if isinstance(value, str):
            text = text + "\n" + value if text else value
    return bounded(text)


def _holes(text: str) -> bool:
    """A cursor or hole marker where code goes (a line of code), not one named in a sentence."""
    low = text[:20000].lower()
    if not any(probe in low for probe in HOLE_PROBES):
        return False
    for m in HOLE_RE.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        line = text[start : end if end >= 0 else len(text)]
        rest = (line[: m.start() - start] + line[m.end() - start :]).strip()
        if not rest or is_code_line(line) or m.group(0) != m.group(0).strip():
            return True
    return False


def _fim_signals(r: _Reading) -> dict[str, Any]:
    """FIM markers that structure the prompt (or the ask), an edit-prediction prompt, or
    a hole marker where code goes."""
    text = r.ask()
    parts = r.fim = r.fim_parts(text)
    prediction = r.envelope().edit_prediction
    return {
        "fim_family": parts.family if parts is not None else None,
        "fim_marker": parts is not None or prediction or (not r.get("has_suffix") and _holes(text)),
        "edit_prediction": prediction,
    }


# --- the envelope: who sent it, what was asked, how big each part is ----------------------


def _envelope_signals(r: _Reading) -> dict[str, Any]:
    env = r.envelope()
    ask = estimate_tokens(r.ask())
    attached = estimate_tokens(env.attached)
    boilerplate = math.ceil(env.boilerplate_chars / 3.6)
    suffix = r.body.get("suffix")
    extra = estimate_tokens(suffix) if isinstance(suffix, str) else 0
    return {
        "client": env.client,
        "background": env.background,
        "tool_turn": env.tool_turn,
        "ask_tokens": ask,
        "attached_tokens": attached,
        "boilerplate_tokens": boilerplate,
        "user_tokens": ask + attached,
        # the envelope's three sizes add up to the request's text (earlier turns included)
        "tokens": ask + attached + boilerplate + extra,
    }


# --- the ask's text ------------------------------------------------------------------------


@dataclass
class _AskText:
    """The ask (windowed, chat-template tokens removed), its prose/code split, and the
    prose's word tokens as written and lower-cased."""

    last: str
    split: Split
    prose: str
    tokens: list[str]
    lower: list[str]


def _ask_text(r: _Reading) -> _AskText:
    env = r.envelope()
    last = r.ask()
    r.get("fim_marker")  # the FIM reading decides which text is the user's
    if r.fim is not None:
        last = r.fim.prefix + "\n" + r.fim.suffix
    last = window(last, _HEAD, _TAIL)
    if "<" in last or "[" in last:
        last = TEMPLATE_TOKEN_RE.sub(" ", last)
    split = split_prose_code(last)
    prose = split.prose
    if len(prose) < 40 and split.code_chars >= 40 and env.context and r.fim is None:
        # The ask is (almost) only code: the instruction is in the turn before it.
        earlier = split_prose_code(window(env.context[-1], _HEAD // 2, _TAIL // 2))
        prose = earlier.prose + "\n" + prose
        split.code_segments.extend(earlier.code_segments)
    # file names are not words of the ask: `lock.go` is no lock, `Profile.tsx` no profiling
    words = without_file_names(prose) if "." in prose else prose
    tokens = word_tokens(words)
    lower = " ".join(tokens).lower().split(" ") if tokens else []
    return _AskText(last, split, prose, tokens, lower)


def _supplied(r: _Reading, size: int) -> str:
    """The ask and its attachments, windowed: where file headers and logs are counted."""
    attached = r.envelope().attached
    joined = r.ask() + "\n" + attached if attached else r.ask()
    return window(joined, size * 2 // 3, size // 3)


def _code_signals(r: _Reading) -> dict[str, Any]:
    text = r.ask_text()
    split = text.split
    return {
        "code_chars": split.code_chars,
        "code_ratio": round(min(1.0, split.code_chars / (len(text.last) or 1)), 3),
        "code_blocks": split.code_blocks,
    }


def _language_signals(r: _Reading) -> dict[str, Any]:
    """Languages from fences, syntax, file names, shebangs and prose."""
    text = r.ask_text()
    scan = _supplied(r, _FILE_WINDOW)
    translate = r.get("translation_words")
    segments = text.split.code_segments
    files, file_langs = file_names(text.prose, segments, scan)
    own = settle_code_languages(segment_languages(segments) | file_langs | shebang_languages(scan))
    asked = frozenset(own | prose_languages(text.tokens, text.lower))
    # The language of attached code is the language of the task ("add a test for the
    # tokenizer" with tokenizer.zig attached); files attached in several languages are
    # context, though, not a several-language task: those count only the ask's own.
    attached = r.envelope().attached
    window_ = window(attached, _FILE_WINDOW * 2 // 3, _FILE_WINDOW // 3)
    code = settle_code_languages({*own, *attached_languages(window_)}) if attached else own
    languages = frozenset(asked | code)
    return {
        "n_files": len(files),
        "languages": languages,
        "code_languages": code,
        "n_languages": len(languages),
        "n_core_languages": len(core_languages(asked, own, translate)),
        "non_primary_languages": frozenset(languages - r.primary),
        # port/convert/rewrite between two languages, or into a named one from code that
        # is not already in it
        "translation_intent": translate and (len(languages) >= 2 or _ports_into(text, code)),
    }


def _ports_into(text: _AskText, code: frozenset[str]) -> bool:
    target = named_target(text.tokens, text.lower)
    return target is not None and (not code or bool(code - {target}))


def _human_signals(r: _Reading) -> dict[str, Any]:
    text = r.ask_text()
    human = human_language(text.prose, text.lower)
    return {"human_language": human, "non_english": human != "en"}


def _intent_signals(r: _Reading) -> dict[str, Any]:
    text = r.ask_text()
    _, counts = r.vocab()
    steps = counts["sequence"] + len(NUMBERED_RE.findall(text.prose))
    steps += sum(1 for line in text.prose.splitlines() if line.lstrip()[:2] in BULLETS)
    return {
        "translation_words": counts["translate"] > 0 or any(w in text.prose for w in CJK_TRANSLATE),
        "interop_intent": counts["interop"] > 0,
        "prose_words": len(text.lower),
        "step_count": steps,
        "constraint_count": counts["constraint"],
    }


def _log_signals(r: _Reading) -> dict[str, Any]:
    """Lines that look like log output or a stack trace (marker and timestamp count)."""
    text = _supplied(r, _LOG_WINDOW)
    n = sum(text.count(marker) for marker in LOG_MARKERS)
    if "\n" in text:
        n += len(LOG_TIMESTAMP_RE.findall(text))
    return {"log_lines": n}


def _difficulty_signals(r: _Reading) -> dict[str, Any]:
    """The per-topic scores and ``complexity_score``: their sum, plus many steps and many
    constraints. Size is not in it: the long-context rule reads sizes on their own."""
    scores, _ = r.vocab()
    steps, constraints = r.get("step_count"), r.get("constraint_count")
    debug = scores["debug"] + (2 if r.get("log_lines") >= 5 else 0)
    complexity = (
        scores["design"] + debug + scores["concurrency"] + scores["performance"]
        + scores["proof"] + scores["algorithm"]
        + max(0, steps - 3) * 0.5 + max(0, constraints - 2) * 0.5
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


def _instruction_signals(r: _Reading) -> dict[str, Any]:
    """A chat request, a prompt in a chat template, or a raw prompt that reads as an
    instruction (imperative or question, or mostly prose) and does not stop inside code."""
    if r.kind == "chat":
        return {"instruction_like": True}
    text = r.ask_text()
    prompt = r.prompt or text.last
    if any(m in prompt for m in CHAT_TEMPLATE_MARKS) or CHAT_TEMPLATE_RE.search(prompt[:4000]):
        return {"instruction_like": True}
    lower = text.lower
    return {
        "instruction_like": not ends_in_code(prompt)
        and (
            (len(lower) >= 4 and any(IMPERATIVE_RE.match(ln) for ln in text.prose.splitlines()))
            or (len(lower) >= 8 and text.split.code_chars < 0.4 * len(text.last))
        )
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
    # scripts written without spaces between words, or whose words the stems don't cover:
    # Hebrew/Arabic/Devanagari (U+0590 on) and CJK
    if not prose.isascii() and max(prose) >= "\u0590":
        for table, groups in SUBSTRINGS.items():
            for weight, terms in groups:
                found = sum(1 for term in terms if term in prose)
                scores[table] += weight * found  # distinct terms, as for words
                counts[table] += found
    for probe, table, weight, pattern in SYMBOLIC:
        if probe in prose if isinstance(probe, str) else any(p in prose for p in probe):
            found = len(pattern.findall(prose))
            if found:
                scores[table] += weight
                counts[table] += found
                if table == "algorithm":
                    counts["constraint"] += found
    return scores, counts


# --- laziness ------------------------------------------------------------------------------

_Group = Callable[["_Reading"], dict[str, Any]]

#: Each signal's group: computing one member computes the group (they share their inputs).
_GROUPS: tuple[tuple[_Group, tuple[str, ...]], ...] = (
    (_request_fields, ("endpoint", "has_suffix", "max_tokens", "has_stop", "n_messages",
                       "needs_tools")),
    (_fim_signals, ("fim_family", "fim_marker", "edit_prediction")),
    (_envelope_signals, ("client", "background", "tool_turn", "tokens", "user_tokens",
                         "ask_tokens", "attached_tokens", "boilerplate_tokens")),
    (_code_signals, ("code_chars", "code_ratio", "code_blocks")),
    (_intent_signals, ("translation_words", "interop_intent", "prose_words", "step_count",
                       "constraint_count")),
    (_language_signals, ("n_files", "languages", "code_languages", "n_languages",
                         "n_core_languages", "non_primary_languages", "translation_intent")),
    (_human_signals, ("human_language", "non_english")),
    (_log_signals, ("log_lines",)),
    (_difficulty_signals, ("design_score", "debug_score", "concurrency_score",
                           "performance_score", "proof_score", "algorithm_score",
                           "complexity_score")),
    (_instruction_signals, ("instruction_like",)),
)  # fmt: skip
_GROUP_OF: dict[str, _Group] = {name: group for group, names in _GROUPS for name in names}
assert set(SIGNAL_KINDS) <= set(_GROUP_OF)


class _Reading:
    """One request being read: the inputs, and what has been computed so far."""

    def __init__(
        self,
        kind: str,
        body: Mapping[str, Any],
        primary: frozenset[str],
        prompt_fim: fim.PromptFim | None,
        envelope: Envelope | None,
    ) -> None:
        self.kind = kind
        self.body = body
        self.primary = primary
        self.prompt_fim = prompt_fim
        self.prompt = _prompt_text(body) if kind != "chat" else ""
        self.fim: fim.FimParts | None = None
        self.values: dict[str, Any] = {}
        self._envelope = envelope
        self._ask: _AskText | None = None
        self._vocab: tuple[dict[str, int], dict[str, int]] | None = None

    def get(self, name: str) -> Any:
        found = self.values.get(name, _MISSING)
        if found is _MISSING:
            group = _GROUP_OF[name]
            try:
                self.values.update(group(self))
            except Exception:  # noqa: BLE001 - the classifier is total: odd input → defaults
                for member in next(n for g, n in _GROUPS if g is group):
                    self.values.setdefault(member, _DEFAULTS.get(member, False))
            found = self.values[name]
        return found

    def envelope(self) -> Envelope:
        if self._envelope is None:
            self._envelope = read_envelope(self.kind, self.body)
        return self._envelope

    def ask(self) -> str:
        """The text the user asked with: the prompt of a completion, else the envelope's ask."""
        return self.prompt if self.kind != "chat" else self.envelope().ask

    def fim_parts(self, text: str) -> fim.FimParts | None:
        if not text:
            return None
        if self.prompt_fim is not None:
            return self.prompt_fim.parts_of(text)
        return fim.structural(text)

    def ask_text(self) -> _AskText:
        if self._ask is None:
            self._ask = _ask_text(self)
        return self._ask

    def vocab(self) -> tuple[dict[str, int], dict[str, int]]:
        if self._vocab is None:
            text = self.ask_text()
            self._vocab = _vocab_scores(text.lower, text.prose)
        return self._vocab


_MISSING = object()


class LazySignals:
    """Signals computed on first use, group by group."""

    __slots__ = ("_reading", "get")

    def __init__(
        self,
        endpoint: object,
        body: object,
        primary: frozenset[str],
        prompt_fim: fim.PromptFim | None = None,
        envelope: Envelope | None = None,
    ) -> None:
        kind = _endpoint_kind(endpoint)
        self._reading = _Reading(
            kind, body if isinstance(body, Mapping) else {}, primary, prompt_fim, envelope
        )
        #: one signal's value, computing its group on first use (bound once: rules call
        #: it for every leaf)
        self.get: Callable[[str], Any] = self._reading.get

    @property
    def envelope(self) -> Envelope:
        """The request's envelope: the client, the ask, the sizes."""
        return self._reading.envelope()

    def computed(self) -> list[str]:
        """The signals computed so far, in the order of :data:`SIGNAL_KINDS`."""
        return [name for name in SIGNAL_KINDS if name in self._reading.values]

    def full(self) -> Signals:
        """Every signal."""
        return Signals(**{name: self.get(name) for name in SIGNAL_KINDS})


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
