"""Fill-in-the-middle (FIM) prompt formats: detect, render, normalize. Pure, no I/O.

Editors send autocomplete requests in one of two shapes:

* ``prompt`` + ``suffix`` fields (Continue, llama.vscode, Copilot-like clients); the
  model server (Ollama, llama.cpp) applies the model's own FIM template.
* a ``prompt`` already rendered with one model family's FIM tokens (Tabby, Twinny,
  raw-mode clients).

When the proxy routes such a request to a variant of another family, the tokens must be
rewritten, or the model sees a prompt full of strings it was never trained on.
:func:`detect` recognises every family below, :func:`render` writes one, and
:func:`normalize` turns a completion request body into the target format.

=================  =================================================================
format             rendered prompt
=================  =================================================================
``codellama``      ``<PRE> {prefix} <SUF>{suffix} <MID>``
``starcoder``      ``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>``
``qwen``           ``<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>``
``deepseek``       ``<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>``
``codestral``      ``[SUFFIX]{suffix}[PREFIX]{prefix}``
``native-suffix``  no tokens: ``prompt`` = prefix and ``suffix`` = suffix fields
=================  =================================================================

Both prefix-suffix-middle (PSM) and suffix-prefix-middle (SPM) orders are detected.
Repository context that precedes the prefix token (StarCoder2 ``<repo_name>`` /
``<file_sep>`` / ``<filename>``, Qwen ``<|repo_name|>`` / ``<|file_sep|>``) is kept in
:attr:`FimParts.context` when a prompt is re-rendered to its own family, and dropped
when it is rendered to another one: those tokens have no equivalent there.

The client's ``stop`` sequences are written for the family it rendered (Continue sends
``<fim_prefix>``, ``<|endoftext|>`` … for StarCoder): when the prompt is re-rendered for
another family, :func:`translate_stops` maps each of that family's special tokens to the
target's token of the same role (prefix, suffix, middle, end, file separator …; dropped
when the target has none) and adds the target's end-of-infill token, so the target model's
own end is among them. Other stop strings pass unchanged.

A request's prompt is read for markers once: :class:`PromptFim` is made per completion
request and handed to everything that asks (the classifier, the router's "needs an
infill-capable variant" check, :func:`normalize`); it runs :func:`detect` on first use
and keeps the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FIM_FORMATS",
    "FimParts",
    "PromptFim",
    "detect",
    "first_prompt",
    "normalize",
    "render",
    "single_prompt",
    "structural",
    "translate_stops",
]

FIM_FORMATS: frozenset[str] = frozenset(
    {"codellama", "starcoder", "qwen", "deepseek", "codestral", "native-suffix"}
)


@dataclass(frozen=True)
class FimParts:
    """A FIM prompt taken apart: which family's tokens it used, the text before and
    after the cursor, and any repository/file context that preceded the prefix."""

    family: str
    prefix: str
    suffix: str
    context: str = ""


@dataclass(frozen=True)
class _Tokens:
    prefix: str
    suffix: str
    middle: str


# Exact spellings as the models' tokenizers define them.
_STARCODER = _Tokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
_QWEN = _Tokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
_DEEPSEEK = _Tokens("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")
# Clients that typed the DeepSeek tokens with an ASCII bar; detected, never rendered.
_DEEPSEEK_ASCII = _Tokens("<|fim▁begin|>", "<|fim▁hole|>", "<|fim▁end|>")
_CODELLAMA = _Tokens("<PRE>", "<SUF>", "<MID>")

# Detection order: the specific spellings first (Qwen's tokens contain no StarCoder
# token, but check the longest spellings first anyway).
_TOKEN_FAMILIES: tuple[tuple[str, _Tokens], ...] = (
    ("qwen", _QWEN),
    ("deepseek", _DEEPSEEK),
    ("deepseek", _DEEPSEEK_ASCII),
    ("starcoder", _STARCODER),
)


#: Each family's special tokens by role, as its tokenizer spells them; "end" is the token
#: that ends an infill (the model's end of text), added to the stops of a re-rendered prompt.
_SPECIALS: dict[str, dict[str, str]] = {
    "starcoder": {
        "prefix": "<fim_prefix>", "suffix": "<fim_suffix>", "middle": "<fim_middle>",
        "pad": "<fim_pad>", "end": "<|endoftext|>", "file_sep": "<file_sep>",
        "repo_name": "<repo_name>", "filename": "<filename>",
    },
    "qwen": {
        "prefix": "<|fim_prefix|>", "suffix": "<|fim_suffix|>", "middle": "<|fim_middle|>",
        "pad": "<|fim_pad|>", "end": "<|endoftext|>", "file_sep": "<|file_sep|>",
        "repo_name": "<|repo_name|>",
    },
    "deepseek": {
        "prefix": "<｜fim▁begin｜>", "suffix": "<｜fim▁hole｜>", "middle": "<｜fim▁end｜>",
        "end": "<｜end▁of▁sentence｜>",
    },
    "codellama": {"prefix": "<PRE>", "suffix": "<SUF>", "middle": "<MID>", "end": "<EOT>"},
    # no "end": Mistral's end is the `</s>` control token, which the server stops at, and
    # as a stop *string* `</s>` would cut HTML's strikethrough tag
    "codestral": {"prefix": "[PREFIX]", "suffix": "[SUFFIX]", "middle": "[MIDDLE]"},
}  # fmt: skip
#: Spellings clients use that no tokenizer defines as such (the DeepSeek tokens typed with
#: an ASCII bar, DeepSeek Coder's chat end), read as the role they stand for.
_STOP_ALIASES: dict[str, str] = {
    "<|fim▁begin|>": "prefix", "<|fim▁hole|>": "suffix", "<|fim▁end|>": "middle",
    "<|EOT|>": "end", "<|end▁of▁sentence|>": "end",
}  # fmt: skip
_STOP_ROLES: dict[str, str] = {
    **{tok: role for table in _SPECIALS.values() for role, tok in table.items()},
    **_STOP_ALIASES,
}


def translate_stops(stop: object, target_fmt: str) -> list[str]:
    """The client's ``stop`` (a string, a list, or None) for a prompt rendered in
    ``target_fmt``: other families' special tokens replaced by the target's token of the
    same role (or dropped), the target's end-of-infill token added (when it has one that
    is safe as text), repeats removed."""
    target = _SPECIALS[target_fmt]
    mine = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    own = set(target.values())
    out: list[str] = []
    for item in mine:
        if not isinstance(item, str) or not item:
            continue
        role = _STOP_ROLES.get(item)
        found: str | None = item
        if role is not None and item not in own:
            found = target.get(role)
        if found is not None and found not in out:
            out.append(found)
    end = target.get("end")
    if end is not None and end not in out:
        out.append(end)
    return out


def _split_tokens(family: str, text: str, tok: _Tokens) -> FimParts | None:
    p = text.find(tok.prefix)
    s = text.find(tok.suffix)
    if s < 0 or (p < 0 and family != "starcoder"):
        return None
    m = text.find(tok.middle, s + len(tok.suffix))
    if p >= 0 and p < s:
        # PSM: <prefix-tok>PREFIX<suffix-tok>SUFFIX<middle-tok>[already generated]
        context = text[:p]
        prefix = text[p + len(tok.prefix) : s]
        if m >= 0:
            suffix = text[s + len(tok.suffix) : m]
            prefix += text[m + len(tok.middle) :]
        else:
            suffix = text[s + len(tok.suffix) :]
        return FimParts(family, prefix, suffix, context)
    if p > s and (m < 0 or m > p):
        # <suffix-tok>SUFFIX<prefix-tok>PREFIX[<middle-tok>]
        prefix = text[p + len(tok.prefix) : m] if m >= 0 else text[p + len(tok.prefix) :]
        if m >= 0:
            prefix += text[m + len(tok.middle) :]
        return FimParts(family, prefix, text[s + len(tok.suffix) : p], text[:s])
    if m < 0:
        return None
    # SPM: [<prefix-tok>]<suffix-tok>SUFFIX<middle-tok>PREFIX
    start = p if 0 <= p < s else s
    return FimParts(
        family, text[m + len(tok.middle) :], text[s + len(tok.suffix) : m], text[:start]
    )


def _strip_one_space(text: str, *, left: bool) -> str:
    if left:
        return text[1:] if text.startswith(" ") else text
    return text[:-1] if text.endswith(" ") else text


def _detect_codellama(text: str) -> FimParts | None:
    p = text.find("<PRE>")
    s = text.find("<SUF>", p + 5 if p >= 0 else 0)
    if p < 0 or s < 0:
        return None
    m = text.find("<MID>", s + 5)
    context = text[:p]
    between = text[p + 5 : s]
    if m < 0:
        return FimParts(
            "codellama",
            _strip_one_space(_strip_one_space(between, left=True), left=False),
            text[s + 5 :],
            context,
        )
    if between.strip() == "":
        # SPM: "<PRE> <SUF>{suffix} <MID> {prefix}"
        return FimParts(
            "codellama",
            _strip_one_space(text[m + 5 :], left=True),
            _strip_one_space(text[s + 5 : m], left=False),
            context,
        )
    # PSM: "<PRE> {prefix} <SUF>{suffix} <MID>"
    prefix = _strip_one_space(_strip_one_space(between, left=True), left=False)
    suffix = _strip_one_space(text[s + 5 : m], left=False)
    return FimParts("codellama", prefix + text[m + 5 :], suffix, context)


def _detect_codestral(text: str) -> FimParts | None:
    s = text.find("[SUFFIX]")
    if s < 0:
        return None
    p = text.find("[PREFIX]", s + 8)
    if p < 0:
        return None
    prefix = text[p + 8 :]
    # Ollama's Codestral template writes "[PREFIX] {prompt}"; drop that one space only
    # when it is not indentation of the first line.
    if prefix.startswith(" ") and not prefix.startswith("  "):
        prefix = prefix[1:]
    return FimParts("codestral", prefix, text[s + 8 : p], text[:s])


def detect(text: str) -> FimParts | None:
    """Find FIM tokens of any known family in ``text`` and split it into parts.

    Returns ``None`` when ``text`` is not a string or carries no complete set of
    markers (at least the prefix and suffix markers, in an order the family uses).
    """
    if not isinstance(text, str) or not text:
        return None
    if "fim" in text:
        for family, tok in _TOKEN_FAMILIES:
            if tok.suffix in text:
                parts = _split_tokens(family, text, tok)
                if parts is not None:
                    return parts
    if "<SUF>" in text:
        parts = _detect_codellama(text)
        if parts is not None:
            return parts
    if "[SUFFIX]" in text:
        return _detect_codestral(text)
    return None


#: What may stand before a FIM prompt's first marker: repository and file context.
CONTEXT_TOKENS: tuple[str, ...] = (
    "<repo_name>", "<file_sep>", "<filename>", "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
#: The markers that ask for the middle; a prompt ending on one awaits the infill.
MIDDLE_TOKENS: tuple[str, ...] = tuple(
    {tok.middle for _, tok in _TOKEN_FAMILIES} | {_CODELLAMA.middle}
)


def structural(text: str) -> FimParts | None:
    """:func:`detect`, counting only markers that structure the prompt: nothing but
    repository or file context before the first marker, or a prompt that ends on the
    marker asking for the middle. Markers quoted in a question, in a code sample or in
    a file being edited are text, not a FIM prompt."""
    parts = detect(text)
    if parts is None:
        return None
    context = parts.context.lstrip()
    if not context or context.startswith(CONTEXT_TOKENS):
        return parts
    return parts if text.rstrip().endswith(MIDDLE_TOKENS) else None


def render(fmt: str, prefix: str, suffix: str) -> str:
    """Render prefix and suffix as one prompt string in FIM format ``fmt``.

    ``native-suffix`` has no single-string form (it uses two body fields), so it
    raises :class:`ValueError`, as does an unknown format.
    """
    if fmt == "codellama":
        return f"<PRE> {prefix} <SUF>{suffix} <MID>"
    if fmt == "starcoder":
        tok = _STARCODER
    elif fmt == "qwen":
        tok = _QWEN
    elif fmt == "deepseek":
        tok = _DEEPSEEK
    elif fmt == "codestral":
        return f"[SUFFIX]{suffix}[PREFIX]{prefix}"
    elif fmt == "native-suffix":
        raise ValueError("FIM format 'native-suffix' has no single-string rendering")
    else:
        raise ValueError(f"unknown FIM format {fmt!r} (known: {', '.join(sorted(FIM_FORMATS))})")
    return f"{tok.prefix}{prefix}{tok.suffix}{suffix}{tok.middle}"


def first_prompt(prompt: object) -> str:
    """The text routing reads for FIM markers: ``prompt`` itself, or the first string of
    a batch of prompts; ``""`` for anything else (token ids, no prompt)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0]
    return ""


def single_prompt(prompt: object) -> str | None:
    """``prompt`` as the one string :func:`normalize` can rewrite: a string, or a list of
    exactly one string; ``None`` for a batch, token ids or no prompt."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    return None


class PromptFim:
    """The FIM reading of one completion request's prompt (:func:`first_prompt`),
    detected on first use and then kept.

    Made once per request and passed along, so the prompt is scanned at most once
    however many parts of the proxy ask, and not at all when none does.
    """

    __slots__ = ("_parts", "_read", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: FimParts | None = None
        self._read = False

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> PromptFim:
        """The reading of ``body["prompt"]`` (not detected yet)."""
        return cls(first_prompt(body.get("prompt")))

    @property
    def parts(self) -> FimParts | None:
        """:func:`structural` of the prompt, run on the first call only."""
        if not self._read:
            self._parts = structural(self.text)
            self._read = True
        return self._parts

    def parts_of(self, text: str) -> FimParts | None:
        """:func:`structural` of ``text``: the kept answer when ``text`` is the prompt read
        here (the usual case), a fresh detection for any other text."""
        if text is self.text or text == self.text:
            return self.parts
        return structural(text)


def normalize(
    endpoint: str,
    body: dict[str, Any],
    target_fmt: str | None,
    prompt_fim: PromptFim | None = None,
) -> dict[str, Any]:
    """Rewrite a completion request ``body`` so its FIM prompt uses ``target_fmt``.

    ``endpoint`` is the endpoint name (``"chat"``, ``"completions"``). Prefix and suffix
    come from FIM markers in ``prompt`` or, failing that, from the ``prompt`` +
    ``suffix`` fields; ``prompt_fim``, when given, is this request's reading of the
    prompt, so the markers are not searched for again. Returns a new dict; returns
    ``body`` itself, untouched, when there is nothing to do: no target, a chat request,
    a prompt that is not a string, no FIM markers and no ``suffix`` field, or a body
    already in the target format. Raises :class:`ValueError` for an unknown
    ``target_fmt``.
    """
    if target_fmt is None:
        return body
    if target_fmt not in FIM_FORMATS:
        raise ValueError(
            f"unknown FIM format {target_fmt!r} (known: {', '.join(sorted(FIM_FORMATS))})"
        )
    if endpoint == "chat" or not isinstance(body, dict):
        return body
    prompt = single_prompt(body.get("prompt"))
    if prompt is None:
        return body
    raw_suffix = body.get("suffix")
    suffix_field = raw_suffix if isinstance(raw_suffix, str) else None
    parts = structural(prompt) if prompt_fim is None else prompt_fim.parts_of(prompt)
    if parts is not None:
        if parts.family == target_fmt and "suffix" not in body:
            return body
        prefix, suffix = parts.prefix, parts.suffix
        if suffix_field and not suffix:
            suffix = suffix_field
    elif suffix_field is not None:
        if target_fmt == "native-suffix":
            return body
        prefix, suffix = prompt, suffix_field
    else:
        return body

    new = dict(body)
    if target_fmt == "native-suffix":
        new["prompt"] = prefix
        new["suffix"] = suffix
        return new
    rendered = render(target_fmt, prefix, suffix)
    if parts is not None and parts.family == target_fmt:
        rendered = parts.context + rendered
    else:
        # rendered for another family than the client's: its stop tokens too
        new["stop"] = translate_stops(body.get("stop"), target_fmt)
    new["prompt"] = rendered
    new.pop("suffix", None)
    return new
