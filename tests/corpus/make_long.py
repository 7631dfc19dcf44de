"""Generate the long-context part of the corpus: tests/corpus/long.jsonl.

Deterministic (fixed seed). Run: .venv/bin/python tests/corpus/make_long.py
Bodies range from ~2k to ~30k estimated tokens: pasted modules, repository dumps,
multi-file diffs, long logs, and long editor system prompts with a short question.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("long.jsonl")
CHAT = "/v1/chat/completions"
COMP = "/v1/completions"

_NOUNS = ["order", "user", "invoice", "cart", "item", "payment", "session", "report", "account"]
_LOG_MESSAGES = ["timeout waiting for lock", "retrying", "db pool exhausted", "ok"]
_VERBS = ["load", "save", "validate", "compute", "render", "merge", "sync", "parse", "export"]


def py_function(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS), rng.choice(_VERBS)
    k = rng.randint(1, 999)
    return (
        f"def {v}_{n}_{k}(db, {n}_id: int, *, strict: bool = False) -> dict:\n"
        f'    """{v.capitalize()} the {n} with the given id."""\n'
        f"    row = db.fetch_one('SELECT * FROM {n}s WHERE id = ?', ({n}_id,))\n"
        f"    if row is None:\n"
        f"        if strict:\n"
        f"            raise KeyError({n}_id)\n"
        f"        return {{}}\n"
        f"    result = {{'id': row['id'], 'status': row.get('status', 'new')}}\n"
        f"    for key, value in row.items():\n"
        f"        if key.startswith('{n}_'):\n"
        f"            result[key[{len(n) + 1}:]] = value\n"
        f"    return result\n\n\n"
    )


def go_function(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS).capitalize(), rng.choice(_VERBS).capitalize()
    k = rng.randint(1, 999)
    return (
        f"func (s *Service) {v}{n}{k}(ctx context.Context, id int64) (*{n}, error) {{\n"
        f"\trow := s.db.QueryRowContext(ctx,\n"
        f'\t\t"SELECT id, status FROM {n.lower()}s WHERE id = $1", id)\n'
        f"\tvar out {n}\n"
        f"\tif err := row.Scan(&out.ID, &out.Status); err != nil {{\n"
        f'\t\treturn nil, fmt.Errorf("{v.lower()} {n.lower()} %d: %w", id, err)\n'
        f"\t}}\n"
        f"\treturn &out, nil\n"
        f"}}\n\n"
    )


def module(rng: random.Random, fn, approx_chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < approx_chars:
        chunk = fn(rng)
        out.append(chunk)
        size += len(chunk)
    return "".join(out)


def log_lines(rng: random.Random, n: int) -> str:
    lines = []
    for i in range(n):
        lvl = rng.choice(["INFO", "INFO", "WARN", "ERROR", "DEBUG"])
        lines.append(
            f"2024-05-0{rng.randint(1, 9)}T12:{i % 60:02d}:{rng.randint(0, 59):02d}Z {lvl} "
            f"worker-{rng.randint(1, 8)} request_id={rng.randint(10**6, 10**7)} "
            f'msg="{rng.choice(_LOG_MESSAGES)}"'
        )
    return "\n".join(lines)


def chat(user: str, system: str | None = None) -> dict[str, object]:
    msgs: list[dict[str, object]] = []
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": user})
    return {"model": "auto", "messages": msgs}


def main() -> None:
    rng = random.Random(1234)
    rows: list[dict[str, object]] = []

    def add(endpoint: str, body: dict[str, object], label: str, note: str) -> None:
        rows.append({"endpoint": endpoint, "body": body, "label": label, "note": note})

    for chars in (14000, 40000, 120000):
        code = module(rng, py_function, chars)
        add(
            CHAT,
            chat(
                f"Here is our data access module:\n```python\n{code}```\n"
                "Refactor it: remove the duplication and add tests."
            ),
            "complex",
            f"big single-language refactor (~{chars // 4} tokens)",
        )
    for files in (5, 12):
        parts = []
        for i in range(files):
            name = f"internal/{rng.choice(_NOUNS)}/{rng.choice(_VERBS)}_{i}.go"
            parts.append(
                f"// file: {name}\npackage {name.split('/')[1]}\n\n"
                + module(rng, go_function, 1500)
            )
        add(
            CHAT,
            chat(
                "Review these files and explain how the services depend on each other:\n\n"
                + "\n".join(parts)
            ),
            "complex",
            f"{files} Go files pasted",
        )
    diff = []
    for i in range(6):
        path = f"src/{rng.choice(_NOUNS)}_{i}.py"
        diff.append(
            f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,4 +1,6 @@\n"
            + "".join(f"+    x_{j} = compute({j})\n" for j in range(20))
        )
    add(
        CHAT,
        chat("Review this PR diff for bugs:\n```diff\n" + "\n".join(diff) + "\n```"),
        "complex",
        "multi-file diff review",
    )
    for n in (60, 400):
        add(
            CHAT,
            chat(
                "Our service degrades every night. Logs below, what is going on?\n```\n"
                + log_lines(rng, n)
                + "\n```"
            ),
            "complex",
            f"{n} log lines",
        )
    trace = "\n".join(
        f'  File "/app/svc/mod_{i}.py", line {rng.randint(10, 500)}, in handler_{i}\n'
        f"    result = handler_{i + 1}(req)"
        for i in range(60)
    )
    add(
        CHAT,
        chat(
            "Traceback (most recent call last):\n"
            + trace
            + "\nRecursionError: maximum recursion depth exceeded\nWhy?"
        ),
        "complex",
        "very long traceback",
    )
    big = module(rng, py_function, 60000)
    add(
        CHAT,
        chat(f"```python\n{big}```\nPort this whole module to Rust."),
        "complex",
        "long translation: complex wins by order",
    )
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {
                    "role": "user",
                    "content": "Summarise the design of this repository and propose a "
                    "new architecture:\n" + module(rng, py_function, 30000),
                },
                {
                    "role": "assistant",
                    "content": "It is a data access layer with repeated functions.",
                },
                {"role": "user", "content": "OK, now list the three biggest risks."},
            ],
        },
        "complex",
        "long multi-turn conversation",
    )

    # Long editor system prompt, short request: system prompts do not make it complex.
    system = "You are Continue, an AI coding assistant. " + " ".join(
        f"Rule {i}: follow the project's conventions, keep answers concise, and use fenced "
        "code blocks with a language tag."
        for i in range(120)
    )
    add(
        CHAT,
        chat("Write a Python function that returns the square of a number.", system),
        "instruction",
        "long system prompt, short request",
    )
    add(
        CHAT,
        chat("How do I check if a key exists in a JavaScript Map?", system),
        "instruction",
        "long system prompt, short JS question",
    )

    # Long FIM prompts stay completion.
    pre = module(rng, py_function, 24000)
    add(
        COMP,
        {
            "model": "auto",
            "prompt": pre + "def new_fn(db):\n    ",
            "suffix": module(rng, py_function, 8000),
            "max_tokens": 128,
        },
        "completion",
        "long prompt+suffix autocomplete",
    )
    pre = module(rng, go_function, 20000)
    add(
        COMP,
        {
            "model": "auto",
            "prompt": "<|fim_prefix|>"
            + pre
            + "<|fim_suffix|>"
            + module(rng, go_function, 6000)
            + "<|fim_middle|>",
            "max_tokens": 64,
        },
        "completion",
        "long qwen FIM",
    )

    # Medium: a normal pasted function stays instruction.
    add(
        CHAT,
        chat(
            "Add docstrings to these functions:\n```python\n"
            + module(rng, py_function, 2500)
            + "```"
        ),
        "instruction",
        "medium paste, simple request",
    )

    with OUT.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
