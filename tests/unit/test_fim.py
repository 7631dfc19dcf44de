"""fim.detect / render / normalize: every family, both orders, and the no-op cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy import fim

PRE = "def add(a, b):\n    "
SUF = "\n\nprint(add(1, 2))\n"

RENDERED = {
    "codellama": f"<PRE> {PRE} <SUF>{SUF} <MID>",
    "starcoder": f"<fim_prefix>{PRE}<fim_suffix>{SUF}<fim_middle>",
    "qwen": f"<|fim_prefix|>{PRE}<|fim_suffix|>{SUF}<|fim_middle|>",
    "deepseek": f"<｜fim▁begin｜>{PRE}<｜fim▁hole｜>{SUF}<｜fim▁end｜>",
    "codestral": f"[SUFFIX]{SUF}[PREFIX]{PRE}",
}


@pytest.mark.parametrize("fmt", sorted(RENDERED))
def test_render_exact_spelling(fmt: str) -> None:
    assert fim.render(fmt, PRE, SUF) == RENDERED[fmt]


@pytest.mark.parametrize("fmt", sorted(RENDERED))
def test_detect_roundtrip(fmt: str) -> None:
    parts = fim.detect(RENDERED[fmt])
    assert parts == fim.FimParts(fmt, PRE, SUF)


@pytest.mark.parametrize(
    ("text", "family", "prefix", "suffix"),
    [
        # StarCoder SPM order
        ("<fim_prefix><fim_suffix>SUF<fim_middle>PRE", "starcoder", "PRE", "SUF"),
        # suffix-first with explicit prefix token
        ("<fim_suffix>SUF<fim_prefix>PRE<fim_middle>", "starcoder", "PRE", "SUF"),
        # CodeLlama SPM
        ("<PRE> <SUF>SUF <MID> PRE", "codellama", "PRE", "SUF"),
        # Ollama's codestral template puts a space after [PREFIX]
        ("[SUFFIX]SUF[PREFIX] PRE", "codestral", "PRE", "SUF"),
        # no middle token: everything after the suffix token is suffix
        ("<|fim_prefix|>PRE<|fim_suffix|>SUF", "qwen", "PRE", "SUF"),
        # text after the middle token is already-generated prefix
        ("<fim_prefix>PRE<fim_suffix>SUF<fim_middle>MORE", "starcoder", "PREMORE", "SUF"),
        # DeepSeek typed with ASCII bars
        ("<|fim▁begin|>PRE<|fim▁hole|>SUF<|fim▁end|>", "deepseek", "PRE", "SUF"),
    ],
)
def test_detect_variants(text: str, family: str, prefix: str, suffix: str) -> None:
    parts = fim.detect(text)
    assert parts is not None
    assert (parts.family, parts.prefix, parts.suffix) == (family, prefix, suffix)


def test_detect_repo_context() -> None:
    text = (
        "<repo_name>a/b<file_sep>x.py\nimport os\n<file_sep>y.py\n"
        "<fim_prefix>P<fim_suffix>S<fim_middle>"
    )
    parts = fim.detect(text)
    assert parts is not None and parts.family == "starcoder"
    assert (parts.prefix, parts.suffix) == ("P", "S")
    assert parts.context.startswith("<repo_name>a/b")
    qwen = "<|repo_name|>r\n<|file_sep|>a.go\n<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>"
    parts = fim.detect(qwen)
    assert parts is not None and parts.family == "qwen" and parts.context.startswith("<|repo")


@pytest.mark.parametrize(
    "text",
    ["", "def f(): pass", "explain what <fim_prefix> means", "<PRE> only a prefix", "[SUFFIX] x"],
)
def test_detect_none(text: str) -> None:
    assert fim.detect(text) is None


def test_detect_non_string() -> None:
    assert fim.detect(None) is None  # type: ignore[arg-type]


def test_render_errors() -> None:
    with pytest.raises(ValueError, match="native-suffix"):
        fim.render("native-suffix", "a", "b")
    with pytest.raises(ValueError, match="unknown FIM format"):
        fim.render("bogus", "a", "b")


def test_formats() -> None:
    assert set(RENDERED) | {"native-suffix"} == fim.FIM_FORMATS


@pytest.mark.parametrize("src", sorted(RENDERED))
@pytest.mark.parametrize("dst", sorted(fim.FIM_FORMATS))
def test_normalize_between_families(src: str, dst: str) -> None:
    body = {"model": "m", "prompt": RENDERED[src], "max_tokens": 32}
    out = fim.normalize("completions", body, dst)
    if src == dst:
        assert out is body
        return
    assert out is not body and body["prompt"] == RENDERED[src]  # input untouched
    assert out["max_tokens"] == 32
    if dst == "native-suffix":
        assert (out["prompt"], out["suffix"]) == (PRE, SUF)
    else:
        assert out["prompt"] == RENDERED[dst] and "suffix" not in out


END = {
    "starcoder": ["<|endoftext|>"],
    "qwen": ["<|endoftext|>"],
    "deepseek": ["<｜end▁of▁sentence｜>"],
    "codellama": ["<EOT>"],
    "codestral": [],  # its `</s>` is a control token the server stops at, and valid HTML
}


@pytest.mark.parametrize("dst", sorted(RENDERED))
def test_normalize_prompt_suffix_fields(dst: str) -> None:
    body = {"prompt": PRE, "suffix": SUF, "stream": True}
    out = fim.normalize("completions", body, dst)
    assert out == {"prompt": RENDERED[dst], "stream": True, "stop": END[dst]}


@pytest.mark.parametrize(
    ("stop", "dst", "expected"),
    [
        # Continue's StarCoder stops, sent to a Qwen model
        (
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>"],
            "qwen",
            ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "<|endoftext|>"],
        ),
        # to DeepSeek: no file separator there (dropped); its own end added
        (
            ["<fim_prefix>", "<file_sep>", "\n\n"],
            "deepseek",
            ["<｜fim▁begin｜>", "\n\n", "<｜end▁of▁sentence｜>"],
        ),
        ("<|endoftext|>", "codellama", ["<EOT>"]),
        ("<|EOT|>", "starcoder", ["<|endoftext|>"]),
        (None, "starcoder", ["<|endoftext|>"]),
        ("<|fim▁hole|>", "qwen", ["<|fim_suffix|>", "<|endoftext|>"]),
        (["<PRE>", "<EOT>"], "codestral", ["[PREFIX]"]),
        (["<EOT>", "<EOT>", "", 5], "codellama", ["<EOT>"]),
        (["<|fim_pad|>"], "codellama", ["<EOT>"]),  # no pad there: dropped
    ],
)
def test_translate_stops(stop: object, dst: str, expected: list[str]) -> None:
    assert fim.translate_stops(stop, dst) == expected


def test_normalize_translates_the_stops_with_the_prompt() -> None:
    body = {"prompt": RENDERED["starcoder"], "stop": ["<fim_prefix>", "<|endoftext|>", "\ndef "]}
    out = fim.normalize("completions", body, "deepseek")
    assert out["prompt"] == RENDERED["deepseek"]
    assert out["stop"] == ["<｜fim▁begin｜>", "<｜end▁of▁sentence｜>", "\ndef "]
    assert body["stop"] == ["<fim_prefix>", "<|endoftext|>", "\ndef "]  # input untouched
    # the same family: the client's own tokens, nothing to translate
    same = {"prompt": RENDERED["starcoder"], "suffix": "", "stop": ["<fim_prefix>"]}
    assert fim.normalize("completions", same, "starcoder")["stop"] == ["<fim_prefix>"]
    # the server renders native-suffix requests itself: the stops stay the client's
    native = fim.normalize("completions", body, "native-suffix")
    assert native["stop"] == body["stop"]


def test_normalize_noops() -> None:
    body = {"prompt": PRE, "suffix": SUF}
    assert fim.normalize("completions", body, "native-suffix") is body
    assert fim.normalize("completions", body, None) is body
    plain = {"prompt": "def f():\n"}
    assert fim.normalize("completions", plain, "qwen") is plain
    chat = {"messages": [{"role": "user", "content": RENDERED["qwen"]}]}
    assert fim.normalize("chat", chat, "starcoder") is chat
    tokens = {"prompt": [1, 2, 3], "suffix": "x"}
    assert fim.normalize("completions", tokens, "qwen") is tokens


def test_normalize_list_prompt_and_same_family_context() -> None:
    out = fim.normalize("completions", {"prompt": [RENDERED["qwen"]]}, "starcoder")
    assert out["prompt"] == RENDERED["starcoder"]
    text = "<repo_name>a/b<file_sep>x.py\n<fim_prefix>P<fim_suffix>S<fim_middle>"
    body = {"prompt": text, "suffix": ""}
    out = fim.normalize("completions", body, "starcoder")
    assert out["prompt"] == text and "suffix" not in out
    out = fim.normalize("completions", body, "qwen")
    assert out["prompt"] == "<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>"


def test_normalize_unknown_target() -> None:
    with pytest.raises(ValueError, match="unknown FIM format"):
        fim.normalize("completions", {"prompt": "x", "suffix": "y"}, "gpt")


# --- one reading per request -------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "first", "single"),
    [
        ("p", "p", "p"),
        (["p"], "p", "p"),
        (["p", "q"], "p", None),  # a batch: routing reads the first, normalize leaves it
        ([1, "p"], "", None),
        ([], "", None),
        (None, "", None),
    ],
)
def test_first_and_single_prompt(prompt: object, first: str, single: str | None) -> None:
    assert fim.first_prompt(prompt) == first
    assert fim.single_prompt(prompt) == single


def _count_detect(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = fim.detect

    def counting(text: str) -> fim.FimParts | None:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(fim, "detect", counting)
    return calls


def test_prompt_fim_detects_once_and_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_detect(monkeypatch)
    reading = fim.PromptFim.of({"prompt": [RENDERED["qwen"]]})
    assert calls == []
    assert reading.parts == fim.FimParts("qwen", PRE, SUF)
    assert reading.parts_of(RENDERED["qwen"]) is reading.parts
    assert len(calls) == 1
    assert reading.parts_of("<fim_prefix>a<fim_suffix>b") is not None  # another text: read it
    assert len(calls) == 2


def _runtime() -> Any:
    from proxy.config import parse_config
    from proxy.runtime import Runtime
    from tests.helpers.config import make_config

    return Runtime(parse_config(make_config("http://127.0.0.1:1")), "<test>", {})


@pytest.mark.parametrize("model", ["auto", "completion", "code"])
def test_fim_detected_once_per_request(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """Classified, routed by class or named directly: decide and body_for share one reading."""
    rt = _runtime()
    calls = _count_detect(monkeypatch)
    payload = {"model": model, "prompt": RENDERED["qwen"], "max_tokens": 8}
    decision = rt.decide("completions", payload)
    assert decision.variant == "code"
    assert decision.prompt_fim is not None
    assert decision.prompt_fim.parts == fim.FimParts("qwen", PRE, SUF)
    body = rt.body_for("code", "completions", payload, b"", decision.prompt_fim)
    assert json.loads(body)["prompt"] == RENDERED["starcoder"]
    assert calls == [RENDERED["qwen"]]


def test_chat_requests_carry_no_prompt_reading() -> None:
    decision = _runtime().decide("chat", {"model": "auto", "messages": [{"content": "hi"}]})
    assert decision.prompt_fim is None
