"""Classifier: config validation, signals, rule evaluation, totality on hostile input."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from proxy.classify import (
    CLASSES,
    SIGNAL_KINDS,
    Classification,
    Classifier,
    ClassifierConfig,
    Signals,
    extract_signals,
)

ROOT = Path(__file__).resolve().parents[2]
CHAT = "chat"
COMP = "completions"


def chat(text: Any, system: str | None = None) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    return {"model": "auto", "messages": [*msgs, {"role": "user", "content": text}]}


# --- config ---------------------------------------------------------------------------


def test_default_yaml_matches_code_defaults() -> None:
    data = yaml.safe_load((ROOT / "config" / "classifier.default.yaml").read_text())
    assert ClassifierConfig.model_validate(data["classifier"]) == ClassifierConfig()


def test_compact_and_full_leaf_are_equal() -> None:
    a = ClassifierConfig.model_validate(
        {"rules": [{"name": "r", "class": "complex", "when": {"signal": "tokens", "gte": 10}}]}
    )
    b = ClassifierConfig.model_validate(
        {"rules": [{"name": "r", "class": "complex",
                    "when": {"signal": "tokens", "op": ">=", "value": 10}}]}
    )  # fmt: skip
    assert a == b


class Router(BaseModel):
    """Stand-in for the router config that embeds the classifier section."""

    classifier: ClassifierConfig = ClassifierConfig()


def _error(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        Router.model_validate({"classifier": data})
    err = exc.value.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"]


def rules(when: Any, cls: str = "complex") -> dict[str, Any]:
    ok = {"name": "ok", "class": "instruction", "when": {"signal": "tokens", "gt": 1}}
    return {"rules": [ok, ok | {"name": "ok2"}, {"name": "bad", "class": cls, "when": when}]}


@pytest.mark.parametrize(
    ("data", "loc", "msg"),
    [
        (rules({"all": [{"signal": "tokenz", "gte": 3}]}),
         "classifier.rules.2.when.all.0.signal", "unknown signal 'tokenz' (known: endpoint"),
        (rules({"signal": "tokens", "op": "~=", "value": 3}),
         "classifier.rules.2.when.op", "unknown op '~='"),
        (rules({"signal": "tokens", "gte": 3}, cls="hard"),
         "classifier.rules.2.class", "unknown class 'hard' (known: completion"),
        (rules({"signal": "tokens", "gte": "many"}),
         "classifier.rules.2.when.value", "signal 'tokens' is a number; got 'many'"),
        (rules({"signal": "has_suffix", "op": ">", "value": 1}),
         "classifier.rules.2.when.op", "op '>' does not apply to bool signal 'has_suffix'"),
        (rules({"signal": "languages", "contains": 3}),
         "classifier.rules.2.when.value", "op 'contains' needs a string"),
        (rules({"signal": "fim_family", "in": "qwen"}),
         "classifier.rules.2.when.value", "op 'in' needs a non-empty list"),
        (rules({"not": {"any": [{"signal": "tokens", "is": 3}]}}),
         "classifier.rules.2.when.not.any.0.value", "op 'is' needs true, false or null"),
        (rules({"signal": "tokens"}), "classifier.rules.2.when", "needs op and value"),
        (rules({"any": []}), "classifier.rules.2.when", "at least one condition"),
        (rules({"all": [{"signal": "tokens", "gt": 1}], "any": [{"signal": "tokens", "gt": 1}]}),
         "classifier.rules.2.when", "exactly one of all, any, not"),
        (rules({"signal": "tokens", "gte": 3, "bogus": 1}), "classifier.rules.2.when.bogus",
         "Extra inputs are not permitted"),
        ({"order": ["completion", "fast"]}, "classifier.order", "unknown class 'fast'"),
        ({"default_class": "chat"}, "classifier.default_class", "unknown class 'chat'"),
        ({"primary_languages": ["python", "klingon"]}, "classifier.primary_languages",
         "unknown language 'klingon'"),
        ({"rules": [{"name": "a", "class": "complex", "when": {"signal": "tokens", "gt": 1}}] * 2},
         "classifier", "duplicate rule name 'a'"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(data: dict[str, Any], loc: str, msg: str) -> None:
    got_loc, got_msg = _error(data)
    assert got_loc == loc
    assert msg in got_msg


def test_primary_language_aliases() -> None:
    cfg = ClassifierConfig(primary_languages=["C++", "golang", "js"])
    assert cfg.primary_languages == ["cpp", "go", "javascript"]


# --- signals --------------------------------------------------------------------------


def test_signal_table_matches_dataclass() -> None:
    assert set(Signals().as_dict()) == set(SIGNAL_KINDS)


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        (COMP, {"prompt": "<fim_prefix>a<fim_suffix>b<fim_middle>"},
         {"fim_family": "starcoder", "fim_marker": True, "endpoint": "completions"}),
        (COMP, {"prompt": "x = 1\n", "suffix": "y", "max_tokens": 64, "stop": ["\n"]},
         {"has_suffix": True, "max_tokens": 64, "has_stop": True, "fim_family": None}),
        (COMP, {"input_prefix": "a", "input_suffix": "b"}, {"has_suffix": True}),
        (CHAT, chat("Port this to Rust:\n```python\nprint(1)\n```"),
         {"languages": ["python", "rust"], "translation_intent": True, "code_blocks": 1}),
        (CHAT, chat("Write a Python script that prints hello."),
         {"languages": ["python"], "n_languages": 1, "translation_intent": False}),
        (CHAT, chat("Write it in Go, not in C."), {"languages": ["c", "go"]}),
        (CHAT, chat("Let's go to the store. Plan C is fine."), {"languages": []}),
        (CHAT, chat("Use a Maybe type like Haskell's, in TypeScript."),
         {"languages": ["typescript"]}),
        (CHAT, chat("Escribe una función que sume dos números, por favor."),
         {"human_language": "es", "non_english": True}),
        (CHAT, chat("Écris une fonction qui additionne deux nombres."), {"human_language": "fr"}),
        (CHAT, chat("Schreibe eine Funktion, die zwei Zahlen addiert."), {"human_language": "de"}),
        (CHAT, chat("写一个函数，把两个数字相加。"), {"human_language": "zh"}),
        (CHAT, chat("二つの数を足す関数を書いてください。"), {"human_language": "ja"}),
        (CHAT, chat("Напиши функцию, которая складывает два числа."), {"human_language": "ru"}),
        (CHAT, chat("두 숫자를 더하는 함수를 작성하세요."), {"human_language": "ko"}),
        (CHAT, chat("Fix this:\n```python\nprint('你好，世界，这是一个测试字符串')\n```"),
         {"human_language": "en"}),
        (CHAT, chat("Refactor these:\n# file: a.py\nx = 1\n# file: b.py\ny = 2\nsrc/c.ts too"),
         {"n_files": 3}),
        (CHAT, chat("Write hello world.", system="Eres un asistente. " * 50),
         {"human_language": "en", "n_messages": 2}),
        (CHAT, chat([{"type": "text", "text": "Explain this deadlock"}, {"type": "image_url"}]),
         {"debug_score": 2}),
        (CHAT, chat("Write a COBOL program that prints HELLO."),
         {"non_primary_languages": ["cobol"]}),
    ],
)  # fmt: skip
def test_signals(endpoint: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    got = extract_signals(endpoint, body).as_dict()
    assert {k: got[k] for k in expected} == expected


def test_tokens_count_all_messages_but_user_tokens_skip_system() -> None:
    s = extract_signals(CHAT, chat("hi", system="x" * 40000))
    assert s.tokens > 10000 and s.user_tokens < 10


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("def f(x):\n    return x + 1\n\nif __name__ == '__main__':\n    f(1)", "python"),
        ("package main\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n}", "go"),
        ("fn main() {\n    let mut v = Vec::new();\n    println!(\"{:?}\", v);\n}", "rust"),
        ("#include <iostream>\nint main() { std::cout << 1; }", "cpp"),
        ("public class A {\n  public static void main(String[] args) {\n"
         "    System.out.println(1);\n  }\n}", "java"),
        ("defmodule A do\n  def f(x) do\n    x |> Enum.map(& &1)\n  end\nend", "elixir"),
    ],
)  # fmt: skip
def test_syntax_detection_in_unlabelled_fences(code: str, lang: str) -> None:
    s = extract_signals(CHAT, chat(f"What does this do?\n```\n{code}\n```"))
    assert lang in s.code_languages


# --- classification -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "cls", "rule"),
    [
        (COMP, {"prompt": "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>"}, "completion",
         "fim-markers"),
        (COMP, {"prompt": "def f():\n    ", "suffix": "\n"}, "completion", "suffix-field"),
        (COMP, {"prompt": "import os\n\ndef main():\n    "}, "completion", "code-continuation"),
        (COMP, {"prompt": "### Instruction:\nWrite a sort function.\n### Response:\n"},
         "instruction", "default"),
        (CHAT, chat("Write a Python function that reverses a string."), "instruction", "default"),
        (CHAT, chat("Design a sharded, replicated architecture with trade-offs."), "complex",
         "hard-problem"),
        (CHAT, chat("Translate this to Kotlin:\n```java\nclass A {}\n```"), "multi-language",
         "translation"),
        (CHAT, chat("Escribe una función en Python que sume una lista."), "multi-language",
         "non-english"),
        (COMP, {"prompt": "# función que suma\ndef suma(a, b):\n    ", "suffix": ""},
         "completion", "suffix-field"),
    ],
)  # fmt: skip
def test_classify(endpoint: str, body: dict[str, Any], cls: str, rule: str) -> None:
    """Also checks the decision is the same as "evaluate every rule, pick by order"."""
    result = Classifier().classify(endpoint, body)
    assert (result.cls, result.rule) == (cls, rule)
    if rule != "default":
        assert result.reason.startswith(f"rule {rule}: ")
        assert result.signals
    json.dumps(result.signals_dict())


def test_order_decides_between_matching_rules() -> None:
    body = chat("Escribe un algoritmo de programación dinámica. Diseña la arquitectura "
                "distribuida con sharding, consensus y trade-offs.")  # fmt: skip
    default = Classifier().classify(CHAT, body)
    assert default.cls == "complex"
    assert default.signals_dict()["non_english"] is True
    flipped = Classifier(
        ClassifierConfig(order=["multi-language", "completion", "complex", "instruction"])
    ).classify(CHAT, body)
    assert flipped.cls == "multi-language" and flipped.rule == "non-english"


def test_custom_rules_and_ops() -> None:
    cfg = ClassifierConfig.model_validate(
        {
            "default_class": "complex",
            "rules": [
                {"name": "short", "class": "instruction",
                 "when": {"all": [{"signal": "tokens", "lt": 50},
                                  {"not": {"signal": "languages", "contains": ["cobol", "go"]}},
                                  {"signal": "fim_family", "is": None},
                                  {"signal": "endpoint", "in": ["chat", "other"]}]}},
            ],
        }
    )  # fmt: skip
    c = Classifier(cfg)
    assert c.classify(CHAT, chat("Write a Python hello world")).rule == "short"
    assert c.classify(CHAT, chat("Write a Go hello world")).rule == "default"
    assert c.classify(CHAT, chat("Write a Go hello world")).cls == "complex"


def test_classification_is_frozen() -> None:
    r = Classifier().classify(CHAT, chat("hi"))
    assert isinstance(r, Classification) and r.cls in CLASSES
    with pytest.raises(AttributeError):
        r.cls = "x"  # type: ignore[misc]


# --- totality -------------------------------------------------------------------------

HOSTILE: list[Any] = [
    None, 1, "x", [], {}, {"messages": None}, {"messages": "hi"}, {"messages": [None, 1, "a"]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user", "content": [None, 1, {"type": "text", "text": 5}]}]},
    {"messages": [{"role": ["user"], "content": {"text": "x"}}]},
    {"prompt": 5, "suffix": 7, "max_tokens": "big", "stop": 3},
    {"prompt": [1, 2, 3]}, {"prompt": ["a", None, {"b": 1}]}, {"max_tokens": float("inf")},
    {"max_tokens": True, "options": {"num_predict": "x"}}, {"prompt": "```" * 5000},
    {"prompt": "<fim_prefix>" * 100}, {"prompt": "\x00\ud800 é ü 你 " * 100},
]  # fmt: skip


@pytest.mark.parametrize("body", HOSTILE)
@pytest.mark.parametrize("endpoint", [CHAT, COMP, "", "/weird", None])
def test_never_raises_on_hostile_input(endpoint: Any, body: Any) -> None:
    r = Classifier().classify(endpoint, body)
    assert r.cls in CLASSES
    json.dumps(r.signals_dict())


def _junk(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 4 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([0, -1, 10**20, 3.5, float("nan"), True])
    if choice == 2:
        return "".join(rng.choice("ab ```<fim_prefix>[SUFFIX]\n\tdef{}();é你") for _ in range(30))
    if choice == 3:
        return rng.choice(["user", "system", "assistant", "text", "content", "messages"])
    if choice == 4:
        return rng.choice(["def f():\n    ", "Port this Python to Rust", "deadlock"])
    if choice in (5, 6):
        keys = ["messages", "prompt", "suffix", "role", "content", "type", "text", "max_tokens",
                "stop", "options", "input_suffix"]  # fmt: skip
        return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_fuzz_random_nested_json() -> None:
    rng = random.Random(20240501)
    c = Classifier()
    for _ in range(2000):
        body = _junk(rng)
        if rng.random() < 0.5:
            body = {"messages": [{"role": "user", "content": _junk(rng)}, _junk(rng)]}
        r = c.classify(rng.choice([CHAT, COMP, "/x"]), body)
        assert r.cls in CLASSES
        json.dumps(r.signals_dict())


def test_first_match_equals_evaluate_all() -> None:
    """Short-circuit evaluation picks what evaluating every rule and ranking would pick."""
    from proxy.classify import LazySignals, compile_condition
    from proxy.runtime import PATH_TO_ENDPOINT

    cfg = ClassifierConfig()
    rank = {c: i for i, c in enumerate(cfg.order)}
    text = (ROOT / "tests/corpus/corpus.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    for row in rows:
        endpoint = PATH_TO_ENDPOINT[row["endpoint"]]
        lazy = LazySignals(endpoint, row["body"], frozenset(cfg.primary_languages))
        matching = [
            (-r.priority, rank[r.class_], i, r)
            for i, r in enumerate(cfg.rules)
            if compile_condition(r.when)(lazy)
        ]
        expected = min(matching, key=lambda t: t[:3])[3].name if matching else "default"
        assert Classifier(cfg).classify(endpoint, row["body"]).rule == expected


def test_completion_traffic_skips_prose_analysis() -> None:
    result = Classifier().classify(COMP, {"prompt": "<fim_prefix>a<fim_suffix>b<fim_middle>"})
    assert result.cls == "completion"
    prose = {"languages", "human_language", "complexity_score", "log_lines", "code_chars"}
    assert prose.isdisjoint(result.computed()), result.computed()
    result.signals_dict()
    assert prose <= set(result.computed())


# --- the per-signal functions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("languages", "code", "translate", "core"),
    [
        ({"python", "sql"}, {"python"}, False, {"python"}),  # SQL accompanies, not a 2nd
        ({"typescript", "javascript"}, set(), False, {"typescript"}),  # one ecosystem
        ({"typescript", "javascript"}, set(), True, {"typescript", "javascript"}),
        ({"c", "cpp"}, {"cpp"}, False, {"cpp"}),
        ({"c", "cpp"}, {"cpp"}, True, {"c", "cpp"}),
        ({"go", "rust", "html"}, set(), False, {"go", "rust"}),
    ],
)  # fmt: skip
def test_core_languages(
    languages: set[str], code: set[str], translate: bool, core: set[str]
) -> None:
    from proxy.classify.languages import core_languages

    assert core_languages(frozenset(languages), frozenset(code), translate) == core


def test_code_languages_settle_and_come_from_every_source() -> None:
    from proxy.classify.languages import (
        file_names,
        segment_languages,
        settle_code_languages,
        shebang_languages,
    )

    assert settle_code_languages({"c", "cpp", "javascript", "typescript", "klingon"}) == {
        "cpp",
        "typescript",
    }
    assert segment_languages([("rust", "fn main() {}"), ("", "x")]) == {"rust"}
    assert shebang_languages("#!/usr/bin/env python3\nprint(1)\n#!/bin/zsh") == {
        "python",
        "shell",
    }
    files, langs = file_names("see src/app.ts and config.yaml", [("main.go", "")], "")
    assert files == {"app.ts", "config.yaml", "main.go"} and langs == {"typescript", "go"}
    # a diff names each file three times (header, a/, b/): it is still one file each
    diff = (
        "diff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\n"
        "diff --git a/lib/y.go b/lib/y.go\n--- a/lib/y.go\n+++ b/lib/y.go\n"
    )
    files, _ = file_names(diff, [], diff)
    assert files == {"x.py", "y.go"}


# --- agent steps and follow-ups ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        ("continue", True),
        ("ok, go ahead", True),
        ("ok, switch to act mode and start with step 1", True),
        ("Sí, continúa", True),
        ("继续", True),
        ("also rename tmp to buffer in that function", False),
        ("ok now add a dark mode toggle to the settings page", False),
        ("Why does this deadlock?", False),
        ("", False),
    ],
)
def test_is_continuation(ask: str, expected: bool) -> None:
    from proxy.classify import is_continuation

    assert is_continuation(ask) is expected


def _turns(*asks: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for i, ask in enumerate(asks):
        if i:
            messages.append({"role": "assistant", "content": "Here is my plan: step 1, step 2."})
        messages.append({"role": "user", "content": ask})
    return {"model": "auto", "messages": messages}


def test_a_go_on_reply_takes_the_class_of_the_task() -> None:
    task = "Redesign the session store as a distributed cache with consistent hashing."
    result = Classifier().classify(CHAT, _turns(task, "ok, go ahead"))
    assert (result.cls, result.rule) == ("complex", "continuation")
    assert "continues the earlier ask" in result.reason


def test_a_new_small_ask_after_a_hard_turn_is_read_on_its_own() -> None:
    task = "Redesign the session store as a distributed cache with consistent hashing."
    result = Classifier().classify(CHAT, _turns(task, "also rename tmp to buffer in that function"))
    assert result.cls == "instruction"


def test_the_language_of_attached_code_is_the_task_language() -> None:
    body = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": "add a test for the tokenizer\n\n<context>\nThe following items were "
                "attached by the user. They are up-to-date and don't need to be re-read.\n\n"
                '<files>\n```zig src/tokenizer.zig\nconst std = @import("std");\n```\n</files>'
                "\n</context>",
            }
        ],
    }
    result = Classifier().classify(CHAT, body)
    assert result.cls == "multi-language"
    assert "zig" in result.signals_dict()["non_primary_languages"]


def test_files_attached_in_two_languages_are_context_not_a_two_language_task() -> None:
    files = "\n\napp/models.py\n```\nclass User:\n    pass\n```\n\nweb/api.ts\n```\nexport {}\n```"
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Act as an expert software developer."},
            {"role": "user", "content": "I have *added these files to the chat* so you can go"
             " ahead and edit them." + files},
            {"role": "assistant", "content": "Ok."},
            {"role": "user", "content": "rename the User class to Account"},
        ],
    }  # fmt: skip
    result = Classifier().classify(CHAT, body)
    assert result.signals_dict()["n_core_languages"] <= 1
    assert result.cls == "instruction"
