"""Write ``unseen.jsonl``: a fresh, independent test set of client-shaped requests.

Why this exists: the classifier is tuned against the development corpus and the earlier
held-out set, so accuracy there drifts upward as rules are fitted to phrasings. This set was
written without looking at the classifier, its tests or the other corpora; its asks, filler,
file trees and code are invented here, and only short exact marker strings (the fixed texts
that real clients send, copied from the research notes) reproduce the clients' envelopes.
Nobody tunes on it: it only measures.

Design: one builder per client shape (aider, Cline, Roo, Continue, Zed, Open WebUI, OpenAI
tool loops, commit generators, generic chats and raw prompts) turns an ask plus a few knobs
(edit format, step count, attachments, language) into a request body. Each row is labelled by
what the user's current ask needs, never by what the classifier answers. Everything is
driven by one seeded ``random.Random`` so the output is byte-for-byte reproducible; no
network, no external data.

Run: ``python tests/corpus/unseen/make_unseen.py`` (writes next to this file).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20261202
R = random.Random(SEED)
OUT = Path(__file__).with_name("unseen.jsonl")
CHAT = "/v1/chat/completions"
COMP = "/v1/completions"

Msg = dict[str, Any]
ROWS: list[dict[str, Any]] = []


def row(
    body: dict[str, Any],
    label: str,
    client: str,
    note: str,
    endpoint: str = CHAT,
    background: str | None = None,
) -> None:
    """Append one labelled request; ``background`` names the chore kind when it is one."""
    item: dict[str, Any] = {
        "endpoint": endpoint,
        "body": body,
        "label": label,
        "client": client,
        "note": note,
    }
    if background:
        item["background"] = background
    ROWS.append(item)


# ---------------------------------------------------------------------------------------------
# Filler: words, prose, identifiers, code in several languages, file trees, logs, diffs.
# ---------------------------------------------------------------------------------------------

NOUNS = (
    "order invoice ledger widget session token account profile report cart payment "
    "shipment voucher tenant catalog review rating comment draft upload export schedule "
    "reminder badge avatar channel message thread folder asset quota plan coupon"
).split()
VERBS = (
    "load save build render parse format compute fetch sync apply resolve merge split "
    "update create remove check validate normalize serialize collect index publish"
).split()
ADJ = "pending active stale cached raw clean local remote daily hourly partial final".split()
PROSE = (
    "the team agreed to keep the public interface stable while cleaning up internals",
    "this section describes how values flow from the request handler to storage",
    "each entry is checked once when the page loads and again before saving",
    "older records keep their original identifiers so links in emails still work",
    "the nightly job reads the export folder and uploads anything that changed",
    "settings are read from the environment first and the config file second",
    "the dashboard shows totals per week and lets people download a spreadsheet",
    "we moved the helpers into their own module so the views stay short",
    "the mobile app talks to the same endpoints as the web client",
    "error messages are shown inline next to the field that caused them",
)


def ident() -> str:
    return f"{R.choice(VERBS)}_{R.choice(NOUNS)}"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def pascal(name: str) -> str:
    return "".join(p.title() for p in name.split("_"))


def prose(n_sentences: int) -> str:
    return " ".join(R.choice(PROSE).capitalize() + "." for _ in range(n_sentences))


def py_code(n_chars: int, extra: str = "") -> str:
    """A plausible Python module of about ``n_chars`` characters."""
    parts = ['"""Helpers for the ' + R.choice(NOUNS) + ' screens."""\n\nimport json\n'] + [extra]
    while sum(map(len, parts)) < n_chars:
        f, a, b = ident(), R.choice(NOUNS), R.choice(NOUNS)
        if R.random() < 0.3:
            cls = pascal(f"{R.choice(ADJ)}_{a}")
            parts.append(
                f"\n\nclass {cls}:\n    def __init__(self, {a}, {b}=None):\n"
                f"        self.{a} = {a}\n        self.{b} = {b} or {{}}\n\n"
                f"    def {f}(self):\n        return json.dumps({{'{a}': self.{a}}})\n"
            )
        else:
            parts.append(
                f"\n\ndef {f}({a}, {b}=None):\n    if {a} is None:\n        return []\n"
                f"    items = [x for x in {a} if x.get('{R.choice(ADJ)}')]\n"
                f"    return sorted(items, key=lambda x: x.get('{b}', 0))\n"
            )
    return "".join(parts)


def ts_code(n_chars: int, extra: str = "") -> str:
    parts = ["import { api } from './api';\n", extra]
    while sum(map(len, parts)) < n_chars:
        f, a = camel(ident()), R.choice(NOUNS)
        parts.append(
            f"\nexport async function {f}({a}Id: string): Promise<{pascal(a)} | null> {{\n"
            f"  const res = await api.get(`/{a}s/${{{a}Id}}`);\n"
            f"  if (!res.ok) return null;\n  return (await res.json()) as {pascal(a)};\n}}\n"
        )
    return "".join(parts)


def go_code(n_chars: int, extra: str = "") -> str:
    parts = ['package service\n\nimport (\n\t"context"\n\t"errors"\n)\n', extra]
    while sum(map(len, parts)) < n_chars:
        f, a = pascal(ident()), R.choice(NOUNS)
        parts.append(
            f"\nfunc (s *Store) {f}(ctx context.Context, id string) (*{pascal(a)}, error) {{\n"
            f'\tif id == "" {{\n\t\treturn nil, errors.New("empty {a} id")\n\t}}\n'
            f"\treturn s.db.Get{pascal(a)}(ctx, id)\n}}\n"
        )
    return "".join(parts)


def rust_code(n_chars: int, extra: str = "") -> str:
    parts = ["use std::collections::HashMap;\n", extra]
    while sum(map(len, parts)) < n_chars:
        f, a = ident(), R.choice(NOUNS)
        parts.append(
            f"\npub fn {f}(items: &[{pascal(a)}]) -> HashMap<u64, usize> {{\n"
            f"    let mut out = HashMap::new();\n    for (i, it) in items.iter().enumerate() {{\n"
            f"        out.insert(it.id, i);\n    }}\n    out\n}}\n"
        )
    return "".join(parts)


def java_code(n_chars: int, cls: str = "OrderService") -> str:
    parts = [f"package com.example.shop;\n\nimport java.util.*;\n\npublic class {cls} {{\n"]
    while sum(map(len, parts)) < n_chars:
        f, a = camel(ident()), R.choice(NOUNS)
        parts.append(
            f"\n    public List<{pascal(a)}> {f}(List<{pascal(a)}> in) {{\n"
            f"        List<{pascal(a)}> out = new ArrayList<>();\n"
            f"        for ({pascal(a)} x : in) {{ if (x.isActive()) out.add(x); }}\n"
            f"        return out;\n    }}\n"
        )
    return "".join(parts) + "}\n"


def tree(n: int, root: str = "") -> list[str]:
    dirs = ["src", "src/api", "src/components", "src/lib", "tests", "scripts", "docs", "config"]
    exts = [".ts", ".tsx", ".py", ".go", ".md", ".json", ".css"]
    paths = {"package.json", "package-lock.json", "README.md", ".gitignore", "tsconfig.json"}
    paths |= {"src/components/Profile.tsx", "src/lib/lock.ts", "scripts/profile_startup.sh"}
    while len(paths) < n:
        paths.add(f"{R.choice(dirs)}/{camel(ident())}{R.choice(exts)}")
    return sorted(root + p for p in paths)


def log_lines(n_chars: int, needle: str = "") -> str:
    lines = []
    t = 0
    while sum(map(len, lines)) < n_chars:
        t += R.randint(1, 900)
        lvl = R.choice(["INFO", "INFO", "INFO", "DEBUG", "WARN"])
        lines.append(
            f"2026-11-{R.randint(10, 28)}T0{R.randint(0, 9)}:{t % 60:02d}:{t % 59:02d}Z {lvl} "
            f"worker-{R.randint(1, 16)} {R.choice(VERBS)} {R.choice(NOUNS)}"
            f" id={R.randint(1, 99999)}"
            f" took={R.randint(1, 900)}ms\n"
        )
        if needle and R.random() < 0.01:
            lines.append(needle + "\n")
    return "".join(lines)


def diff(files: list[str], hunks: int = 2, words: str = "") -> str:
    out = []
    for f in files:
        out.append(f"diff --git a/{f} b/{f}\nindex 3f2a1b0..9c8d7e6 100644\n--- a/{f}\n+++ b/{f}\n")
        for _ in range(hunks):
            ln = R.randint(5, 300)
            name = ident()
            out.append(
                f"@@ -{ln},6 +{ln},7 @@ def {name}(\n     value = load()\n"
                f"-    return {name}(value)\n+    # {words or 'handle empty input'}\n"
                f"+    if not value:\n+        return None\n     return result\n"
            )
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# aider
# ---------------------------------------------------------------------------------------------

AIDER_MAIN = (
    "Act as an expert software developer.\nAlways use best practices when coding.\n"
    "Respect and use existing conventions, libraries, etc that are already present in the code"
    " base.\n\nTake requests for changes to the supplied code.\nIf the request is ambiguous,"
    " ask questions.\n\nOnce you understand the request you MUST:\n\n1. Decide if you need to"
    " propose edits to any files that haven't been added to the chat.\n2. Think step-by-step"
    " and explain the needed changes in a few short sentences.\n3. Describe each change with a"
    " *SEARCH/REPLACE block* per the examples below.\n"
    "4. *Concisely* suggest any shell commands the user might want to run in ```bash blocks.\n\n"
    "Keep in mind these details about the user's platform and environment:\n"
    "- Platform: Linux-6.8-x86_64\n- Shell: SHELL=/bin/zsh\n- Language: en_US\n"
    "- Current date: 2026-11-30\n- The user is operating inside a git repository\n"
)
REM_DIFF = (
    "# *SEARCH/REPLACE block* Rules:\n\nEvery *SEARCH/REPLACE block* must use this format:\n"
    "1. The *FULL* file path alone on a line, verbatim.\n2. The opening fence and code language\n"
    "3. The start of search block: <<<<<<< SEARCH\n4. A contiguous chunk of lines to search for"
    " in the existing source code\n5. The dividing line: =======\n6. The lines to replace into"
    " the source code\n7. The end of the replace block: >>>>>>> REPLACE\n8. The closing fence\n\n"
    "Use the *FULL* file path, as shown to you by the user.\n\nEvery *SEARCH* section must"
    " *EXACTLY MATCH* the existing file content, character for character.\n\n*SEARCH/REPLACE*"
    " blocks will *only* replace the first match occurrence.\nKeep *SEARCH/REPLACE* blocks"
    " concise.\nOnly create *SEARCH/REPLACE* blocks for files that the user has added to the"
    " chat!\nTo move code within a file, use 2 *SEARCH/REPLACE* blocks.\n\nIf you want to put"
    " code in a new file, use a *SEARCH/REPLACE block* with an empty `SEARCH` section.\n\n"
    "Examples of when to suggest shell commands:\n- If you changed a CLI program, suggest the"
    " command to run it.\n- If you added a test, suggest how to run it with the testing tool.\n\n"
    "ONLY EVER RETURN CODE IN A *SEARCH/REPLACE BLOCK*!\n"
)
REM_WHOLE = (
    "To suggest changes to a file you MUST return the entire content of the updated file.\n"
    "You MUST use this *file listing* format:\n\npath/to/filename.js\n```\n// entire file content"
    " ...\n// ... goes in between\n```\n\nEvery *file listing* MUST use this format:\n- First line:"
    " the filename with any originally provided path; no extra markup\n- Second line: opening ```"
    "\n- ... entire content of the file ...\n- Final line: closing ```\n\nTo suggest changes to a"
    " file you MUST return a *file listing* that contains the entire content of the file.\n"
)
REM_UDIFF = (
    "# File editing rules:\n\nReturn edits similar to unified diffs that `diff -U0` would"
    " produce.\n\nMake sure you include the first 2 lines with the file paths.\nDon't include"
    " timestamps with the file paths.\n\nStart each hunk of changes with a `@@ ... @@` line.\n"
    "Don't include line numbers like `diff -U0` does.\nThe user's patch tool doesn't need them.\n"
    "\nWhen editing a function, method, loop, etc use a hunk to replace the *entire* code block."
    "\nTo move code within a file, use 2 hunks.\n"
)
REM_PATCH = (
    "# V4A Diff Format Rules:\n\nYour entire response containing the patch MUST start with"
    " `*** Begin Patch` on a line by itself.\nYour entire response containing the patch MUST end"
    " with `*** End Patch` on a line by itself.\n\nUse the *FULL* file path.\nFor each file you"
    " need to modify, start with a marker line: *** Update File: [path/to/file]\nUse @@ lines"
    " to anchor each chunk, with 3 lines of context above and below.\n"
)
AIDER_FORMATS = {
    "diff": (AIDER_MAIN, REM_DIFF),
    "diff-fenced": (AIDER_MAIN, "\n" + REM_DIFF),
    "whole": (
        "Act as an expert software developer.\nTake requests for changes to the supplied code.\n"
        "If the request is ambiguous, ask questions.\n",
        REM_WHOLE,
    ),
    "udiff": (
        "Act as an expert software developer.\nYou are diligent and tireless!\n"
        "Always use best practices when coding.\n",
        REM_UDIFF,
    ),
    "patch": (AIDER_MAIN.replace("*SEARCH/REPLACE block*", "V4A patch"), REM_PATCH),
    "architect": (
        "Act as an expert architect engineer and provide direction to your editor engineer.\n"
        "Study the change request and the current code.\nDescribe how to modify the code to"
        " complete the request.\nThe editor engineer will rely solely on your instructions, so"
        " make them unambiguous and complete.\nDO NOT show the entire updated function/file.\n",
        "",
    ),
    "ask": (
        "Act as an expert code analyst.\nAnswer questions about the supplied code.\n"
        "Always reply to the user in English.\n",
        "",
    ),
    "context": (
        "Act as an expert code analyst.\nUnderstand the user's question or request, solely to"
        " determine ALL the existing sources files which will need to be modified.\n"
        "Explain why each file is needed, including names of key classes/functions/methods.\n",
        "",
    ),
    "help": (
        "You are an expert on the AI coding tool called Aider.\nAnswer the user's questions"
        " about how to use aider.\n",
        "",
    ),
    "editor-diff": (
        "Act as an expert software developer who edits source code.\n"
        "Describe each change with a *SEARCH/REPLACE block* per the examples below.\n",
        REM_DIFF,
    ),
}
AIDER_EXAMPLES: list[Msg] = [
    {"role": "user", "content": "Change get_factorial() to use math.factorial"},
    {
        "role": "assistant",
        "content": "To make this change we need to modify `mathweb/flask/app.py`:\n\n"
        "mathweb/flask/app.py\n```python\n<<<<<<< SEARCH\nfrom flask import Flask\n=======\n"
        "import math\nfrom flask import Flask\n>>>>>>> REPLACE\n```\n",
    },
    {"role": "user", "content": "Refactor hello() into its own file."},
    {
        "role": "assistant",
        "content": "To make this change we need to modify `main.py` and make a new file"
        " `hello.py`:\n\nhello.py\n```python\n<<<<<<< SEARCH\n=======\ndef hello():\n"
        '    print("hello")\n>>>>>>> REPLACE\n```\n',
    },
    {
        "role": "user",
        "content": "I switched to a new code base. Please don't consider the above files or try"
        " to edit them any longer.",
    },
    {"role": "assistant", "content": "Ok."},
]


def repo_map(paths: list[str], ask_mode: bool = False) -> str:
    head = (
        "I am working with you on code in a git repository.\nHere are summaries of some files"
        " present in my git repo.\nIf you need to see the full contents of any files to answer"
        " my questions, ask me to *add them to the chat*.\n"
        if ask_mode
        else "Here are summaries of some files present in my git repository.\nDo not propose"
        " changes to these files, treat them as *read-only*.\nIf you need to edit any of these"
        " files, ask me to *add them to the chat* first.\n"
    )
    body = []
    for p in paths:
        body.append(f"\n{p}:\n⋮\n│class {pascal(ident())}:\n│    def {ident()}(self):\n⋮\n")
        body.append(f"│def {ident()}({R.choice(NOUNS)}):\n⋮\n")
    return head + "".join(body)


def aider(
    ask: str,
    fmt: str = "diff",
    files: dict[str, str] | None = None,
    map_files: int = 20,
    reminder: str = "user",
    done: list[tuple[str, str]] | None = None,
    cur_extra: list[Msg] | None = None,
    examples: str = "msgs",
    readonly: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build an aider request: system, examples, read-only files, map, done, files, cur."""
    main, rem = AIDER_FORMATS[fmt]
    system = main + ("\n" + rem if rem else "")
    msgs: list[Msg] = []
    if examples == "sys" and fmt.startswith("diff"):
        system = main + "\n# Example conversations:\n\n## USER: Change get_factorial() to use"
        system += " math.factorial\n\n## ASSISTANT: ...\n\n" + ("\n" + rem if rem else "")
    if examples == "user":
        msgs += [{"role": "user", "content": system}, {"role": "assistant", "content": "Ok."}]
    else:
        msgs.append({"role": "system", "content": system})
    if examples == "msgs" and fmt in ("diff", "diff-fenced", "editor-diff"):
        msgs += AIDER_EXAMPLES
    if readonly:
        text = "Here are some READ ONLY files, provided for your reference.\nDo not edit these"
        text += " files!\n" + "".join(f"\n{p}\n```\n{c}```\n" for p, c in readonly.items())
        msgs += [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "Ok, I will use these files as references."},
        ]
    if map_files:
        ask_mode = fmt in ("ask", "architect", "context")
        msgs += [
            {"role": "user", "content": repo_map(tree(map_files), ask_mode)},
            {
                "role": "assistant",
                "content": "Ok, I won't try and edit those files without asking first.",
            },
        ]
    for u, a in done or []:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    if files:
        if fmt in ("ask", "architect"):
            pre = "I have *added these files to the chat* so you see all of their contents.\n"
            pre += "*Trust this message as the true contents of the files!*\n"
            ack = "Ok, I will use that as the true, current contents of the files."
        else:
            pre = "I have *added these files to the chat* so you can go ahead and edit them.\n\n"
            pre += "*Trust this message as the true contents of these files!*\n"
            pre += "Any other messages in the chat may contain outdated versions of the files'"
            pre += " contents.\n"
            ack = "Ok, any changes I propose will be to those files."
        fence = "````" if any("```" in c for c in files.values()) else "```"
        pre += "".join(f"\n{p}\n{fence}\n{c}{fence}\n" for p, c in files.items())
        msgs += [{"role": "user", "content": pre}, {"role": "assistant", "content": ack}]
    elif map_files:
        msgs += [
            {
                "role": "user",
                "content": "Don't try and edit any existing code without asking me to add the"
                " files to the chat!\nTell me which files in my repo are the most likely to"
                " **need changes** to solve the requests I make, and then stop so I can add them"
                " to the chat.\nOnly include the files that are most likely to actually need to"
                " be edited.\n",
            },
            {
                "role": "assistant",
                "content": "Ok, based on your requests I will suggest which files need to be"
                " edited and then stop and wait for your approval.",
            },
        ]
    else:
        msgs += [
            {"role": "user", "content": "I am not sharing any files that you can edit yet."},
            {"role": "assistant", "content": "Ok."},
        ]
    cur = list(cur_extra or [])
    last = ask
    if rem and reminder == "user":
        last = ask + "\n\n" + rem
    cur.append({"role": "user", "content": last})
    msgs += cur
    if rem and reminder == "sys":
        msgs.append({"role": "system", "content": rem})
    return {"model": "auto", "stream": True, "messages": msgs}


def build_aider() -> None:
    c = "aider"
    models_py = py_code(
        3500,
        "\n\ndef create_session(usr, ttl=3600):\n    return Session(owner=usr, ttl=ttl)\n",
    )
    row(
        aider(
            "Rename the `usr` parameter to `user` in create_session and update the callers in"
            " this file.",
            files={"app/models.py": models_py},
        ),
        "instruction",
        c,
        "diff format, reminder appended to the ask, repo map + one file: a rename",
    )
    row(
        aider(
            "add a --dry-run flag to the cleanup command that prints what would be deleted"
            " instead of deleting it",
            files={"cli/cleanup.py": py_code(2500)},
            reminder="sys",
        ),
        "instruction",
        c,
        "diff format with reminder: sys (trailing system message): ordinary feature",
    )
    row(
        aider(
            "Los tests de `parse_date` fallan con fechas ISO que llevan zona horaria, por"
            " ejemplo 2026-03-01T10:00:00+01:00. Arréglalo, por favor.",
            fmt="diff-fenced",
            files={"utils/dates.py": py_code(1800)},
        ),
        "multi-language",
        c,
        "diff-fenced, ask written in Spanish: ordinary fix, non-English",
    )
    row(
        aider(
            "make the banner say 'Welcome back' instead of 'Hello'",
            fmt="whole",
            files={
                "scripts/banner.sh": '#!/bin/sh\necho "Hello, $USER"\ndate +%F\n',
            },
            map_files=0,
        ),
        "instruction",
        c,
        "whole format, no repo map, tiny shell edit",
    )
    bank = go_code(
        3000,
        "\nfunc (b *Bank) Transfer(from, to *Account, amt int) {\n\tfrom.mu.Lock()\n"
        "\tto.mu.Lock()\n\tfrom.bal -= amt\n\tto.bal += amt\n\tto.mu.Unlock()\n"
        "\tfrom.mu.Unlock()\n}\n",
    )
    row(
        aider(
            "Two goroutines calling Transfer(a, b) and Transfer(b, a) at the same time hang"
            " forever. Fix the lock ordering so it can't deadlock, without serialising every"
            " transfer behind one global mutex.",
            fmt="udiff",
            files={"bank/bank.go": bank},
        ),
        "complex",
        c,
        "udiff: deadlock fix (lock ordering) is deep concurrency debugging",
    )
    row(
        aider(
            "Port the token-bucket rate limiter in limiter.py to Go as limiter/limiter.go,"
            " keeping the same refill semantics and the same public method names.",
            fmt="patch",
            files={"limiter.py": py_code(2200)},
        ),
        "multi-language",
        c,
        "V4A patch format: port Python -> Go",
    )
    row(
        aider(
            "Redesign plugin loading: discover plugins through entry points, run each one in"
            " its own subprocess with a small RPC protocol, and support hot reload without"
            " restarting the server. Lay out the module boundaries and the migration path.",
            fmt="architect",
            map_files=40,
        ),
        "complex",
        c,
        "architect mode, no files, big repo map: a redesign",
    )
    plan = (
        "1. In `utils/strings.py`, rename the function `slugify_text` to `slugify`.\n"
        "2. In `web/views.py`, update the import and the two call sites to use `slugify`.\n"
        "3. No other changes are needed."
    )
    row(
        aider(
            plan,
            fmt="editor-diff",
            files={"utils/strings.py": py_code(1200), "web/views.py": py_code(1500)},
            map_files=0,
            examples="none",
        ),
        "instruction",
        c,
        "architect->editor second request: the last user message is the model's plan for a"
        " two-file rename",
    )
    row(
        aider(
            "What does the @lru_cache on load_settings do here, and is it a problem if"
            " settings.toml changes while the app is running?",
            fmt="ask",
            files={"config/settings.py": py_code(1600)},
        ),
        "instruction",
        c,
        "ask mode: a question about one file",
    )
    row(
        aider(
            "Warum gibt `get_user` hier None zurück, obwohl der Benutzer in der Datenbank"
            " existiert?",
            fmt="ask",
            files={"services/users.py": py_code(2000)},
        ),
        "multi-language",
        c,
        "ask mode, German question",
    )
    row(
        aider("how do I add a file as read-only so you don't edit it?", fmt="help", map_files=0),
        "instruction",
        c,
        "help mode: question about aider itself",
    )
    row(
        aider(
            "I want to add pagination to the /orders endpoint. Which files will need to change?",
            fmt="context",
            map_files=30,
        ),
        "instruction",
        c,
        "context mode: which files for an ordinary feature",
    )
    lint = (
        "# Fix any errors below, if possible.\n\n## Running: flake8 --select=E9,F821 report.py"
        "\n\nreport.py:41:12: F821 undefined name 'Optional'\n\n## See relevant line below"
        " marked with █.\n\nreport.py:\n...⋮...\n 41│def total(rows) -> Optional[int]:\n"
        "...⋮...\n"
    )
    row(
        aider(
            lint,
            files={"report.py": py_code(2500)},
            cur_extra=[
                {"role": "user", "content": "Add type hints to the functions in report.py"},
                {"role": "assistant", "content": "report.py\n```python\n<<<<<<< SEARCH\n..."},
            ],
        ),
        "instruction",
        c,
        "lint reflection: synthetic '# Fix any errors below' after a type-hints ask",
    )
    failed = (
        "# 1 SEARCH/REPLACE block failed to match!\n\n## SearchReplaceNoExactMatch: This SEARCH"
        " block failed to exactly match lines in cache/lru.py\n<<<<<<< SEARCH\n    with"
        " self._lock:\n=======\n...\n>>>>>>> REPLACE\n\nThe SEARCH section must exactly match an"
        " existing block of lines including all white space, comments, indentation, docstrings,"
        " etc\n"
    )
    row(
        aider(
            failed,
            files={"cache/lru.py": py_code(3000)},
            cur_extra=[
                {
                    "role": "user",
                    "content": "Make the LRU cache eviction lock-free. It's the main bottleneck"
                    " with 64 threads, p99 is 40 ms and almost all of it is waiting on"
                    " _lock.",
                },
                {"role": "assistant", "content": "cache/lru.py\n```python\n<<<<<<< SEARCH\n"},
            ],
        ),
        "complex",
        c,
        "edit-failure reflection after a lock-free/performance ask",
    )
    run_out = (
        "I ran this command:\n\npytest tests/test_upload.py -x -q\n\nAnd got this output:\n\n"
        + "F..\nFAILED tests/test_upload.py::test_upload_retries - AssertionError: expected 3"
        " attempts, got 2\n1 failed, 2 passed in 0.84s\n"
    )
    row(
        aider(
            run_out,
            files={"upload/client.py": py_code(2600), "tests/test_upload.py": py_code(1200)},
            done=[
                (
                    "test_upload_retries fails about 1 run in 20 on CI and never locally."
                    " Find out why it's flaky and fix the real cause, not the test.",
                    "It looks timing related; let's run it first.",
                )
            ],
        ),
        "complex",
        c,
        "/run output turn; governing ask is a flaky-test hunt",
    )
    row(
        aider(
            "fix the typo 'occured' -> 'occurred' in the log message",
            files={"monitoring/deadlock_detector.py": py_code(1500, "\nLOG = 'cycle occured'\n")},
        ),
        "instruction",
        c,
        "hostile: tiny typo fix in a file named deadlock_detector.py",
    )
    row(
        aider(
            "rename cnt to count in summarize()",
            fmt="whole",
            files={"perf/race_profiler.go": go_code(1200)},
            map_files=8,
        ),
        "instruction",
        c,
        "hostile: rename in a file named race_profiler.go under perf/",
    )
    row(
        aider("why does this leak memory?", files={"server/pool.py": py_code(3500)}),
        "complex",
        c,
        "short hard ask: memory leak hunt",
    )
    summary = (
        "I spoke to you previously about a number of things.\nI asked you to add a CLI"
        " entry point to the project and you created cli.py with argparse. Then I asked you to"
        " read the config path from an environment variable and you changed load_config().\n"
    )
    row(
        aider(
            "also add a docstring to parse_args",
            files={"cli.py": py_code(1400)},
            done=[(summary, "Ok.")],
        ),
        "instruction",
        c,
        "done history replaced by aider's summary; short follow-up",
    )
    row(
        aider(
            "给 `UserService` 添加一个 `deactivate` 方法，把 active 设为 False 然后保存。",
            files={"services/user_service.py": py_code(2200)},
        ),
        "multi-language",
        c,
        "Chinese ask, ordinary feature",
    )
    row(
        aider(
            "Add a unit test for slugify with unicode input like 'Crème brûlée'.",
            files={"utils/strings.py": py_code(900), "tests/test_strings.py": py_code(700)},
            examples="user",
        ),
        "instruction",
        c,
        "use_system_prompt false: system text sent as a user message + 'Ok.'",
    )
    row(
        aider(
            "Convert the /login view from Flask to FastAPI, keeping the same form fields.",
            files={"web/auth.py": py_code(2000)},
            examples="sys",
            reminder="sys",
        ),
        "instruction",
        c,
        "examples_as_sys_msg + reminder sys: same-language framework switch of one view",
    )
    row(
        aider(
            "add retry with exponential backoff to fetch_page (max 5 attempts)",
            files={"crawler/fetch.py": py_code(1700)},
            readonly={"docs/CONVENTIONS.md": prose(12) + "\n"},
        ),
        "instruction",
        c,
        "read-only conventions file + ordinary feature",
    )
    row(
        aider(
            "Add a `--json` flag to the CLI so `list` prints JSON instead of the table.",
            files={"src/main.rs": rust_code(2500)},
        ),
        "instruction",
        c,
        "Rust (mainstream) ordinary feature",
    )
    row(
        aider(
            "Implement a Fibonacci heap with amortised O(1) decrease-key and use it in"
            " dijkstra() instead of heapq.",
            files={"graph/shortest.py": py_code(2000)},
        ),
        "complex",
        c,
        "hard algorithm / data structure",
    )
    row(
        aider(
            "add a guard clause so total/1 returns 0 for an empty cart",
            files={
                "lib/shop/cart.ex": "defmodule Shop.Cart do\n  def total(items) do\n"
                "    items |> Enum.map(& &1.price) |> Enum.sum()\n  end\nend\n"
            },
        ),
        "multi-language",
        c,
        "Elixir, a language outside the mainstream list",
    )
    row(
        aider(
            "Extract the retry loop from send_email and send_sms into a shared helper.",
            files={"notify/email.py": py_code(1500), "notify/sms.py": py_code(1500)},
            reminder="sys",
            done=[("make send_sms log the provider name", "Done, see the edit above.")],
        ),
        "instruction",
        c,
        "two small files, ordinary refactor, earlier done turn",
    )
    summarize_sys = (
        "*Briefly* summarize this partial conversation about programming.\nInclude less detail"
        " about older parts and more detail about the most recent messages.\nStart a new"
        " paragraph every time the topic changes!\n\nThis is only part of a longer conversation"
        ' so *DO NOT* conclude the summary with language like "Finally, ...".\n\nPhrase the'
        " summary with the USER in first person, telling the ASSISTANT about the conversation.\n"
        'Write *as* the user.\nStart the summary with "I asked you...".\n'
    )
    convo = "".join(
        f"# USER\n{R.choice(PROSE)}; can you {R.choice(VERBS)} the {R.choice(NOUNS)} code?\n"
        f"# ASSISTANT\n{prose(3)}\n" + "```python\n" + py_code(400) + "```\n"
        for _ in range(8)
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": summarize_sys},
                {"role": "user", "content": convo},
            ],
        },
        "instruction",
        c,
        "aider chat-history summarisation (weak model)",
        background="summary",
    )


# ---------------------------------------------------------------------------------------------
# Cline and Roo
# ---------------------------------------------------------------------------------------------

TOOL_NAMES = [
    "execute_command",
    "read_file",
    "write_to_file",
    "replace_in_file",
    "search_files",
    "list_files",
    "list_code_definition_names",
    "browser_action",
    "use_mcp_tool",
    "access_mcp_resource",
    "ask_followup_question",
    "attempt_completion",
    "new_task",
    "plan_mode_respond",
    "load_mcp_documentation",
]


def tool_section(name: str) -> str:
    params = "".join(
        f"- {p}: ({R.choice(['required', 'optional'])}) {prose(1)}\n"
        for p in ("path", "content", "regex", "recursive")[: R.randint(1, 4)]
    )
    return (
        f"## {name}\nDescription: {prose(4)}\nParameters:\n{params}Usage:\n<{name}>\n"
        f"<path>File path here</path>\n</{name}>\n\n"
    )


def agent_system(agent: str, target: int, mode: str = "code") -> str:
    """A Cline/Roo-shaped system prompt of about ``target`` chars under the real headings."""
    if agent == "cline":
        head = (
            "You are Cline, a highly skilled software engineer with extensive knowledge in many"
            " programming languages, frameworks, design patterns, and best practices.\n\n"
        )
    else:
        head = {
            "code": "You are Roo, a highly skilled software engineer with extensive knowledge in"
            " many programming languages, frameworks, design patterns, and best practices.",
            "architect": "You are Roo, an experienced technical leader who is inquisitive and an"
            " excellent planner.",
            "ask": "You are Roo, a knowledgeable technical assistant focused on answering"
            " questions and providing information about software development.",
            "debug": "You are Roo, an expert software debugger specializing in systematic problem"
            " diagnosis and resolution.",
            "orchestrator": "You are Roo, a strategic workflow orchestrator who coordinates"
            " complex tasks by delegating them to appropriate specialized modes.",
        }[mode] + "\n\n"
    parts = [head, "====\n\nTOOL USE\n\n", prose(6), "\n\n# Tool Use Formatting\n\n", prose(5)]
    parts.append("\n\n# Tools\n\n")
    parts += [tool_section(t) for t in TOOL_NAMES]
    parts.append("# Tool Use Examples\n\n")
    for i in range(6):
        parts.append(
            f"## Example {i + 1}: {prose(1)}\n\n<execute_command>\n<command>npm run"
            f" dev</command>\n<requires_approval>false</requires_approval>\n"
            f"</execute_command>\n\n"
        )
    parts.append("# Tool Use Guidelines\n\n")
    parts += [f"{i}. {prose(3)}\n" for i in range(1, 9)]
    sections = ["MCP SERVERS", "EDITING FILES", "ACT MODE V.S. PLAN MODE", "CAPABILITIES"]
    if agent == "roo":
        sections = ["MARKDOWN RULES", "CAPABILITIES", "MODES", "AVAILABLE SKILLS"]
    for s in sections:
        parts.append(f"\n====\n\n{s}\n\n")
        parts += [f"- {prose(4)}\n\n" for _ in range(6)]
    rules = "\n====\n\nRULES\n\n" + "".join(f"- {prose(3)}\n" for _ in range(30))
    parts.append(rules)
    while sum(map(len, parts)) < target - 1200:
        parts.append(f"- {prose(4)}\n")
    parts.append(
        "\n====\n\nSYSTEM INFORMATION\n\nOperating System: Linux 6.8\nDefault Shell: /bin/bash"
        "\nHome Directory: /home/dev\nCurrent Working Directory: /home/dev/shop\n"
        "\n====\n\nOBJECTIVE\n\n"
        + "".join(f"{i}. {prose(2)}\n" for i in range(1, 6))
        + "\n====\n\nUSER'S CUSTOM INSTRUCTIONS\n\nThe following additional instructions are"
        " provided by the user, and should be followed to the best of your ability without"
        " interfering with the TOOL USE guidelines.\n\n# .clinerules\n\n- Prefer small commits."
        "\n- Run the linter before finishing.\n"
    )
    return "".join(parts)


def env_details(first: bool, agent: str = "cline", mode: str = "ACT MODE") -> str:
    ide = "Visual Studio Code" if agent == "cline" else "VSCode"
    tabs = "\n".join(R.sample(tree(30), 5))
    out = (
        f"<environment_details>\n# {ide} Visible Files\nsrc/components/Profile.tsx\n\n"
        f"# {ide} Open Tabs\n{tabs}\n\n# Current Time\n12/1/2026, 9:14:07 AM (Europe/Berlin,"
        " UTC+1:00)\n\n"
    )
    if first:
        label = "Working" if agent == "cline" else "Workspace"
        out += f"# Current {label} Directory (/home/dev/shop) Files\n"
        out += "\n".join(tree(160)) + "\n\n"
    if agent == "cline":
        out += f"# Context Window Usage\n23,114 / 200K tokens used (12%)\n\n# Current Mode\n{mode}"
    else:
        out += "# Current Cost\n$0.04\n\n# Current Mode\n<slug>code</slug>\n<name>💻 Code</name>"
    return out + "\n</environment_details>"


def tool_step_results(i: int) -> tuple[str, str]:
    """(assistant XML tool call, user-side result text) for agent step ``i``."""
    kind = i % 4
    if kind == 0:
        p = R.choice(tree(40))
        return (
            f"<thinking>I need to see {p}.</thinking>\n<read_file>\n<path>{p}</path>\n</read_file>",
            f"[read_file for '{p}'] Result:\n" + ts_code(2500),
        )
    if kind == 1:
        return (
            "<search_files>\n<path>src</path>\n<regex>TODO|FIXME</regex>\n</search_files>",
            "[search_files for 'TODO|FIXME'] Result:\nFound 3 results.\n\nsrc/api/client.ts\n"
            "│----\n│  // TODO: handle 429\n│----\n",
        )
    if kind == 2:
        return (
            "<execute_command>\n<command>npm test</command>\n<requires_approval>false"
            "</requires_approval>\n</execute_command>",
            "[execute_command for 'npm test'] Result:\nCommand executed.\nOutput:\n"
            + log_lines(1500),
        )
    p = "src/lib/" + camel(ident()) + ".ts"
    return (
        f"<replace_in_file>\n<path>{p}</path>\n<diff>\n------- SEARCH\nold\n=======\nnew\n"
        "+++++++ REPLACE\n</diff>\n</replace_in_file>",
        f"[replace_in_file for '{p}'] Result:\nThe content was successfully saved to {p}.\n\n"
        f'<final_file_content path="{p}">\n' + ts_code(1500) + "\n</final_file_content>",
    )


def agent_task(
    agent: str,
    first_text: str,
    steps: int = 0,
    last_human: str | None = None,
    size: int = 50000,
    mode: str = "code",
    native: bool = False,
    merge_env: bool = False,
    system: str | None = None,
    env: bool = True,
) -> dict[str, Any]:
    """A Cline/Roo task: first user turn, ``steps`` tool turns, an optional human last turn."""
    sys_text = system if system is not None else agent_system(agent, size, mode)
    msgs: list[Msg] = [{"role": "system", "content": sys_text}]
    msgs.append(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": first_text},
                *([{"type": "text", "text": env_details(True, agent)}] if env else []),
            ],
        }
    )
    for i in range(steps):
        call, result = tool_step_results(i)
        is_last = i == steps - 1
        human = [{"type": "text", "text": last_human}] if (is_last and last_human) else []
        env = [{"type": "text", "text": env_details(False, agent)}]
        if native:
            cid = f"call_{i:03d}"
            name = call.split(">")[0].split("<")[-1] if "<thinking>" not in call else "read_file"
            msgs.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps({"path": "x"})},
                        }
                    ],
                }
            )
            content = result
            if merge_env and not human:
                content = result + "\n\n" + env[0]["text"]
                env = []
            msgs.append({"role": "tool", "tool_call_id": cid, "content": content})
            if human or env:
                msgs.append({"role": "user", "content": human + env})
        else:
            msgs.append({"role": "assistant", "content": call})
            parts = [{"type": "text", "text": result}] + human + env
            msgs.append({"role": "user", "content": parts})
    if steps == 0 and last_human:
        msgs += [
            {
                "role": "assistant",
                "content": "<attempt_completion>\n<result>Done.</result>\n</attempt_completion>",
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": last_human},
                    {"type": "text", "text": env_details(False, agent)},
                ],
            },
        ]
    body: dict[str, Any] = {"model": "auto", "stream": True, "messages": msgs}
    if native:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t,
                    "description": prose(2),
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
            }
            for t in TOOL_NAMES[:10]
        ]
    return body


def task(text: str, tag: str = "task") -> str:
    return f"<{tag}>\n{text}\n</{tag}>"


def file_content(path: str, body: str) -> str:
    return f'\n\n<file_content path="{path}">\n{body}\n</file_content>'


def build_cline() -> None:
    c = "cline"
    row(
        agent_task(c, task("Fix the typo 'recieve' in README.md"), size=56000),
        "instruction",
        c,
        "first turn; env listing has package-lock.json, lock.ts, Profile.tsx, profile_startup.sh",
    )
    prof = ts_code(2200, "\nexport function Profile() {\n  const [user] = useUser();\n")
    row(
        agent_task(
            c,
            task(
                "Add a loading spinner to 'src/components/Profile.tsx' (see below for file"
                " content) while the user data is being fetched"
                + file_content("src/components/Profile.tsx", prof)
            ),
            size=52000,
        ),
        "instruction",
        c,
        "@-mention expanded into <file_content>: ordinary UI feature",
    )
    row(
        agent_task(
            c,
            task(
                "The websocket server leaks memory after clients disconnect: heap grows about"
                " 50 MB an hour under normal traffic. Find the cause and fix it."
            ),
            steps=3,
            size=54000,
        ),
        "complex",
        c,
        "step 3 tool-result turn of a memory-leak hunt",
    )
    row(
        agent_task(
            c,
            task(
                "Migrate the whole frontend from Redux to Zustand: all 40 components, the"
                " middleware and the tests."
            ),
            steps=5,
            size=50000,
        ),
        "complex",
        c,
        "step 5 of a many-file migration",
    )
    fr = "Ajoute une route GET /health dans server.js qui renvoie {status: 'ok'}."
    row(agent_task(c, task(fr), size=48000), "multi-language", c, "French task, first turn")
    row(
        agent_task(c, task(fr), steps=2, size=48000),
        "multi-language",
        c,
        "French task, step 2 (tool results only)",
    )
    row(
        agent_task(
            c,
            task("Write a bash script that backs up ~/projects to S3 every night."),
            last_human="<feedback>\nlooks good, but also exclude node_modules and .venv\n"
            "</feedback>",
            size=45000,
        ),
        "instruction",
        c,
        "feedback after attempt_completion, small refinement",
    )
    row(
        agent_task(
            c,
            task("Set up Python bindings for our C++ geometry library with pybind11."),
            steps=2,
            last_human="<answer>\nUse CMake with scikit-build, not setuptools.\n</answer>",
            size=52000,
        ),
        "multi-language",
        c,
        "answer to a follow-up question in a bindings task",
    )
    row(
        agent_task(
            c,
            task("把 utils.py 里的 parse_time 函数改成也支持毫秒，比如 '12:30:05.250'。"),
            size=47000,
        ),
        "multi-language",
        c,
        "Chinese task",
    )
    row(
        agent_task(
            c,
            task("Rename getUserData to fetchUserProfile in src/api/client.ts and its tests."),
            steps=3,
            native=True,
            size=42000,
        ),
        "instruction",
        c,
        "native tool-calling variant, step 3: a rename",
    )
    sdk_sys = (
        "You are Cline, an AI coding agent. Your primary goal is to assist users with various"
        " coding tasks by reading code, running commands and editing files.\n\nEnvironment you"
        " are running in:\n<env>\n1. Platform: linux\n2. Date: 2026-12-01\n3. IDE: vscode\n"
        "4. Working Directory: /home/dev/shop\n</env>\n\n# Plan / Act Modes\n\n" + prose(20)
    )
    row(
        agent_task(
            c,
            '<user_input mode="act">add a .gitignore entry for .env files</user_input>',
            system=sdk_sys,
            env=False,
        ),
        "instruction",
        c,
        "Cline SDK <user_input mode=act>",
    )
    row(
        agent_task(
            c,
            "<mode_notice>The user switched from plan mode to act mode before sending this"
            ' message.</mode_notice>\n<user_input mode="act">Design a sharded job queue with'
            " exactly-once delivery across three regions and implement the coordinator."
            "</user_input>",
            system=sdk_sys + "\n# Plan Mode\n" + prose(5),
            env=False,
        ),
        "complex",
        c,
        "Cline SDK: distributed-systems design",
    )
    compact = (
        "You are Cline, a senior software engineer + precise task runner.\n\n## GLOBAL RULES\n"
        + prose(25)
        + "\n\n## MODES (STRICT)\n"
        + prose(10)
        + "\n\n## TOOLS\n"
        + "".join(tool_section(t) for t in TOOL_NAMES[:6])
    )
    row(
        agent_task(
            c,
            task("explain what the regex on line 14 of validators.py matches"),
            system=compact,
        ),
        "instruction",
        c,
        "compact local-model system prompt; explanation",
    )
    row(
        agent_task(
            c,
            task(
                "Split the payments service into gateway, ledger and reconciliation modules and"
                " update every import across the codebase."
            ),
            steps=2,
            last_human="The user denied this operation and provided the following feedback:\n"
            "<feedback>\ndon't touch the tests folder, only the service code\n</feedback>",
            size=55000,
        ),
        "complex",
        c,
        "denial with feedback inside a many-file refactor task",
    )
    row(
        agent_task(
            c,
            task("Add input validation to the signup form."),
            steps=1,
            last_human="[TASK RESUMPTION] This task was interrupted 3 minutes ago. It may or may"
            " not be complete, so please reassess the task context.\n\nNew instructions for task"
            " continuation:\n<user_message>\nalso validate the phone number field\n"
            "</user_message>",
            size=50000,
        ),
        "instruction",
        c,
        "task resumption with new small instruction",
    )
    big_log = log_lines(
        60000, "ERROR worker-7 lease expired while holding shard 12; second owner acquired it"
    )
    row(
        agent_task(
            c,
            task(
                "CI fails intermittently in the sharding tests. Here is the full log from the"
                " last failing run, find the cause:\n\n" + big_log
            ),
            size=44000,
        ),
        "complex",
        c,
        "user pasted a ~60k-char log inside <task>",
    )
    row(
        agent_task(
            c,
            task("Add a dark theme toggle to SettingsActivity.kt that persists in SharedPrefs."),
            size=46000,
        ),
        "instruction",
        c,
        "Kotlin ordinary feature",
    )


def build_roo() -> None:
    c = "roo"
    row(
        agent_task(c, task("Add a --verbose flag to scripts/deploy.sh"), size=41000),
        "instruction",
        c,
        "XML-era <task>, code mode",
    )
    row(
        agent_task(
            c,
            task("Why is my useEffect running twice in development?", "user_message"),
            size=44000,
            mode="ask",
            native=True,
        ),
        "instruction",
        c,
        "native era <user_message>, ask mode, question",
    )
    row(
        agent_task(
            c,
            task(
                "Intermittent 'database is locked' errors under concurrent writes in our"
                " SQLite-backed Go service. Find the root cause and fix it.",
                "user_message",
            ),
            steps=4,
            size=47000,
            mode="debug",
            native=True,
        ),
        "complex",
        c,
        "debug mode, step 4, concurrency bug hunt",
    )
    row(
        agent_task(
            c,
            task(
                "Plan how to split the monolith into billing, identity and catalog services"
                " with event-driven sync and no downtime.",
                "user_message",
            ),
            size=50000,
            mode="architect",
            native=True,
        ),
        "complex",
        c,
        "architect mode: service decomposition",
    )
    row(
        agent_task(
            c,
            task(
                "Build the full checkout: cart, payment provider integration, inventory"
                " reservations with timeouts, and confirmation emails."
            ),
            steps=2,
            size=58000,
            mode="orchestrator",
        ),
        "complex",
        c,
        "orchestrator mode, large multi-part feature",
    )
    row(
        agent_task(
            c,
            task(
                "この関数に docstring を追加してください。"
                + file_content("app/pricing.py", py_code(900)),
                "user_message",
            ),
            size=43000,
            native=True,
        ),
        "multi-language",
        c,
        "Japanese ask with attached file",
    )
    row(
        agent_task(
            c,
            task("Исправь опечатку в сообщении об ошибке в src/auth.ts", "user_message"),
            size=45000,
            native=True,
        ),
        "multi-language",
        c,
        "Russian small fix",
    )
    row(
        agent_task(
            c,
            task("Replace moment.js with date-fns in src/utils/date.ts", "user_message"),
            steps=3,
            size=46000,
            native=True,
            merge_env=True,
        ),
        "instruction",
        c,
        "mergeToolResultText: environment_details merged into role:tool",
    )
    row(
        agent_task(
            c,
            task("Write a Rust FFI wrapper around libsodium's crypto_secretbox functions."),
            steps=2,
            last_human="[TASK RESUMPTION] Resuming task...\n\nNew instructions for task"
            " continuation:\n<user_message>\ncontinue\n</user_message>",
            size=49000,
        ),
        "multi-language",
        c,
        "resume with 'continue' in an FFI task",
    )
    row(
        agent_task(
            c,
            task("Convert etl/transform.py to TypeScript as etl/transform.ts.", "user_message"),
            steps=6,
            size=52000,
            native=True,
        ),
        "multi-language",
        c,
        "step 6 of a one-file Python->TypeScript port",
    )
    row(
        agent_task(
            c,
            task("fix the off-by-one in the retry counter in src/lib/lock.ts", "user_message"),
            size=42000,
            native=True,
        ),
        "instruction",
        c,
        "hostile: small fix in a file named lock.ts",
    )
    row(
        agent_task(c, task("fix the deadlock", "user_message"), steps=1, size=48000, native=True),
        "complex",
        c,
        "short hard ask",
    )
    row(
        agent_task(
            c,
            task("Add an Installation section to the README."),
            last_human="<feedback>\nperfect, thanks. now add a short Troubleshooting section"
            " too\n</feedback>",
            size=41000,
        ),
        "instruction",
        c,
        "feedback after completion",
    )
    row(
        agent_task(
            c,
            task(
                "users 테이블에 created_at 컬럼을 추가하는 마이그레이션을 작성해 주세요.",
                "user_message",
            ),
            size=44000,
            native=True,
        ),
        "multi-language",
        c,
        "Korean small SQL migration",
    )
    row(
        agent_task(
            c,
            task("Add pull-to-refresh to the list in FeedView.swift", "user_message"),
            steps=1,
            size=47000,
            native=True,
        ),
        "instruction",
        c,
        "Swift ordinary feature, step 1",
    )


# ---------------------------------------------------------------------------------------------
# Continue
# ---------------------------------------------------------------------------------------------

CONT_CHAT = (
    "<important_rules>\n  You are in chat mode.\n\n  If the user asks to make changes to files"
    " offer that they can use the Apply Button on the code block, or switch to Agent Mode to"
    " make the suggested updates automatically.\n  If needed concisely explain to the user"
    " they can switch to agent mode using the Mode Selector dropdown and provide no other"
    " details.\n\n  Always include the language and file name in the info string when you"
    " write code blocks.\n  For example, 'src/main.py'\n\n  When addressing code modification"
    " requests, present a concise code snippet that emphasizes only the necessary changes and"
    " uses abbreviated placeholders for unmodified sections. For example:\n\n  ```typescript"
    " /path/to/file\n  // ... existing code ...\n\n  {{ modified code here }}\n\n  // ..."
    " existing code ...\n  ```\n</important_rules>"
)


def cont_chat(
    typed: str,
    ctx: list[str] | None = None,
    mode: str = "chat",
    history: list[Msg] | None = None,
    tools: bool = False,
    tail: list[Msg] | None = None,
) -> dict[str, Any]:
    system = CONT_CHAT
    if mode == "agent":
        system = system.replace("You are in chat mode.", "You are in agent mode.")
    if mode == "plan":
        system = system.replace(
            "You are in chat mode.",
            "You are in plan mode, in which you help the user understand and construct a plan.",
        )
    system += "\n\n- Use pytest for Python tests.\n- Prefer named exports."
    parts = [{"type": "text", "text": t + "\n"} for t in ctx or []]
    parts.append({"type": "text", "text": typed})
    msgs: list[Msg] = [{"role": "system", "content": system}, *(history or [])]
    msgs.append({"role": "user", "content": parts})
    msgs += tail or []
    body: dict[str, Any] = {"model": "auto", "stream": True, "messages": msgs}
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": n,
                    "description": prose(1),
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            for n in ("read_file", "edit_existing_file", "run_terminal_command", "grep_search")
        ]
    return body


def cont_edit(ask: str, code: str, lang: str, prefix: str = "", suffix: str = "") -> dict:
    text = (
        "The user has requested a section of code in a file to be rewritten.\n\n"
        f"This is the prefix of the file:\n```{lang}\n{prefix}\n```\n\n"
        f"This is the suffix of the file:\n```{lang}\n{suffix}\n```\n\n"
        f"This is the code to rewrite:\n```{lang}\n{code}\n```\n\n"
        f'The user\'s request is: "{ask}"\n\n'
        "DO NOT output any natural language, only output the code changes.\n\n"
        f"Here is the rewritten code:"
    )
    return {"model": "auto", "stream": True, "messages": [{"role": "user", "content": text}]}


def comp(prompt: str, stop: list[str], suffix: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "auto",
        "prompt": prompt,
        "max_tokens": 256,
        "temperature": 0.01,
        "stop": stop,
        "stream": True,
    }
    if suffix is not None:
        body["suffix"] = suffix
    return body


def build_continue() -> None:
    c = "continue"
    inv = py_code(2400, "\n\ndef price_of(item):\n    return PRICES[item['sku']]\n")
    row(
        cont_chat(
            "why does this throw a KeyError sometimes?",
            ["```inventory/pricing.py\n" + inv + "\n```"],
        ),
        "instruction",
        c,
        "@file context item + short question",
    )
    sel = ts_code(700)
    row(
        cont_chat(
            "make this function async and await the fetch calls\n\n```ts src/api/orders.ts"
            " (12-40)\n" + sel + "\n```\n"
        ),
        "instruction",
        c,
        "inline code selection in the typed text",
    )
    row(
        cont_chat(
            "Puoi spiegarmi cosa fa questa funzione e perché usa un set?",
            ["This is the currently open file:\n\n```src/dedupe.py\n" + py_code(1500) + "\n```"],
        ),
        "multi-language",
        c,
        "current-file context + Italian question",
    )
    row(
        cont_chat(
            "In Qwen2.5-Coder's FIM format, what goes between <|fim_prefix|> and <|fim_suffix|>,"
            " and why do I get <|fim_middle|> echoed back in my completions?"
        ),
        "instruction",
        c,
        "hostile: FIM tokens quoted inside a chat question",
    )
    slow = py_code(30000)
    row(
        cont_chat(
            "This report generator takes 9 minutes on 2M rows. Profile it in your head and"
            " tell me where the time goes and how to make it at least 10x faster:\n\n```python\n"
            + slow
            + "\n```"
        ),
        "complex",
        c,
        "user pasted ~30k chars of code; performance work",
    )
    row(
        cont_chat(
            "run the tests and fix what fails in tests/test_parser.py",
            mode="agent",
            tools=True,
            tail=[
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "tc1",
                            "type": "function",
                            "function": {
                                "name": "run_terminal_command",
                                "arguments": '{"command":"pytest tests/test_parser.py -q"}',
                            },
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "tc1",
                    "content": "F.\nFAILED tests/test_parser.py::test_empty - IndexError: list"
                    " index out of range\n1 failed, 1 passed\n[Status: Command failed]",
                },
            ],
        ),
        "instruction",
        c,
        "agent mode with native tools, tool turn after an ordinary fix ask",
    )
    row(
        cont_chat(
            "How should we structure event sourcing for orders, with snapshots, projections"
            " and replays, so rebuilding a read model doesn't block writers?",
            mode="plan",
        ),
        "complex",
        c,
        "plan mode, architecture",
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": CONT_CHAT},
                {
                    "role": "user",
                    "content": 'convert this to a TypeScript interface: {"id": 1, "name":'
                    ' "x", "tags": ["a"], "owner": {"id": 2}}',
                },
            ],
        },
        "instruction",
        c,
        "string content chat",
    )
    row(
        cont_chat(
            "Write Python bindings for this with ctypes\n\n```c src/crc.c (1-20)\n"
            "uint32_t crc32(const uint8_t *buf, size_t len) {\n  uint32_t c = ~0u;\n"
            "  for (size_t i = 0; i < len; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >> 8);\n"
            "  return ~c;\n}\n```\n"
        ),
        "multi-language",
        c,
        "bindings (C -> Python ctypes)",
    )
    code = "def read_config(path):\n    with open(path) as f:\n        return json.load(f)\n"
    row(
        cont_edit("add error handling for a missing file", code, "python", py_code(600), ""),
        "instruction",
        c,
        "Cmd-I edit, gpt template",
    )
    blank = (
        "const form = document.querySelector('#signup');\n[BLANK]\nform.addEventListener("
        "'submit', onSubmit);\n"
    )
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "```js\n" + blank + "```\n\nAbove is the file of code that the"
                    ' user is currently editing in. Their cursor is located at the "[BLANK]".'
                    ' They have requested that you fill in the "[BLANK]" with code that'
                    ' satisfies the following request:\n\n"insert a function that validates the'
                    ' email field"\n\nPlease generate this code.',
                }
            ],
        },
        "instruction",
        c,
        "edit insertion variant with [BLANK]: a written instruction, not autocomplete",
    )
    loop = "result = []\nfor x in items:\n    if x.ok:\n        result.append(x.value)\n"
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "```python\n<START EDITING HERE>\n" + loop + "<STOP EDITING"
                    " HERE>\n```\n\nPlease rewrite the entire code block above, editing the"
                    ' portion below "<START EDITING HERE>" in order to satisfy the following'
                    ' request: "convert this loop to a list comprehension".',
                },
                {
                    "role": "assistant",
                    "content": "Sure! Here's the entire rewritten code block:\n```python\n",
                },
            ],
        },
        "instruction",
        c,
        "open-source model edit template with assistant prefill",
    )
    java = java_code(1500)
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "[INST] You are a helpful code assistant. Your task is to rewrite"
                    ' the following code with these instructions: "rewrite the loops using'
                    ' Java streams"\n```java\n' + java + "\n```\n\nJust rewrite the code"
                    " without explanations: [/INST]\n```java",
                }
            ],
        },
        "instruction",
        c,
        "mistral edit template",
    )
    tok = (
        'FIM_PREFIX = "<|fim_prefix|>"\nFIM_SUFFIX = "<|fim_suffix|>"\n'
        'FIM_MIDDLE = "<|fim_middle|>"\n\ndef build(prefix, suffix):\n'
        "    return FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE\n"
    )
    row(
        cont_edit("rename FIM_PREFIX to FIM_PREFIX_TOKEN everywhere", tok, "python"),
        "instruction",
        c,
        "hostile: edited file contains FIM token strings",
    )
    row(
        cont_edit(
            "traduce los comentarios al inglés y deja el código igual",
            "# calcula el total\ndef total(xs):\n    # suma todo\n    return sum(xs)\n",
            "python",
        ),
        "multi-language",
        c,
        "edit request in Spanish",
    )
    row(
        cont_edit(
            "make this thread-safe without a global lock; readers must never block writers",
            "class Registry:\n    def __init__(self):\n        self._items = {}\n"
            "    def get(self, k):\n        return self._items.get(k)\n"
            "    def put(self, k, v):\n        self._items[k] = v\n",
            "python",
        ),
        "complex",
        c,
        "edit request: lock-free concurrency",
    )
    # autocomplete templates
    pre = "// Path: src/lib/money.ts\n// export type Cents = number;\n// src/cart.ts\n"
    pre += ts_code(900) + "\nexport function cartTotal(items: Item[]): number {\n  return "
    suf = "\n}\n\nexport function formatTotal(n: number) {\n  return n.toFixed(2);\n}\n"
    qstops = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
    row(
        comp(
            "<|repo_name|>shop\n<|file_sep|>src/lib/money.ts\nexport type Cents = number;\n"
            "<|file_sep|>src/cart.ts\n<|fim_prefix|>"
            + pre
            + "<|fim_suffix|>"
            + suf
            + "<|fim_middle|>",
            qstops + ["<|repo_name|>", "<|file_sep|>"],
        ),
        "completion",
        c,
        "qwen coder FIM via /v1/completions",
        COMP,
    )
    row(
        comp(
            "<fim_prefix>"
            + py_code(800)
            + "\n\ndef median(xs):\n    "
            + "<fim_suffix>\n\nprint(median([3, 1, 2]))\n<fim_middle>",
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>"],
        ),
        "completion",
        c,
        "starcoder FIM",
        COMP,
    )
    row(
        comp(
            "[SUFFIX]\n    return out\n}\n[PREFIX]+++++ src/main.go\n"
            + go_code(700)
            + "\nfunc filterActive(xs []User) []User {\n\tout := []User{}\n\t",
            ["[PREFIX]", "[SUFFIX]", "\n+++++ "],
        ),
        "completion",
        c,
        "codestral FIM",
        COMP,
    )
    row(
        comp(
            "<PRE> " + java_code(600, "Util") + "\n    public static int clamp(int v) {\n"
            "        <SUF>\n    }\n} <MID>",
            ["<PRE>", "<SUF>", "<MID>", "<EOT>"],
        ),
        "completion",
        c,
        "codellama FIM",
        COMP,
    )
    row(
        comp(
            "<｜fim▁begin｜>"
            + rust_code(700)
            + "\nfn parse_port(s: &str) -> Option<u16> {\n    "
            + "<｜fim▁hole｜>\n}\n<｜fim▁end｜>",
            ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>"],
        ),
        "completion",
        c,
        "deepseek FIM (full-width bars)",
        COMP,
    )
    filler = (
        "You are a HOLE FILLER. You are provided with a file containing holes, formatted as"
        " '{{HOLE_NAME}}'. Your TASK is to complete with a string to replace this hole with,"
        " inside a <COMPLETION/> XML tag, including context-aware indentation, if needed.\n\n"
        "## EXAMPLE QUERY:\n\n<QUERY>\nfunction sum_evens(lim) {\n  var sum = 0;\n  for (var i"
        " = 0; i < lim; ++i) {\n    {{FILL_HERE}}\n  }\n  return sum;\n}\n</QUERY>\n\n"
        "## CORRECT COMPLETION\n\n<COMPLETION>if (i % 2 === 0) {\n      sum += i;\n    }"
        "</COMPLETION>\n\n"
    )
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": filler
                    + "\n\n<QUERY>\n"
                    + py_code(600)
                    + "\ndef is_palindrome(s):\n    {{FILL_HERE}}\n</QUERY>\nTASK: Fill the"
                    " {{FILL_HERE}} hole. Answer only with the CORRECT completion, and NOTHING"
                    " ELSE. Do it now.\n<COMPLETION>",
                }
            ],
            "stop": ["</COMPLETION>"],
        },
        "completion",
        c,
        "hole-filler autocomplete template as chat",
    )
    row(
        comp(
            "<|user|>\n###REFERENCE:\n###PATH: src/util.py\n"
            + py_code(300)
            + "\n###PATH: src/app.py\n###LANGUAGE: Python\n###MODE: BLOCK\n<|code_suffix|>\n"
            "    return total\n<|code_prefix|>def add_all(xs):\n    <|code_middle|>"
            "<|assistant|>\n",
            ["<|user|>", "<|code_suffix|>", "<|code_prefix|>", "<|code_middle|>"],
        ),
        "completion",
        c,
        "codegeex autocomplete",
        COMP,
    )
    instinct = (
        "Reference the user excerpt, user edits, and the snippets to understand the"
        " developer's intent. Update the editable region of the user excerpt by predicting"
        " and completing the changes they would have made next.\n\n### Context:\n"
        "<|context_file|> src/models.py\n<|snippet|>\n"
        + py_code(500)
        + "\n\n### User Edits:\n\n--- a/src/api.py\n+++ b/src/api.py\n@@ -3,1 +3,1 @@\n"
        "-def get(id):\n+def get(order_id):\n\n### User Excerpt:\nsrc/api.py\n\n"
        "<|editable_region_start|>\ndef get(order_id):\n"
        "    return db.find(id<|user_cursor_is_here|>)"
        "\n<|editable_region_end|>\n"
    )
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "system",
                    "content": "You are Instinct, an intelligent next-edit predictor developed"
                    " by Continue.dev. " + prose(8),
                },
                {"role": "user", "content": instinct},
            ],
        },
        "completion",
        c,
        "Instinct next-edit prediction",
    )
    mercury = (
        "<|recently_viewed_code_snippets|>\n<|recently_viewed_code_snippet|>\ncode_snippet_file"
        "_path: src/db.ts\n" + ts_code(400) + "\n<|/recently_viewed_code_snippet|>\n"
        "<|/recently_viewed_code_snippets|>\n\n<|current_file_content|>\ncurrent_file_path:"
        " src/cart.ts\n" + ts_code(600) + "\n<|code_to_edit|>\nexport const TAX = 0.2<|cursor|>"
        "\n<|/code_to_edit|>\n<|/current_file_content|>\n\n<|edit_diff_history|>\n"
        "--- src/cart.ts\n+++ src/cart.ts\n@@ -1 +1 @@\n-const TAX = 0.19\n+export const TAX ="
        " 0.2\n<|/edit_diff_history|>"
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are Mercury, created by Inception Labs."},
                {"role": "user", "content": mercury},
            ],
        },
        "completion",
        c,
        "Mercury next-edit prediction",
    )
    row(
        comp(
            "<|fim_prefix|>// src/tz.go\n// 日本時間に変換する\n"
            + go_code(500)
            + "\nfunc toJST(t time.Time) time.Time {\n\t<|fim_suffix|>\n}\n<|fim_middle|>",
            qstops,
        ),
        "completion",
        c,
        "FIM with a Japanese comment in the prefix",
        COMP,
    )
    dl = py_code(
        900,
        "\n# deadlock detection: wait-for graph, race-free, lock ordering, memory leak guard\n",
    )
    row(
        comp(
            "<fim_prefix>" + dl + "\ndef has_cycle(graph):\n    <fim_suffix>\n<fim_middle>",
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
        ),
        "completion",
        c,
        "hostile: FIM whose prefix is full of hard-task vocabulary",
        COMP,
    )
    row(
        comp(
            "# src/stats.py\n" + py_code(700) + "\n\ndef stddev(xs):\n    ",
            ["\n\n\n"],
            suffix="\n\n\ndef zscore(x, xs):\n    return (x - mean(xs)) / stddev(xs)\n",
        ),
        "completion",
        c,
        "native-style prompt + suffix body",
        COMP,
    )
    diffc = diff(["src/cart.ts", "src/lib/money.ts"])
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": CONT_CHAT},
                {
                    "role": "user",
                    "content": diffc + "\n\nGenerate a commit message for the above set of"
                    " changes. First, give a single sentence, no more than 80 characters. Then,"
                    " after 2 line breaks, give a list of no more than 5 short bullet points,"
                    " each no more than 40 characters. Output nothing except for the commit"
                    " message, and don't surround it in quotes.",
                },
            ],
        },
        "instruction",
        "commit",
        "Continue legacy /commit",
        background="commit",
    )


# ---------------------------------------------------------------------------------------------
# Zed
# ---------------------------------------------------------------------------------------------

ZED_SYS = (
    "You are a highly skilled software engineer with extensive knowledge in many programming"
    " languages, frameworks, design patterns, and best practices.\n\n## Communication\n\n"
    "- Be conversational but professional.\n- Refer to the user in the second person and"
    " yourself in the first person.\n- Format your responses in markdown.\n\n## Tool Use\n\n"
    + prose(25)
    + "\n\n## System Information\n\nOperating System: macos\nDefault Shell: zsh\n"
)
ZED_CTX = (
    "\n<context>\nThe following items were attached by the user. They are up-to-date and"
    " don't need to be re-read.\n\n"
)


def zed(
    ask: str,
    files: dict[str, tuple[str, str]] | None = None,
    extra: str = "",
    tail: list[Msg] | None = None,
    ctx_head: str = ZED_CTX,
) -> dict[str, Any]:
    text = ask
    if files or extra:
        text += ctx_head
        if files:
            text += (
                "<files>\n"
                + "".join(f"```{lang} {p}\n{body}\n```\n" for p, (lang, body) in files.items())
                + "</files>\n"
            )
        text += extra + "</context>"
    body: dict[str, Any] = {
        "model": "auto",
        "stream": True,
        "messages": [{"role": "system", "content": ZED_SYS}, {"role": "user", "content": text}]
        + (tail or []),
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": n,
                    "description": prose(1),
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            for n in ("read_file", "edit_file", "grep", "terminal", "find_path")
        ],
    }
    return body


def zeta1(path: str, excerpt: str, edits: str) -> dict[str, Any]:
    p = (
        "### Instruction:\nYou are a code completion assistant and your task is to analyze user"
        " edits and then rewrite an excerpt that the user provides, suggesting the appropriate"
        " edits within the excerpt, taking into account the cursor location.\n\n"
        f"### User Edits:\n\n{edits}\n\n### User Excerpt:\n\n```{path}\n"
        f"<|editable_region_start|>\n{excerpt}\n<|editable_region_end|>\n```\n\n### Response:\n"
    )
    return {"model": "auto", "prompt": p, "max_tokens": 350}


def build_zed() -> None:
    c = "zed"
    handlers = go_code(1800)
    row(
        zed(
            "[@handlers.go](file:///Users/kim/api/handlers.go) add a 404 handler for unknown"
            " routes that returns JSON",
            {"api/handlers.go": ("go", handlers)},
        ),
        "instruction",
        c,
        "agent with an attached file",
    )
    row(
        zed(
            "why is this goroutine never exiting? memory keeps growing every time a client"
            " reconnects",
            extra="<selections>\n```go api/stream.go:40-72\n" + go_code(900) + "\n```\n"
            "</selections>\n",
        ),
        "complex",
        c,
        "goroutine leak with a selection",
    )
    row(
        zed(
            "Schreib einen Unit-Test für die Funktion `parse_config`.",
            {"src/config.py": ("python", py_code(1400))},
        ),
        "multi-language",
        c,
        "German ask",
    )
    row(
        zed(
            "fix the type error on line 42",
            {"src/cart.ts": ("typescript", ts_code(1600))},
            extra="<diagnostics>\nsrc/cart.ts:42: error TS2345: Argument of type 'string' is"
            " not assignable to parameter of type 'number'.\n</diagnostics>\n<rules>\nThe user"
            " has specified the following rules that should be applied:\n- no any\n</rules>\n",
        ),
        "instruction",
        c,
        "diagnostics + rules attachments",
    )
    tail: list[Msg] = []
    for i in range(3):
        cid = f"z{i}"
        tail += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": "grep", "arguments": '{"regex":"f\\"SELECT"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": cid, "content": py_code(2000)},
        ]
    row(
        zed(
            "Find every place we build SQL strings by hand across the repo and switch them all"
            " to parameterized queries.",
            tail=tail,
        ),
        "complex",
        c,
        "agent tool loop, step 3, many-file change",
    )
    row(
        zed(
            "port this struct to a Kotlin data class with the same defaults",
            {
                "Sources/Model/Profile.swift": (
                    "swift",
                    'struct Profile {\n  var name = ""\n'
                    "  var age = 0\n  var tags: [String] = []\n}\n",
                )
            },
        ),
        "multi-language",
        c,
        "Swift -> Kotlin port",
    )
    row(
        zed(
            "add a test for the tokenizer",
            {
                "src/tokenizer.zig": (
                    "zig",
                    'const std = @import("std");\npub fn next(s: []const'
                    " u8) ?Token {\n    _ = s;\n    return null;\n}\n",
                )
            },
        ),
        "multi-language",
        c,
        "Zig, outside the mainstream list",
    )
    row(
        zed(
            "add doc comments to the public functions",
            {"src/lib.rs": ("rust", rust_code(1500))},
            ctx_head="\n<context>\nThe following items were attached by the user. You don't need"
            " to use other tools to read them.\n\n",
        ),
        "instruction",
        c,
        "older Zed context preface",
    )
    css = "".join(
        f".{R.choice(NOUNS)}-{R.choice(ADJ)} {{\n  color: #333;\n  margin: {R.randint(1, 20)}px;"
        f"\n  border: 1px solid #ddd;\n}}\n"
        for _ in range(45)
    )
    row(
        zed(
            "change every #333 in this to a CSS variable --text-color defined on :root\n\n"
            "```css\n" + css + "```"
        ),
        "instruction",
        c,
        "long trivial paste (~3.5k chars of CSS), mechanical change",
    )
    edits = (
        'User edited "models/customer.rb":\n```diff\n@@ -10,3 +10,4 @@\n   def full_name\n'
        '+    "#{first} #{last}"\n```'
    )
    row(
        zeta1(
            "models/customer.rb",
            'class Customer\n  def full_name\n    "#{first} #{last}"\n  end\n\n  def initials'
            "<|user_cursor_is_here|>\nend",
            edits,
        ),
        "completion",
        c,
        "Zeta 1 edit prediction",
        COMP,
    )
    z2 = (
        "<|file_sep|>src/db.rs\n...\npub fn connect(url: &str) -> Pool {\n...\n"
        "<|file_sep|>edit history\n--- a/src/main.rs\n+++ b/src/main.rs\n@@ -4 +4 @@\n"
        "-let pool = connect(URL);\n+let pool = connect(&cfg.url);\n<|file_sep|>src/main.rs\n"
        "<|fim_prefix|>" + rust_code(600) + "\n<<<<<<< CURRENT\nfn main() {\n    let cfg ="
        " Config::load();<|user_cursor|>\n=======\n<|fim_suffix|>\n}\n<|fim_middle|>"
    )
    row(
        {"model": "auto", "prompt": z2, "max_tokens": 512},
        "completion",
        c,
        "Zeta 2 git-merge-markers edit prediction",
        COMP,
    )
    seed = (
        "<[fim-suffix]>\n    }\n}\n<[fim-prefix]><filename>src/queue.rs\n"
        + rust_code(500)
        + "\nimpl Queue {\n    pub fn pop(&mut self) -> Option<Job> {\n        <[fim-middle]>"
    )
    row(
        {"model": "auto", "prompt": seed, "max_tokens": 256},
        "completion",
        c,
        "Seed-Coder edit prediction format",
        COMP,
    )
    row(
        zeta1(
            "src/sync.rs",
            "// avoid deadlock: always lock accounts in id order, this is the hard concurrency"
            " bit\nfn transfer(a: &Account, b: &Account) {\n    let (x, y) = if a.id < b.id"
            " {<|user_cursor_is_here|>\n}",
            'User edited "src/sync.rs":\n```diff\n@@ -1 +1 @@\n-fn move_funds\n+fn transfer\n```',
        ),
        "completion",
        c,
        "hostile: edit prediction in code about deadlocks",
        COMP,
    )


# ---------------------------------------------------------------------------------------------
# Open WebUI
# ---------------------------------------------------------------------------------------------


def chat_history(turns: list[tuple[str, str]]) -> str:
    return "\n".join(f"USER: {u}\nASSISTANT: {a}" for u, a in turns)


def owui(template: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    text = template.replace("{H}", "<chat_history>\n" + chat_history(turns) + "\n</chat_history>")
    return {"model": "auto", "stream": False, "messages": [{"role": "user", "content": text}]}


T_TITLE = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme or subject of the"
    " conversation.\n- Use emojis that enhance understanding of the topic.\n- Write the title in"
    " the chat's primary language; default to English if multilingual.\n### Output:\nJSON"
    ' format: { "title": "your concise title here" }\n### Examples:\n- { "title": "📉 Stock'
    ' Market Trends" },\n- { "title": "🍪 Perfect Chocolate Chip Recipe" }\n### Chat History:\n'
    "{H}"
)
T_TAGS = (
    "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along"
    " with 1-3 more specific subtopic tags.\n\n### Guidelines:\n- Start with high-level domains"
    '\n- Use the chat\'s primary language\n\n### Output:\nJSON format: { "tags": ["tag1",'
    ' "tag2", "tag3"] }\n\n### Chat History:\n{H}'
)
T_FOLLOW = (
    "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might"
    " naturally ask next in this conversation as a **user**, based on the chat history, to help"
    " continue or deepen the discussion.\n### Guidelines:\n- Write all follow-up questions from"
    " the user’s point of view\n- Use the conversation's primary language\n### Output:\nJSON"
    ' format: { "follow_ups": ["Question 1?", "Question 2?"] }\n### Chat History:\n{H}'
)
T_QUERY = (
    "### Task:\nAnalyze the chat history to determine the necessity of generating search"
    " queries, in the given language. By default, **prioritize generating 1-3 broad and relevant"
    " search queries** unless it is absolutely certain that no additional information is"
    " required.\n### Guidelines:\n- Respond **EXCLUSIVELY** with a JSON object.\n- Today's date"
    ' is: 2026-12-01.\n### Output:\nStrictly return in JSON format: \n{\n  "queries": ["query1",'
    ' "query2"]\n}\n### Chat History:\n{H}'
)


def build_owui() -> None:
    c = "open-webui"
    py_turns = [
        ("how do I reverse a list in python?", "Use `lst[::-1]` or `lst.reverse()`."),
        ("which one is faster?", "`reverse()` is in place and avoids a copy."),
    ]
    row(owui(T_TITLE, py_turns), "instruction", c, "title, short English chat", background="title")
    es_long = [
        (
            "Tengo un deadlock en mi servicio Java cuando dos hilos actualizan cuentas. Te pego"
            " el thread dump:\n" + log_lines(5000),
            "El dump muestra que el hilo A tiene el lock de la cuenta 1 y espera la 2. " + prose(8),
        ),
        ("¿Y cómo ordeno los locks?", "Ordénalos por id de cuenta antes de adquirirlos."),
    ]
    row(
        owui(T_TITLE, es_long),
        "instruction",
        c,
        "title over a long Spanish chat about a deadlock",
        background="title",
    )
    zh = [
        (
            "怎么在 Go 里实现一个带超时的 worker pool？",
            "可以用 context.WithTimeout 和 channel。" * 20,
        ),
        ("如果任务出错要重试呢？", "给每个任务加一个重试计数器。" * 10),
        ("那怎么限制并发数？", "用一个带缓冲的 channel 当信号量。" * 10),
    ]
    row(owui(T_TAGS, zh), "instruction", c, "tags, Chinese chat", background="tags")
    fr = [
        (
            "Pourquoi Rust refuse-t-il ce code avec une erreur de durée de vie ?",
            "Parce que la référence retournée vit plus longtemps que la variable locale. "
            + prose(6),
        ),
        ("Et avec un Box ?", "Un Box possède la valeur, donc la durée de vie n'est plus liée."),
    ]
    row(owui(T_FOLLOW, fr), "instruction", c, "follow-ups, French chat", background="follow_ups")
    de = [
        (
            "Wie konfiguriere ich nginx als Reverse Proxy für eine Node-App?",
            "Mit einem `location /` Block und `proxy_pass`. " + prose(5),
        ),
        ("Und mit HTTPS über Let's Encrypt?", "Nutze certbot mit dem nginx-Plugin."),
    ]
    row(owui(T_QUERY, de), "instruction", c, "search query, German chat", background="search_query")
    emoji = (
        "Your task is to reflect the speaker's likely facial expression through a fitting emoji."
        " Interpret emotions from the message and reflect their facial expression using fitting,"
        " diverse emojis (e.g., 😊, 😢, 😡, 😱).\n\nMessage: ```finally the build is green after"
        " three days```"
    )
    row(
        {"model": "auto", "stream": False, "messages": [{"role": "user", "content": emoji}]},
        "instruction",
        c,
        "emoji task",
        background="emoji",
    )
    ja = [
        (
            "このコードのメモリリークを探してください:\n```python\n" + py_code(4000) + "\n```",
            "キャッシュが無制限に増えています。"
            + prose(10)
            + "\n```python\n"
            + py_code(2000)
            + "\n```",
        ),
        ("LRU にするにはどうすればいい？", "functools.lru_cache を使えます。" + prose(4)),
        ("テストも書いて", "```python\n" + py_code(1500) + "\n```"),
    ]
    row(
        owui(T_TITLE, ja),
        "instruction",
        c,
        "title over a long Japanese chat with code",
        background="title",
    )
    ko = [
        ("리액트에서 상태 관리를 어떻게 하는 게 좋아요?", "작은 앱은 useState, 큰 앱은 Zustand."),
        ("Redux랑 비교하면요?", "보일러플레이트가 적습니다. " + prose(3)),
    ]
    row(owui(T_TAGS, ko), "instruction", c, "tags, Korean chat", background="tags")
    tr = [
        ("Python'da bir CSV dosyasını nasıl okurum?", "csv modülünü veya pandas kullanın."),
        ("Büyük dosyalar için?", "pandas.read_csv ile chunksize parametresini kullanın."),
    ]
    row(owui(T_FOLLOW, tr), "instruction", c, "follow-ups, Turkish chat", background="follow_ups")
    ru = [
        ("Как настроить репликацию в PostgreSQL?", "Используйте потоковую репликацию. " + prose(4)),
        ("А логическую?", "Создайте публикацию и подписку."),
    ]
    row(
        owui(T_QUERY, ru), "instruction", c, "search query, Russian chat", background="search_query"
    )
    design = [
        (
            "We need to shard our Postgres orders table across 8 nodes without downtime and keep"
            " cross-shard reports consistent. How would you design it?",
            "Use a routing layer keyed by customer id, dual writes during migration, " + prose(12),
        ),
        (
            "What about rebalancing when we add nodes?",
            "Consistent hashing with vnodes. " + prose(5),
        ),
    ]
    row(
        owui(T_FOLLOW, design),
        "instruction",
        c,
        "hostile: follow-ups over a hard distributed-systems chat",
        background="follow_ups",
    )
    it = [
        ("Come posso leggere un file JSON in JavaScript?", "Usa fetch() e poi response.json()."),
        ("E in Node?", "Usa fs.readFile e JSON.parse, oppure import con assert."),
    ]
    row(owui(T_TAGS, it), "instruction", c, "tags, Italian chat", background="tags")
    old_title = (
        "Create a concise, 3-5 word title with an emoji as a title for the chat history, in the"
        " given language. Suitable Emojis for the summary can be used to enhance understanding"
        " but avoid quotation marks or special formatting. RESPOND ONLY WITH THE TITLE TEXT.\n\n"
        "Examples of titles:\n📉 Stock Market Trends\n🍪 Perfect Chocolate Chip Recipe\n\n"
        "Chat History:\n{H}"
    )
    row(
        owui(
            old_title.replace("Create", "### Task:\nCreate"), [("write a haiku about git", "...")]
        ),
        "instruction",
        c,
        "older-style title template",
        background="title",
    )
    # RAG chats
    rag_head = (
        "### Task:\nRespond to the user query using the provided context, incorporating inline"
        " citations in the format [id] **only when the <source> tag includes an explicit id"
        ' attribute** (e.g., <source id="1">).\n\n### Guidelines:\n- If you don\'t know the'
        " answer, clearly state that.\n- Respond in the same language as the user's query.\n\n"
        "### Output:\nProvide a clear and direct response to the user's query.\n\n<context>\n"
    )

    def rag(query: str, n_src: int, src_len: int) -> dict[str, Any]:
        srcs = "".join(
            f'<source id="{i + 1}" name="docs/{ident()}.md">{prose(src_len)}</source>\n'
            for i in range(n_src)
        )
        system = rag_head + srcs + f"</context>\n\n<user_query>\n{query}\n</user_query>"
        return {
            "model": "auto",
            "stream": True,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": query},
            ],
        }

    row(
        rag("How do I configure the retry policy in the SDK?", 4, 12),
        "instruction",
        "generic",
        "Open WebUI RAG: retrieved docs in the system message, simple question",
    )
    row(
        rag("Como faço para habilitar o modo debug no cliente?", 3, 10),
        "multi-language",
        "generic",
        "Open WebUI RAG, Portuguese question",
    )
    row(
        rag(
            "Based on these runbooks, design a multi-region failover strategy for our Postgres"
            " cluster, including how to avoid split-brain during a network partition.",
            8,
            40,
        ),
        "complex",
        "generic",
        "Open WebUI RAG, distributed-systems design over large retrieved context",
    )


# ---------------------------------------------------------------------------------------------
# OpenAI tool-calling loops, commit generators, generic chats
# ---------------------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": n,
            "description": d,
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            },
        },
    }
    for n, d in (
        ("read_file", "Read a file from the repository."),
        ("write_file", "Overwrite a file in the repository."),
        ("run_tests", "Run the test suite and return the output."),
        ("list_dir", "List a directory."),
    )
]
AGENT_SYS = "You are a coding agent working in the user's repository. Use tools to inspect and"
AGENT_SYS += " change files. Keep changes minimal and run the tests before you finish."


def tool_loop(
    ask: str,
    steps: int,
    outputs: Callable[[int], str] | None = None,
    after: list[Msg] | None = None,
) -> dict[str, Any]:
    msgs: list[Msg] = [
        {"role": "system", "content": AGENT_SYS},
        {"role": "user", "content": ask},
    ]
    names = ["list_dir", "read_file", "run_tests", "write_file"]
    for i in range(steps):
        cid = f"call_{R.randrange(16**8):08x}"
        name = names[i % 4]
        msgs.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps({"path": "src"})},
                    }
                ],
            }
        )
        out = outputs(i) if outputs else py_code(1200)
        msgs.append({"role": "tool", "tool_call_id": cid, "content": out})
    msgs += after or []
    return {"model": "auto", "tools": TOOLS, "tool_choice": "auto", "messages": msgs}


def build_tools() -> None:
    c = "openai-tools"
    row(
        tool_loop("Add a --limit option to the export command.", 4),
        "instruction",
        c,
        "4-step tool loop, ordinary feature",
    )
    row(
        tool_loop(
            "The integration tests hang forever on CI about once a week. Track down why.",
            3,
            lambda i: log_lines(3000),
        ),
        "complex",
        c,
        "tool loop, flaky hang investigation",
    )
    row(
        tool_loop("Dodaj walidację adresu e-mail w formularzu rejestracji.", 2),
        "multi-language",
        c,
        "Polish ask, tool loop",
    )
    row(
        {
            "model": "auto",
            "tools": TOOLS
            + [
                {
                    "type": "function",
                    "function": {
                        "name": "transfer_to_reviewer",
                        "description": "Hand off to the reviewer agent.",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
            "messages": [
                {"role": "system", "content": "You triage pull requests and hand off reviews."},
                {
                    "role": "user",
                    "content": "Review this diff for obvious bugs:\n\n" + diff(["src/cart.py"], 1),
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_h1",
                            "type": "function",
                            "function": {"name": "transfer_to_reviewer", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_h1", "content": '{"assistant": "Reviewer"}'},
            ],
        },
        "instruction",
        c,
        "Agents SDK handoff, small review",
    )
    row(
        tool_loop(
            "Implement consistent hashing with virtual nodes in the cache client and"
            " rebalance keys when nodes join or leave.",
            2,
            after=[
                {"role": "assistant", "content": "Plan: 1) ring with 160 vnodes per node ..."},
                {"role": "user", "content": "ok, go ahead"},
            ],
        ),
        "complex",
        c,
        "'ok, go ahead' inherits a hard distributed-systems task",
    )
    row(
        tool_loop(
            "Migrate the orders API to the new schema.",
            4,
            after=[
                {"role": "assistant", "content": "Done: migrated 14 files, tests pass."},
                {"role": "user", "content": "thanks! now just rename notes.txt to NOTES.md"},
            ],
        ),
        "instruction",
        c,
        "new small ask after a finished big task",
    )
    row(
        tool_loop(
            "list the names of the failing tests",
            1,
            lambda i: log_lines(40000, "FAILED tests/test_api.py::test_create_order"),
        ),
        "instruction",
        c,
        "huge tool output (40k) but trivial ask",
    )
    row(
        {
            "model": "auto",
            "functions": [
                {
                    "name": "read_file",
                    "description": "Read a file.",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                }
            ],
            "messages": [
                {"role": "user", "content": "Convert scripts/resize.py into a Node.js CLI."},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "read_file", "arguments": '{"path":"resize.py"}'},
                },
                {"role": "function", "name": "read_file", "content": py_code(1500)},
            ],
        },
        "multi-language",
        c,
        "legacy functions/function_call, Python -> Node port",
    )
    row(
        tool_loop("prove this lock-free stack is linearizable", 1),
        "complex",
        c,
        "short hard ask: proof about a concurrent structure",
    )
    row(
        tool_loop("what does list_dir return for an empty folder?", 1),
        "instruction",
        c,
        "tiny question in a tool loop",
    )
    row(
        tool_loop("Écris un test pour la fonction slugify.", 3),
        "multi-language",
        c,
        "French ask, 3 steps",
    )


def build_commit() -> None:
    c = "commit"
    aider_sys = (
        "You are an expert software engineer that generates concise, one-line Git commit"
        " messages based on the provided diffs.\nReview the provided context and diffs which are"
        " about to be committed to a git repo.\nReview the diffs carefully.\nGenerate a one-line"
        " commit message for those changes.\nThe commit message should be structured as follows:"
        " <type>: <description>\nUse these for <type>: fix, feat, build, chore, ci, docs, style,"
        " refactor, perf, test\n\nEnsure the commit message:\n- Starts with the appropriate"
        " prefix.\n- Is in the imperative mood.\n- Does not exceed 72 characters.\n\nReply only"
        " with the one-line commit message, without any additional text, explanations, or line"
        " breaks.\n"
    )
    user = (
        "\nUSER: fix the race between flush() and close() in the writer\n\nASSISTANT: I added a"
        " lock around the buffer swap.\n\n# Diffs:\n"
        + diff(["writer/buffer.py"], 2, "take the lock before swapping buffers to avoid a race")
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": aider_sys},
                {"role": "user", "content": user},
            ],
        },
        "instruction",
        c,
        "aider commit message over a concurrency diff",
        background="commit",
    )
    cline_sys = (
        "You are a helpful assistant that generates informative git commit messages based on"
        " git diffs output. Skip preamble and remove all backticks surrounding the commit"
        " message."
    )
    cline_user = (
        "Based on the provided git diff, generate a concise and descriptive commit message.\n\n"
        "The commit message should:\n1. Has a short title (50-72 characters)\n2. Follows the"
        " conventional commit format\n3. Explains WHAT changed and WHY\n\nNotes from developer"
        " (ignore if not relevant): arregla el cálculo del IVA para Canarias\n\n"
        + diff(["src/tax.ts", "src/tax.test.ts"])
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": cline_sys},
                {"role": "user", "content": cline_user},
            ],
        },
        "instruction",
        c,
        "Cline commit generator with Spanish developer note",
        background="commit",
    )
    aic = (
        "Generate a concise git commit message written in present tense for the following code"
        " diff with the given specifications below:\nMessage language: ja\nCommit message must"
        " be a maximum of 72 characters.\nExclude anything unnecessary such as translation. Your"
        " entire response will be passed directly into git commit.\nChoose a type from the"
        " type-to-description JSON below that best describes the git diff:\n"
        '{"feat": "A new feature", "fix": "A bug fix", "perf": "A code change that improves'
        ' performance"}\nThe output response must be in format:\n<type>(<optional scope>):'
        " <commit message>"
    )
    row(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": aic},
                {"role": "user", "content": diff(["app/views.py"], 3)},
            ],
        },
        "instruction",
        c,
        "aicommits conventional, Japanese message language",
        background="commit",
    )
    oc = (
        "You are to act as an author of a commit message in git. Your mission is to create"
        " clean and comprehensive commit messages as per the Conventional Commit Convention and"
        " explain WHAT were the changes and mainly WHY the changes were done. I'll send you an"
        " output of 'git diff --staged' command, and you are to convert it into a commit"
        " message. Do not preface the commit with anything. Use the present tense."
    )
    ex_diff = diff(["src/server.ts"], 1, "use PORT env")
    for gitmoji in (False, True):
        sysm = oc + (" Use GitMoji convention to preface the commit." if gitmoji else "")
        row(
            {
                "model": "auto",
                "messages": [
                    {"role": "system", "content": sysm},
                    {"role": "user", "content": ex_diff},
                    {"role": "assistant", "content": "fix(server.ts): read port from env"},
                    {
                        "role": "user",
                        "content": diff(["pkg/cache/lru.go", "pkg/cache/lru_test.go"]),
                    },
                ],
            },
            "instruction",
            c,
            "OpenCommit with one-shot example" + (", GitMoji" if gitmoji else ""),
            background="commit",
        )
    many = [f"src/{camel(ident())}.ts" for _ in range(40)]
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "Write a commit message for this diff:\n\n" + diff(many, 2),
                }
            ],
        },
        "instruction",
        c,
        "hostile: generic commit request over a 40-file diff",
        background="commit",
    )
    row(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "为下面的 diff 写一个简短的提交信息（commit message）：\n\n"
                    + diff(["server/auth.go"], 2),
                }
            ],
        },
        "instruction",
        c,
        "commit message requested in Chinese (background chore)",
        background="commit",
    )


def chat(*turns: str, system: str | None = None) -> dict[str, Any]:
    msgs: list[Msg] = [{"role": "system", "content": system}] if system else []
    for i, t in enumerate(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": t})
    return {"model": "auto", "messages": msgs}


def build_generic() -> None:
    c = "generic"
    simple = [
        (
            "What's the difference between a list and a tuple in Python?",
            "instruction",
            "short question",
        ),
        ("Write a C function that reverses a string in place.", "instruction", "short C task"),
        (
            "Prove that Dijkstra's algorithm can fail with negative edge weights.",
            "complex",
            "short proof",
        ),
        ("implement a lock-free MPMC queue in C++", "complex", "short hard ask"),
        ("¿Cómo ordeno un diccionario por valor en Python?", "multi-language", "Spanish question"),
        (
            "Écris une fonction JavaScript qui fait un debounce d'un appel.",
            "multi-language",
            "French task",
        ),
        (
            "Write a Haskell function for run-length encoding.",
            "multi-language",
            "Haskell, outside the list",
        ),
        ("पायथन में फ़ाइल लाइन-दर-लाइन कैसे पढ़ें?", "multi-language", "Hindi question"),
        (
            "Design the database schema and services for a ride-sharing app that handles 1M"
            " rides a day, including surge pricing and driver matching.",
            "complex",
            "system design",
        ),
        ("Write a PHP function to slugify a blog title.", "instruction", "PHP small task"),
        (
            "explain what `git rebase --onto main feature~3 feature` does",
            "instruction",
            "explain a shell command",
        ),
        (
            "Write a Python script that calls a Rust library through PyO3, with the Rust side too.",
            "multi-language",
            "two languages, bindings",
        ),
        (
            "Why does my Kotlin coroutine scope keep leaking jobs after the activity is destroyed?",
            "complex",
            "leak debugging, short",
        ),
        (
            "Progetta un'architettura a microservizi per un sistema di prenotazioni con"
            " consistenza eventuale e saga per i pagamenti.",
            "complex",
            "hard task written in Italian (complex wins)",
        ),
        (
            "I'm writing a tokenizer: should `<fim_prefix>`, `<fim_suffix>` and `<fim_middle>` be"
            " registered as special tokens, and what happens if they aren't?",
            "instruction",
            "hostile: FIM tokens quoted in prose",
        ),
        (
            "Write a SQL query that returns the top 5 customers by revenue in 2025.",
            "instruction",
            "SQL",
        ),
        (
            "Wie kann ich in TypeScript einen Typ für ein readonly Array definieren?",
            "multi-language",
            "German question",
        ),
    ]
    for ask, label, note in simple:
        row(chat(ask), label, c, note)
    row(
        chat(
            "Translate this Python class to idiomatic Rust:\n\n```python\n"
            + py_code(1200)
            + "\n```"
        ),
        "multi-language",
        c,
        "port with pasted code",
    )
    html = (
        "<!doctype html>\n<html>\n<body>\n"
        + "".join(
            f'  <section class="{R.choice(NOUNS)}">\n    <h2>{R.choice(PROSE).title()}</h2>\n'
            f"    <p>{prose(2)}</p>\n  </section>\n"
            for _ in range(16)
        )
        + '  <footer><a href="/contact">Contcat us</a></footer>\n</body>\n</html>\n'
    )
    row(
        chat("The footer link says 'Contcat us', fix the typo:\n\n```html\n" + html + "```"),
        "instruction",
        c,
        "long trivial paste (~4k chars HTML), typo fix",
    )
    dump = "".join(
        f'"pool-{i}-thread-{j}" #{i * 10 + j} prio=5 tid=0x{R.randrange(16**12):012x}'
        f" nid=0x{R.randrange(16**4):04x} waiting for monitor entry\n"
        f"   java.lang.Thread.State: BLOCKED (on object monitor)\n"
        f"\tat com.example.shop.{pascal(ident())}.{camel(ident())}({pascal(ident())}.java:"
        f"{R.randint(10, 400)})\n\t- waiting to lock <0x{R.randrange(16**12):012x}>\n\n"
        for i in range(60)
        for j in range(4)
    )
    row(
        chat(
            "Here's the full thread dump from the JVM when it hangs. What's deadlocked?\n\n" + dump
        ),
        "complex",
        c,
        "very large pasted thread dump",
    )
    row(
        chat(
            "Can you explain what this module does?\n\n```python\n" + py_code(9000) + "\n```",
            "It parses exports and builds reports. " + prose(10),
            "thanks, and how do I run it from the command line?",
        ),
        "instruction",
        c,
        "follow-up after an earlier long paste",
    )
    row(
        chat(
            "This query takes 30 seconds on 200M rows in Postgres. Make it fast:\n\nSELECT"
            " c.id, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE"
            " o.created_at > now() - interval '90 days' GROUP BY c.id ORDER BY 2 DESC LIMIT 50;"
        ),
        "complex",
        c,
        "SQL performance work",
    )
    snippet = "function pump(tmp) {\n  const out = [];\n  for (const x of tmp) out.push(x * 2);\n"
    row(
        chat(
            "In deadlock.js, rename `tmp` to `buffer`:\n\n```js\n" + snippet + "  return out;\n}"
            "\n```"
        ),
        "instruction",
        c,
        "hostile: trivial rename in a file named deadlock.js",
    )
    row(
        chat(
            "Add a function that sums the list, next to the existing ones:\n\n```python\n"
            "# 计算平均值\ndef mean(xs):\n    return sum(xs) / len(xs)  # 注意空列表\n```",
            system="You are a helpful assistant.",
        ),
        "instruction",
        c,
        "hostile: English ask, Chinese code comments",
    )
    row(
        chat(
            "What's a good name for a function that checks whether a user can edit a document?",
            system="Tu es un assistant utile. Réponds toujours en français.",
        ),
        "instruction",
        c,
        "hostile: French system prompt, English user ask",
    )
    row(
        comp("def fibonacci(n):\n    ", ["\ndef ", "\nclass "]),
        "completion",
        "prompt",
        "raw code prompt to continue, no FIM tokens",
        COMP,
    )
    react = (
        "Answer the following questions as best you can. You have access to the following"
        " tools:\n\nread_file: reads a file\n\nUse the following format:\n\nQuestion: the input"
        " question you must answer\nThought: you should always think about what to do\nAction:"
        " the action to take\nAction Input: the input to the action\nObservation: the result\n"
        "... (this Thought/Action/Action Input/Observation can repeat N times)\nThought: I now"
        " know the final answer\nFinal Answer: the final answer\n\nBegin!\n\nQuestion: how many"
        " functions are defined in utils.py?\nThought:"
    )
    row(
        {
            "model": "auto",
            "messages": [{"role": "user", "content": react}],
            "stop": ["\nObservation:"],
        },
        "instruction",
        c,
        "LangChain ReAct scaffold, simple question",
    )


def main() -> None:
    for build in (
        build_aider,
        build_cline,
        build_roo,
        build_continue,
        build_zed,
        build_owui,
        build_tools,
        build_commit,
        build_generic,
    ):
        build()
    with OUT.open("w", encoding="utf-8") as f:
        for item in ROWS:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(ROWS)} rows, {OUT.stat().st_size} bytes to {OUT}")


if __name__ == "__main__":
    main()
