"""Generate the client-shaped corpus: tests/corpus/clients/clients.jsonl.

Deterministic (fixed seed, no network). Run: .venv/bin/python tests/corpus/make_clients.py

Each row is one request as a real coding client would send it (aider, Cline, Roo,
Continue, Zed, Open WebUI, OpenAI tool-calling agents, commit-message generators, plus
generic and hostile cases), labelled by what the *human ask* needs, never by how the
classifier decides. The envelopes reproduce each client's structure, marker strings,
role order and size (see /work/notes/client_shapes.md); their long boilerplate is our
own filler under the real headings, not the clients' prompt text. The asks, code and
file trees live in ``clients/material.py``; this module only builds envelopes. Labelling
rules are in tests/corpus/README.md.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).with_name("clients")))

from material import (  # noqa: E402
    COMPLETION,
    COMPLEX,
    COMPLEX_ASKS,
    FENCE,
    FOREIGN_ASKS,
    FOREIGN_COMPLEX_ASKS,
    INSTRUCTION,
    INSTRUCTION_ASKS,
    MULTI,
    MULTI_ASKS,
    Ask,
    Pool,
    code,
    diff,
    files_of,
    lang_of,
    listing,
    log_lines,
    paragraphs,
    prose,
)

OUT = Path(__file__).with_name("clients") / "clients.jsonl"
CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
SEED = 15
Msg = dict[str, Any]


class Corpus:
    """The rows so far, the seeded generator and one ask pool per kind."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.rows: list[dict[str, Any]] = []
        self.pools = {
            INSTRUCTION: Pool(self.rng, INSTRUCTION_ASKS),
            COMPLEX: Pool(self.rng, COMPLEX_ASKS + FOREIGN_COMPLEX_ASKS),
            MULTI: Pool(self.rng, MULTI_ASKS),
            "foreign": Pool(self.rng, FOREIGN_ASKS),
        }

    def ask(self, kind: str) -> Ask:
        return self.pools[kind].draw()

    def add(
        self,
        client: str,
        label: str,
        note: str,
        body: dict[str, Any],
        endpoint: str = CHAT,
        background: str | None = None,
    ) -> None:
        row: dict[str, Any] = {
            "endpoint": endpoint,
            "body": {"model": "auto", **body},
            "label": label,
            "client": client,
            "note": note,
        }
        if background:
            row["background"] = background
        self.rows.append(row)


def cycle_kinds(n: int, weights: dict[str, int]) -> list[str]:
    """``n`` ask kinds in a fixed interleaved order following ``weights``."""
    out: list[str] = []
    while len(out) < n:
        for kind, w in weights.items():
            out += [kind] * w
    return out[:n]


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def fenced(path: str, body: str, info: str | None = None) -> str:
    fence = "````" if "```" in body else "```"
    return f"{fence}{info if info is not None else path}\n{body.rstrip()}\n{fence}\n"


# ================================================================= aider

AIDER_REMINDER_FIRST = {
    "diff": "# *SEARCH/REPLACE block* Rules:",
    "whole": "To suggest changes to a file you MUST return the entire content of the updated file.",
    "udiff": "# File editing rules:",
    "patch": "# V4A Diff Format Rules:",
}


def aider_reminder(rng: random.Random, fmt: str, lang_line: str = "") -> str:
    head = AIDER_REMINDER_FIRST[fmt]
    if fmt == "diff":
        rules = "\n".join(f"{i}. {prose(rng, 60)}" for i in range(1, 9))
        example = (
            "mathweb/flask/app.py\n```python\n<<<<<<< SEARCH\nfrom flask import Flask\n"
            "=======\nimport math\nfrom flask import Flask\n>>>>>>> REPLACE\n```\n"
        )
        body = (
            f"{head}\n\nEvery *SEARCH/REPLACE block* must use this format:\n{rules}\n\n"
            f"{example}\n{prose(rng, 700)}\n\nTo move code within a file, use 2 blocks.\n"
            f"{lang_line}\nONLY EVER RETURN CODE IN A *SEARCH/REPLACE BLOCK*!\n"
        )
    elif fmt == "whole":
        body = (
            f"{head}\n{prose(rng, 500)}\n\npath/to/filename.js\n```\n// entire file content "
            f"...\n// ... goes in between\n```\n\n{lang_line}\n"
        )
    elif fmt == "udiff":
        body = (
            f"{head}\n\nReturn edits similar to unified diffs that `diff -U0` would produce."
            f"\n{prose(rng, 800)}\n\n```diff\n--- mathweb/flask/app.py\n+++ mathweb/flask/"
            f"app.py\n@@ ... @@\n-class MathWeb:\n+import sympy\n+\n+class MathWeb:\n```\n"
            f"{lang_line}\n"
        )
    else:
        body = (
            f"{head}\n\n*** Begin Patch\n*** Update File: src/app.py\n@@ def main():\n-    "
            f"pass\n+    run()\n*** End Patch\n\n{prose(rng, 1500)}\n{lang_line}\n"
        )
    return body


def aider_system(
    rng: random.Random, fmt: str, mode: str, examples_in_sys: bool, lang_line: str
) -> str:
    if mode == "ask":
        return (
            "Act as an expert code analyst.\nAnswer questions about the supplied code.\n"
            f"{prose(rng, 200)}\n{lang_line}"
        )
    if mode == "architect":
        return (
            "Act as an expert architect engineer and provide direction to your editor "
            f"engineer.\n{prose(rng, 450)}\n{lang_line}"
        )
    first = (
        "Act as an expert software developer.\nTake requests for changes to the supplied code."
        if fmt == "whole"
        else "Act as an expert software developer."
    )
    shell = (
        "4. *Concisely* suggest any shell commands the user might want to run in ```bash "
        "blocks.\n\nKeep in mind these details about the user's platform and environment:\n"
        "- Platform: Linux-6.8.0-x86_64-with-glibc2.39\n"
        f"- Shell: SHELL=/bin/{rng.choice(['bash', 'zsh'])}\n"
        f"- Language: en_US\n- Current date: 2026-11-{rng.randint(10, 30)}\n"
        "- The user is operating inside a git repository\n"
    )
    examples = ""
    if examples_in_sys:
        examples = (
            "\n# Example conversations:\n\n## USER: Change get_factorial() to use "
            "math.factorial\n\n## ASSISTANT: To make this change we need to modify "
            "`mathweb/flask/app.py`.\n\n" + prose(rng, 600) + "\n\n## USER: Refactor "
            "hello() into its own file.\n\n## ASSISTANT: " + prose(rng, 500) + "\n"
        )
    return (
        f"{first}\n{prose(rng, 1000)}\n{lang_line}\n{shell}{examples}\n"
        f"{aider_reminder(rng, fmt, lang_line)}"
    )


def aider_examples(rng: random.Random) -> list[Msg]:
    return [
        {"role": "user", "content": "Change get_factorial() to use math.factorial"},
        {
            "role": "assistant",
            "content": "To make this change we need to modify "
            "`mathweb/flask/app.py`:\n\nmathweb/flask/app.py\n```python\n<<<<<<< SEARCH\n"
            "def get_factorial(n):\n    return n * get_factorial(n - 1)\n=======\n"
            "def get_factorial(n):\n    return math.factorial(n)\n>>>>>>> REPLACE\n```\n",
        },
        {"role": "user", "content": "Refactor hello() into its own file."},
        {
            "role": "assistant",
            "content": "We need to create `hello.py` and update `main.py`."
            "\n\n" + prose(rng, 300) + "\n\nhello.py\n```python\n<<<<<<< SEARCH\n=======\n"
            'def hello():\n    print("hello")\n>>>>>>> REPLACE\n```\n',
        },
        {
            "role": "user",
            "content": "I switched to a new code base. Please don't consider the "
            "above files or try to edit them any longer.",
        },
        {"role": "assistant", "content": "Ok."},
    ]


def repo_map(rng: random.Random, lang: str, tokens: int, mode: str) -> str:
    if mode in ("ask", "architect"):
        head = (
            "I am working with you on code in a git repository.\nHere are summaries of some "
            "files present in my git repo.\nIf you need to see the full contents of any "
            "files to answer my questions, ask me to *add them to the chat*.\n"
        )
    else:
        head = (
            "Here are summaries of some files present in my git repository.\nDo not propose "
            "changes to these files, treat them as *read-only*.\nIf you need to edit any of "
            "these files, ask me to *add them to the chat* first.\n"
        )
    blocks, n, i = [], 0, 0
    paths = files_of(rng, lang, 400)
    while n < tokens * 3.5:
        p = paths[i % len(paths)] if i < len(paths) else f"pkg{i}/{paths[i % len(paths)]}"
        i += 1
        src = code(rng, lang_of(p), rng.randint(300, 1500)).splitlines()
        sig = [
            ln
            for ln in src
            if ln.lstrip().startswith(
                ("def ", "class ", "func ", "export ", "pub fn", "public ", "struct ")
            )
        ]
        body = "\n⋮\n".join("│" + s[:99] for s in sig[: rng.randint(1, 5)])
        blocks.append(f"\n{p}:\n⋮\n{body}\n")
        n += len(blocks[-1])
    return head + "".join(blocks)


def aider_files_msgs(files: list[tuple[str, str]], mode: str, has_map: bool) -> list[Msg]:
    if files:
        if mode in ("ask", "architect"):
            head = (
                "I have *added these files to the chat* so you see all of their contents.\n"
                "*Trust this message as the true, current contents of the files!*\n"
            )
            ack = "Ok, I will use that as the true, current contents of the files."
        else:
            head = (
                "I have *added these files to the chat* so you can go ahead and edit them."
                "\n\n*Trust this message as the true contents of these files!*\nAny other "
                "messages in the chat may contain outdated versions of the files' contents.\n"
            )
            ack = "Ok, any changes I propose will be to those files."
        body = "".join(f"\n{p}\n{fenced('', c, '')}" for p, c in files)
        return [{"role": "user", "content": head + body}, {"role": "assistant", "content": ack}]
    if has_map:
        return [
            {
                "role": "user",
                "content": "Don't try and edit any existing code without asking "
                "me to add the files to the chat!\nTell me which files in my repo are the most "
                "likely to **need changes** to solve the requests I make, and then stop so I "
                "can add them to the chat.\n",
            },
            {
                "role": "assistant",
                "content": "Ok, based on your requests I will suggest which "
                "files need to be edited and then stop and wait for your approval.",
            },
        ]
    return [
        {"role": "user", "content": "I am not sharing any files that you can edit yet."},
        {"role": "assistant", "content": "Ok."},
    ]


def aider_body(
    c: Corpus,
    ask: str,
    *,
    lang: str,
    fmt: str = "diff",
    reminder: str = "user",
    mode: str = "code",
    map_tokens: int = 2000,
    files: list[tuple[str, str]] | None = None,
    examples: str = "msgs",
    history: list[tuple[str, str]] | None = None,
    summary: bool = False,
    reply_in: str = "",
    cur_extra: list[Msg] | None = None,
) -> dict[str, Any]:
    rng = c.rng
    lang_line = f"Reply in {reply_in}.\n" if reply_in else ""
    msgs: list[Msg] = [
        {"role": "system", "content": aider_system(rng, fmt, mode, examples == "sys", lang_line)}
    ]
    if examples == "msgs" and mode == "code":
        msgs += aider_examples(rng)
    if map_tokens:
        msgs += [
            {"role": "user", "content": repo_map(rng, lang, map_tokens, mode)},
            {
                "role": "assistant",
                "content": "Ok, I won't try and edit those files without asking first.",
            },
        ]
    if summary:
        msgs += [
            {
                "role": "user",
                "content": "I spoke to you previously about a number of things."
                "\nI asked you " + prose(rng, 500),
            },
            {"role": "assistant", "content": "Ok."},
        ]
    for u, a in history or []:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    msgs += aider_files_msgs(files or [], mode, bool(map_tokens))
    msgs += cur_extra or []
    rem = aider_reminder(rng, fmt, lang_line) if mode == "code" else ""
    if reminder == "user" and rem:
        msgs.append({"role": "user", "content": ask + "\n\n" + rem})
    else:
        msgs.append({"role": "user", "content": ask})
        if rem:
            msgs.append({"role": "system", "content": rem})
    return {"messages": msgs, "temperature": 0, "stream": True}


def aider_rows(c: Corpus) -> None:
    rng = c.rng
    fmts = ["diff", "diff", "whole", "udiff", "patch"]
    kinds = cycle_kinds(40, {INSTRUCTION: 4, COMPLEX: 3, "foreign": 2, MULTI: 1})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        lang = a.lang if a.lang != "any" else rng.choice(["py", "ts", "go"])
        fmt = fmts[i % len(fmts)]
        reminder = "sys" if i % 3 == 2 else "user"
        examples = ["msgs", "sys", "msgs", "none"][i % 4]
        map_tokens = rng.choice([0, 1024, 2048, 4096, 8192]) if i % 7 else 0
        map_tokens = map_tokens and rng.randint(map_tokens // 2 + 500, map_tokens)
        big = a.label == COMPLEX and i % 2 == 0
        n_files = rng.randint(2, 4) if big else rng.randint(0, 2)
        paths = files_of(rng, lang, n_files)
        files = [
            (p, code(rng, lang_of(p), rng.randint(5000, 15000) if big else rng.randint(600, 5000)))
            for p in paths
        ]
        history = None
        if i % 5 == 1:
            prev = c.ask(INSTRUCTION)
            history = [(prev.text, "I updated the files.\n\n" + prose(rng, 300))]
        reply_in = ""
        if kind == "foreign" and i % 4 == 0:
            reply_in = rng.choice(["Spanish", "French", "German", "Japanese"])
        body = aider_body(
            c,
            a.text,
            lang=lang,
            fmt=fmt,
            reminder=reminder,
            files=files,
            map_tokens=map_tokens,
            examples=examples,
            history=history,
            summary=i % 9 == 4,
            reply_in=reply_in,
        )
        note = (
            f"aider {fmt} reminder:{reminder} examples:{examples} map~{map_tokens}tok "
            f"{len(files)} file(s): {a.text[:60]}"
        )
        c.add("aider", a.label, note, body)
    # ask and architect modes, the editor step, a lint follow-up
    for mode, kind in [
        ("ask", INSTRUCTION),
        ("ask", "foreign"),
        ("architect", COMPLEX),
        ("architect", INSTRUCTION),
    ]:
        a = c.ask(kind)
        lang = "py" if a.lang == "any" else a.lang
        files = [(p, code(rng, lang_of(p), 3000)) for p in files_of(rng, lang, 1)]
        body = aider_body(
            c, a.text, lang=lang, mode=mode, map_tokens=rng.randint(1500, 4000), files=files
        )
        c.add("aider", a.label, f"aider {mode} mode: {a.text[:60]}", body)
    a = c.ask(INSTRUCTION)
    lint = (
        "# Fix any errors below, if possible.\n\n## Running: flake8 --select=E9,F821 "
        "app/api/orders.py\n\napp/api/orders.py:41:12: F821 undefined name 'qty'\n"
    )
    body = aider_body(
        c,
        lint,
        lang="py",
        files=[("app/api/orders.py", code(rng, "py", 2500))],
        history=[(a.text, "I updated the files.")],
    )
    c.add(
        "aider", INSTRUCTION, "aider lint follow-up after an instruction ask (synthetic turn)", body
    )
    paste = code(rng, "py", 30000)
    body = aider_body(
        c,
        "ok now just rename `tmp` to `buffer` in save_order",
        lang="py",
        history=[
            ("Here is the old module, review it:\n```python\n" + paste + "```", prose(rng, 800))
        ],
        map_tokens=1500,
    )
    c.add("aider", INSTRUCTION, "aider one-line follow-up after an earlier ~8k-token paste", body)
    # background: commit message and summary (weak model)
    for k in range(3):
        a = c.ask([COMPLEX, "foreign", INSTRUCTION][k])
        d = diff(rng, files_of(rng, "py", rng.randint(1, 8)))
        body = {
            "messages": [
                {
                    "role": "system",
                    "content": "You are an expert software engineer that generates "
                    "concise, one-line Git commit messages based on the provided diffs.\n"
                    "Review the "
                    "provided context and diffs which are about to be committed to a git repo.\n"
                    + prose(rng, 500)
                    + "\nUse these for <type>: fix, feat, build, chore, ci, docs, "
                    "style, refactor, perf, test\n\nReply only with the one-line commit message, "
                    "without any additional text, explanations, or line breaks.",
                },
                {
                    "role": "user",
                    "content": f"\nUSER: {a.text}\n\nASSISTANT: {prose(rng, 400)}\n# Diffs:\n{d}",
                },
            ]
        }
        c.add("aider", INSTRUCTION, "aider commit message (weak model)", body, background="commit")
    for _ in range(2):
        turns = []
        for _ in range(rng.randint(3, 6)):
            turns += [f"# USER\n{c.ask(COMPLEX).text}", f"# ASSISTANT\n{prose(rng, 900)}"]
        body = {
            "messages": [
                {
                    "role": "system",
                    "content": "*Briefly* summarize this partial conversation about "
                    "programming.\n"
                    + prose(rng, 600)
                    + '\nStart the summary with "I asked you...".',
                },
                {"role": "user", "content": "\n".join(turns)},
            ]
        }
        c.add(
            "aider",
            INSTRUCTION,
            "aider chat summarization of a hard conversation",
            body,
            background="summary",
        )


# ================================================================= Cline and Roo

CLINE_SECTIONS = [
    "TOOL USE",
    "UPDATING TASK PROGRESS",
    "MCP SERVERS",
    "EDITING FILES",
    "ACT MODE V.S. PLAN MODE",
    "CAPABILITIES",
    "RULES",
    "SYSTEM INFORMATION",
    "OBJECTIVE",
]
ROO_SECTIONS = [
    "MARKDOWN RULES",
    "TOOL USE",
    "CAPABILITIES",
    "MODES",
    "AVAILABLE SKILLS",
    "RULES",
    "SYSTEM INFORMATION",
    "OBJECTIVE",
]
TOOLS = [
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
    "plan_mode_respond",
]
ROO_ROLES = {
    "code": "You are Roo, a highly skilled software engineer with extensive knowledge in many "
    "programming languages, frameworks, design patterns, and best practices.",
    "architect": "You are Roo, an experienced technical leader who is inquisitive and an "
    "excellent planner.",
    "debug": "You are Roo, an expert software debugger specializing in systematic problem "
    "diagnosis and resolution.",
    "ask": "You are Roo, a knowledgeable technical assistant focused on answering questions.",
}


def tool_section(rng: random.Random, name: str, xml: bool) -> str:
    usage = f"\nUsage:\n<{name}>\n<path>File path here</path>\n</{name}>" if xml else ""
    return (
        f"## {name}\nDescription: {prose(rng, rng.randint(250, 700))}\nParameters:\n"
        f"- path: (required) {prose(rng, 90)}{usage}\n"
    )


def agent_system(rng: random.Random, who: str, size: int, xml: bool, mode: str = "code") -> str:
    """A Cline/Roo-style system prompt of ``size`` chars: role line, ==== sections."""
    if who == "cline":
        first = (
            "You are Cline, a highly skilled software engineer with extensive knowledge in "
            "many programming languages, frameworks, design patterns, and best practices."
        )
        sections = CLINE_SECTIONS
    else:
        first, sections = ROO_ROLES[mode], ROO_SECTIONS
    per = size // (len(sections) + 2)
    out = [first]
    for sec in sections:
        text = f"\n\n====\n\n{sec}\n\n"
        if sec == "TOOL USE":
            text += (
                prose(rng, 500)
                + "\n\n# Tool Use Formatting\n\n"
                + prose(rng, 400)
                + "\n\n# Tools\n\n"
                if xml
                else "Use the provider-native tool-calling "
                "mechanism. Do not include XML markup or examples.\n\n"
            )
            if xml:
                text += "\n".join(tool_section(rng, t, True) for t in TOOLS)
                text += (
                    "\n# Tool Use Examples\n\n## Example 1: Requesting to execute a command"
                    "\n\n<execute_command>\n<command>npm run dev</command>\n"
                    "<requires_approval>false</requires_approval>\n</execute_command>\n"
                )
                text += "\n# Tool Use Guidelines\n\n" + prose(rng, 900, "- ")
        elif sec == "SYSTEM INFORMATION":
            text += (
                "Operating System: Linux 6.8\nIDE: Visual Studio Code\nDefault Shell: "
                "/bin/bash\nHome Directory: /home/dev\nCurrent Working Directory: "
                "/home/dev/workspace\n"
            )
        elif sec == "EDITING FILES":
            text += (
                prose(rng, 600) + "\n\n------- SEARCH\n[exact content to find]\n=======\n"
                "[new content to replace with]\n+++++++ REPLACE\n"
            )
        text += "\n" + paragraphs(rng, max(300, per - len(text)))
        out.append(text)
    out.append(
        "\n\n====\n\nUSER'S CUSTOM INSTRUCTIONS\n\nThe following additional instructions "
        "are provided by the user, and should be followed to the best of your ability "
        "without interfering with the TOOL USE guidelines.\n\n" + prose(rng, 300, "- ")
    )
    sysp = "".join(out)
    if len(sysp) < size:
        sysp = sysp.replace(
            "\n\n====\n\nRULES\n\n",
            "\n\n====\n\nRULES\n\n" + paragraphs(rng, size - len(sysp)) + "\n\n",
            1,
        )
    return sysp


def tools_json(rng: random.Random, names: list[str], chars: int) -> list[dict[str, Any]]:
    per = max(200, chars // len(names))
    return [
        {
            "type": "function",
            "function": {
                "name": n,
                "description": prose(rng, per),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": prose(rng, 80)},
                        "content": {"type": "string", "description": prose(rng, 60)},
                    },
                    "required": ["path"],
                },
            },
        }
        for n in names
    ]


def env_details(
    rng: random.Random, lang: str, first: bool, who: str, visible: str, mode: str = "ACT MODE"
) -> str:
    ide = "VSCode" if who == "roo" or rng.random() < 0.2 else "Visual Studio Code"
    tabs = "\n".join(files_of(rng, lang, rng.randint(2, 6)))
    parts = [f"# {ide} Visible Files\n{visible}", f"# {ide} Open Tabs\n{tabs}"]
    if rng.random() < 0.3:
        parts.append(
            "# Actively Running Terminals\n## Original command: `npm run dev`\n"
            "### New Output\nready in 412 ms"
        )
    if who == "roo":
        parts.append(
            "# Current Time\nCurrent time in ISO 8601 UTC format: 2026-11-30T09:"
            f"{rng.randint(10, 59)}:02.114Z\nUser time zone: Europe/Madrid, UTC+1:00"
        )
        parts.append(f"# Current Cost\n${rng.random() * 2:.2f}")
        slug = {"ACT MODE": "code"}.get(mode, mode)
        name = {
            "code": "💻 Code",
            "architect": "🏗️ Architect",
            "debug": "🪲 Debug",
            "ask": "❓ Ask",
        }.get(slug, slug)
        parts.append(
            f"# Current Mode\n<slug>{slug}</slug>\n<name>{name}</name>\n<model>qwen3-coder</model>"
        )
        if first:
            parts.append(
                "# Current Workspace Directory (/home/dev/workspace) Files\n"
                + listing(rng, lang, rng.randint(30, 200))
            )
    else:
        parts.append("# Current Time\n11/30/2026, 9:14:03 AM (America/New_York, UTC-5:00)")
        if first:
            parts.append(
                "# Current Working Directory (/home/dev/workspace) Files\n"
                + listing(rng, lang, rng.randint(30, 200))
            )
        used = rng.randint(9000, 90000)
        parts.append(f"# Context Window Usage\n{used:,} / 200K tokens used ({used // 2000}%)")
        parts.append(f"# Current Mode\n{mode}")
    return "<environment_details>\n" + "\n\n".join(parts) + "\n</environment_details>"


def agent_task(
    c: Corpus,
    who: str,
    a: Ask,
    *,
    gen: str,
    steps: int,
    sys_size: int,
    wrapper: str = "task",
    feedback: Ask | None = None,
    mode: str = "code",
    mention: bool = False,
    merge_env: bool = False,
    form: str = "feedback",
    env_mode: str = "ACT MODE",
) -> dict[str, Any]:
    """One request of a Cline/Roo task: first turn, ``steps`` tool rounds, maybe feedback."""
    rng = c.rng
    lang = a.lang if a.lang != "any" else rng.choice(["py", "ts", "go"])
    xml = gen == "xml"
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": agent_system(rng, who, sys_size, xml, mode)}],
        "stream": True,
    }
    if not xml:
        body["tools"] = tools_json(rng, TOOLS[:11], rng.randint(6000, 11000))
    msgs = body["messages"]
    paths = files_of(rng, lang, max(steps, 1))
    ask = a.text
    if mention:
        p = paths[0]
        ask += (
            f" — see '{p}' (see below for file content)\n\n<file_content path=\"{p}\">\n"
            f"{code(rng, lang_of(p), rng.randint(800, 4000))}</file_content>"
        )
    msgs.append(
        {
            "role": "user",
            "content": [
                text_part(f"<{wrapper}>\n{ask}\n</{wrapper}>"),
                text_part(env_details(rng, lang, True, who, paths[0], env_mode)),
            ],
        }
    )
    for k in range(steps):
        p = paths[k]
        tool = rng.choice(["read_file", "read_file", "search_files", "execute_command"])
        arg = {"search_files": "TODO", "execute_command": "npm test"}.get(tool, p)
        result = (
            code(rng, lang_of(p), rng.randint(1000, 5500))
            if tool == "read_file"
            else log_lines(rng, rng.randint(5, 25))
        )
        rtext = f"[{tool} for '{arg}'] Result:\n{result}"
        env = env_details(rng, lang, False, who, p, env_mode)
        thinking = f"<thinking>\n{prose(rng, rng.randint(150, 500))}\n</thinking>\n"
        if xml:
            tag = "command" if tool == "execute_command" else "path"
            msgs.append(
                {
                    "role": "assistant",
                    "content": f"{thinking}<{tool}>\n<{tag}>{arg}</{tag}>\n</{tool}>",
                }
            )
            msgs.append({"role": "user", "content": [text_part(rtext), text_part(env)]})
        else:
            cid = f"call_{rng.getrandbits(40):010x}"
            msgs.append(
                {
                    "role": "assistant",
                    "content": thinking,
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {"name": tool, "arguments": json.dumps({"path": arg})},
                        }
                    ],
                }
            )
            if merge_env:
                msgs.append({"role": "tool", "tool_call_id": cid, "content": rtext + "\n\n" + env})
            else:
                msgs.append({"role": "tool", "tool_call_id": cid, "content": rtext})
                msgs.append({"role": "user", "content": [text_part(env)]})
    if feedback:
        msgs += later_turn(rng, who, lang, paths[0], feedback.text, wrapper, form)
    return body


def later_turn(
    rng: random.Random, who: str, lang: str, path: str, text: str, wrapper: str, form: str
) -> list[Msg]:
    """The assistant's last tool use and the user turn that carries new human text."""
    env = text_part(env_details(rng, lang, False, who, path))
    if form == "answer":
        q = prose(rng, 120)
        ask = f"<ask_followup_question>\n<question>{q}?</question>\n</ask_followup_question>"
        return [
            {"role": "assistant", "content": ask},
            {
                "role": "user",
                "content": [
                    text_part(
                        f"[ask_followup_question for '{q[:40]}'] Result:\n<answer>\n{text}\n"
                        "</answer>"
                    ),
                    env,
                ],
            },
        ]
    if form == "denied":
        edit = (
            f"<replace_in_file>\n<path>{path}</path>\n<diff>\n------- SEARCH\nx\n=======\n"
            "y\n+++++++ REPLACE\n</diff>\n</replace_in_file>"
        )
        return [
            {"role": "assistant", "content": edit},
            {
                "role": "user",
                "content": [
                    text_part(
                        "The user denied this operation. The user provided the following feedback:"
                        f"\n<feedback>\n{text}\n</feedback>"
                    ),
                    env,
                ],
            },
        ]
    if form == "resume":
        return [
            {
                "role": "user",
                "content": [
                    text_part(
                        "[TASK RESUMPTION] This task was interrupted 2 hours ago. It may or may "
                        "not be complete, so please reassess the task context.\n\n"
                        "New instructions for task "
                        f"continuation:\n<user_message>\n{text}\n</user_message>"
                    ),
                    env,
                ],
            }
        ]
    done = f"<attempt_completion>\n<result>\n{prose(rng, 300)}\n</result>\n</attempt_completion>"
    tag = "user_message" if wrapper == "user_message" else "feedback"
    fb = (
        f"[attempt_completion] Result:\n\nThe user has provided feedback on the results. "
        f"Consider their input to continue the task, and then attempt completion again.\n"
        f"<{tag}>\n{text}\n</{tag}>"
    )
    return [
        {"role": "assistant", "content": done},
        {"role": "user", "content": [text_part(fb), env]},
    ]


def agent_rows(c: Corpus, who: str, n: int) -> None:
    rng = c.rng
    kinds = cycle_kinds(n, {INSTRUCTION: 4, COMPLEX: 3, "foreign": 2, MULTI: 2})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        steps = [0, 1, 2, 3, 5, 0, 4, 1][i % 8]
        if who == "cline":
            gen = ["xml", "xml", "native"][i % 3]
            size = rng.randint(40000, 57000) if gen == "xml" else rng.randint(23000, 26000)
            wrapper, mode = "task", "ACT MODE"
        else:
            gen = ["xml", "native", "native"][i % 3]
            size = rng.randint(31000, 40000) if gen == "xml" else rng.randint(14000, 16500)
            wrapper = "user_message" if gen == "native" and i % 2 else "task"
            mode = ["code", "code", "architect", "debug", "ask"][i % 5]
        body = agent_task(
            c,
            who,
            a,
            gen=gen,
            steps=steps,
            sys_size=size,
            wrapper=wrapper,
            mode=mode if who == "roo" else "code",
            mention=i % 6 == 3,
            merge_env=who == "roo" and i % 4 == 1,
            env_mode=mode if who == "roo" else "ACT MODE",
        )
        c.add(who, a.label, f"{who} {gen} <{wrapper}> step {steps}: {a.text[:60]}", body)
    # later turns whose new human text governs (the task ask was instruction)
    forms = ["feedback", "answer", "denied", "resume"]
    for k, fb_kind in enumerate([INSTRUCTION, COMPLEX, "foreign", INSTRUCTION]):
        task, fb = c.ask(INSTRUCTION), c.ask(fb_kind)
        gen = "xml" if who == "cline" else "native"
        size = rng.randint(44000, 52000) if who == "cline" else rng.randint(14000, 16000)
        wrapper = "task" if who == "cline" else "user_message"
        body = agent_task(
            c,
            who,
            task,
            gen=gen,
            steps=k + 1,
            sys_size=size,
            wrapper=wrapper,
            feedback=fb,
            form=forms[k],
        )
        c.add(
            who, fb.label, f"{who} {forms[k]} turn after an instruction task: {fb.text[:50]}", body
        )
    # the small fix that must stay small, first turn and deep into the task
    typo = Ask("Fix the typo 'recieve' in README", INSTRUCTION, "ts")
    for steps in (0, 3):
        gen = "xml" if who == "cline" or steps else "native"
        size = (rng.randint(50000, 57000) if who == "cline" else 38000) if gen == "xml" else 15500
        body = agent_task(
            c,
            who,
            typo,
            gen=gen,
            steps=steps,
            sys_size=size,
            wrapper="task" if gen == "xml" else "user_message",
        )
        c.add(who, INSTRUCTION, f"{who} {gen} typo fix, step {steps}", body)
    if who == "cline":
        big = Ask(
            "Refactor the whole data layer: move every raw SQL call in app/ behind a "
            "repository interface, update all call sites and tests",
            COMPLEX,
            "py",
        )
        body = agent_task(c, who, big, gen="xml", steps=4, sys_size=rng.randint(45000, 56000))
        c.add(who, COMPLEX, "cline big refactor, step 4", body)
        plan = Ask(
            "How should we structure the new billing module? Just plan, no code yet.", COMPLEX, "ts"
        )
        body = agent_task(c, who, plan, gen="xml", steps=1, sys_size=47000, env_mode="PLAN MODE")
        c.add(who, COMPLEX, "cline plan-mode design question", body)


def cline_small_rows(c: Corpus) -> None:
    """Cline's SDK rewrite (<user_input>) and the compact local-model prompt."""
    rng = c.rng
    for i, kind in enumerate([INSTRUCTION, COMPLEX, "foreign", MULTI, INSTRUCTION, COMPLEX]):
        a = c.ask(kind)
        if i % 2 == 0:
            system = (
                "You are Cline, an AI coding agent. Your primary goal is to assist users "
                "with various coding tasks.\n\nEnvironment you are running in:\n<env>\n1. "
                "Platform: linux\n2. Date: 2026-11-30\n3. IDE: vscode\n4. Working "
                "Directory: /home/dev/app\n</env>\n\n"
                + paragraphs(rng, 2800)
                + "\n\n# Plan / Act Modes\n"
                + prose(rng, 300)
            )
            notice = (
                "<mode_notice>The user switched from plan mode to act mode before sending "
                "this message.</mode_notice>\n"
                if i == 4
                else ""
            )
            user = f'{notice}<user_input mode="act">{a.text}</user_input>'
            note = "cline SDK <user_input>"
        else:
            system = (
                "You are Cline, a senior software engineer + precise task runner.\n\n## "
                "GLOBAL RULES\n"
                + prose(rng, 1800, "- ")
                + "\n\n## MODES (STRICT)\n"
                + prose(rng, 900, "- ")
                + "\n\n## TOOLS\n"
                + prose(rng, 2500, "- ")
            )
            user = f"<task>\n{a.text}\n</task>"
            note = "cline compact prompt <task>"
        lang = "py" if a.lang == "any" else a.lang
        content: Any = user  # the SDK sends plain text, the classic prompt adds the env block
        if i % 2:
            env = env_details(rng, lang, True, "cline", files_of(rng, lang, 1)[0])
            content = [text_part(user), text_part(env)]
        body = {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": content},
            ],
            "tools": tools_json(
                rng,
                ["read_files", "run_commands", "search_codebase", "editor", "switch_to_act_mode"],
                4000,
            ),
        }
        c.add("cline", a.label, f"{note}: {a.text[:60]}", body)
    d = diff(rng, files_of(rng, "ts", 3))
    body = {
        "messages": [
            {
                "role": "system",
                "content": "You are a helpful assistant that generates informative git "
                "commit messages based on git diffs output. Skip preamble and remove all backticks "
                "surrounding the commit message.",
            },
            {
                "role": "user",
                "content": "Based on the provided git diff, generate a concise and "
                "descriptive commit message.\n\nThe commit message should:\n1. Has a short title "
                "(50-72 characters)\n2. " + prose(rng, 200) + "\n\nNotes from developer (ignore if "
                "not relevant): fixes the flaky deadlock in the scheduler\n\n" + d,
            },
        ]
    }
    c.add("cline", INSTRUCTION, "cline commit-message generator", body, background="commit")


# ================================================================= Continue

CONTINUE_CHAT = (
    "<important_rules>\n  You are in chat mode.\n\n  If the user asks to make changes "
    "to files offer that they can use the Apply Button on the code block, or switch "
    "to Agent Mode to make the suggested updates automatically.\n\n  Always include "
    "the language and file name in the info string when you write code blocks.\n"
    "  "
)


def continue_chat_rows(c: Corpus) -> None:
    rng = c.rng
    kinds = cycle_kinds(18, {INSTRUCTION: 2, COMPLEX: 2, "foreign": 1, MULTI: 1})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        lang = a.lang if a.lang != "any" else "ts"
        mode = ["chat", "chat", "agent", "plan"][i % 4]
        system = {
            "chat": CONTINUE_CHAT + prose(rng, 500) + "\n\n  // ... existing code ...\n"
            "</important_rules>",
            "agent": "<important_rules>\n  You are in agent mode.\n\n  "
            + prose(rng, 700)
            + "\n</important_rules>",
            "plan": "<important_rules>\n  You are in plan mode, in which you help the user "
            "understand and construct a plan.\n  " + prose(rng, 600) + "\n</important_rules>",
        }[mode]
        if i % 3 == 0:
            system += "\n\n" + prose(rng, 400, "- ")  # a rules file
        big = a.label == COMPLEX and i % 2 == 1
        parts = []
        for p in files_of(rng, lang, rng.randint(2, 6) if big else rng.randint(0, 2)):
            src = code(rng, lang_of(p), rng.randint(8000, 20000) if big else rng.randint(500, 3000))
            if rng.random() < 0.3:
                parts.append(text_part(f"This is the currently open file:\n\n{fenced(p, src)}"))
            else:
                parts.append(text_part(fenced(p, src)))
        typed = a.text
        if i % 2 == 0:
            p = files_of(rng, lang, 1)[0]
            a0 = rng.randint(5, 120)
            sel = "\n".join(code(rng, lang_of(p), 400).splitlines()[:12])
            typed += f"\n\n```{p.rsplit('.', 1)[-1]} {p} ({a0}-{a0 + 11})\n{sel}\n```\n"
        parts.append(text_part(typed))
        content: Any = parts if len(parts) > 1 or i % 2 else typed
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": content},
            ],
            "stream": True,
        }
        if mode == "agent":
            body["tools"] = tools_json(
                rng,
                [
                    "read_file",
                    "create_new_file",
                    "run_terminal_command",
                    "grep_search",
                    "edit_existing_file",
                ],
                5000,
            )
        c.add(
            "continue",
            a.label,
            f"continue {mode} {len(parts) - 1} context item(s): {a.text[:60]}",
            body,
        )


def continue_edit_rows(c: Corpus) -> None:
    rng = c.rng
    for i, kind in enumerate([INSTRUCTION, INSTRUCTION, "foreign", COMPLEX, INSTRUCTION, MULTI]):
        a = c.ask(kind)
        lang = a.lang if a.lang in FENCE else "ts"
        fl = FENCE[lang]
        pre, suf, mid = (code(rng, lang, n) for n in (rng.randint(300, 3000), 600, 500))
        if i % 2 == 0:
            text = (
                f"The user has requested a section of code in a file to be rewritten.\n\nThis "
                f"is the prefix of the file:\n```{fl}\n{pre}\n```\n\nThis is the suffix of "
                f"the file:\n```{fl}\n{suf}\n```\n\nThis is the code to rewrite:\n```{fl}\n"
                f'{mid}\n```\n\nThe user\'s request is: "{a.text}"\n\nDO NOT output any '
                f"natural language, only output the code changes.\n\nHere is the rewritten "
                f"code:"
            )
            msgs = [{"role": "user", "content": text}]
            note = "continue edit (gpt template)"
        else:
            text = (
                f"```{fl}\n{pre}\n<START EDITING HERE>\n{mid}\n<STOP EDITING HERE>\n{suf}\n"
                f"```\n\nPlease rewrite the entire code block above, editing the portion "
                f'below "<START EDITING HERE>" in order to satisfy the following request: '
                f'"{a.text}".\n'
            )
            msgs = [
                {"role": "user", "content": text},
                {
                    "role": "assistant",
                    "content": f"Sure! Here's the entire rewritten code block:\n```{fl}\n",
                },
            ]
            note = "continue edit (open-model template, prefill)"
        c.add("continue", a.label, f"{note}: {a.text[:60]}", {"messages": msgs, "stream": True})
    d = diff(rng, files_of(rng, "py", rng.randint(2, 9)))
    c.add(
        "continue",
        INSTRUCTION,
        "continue /commit slash command",
        {
            "messages": [
                {
                    "role": "user",
                    "content": d + "\n\nGenerate a commit message for the above set of "
                    "changes. First, give a single sentence, no more than 80 characters. "
                    "Then, after 2 "
                    "line breaks, give a list of no more than 5 short bullet points.",
                }
            ]
        },
        background="commit",
    )


def _prefix_suffix(rng: random.Random, lang: str) -> tuple[str, str, str]:
    path = files_of(rng, "ts" if lang in ("ts", "tsx") else lang, 1)[0]
    src = code(rng, lang, rng.randint(600, 6000))
    cut = rng.randint(len(src) // 3, len(src) - 20)
    cut = src.rfind("\n", 0, cut) + rng.randint(1, 12)
    return path, src[:cut], src[cut:]


def fim_prompt(rng: random.Random, family: str, lang: str) -> tuple[str, list[str], str]:
    """(prompt, stop, path) for one autocomplete template family."""
    path, pre, suf = _prefix_suffix(rng, lang)
    other = files_of(rng, lang, 1)[0]
    snippet = "\n".join(code(rng, lang, 300).splitlines()[:5])
    cm = "#" if lang in ("py", "rb") else "//"
    ctx = "".join(f"{cm} {ln}\n" for ln in [f"Path: {other}", *snippet.splitlines()])
    pre_c = f"{ctx}{cm} {path}\n{pre}"
    if family == "qwen-repo":
        p = (
            f"<|repo_name|>workspace\n<|file_sep|>{other}\n{snippet}\n<|file_sep|>{path}\n"
            f"<|fim_prefix|>{pre}<|fim_suffix|>{suf}<|fim_middle|>"
        )
        return (
            p,
            [
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_middle|>",
                "<|fim_suffix|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_start|>",
            ],
            path,
        )
    if family in ("qwen", "codegemma", "granite"):
        return f"<|fim_prefix|>{pre_c}<|fim_suffix|>{suf}<|fim_middle|>", ["<|endoftext|>"], path
    if family == "starcoder":
        return (
            f"<fim_prefix>{pre_c}<fim_suffix>{suf}<fim_middle>",
            ["<fim_prefix>", "<|endoftext|>"],
            path,
        )
    if family == "codellama":
        return f"<PRE> {pre_c} <SUF>{suf} <MID>", ["<PRE>", "<SUF>", "<MID>", "<EOT>"], path
    if family == "deepseek":
        return (
            f"<｜fim▁begin｜>{pre_c}<｜fim▁hole｜>{suf}<｜fim▁end｜>",
            ["<｜fim▁begin｜>", "<｜end▁of▁sentence｜>"],
            path,
        )
    if family == "codestral":
        return (
            f"[SUFFIX]{suf}[PREFIX]+++++ {other}\n{snippet}\n+++++ {path}\n{pre}",
            ["[PREFIX]", "[SUFFIX]", "\n+++++ "],
            path,
        )
    if family == "seed-coder":
        return (
            f"<[fim-prefix]>{pre_c}<[fim-suffix]>{suf}<[fim-middle]>",
            ["<[end▁of▁sentence]>"],
            path,
        )
    if family == "mercury":
        return f"<|file_sep|>{path}\n<|fim_prefix|>{pre}<|fim_suffix|>{suf}<|fim_middle|>", [], path
    if family == "codegeex":
        return (
            f"<|user|>\n###REFERENCE:\n###PATH: {other}\n{snippet}\n###LANGUAGE:"
            f"{FENCE.get(lang, 'python')}\n###MODE:BLOCK\n<|code_suffix|>{suf}<|code_prefix|>"
            f"{pre}<|code_middle|><|assistant|>\n",
            ["<|user|>", "<|assistant|>"],
            path,
        )
    raise ValueError(family)


def continue_autocomplete_rows(c: Corpus) -> None:
    rng = c.rng
    fams = [
        "qwen-repo",
        "starcoder",
        "codellama",
        "deepseek",
        "codestral",
        "codegemma",
        "granite",
        "seed-coder",
        "mercury",
        "codegeex",
        "qwen-repo",
    ]
    langs = ["py", "ts", "go", "tsx", "java", "rs", "rb"]
    for i, fam in enumerate(fams):
        lang = langs[i % len(langs)]
        prompt, stop, path = fim_prompt(rng, fam, lang)
        body = {
            "prompt": prompt,
            "stop": stop,
            "max_tokens": rng.choice([128, 256, 1024]),
            "temperature": 0.01,
            "stream": True,
        }
        c.add("continue", COMPLETION, f"continue autocomplete {fam} ({path})", body, COMP)
    for lang in ["py", "go", "ts"]:
        path, pre, suf = _prefix_suffix(rng, lang)
        c.add(
            "continue",
            COMPLETION,
            f"continue autocomplete prompt+suffix ({path})",
            {"prompt": pre, "suffix": suf, "max_tokens": 256, "stop": ["\n\n\n"], "stream": True},
            COMP,
        )
    path, pre, suf = _prefix_suffix(rng, "py")
    hole = (
        "You are a HOLE FILLER. You are provided with a file containing holes, formatted as "
        "'{{HOLE_NAME}}'. " + prose(rng, 1800) + f"\n\n<QUERY>\n{pre}{{{{FILL_HERE}}}}{suf}\n"
        "</QUERY>\nTASK: Fill the {{FILL_HERE}} hole. Answer only with the CORRECT completion, "
        "and NOTHING ELSE. Do it now.\n<COMPLETION>"
    )
    c.add(
        "continue",
        COMPLETION,
        "continue hole-filler template (chat)",
        {"messages": [{"role": "user", "content": hole}], "stop": ["</COMPLETION>"]},
    )
    path, pre, suf = _prefix_suffix(rng, "ts")
    c.add(
        "continue",
        COMPLETION,
        "continue gpt [BLANK] autocomplete template (chat)",
        {
            "messages": [
                {
                    "role": "user",
                    "content": f"```\n{pre}[BLANK]{suf}\n```\n\nFill in the "
                    "blank to complete the code block. Your response should include only "
                    "the code to replace [BLANK], without surrounding backticks.",
                }
            ],
            "stop": ["\n"],
        },
    )
    for flavour in ["instinct", "mercury"]:
        path, pre, suf = _prefix_suffix(rng, "ts")
        edits = diff(rng, [path], 4)
        if flavour == "instinct":
            sysm = (
                "You are Instinct, an intelligent next-edit predictor developed by Continue.dev. "
            )
            user = (
                "Reference the user excerpt, user edits, and the snippets to understand the "
                f"developer's intent.\n\n### Context:\n<|context_file|> {path}\n<|snippet|>\n"
                f"{pre[:300]}\n\n### User Edits:\n\n{edits}\n\n### User Excerpt:\n{path}\n\n"
                f"<|editable_region_start|>\n{pre[-400:]}<|user_cursor_is_here|>{suf[:400]}\n"
                "<|editable_region_end|>\n"
            )
        else:
            sysm = "You are Mercury, created by Inception Labs. "
            user = (
                f"<|recently_viewed_code_snippets|>\n<|recently_viewed_code_snippet|>\ncode_snippet"
                f"_file_path: {path}\n{pre[:300]}\n<|/recently_viewed_code_snippet|>\n<|/recently_"
                f"viewed_code_snippets|>\n\n<|current_file_content|>\ncurrent_file_path: {path}\n"
                f"{pre[:-300]}<|code_to_edit|>\n{pre[-300:]}<|cursor|>{suf[:300]}\n<|/code_to_"
                f"edit|>\n{suf[300:]}\n<|/current_file_content|>\n\n<|edit_diff_history|>\n"
                f"{edits}<|/edit_diff_history|>"
            )
        c.add(
            "continue",
            COMPLETION,
            f"continue next-edit {flavour}",
            {
                "messages": [
                    {"role": "system", "content": sysm + prose(rng, 1500)},
                    {"role": "user", "content": user},
                ]
            },
        )


# ================================================================= Zed

ZED_SYSTEM = (
    "You are a highly skilled software engineer with extensive knowledge in many "
    "programming languages, frameworks, design patterns, and best practices.\n\n"
    "## Communication\n\n- Be conversational but professional.\n"
)
ZED_TOOLS = [
    "read_file",
    "edit_file",
    "grep",
    "find_path",
    "terminal",
    "diagnostics",
    "list_directory",
    "now",
    "thinking",
    "fetch",
    "create_directory",
    "delete_path",
]


def zed_context(rng: random.Random, lang: str, n_files: int, big: bool) -> tuple[str, str]:
    """(mention links, <context> block) for ``n_files`` attachments."""
    paths = files_of(rng, lang, n_files)
    links = " ".join(f"[@{p.rsplit('/', 1)[-1]}](file:///home/dev/proj/{p})" for p in paths)
    files = "".join(
        fenced(
            p,
            code(rng, lang_of(p), rng.randint(4000, 11000) if big else rng.randint(400, 3000)),
            f"{p.rsplit('.', 1)[-1]} proj/{p}",
        )
        for p in paths
    )
    extra = ""
    if rng.random() < 0.4:
        extra += (
            "<rules>\nThe user has specified the following rules that should be applied:\n"
            + prose(rng, 300, "- ")
            + "\n</rules>\n"
        )
    if rng.random() < 0.3:
        extra += f"<diagnostics>\n{paths[0]}:12:5: error: cannot find name 'cfg'\n</diagnostics>\n"
    ctx = (
        "\n<context>\nThe following items were attached by the user. They are up-to-date and "
        f"don't need to be re-read.\n\n<files>\n{files}</files>\n{extra}</context>"
    )
    return links, ctx


def zed_agent_rows(c: Corpus) -> None:
    rng = c.rng
    kinds = cycle_kinds(17, {INSTRUCTION: 2, COMPLEX: 2, "foreign": 1, MULTI: 1})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        lang = a.lang if a.lang != "any" else "rs"
        big = a.label == COMPLEX and i % 2 == 0
        n = rng.randint(3, 5) if big else rng.randint(1, 2)
        links, ctx = zed_context(rng, lang, n, big)
        user = f"{links} {a.text}{ctx}" if i % 2 else f"{a.text}{ctx}"
        system = (
            ZED_SYSTEM
            + prose(rng, 600, "- ")
            + "\n\n## Tool Use\n\n"
            + prose(rng, 1500, "- ")
            + "\n\n## Searching and Reading\n\n"
            + prose(rng, 900, "- ")
            + "\n\n## System Information\n\nOperating System: macos\nDefault Shell: zsh\n"
        )
        msgs: list[Msg] = [{"role": "system", "content": system}]
        if i % 4 == 3:  # an earlier exchange in the thread
            prev = c.ask(INSTRUCTION)
            msgs += [
                {"role": "user", "content": prev.text},
                {"role": "assistant", "content": prose(rng, 600)},
            ]
        msgs.append({"role": "user", "content": user})
        for _ in range(i % 3):
            cid = f"toolu_{rng.getrandbits(48):012x}"
            p = files_of(rng, lang, 1)[0]
            msgs += [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {
                                "name": "read_file",
                                "arguments": json.dumps({"path": f"proj/{p}"}),
                            },
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": cid,
                    "content": code(rng, lang_of(p), rng.randint(1500, 7000)),
                },
            ]
        body = {
            "messages": msgs,
            "stream": True,
            "tools": tools_json(rng, ZED_TOOLS, rng.randint(4000, 7000)),
        }
        c.add(
            "zed",
            a.label,
            f"zed agent {n} attachment(s), {i % 3} tool round(s): {a.text[:50]}",
            body,
        )


def zed_prediction_rows(c: Corpus) -> None:
    rng = c.rng
    for i in range(5):  # Zeta 1
        lang = ["rb", "rs", "py", "ts", "go"][i]
        path, pre, suf = _prefix_suffix(rng, lang)
        start = "<|start_of_file|>\n" if i == 2 else ""
        p = (
            "### Instruction:\nYou are a code completion assistant and your task is to analyze "
            "user edits and then rewrite an excerpt that the user provides, suggesting the "
            "appropriate edits within the excerpt, taking into account the cursor location.\n\n"
            f'### User Edits:\n\nUser edited "{path}":\n```diff\n{diff(rng, [path], 3)}```\n\n'
            f"### User Excerpt:\n\n```{path}\n{start}<|editable_region_start|>\n{pre[-500:]}"
            f"<|user_cursor_is_here|>{suf[:400]}\n<|editable_region_end|>\n```\n\n### Response:\n"
        )
        c.add(
            "zed",
            COMPLETION,
            f"zed edit prediction zeta1 ({path})",
            {"prompt": p, "max_tokens": 2048, "temperature": 0},
            COMP,
        )
    for i in range(3):  # Zeta 2 v0131 git-merge markers, and seed-coder
        lang = ["py", "go", "ts"][i]
        path, pre, suf = _prefix_suffix(rng, lang)
        other = files_of(rng, lang, 1)[0]
        hist = diff(rng, [path], 3)
        if i < 2:
            p = (
                f"<|file_sep|>{other}\n{code(rng, lang, 400)}...\n<|file_sep|>edit history\n{hist}"
                f"<|file_sep|>{path}\n<|fim_prefix|>{pre[:-300]}<<<<<<< CURRENT\n{pre[-300:]}"
                f"<|user_cursor|>{suf[:300]}\n=======\n<|fim_suffix|>{suf[300:]}\n<|fim_middle|>"
            )
        else:
            p = (
                f"<[fim-suffix]>{suf}<[fim-prefix]><filename>{path}\n{pre}<|user_cursor|>"
                "<[fim-middle]>"
            )
        c.add(
            "zed",
            COMPLETION,
            f"zed edit prediction zeta2 ({path})",
            {"prompt": p, "max_tokens": 1024},
            COMP,
        )
    for fam in ["codellama", "starcoder", "deepseek", "qwen"]:
        prompt, stop, path = fim_prompt(rng, fam, rng.choice(["rs", "go", "py"]))
        c.add(
            "zed",
            COMPLETION,
            f"zed edit prediction prompt_format {fam}",
            {"prompt": prompt, "max_tokens": 256, "stop": stop},
            COMP,
        )


# ================================================================= Open WebUI

SOURCE_NAMES = ["docs/api.md", "handbook.pdf", "wiki/deploy.md", "runbook.md"]
OWUI_TASKS = {
    "title": (
        "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat "
        "history.\n### Guidelines:\n",
        '### Output:\nJSON format: { "title": "your concise title here" }\n',
        "{{MESSAGES:END:2}}",
    ),
    "tags": (
        "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, "
        "along with 1-3 more specific subtopic tags.\n\n### Guidelines:\n",
        '### Output:\nJSON format: { "tags": ["tag1", "tag2", "tag3"] }\n',
        "END:6",
    ),
    "follow_ups": (
        "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user "
        "might naturally ask next in this conversation as a **user**, based on the "
        "chat history, to help continue or deepen the discussion.\n### Guidelines:\n",
        '### Output:\nJSON format: { "follow_ups": ["Question 1?"] }\n',
        "END:6",
    ),
    "query": (
        "### Task:\nAnalyze the chat history to determine the necessity of generating "
        "search queries, in the given language. By default, **prioritize generating 1-3 "
        "broad and relevant search queries** unless it is absolutely certain that no "
        "additional information is required.\n### Guidelines:\n",
        "### Output:\nStrictly "
        'return in JSON format: { "queries": ["query1"] }\nToday\'s date is: '
        "2026-11-30.\n",
        "END:6",
    ),
    "image_prompt": (
        "### Task:\nGenerate a detailed prompt for am image generation task based on "
        "the given language and context.\n### Guidelines:\n",
        '### Output:\nJSON format: { "prompt": "..." }\n',
        "END:6",
    ),
}


def chat_history(c: Corpus, turns: int, kind: str) -> str:
    rng = c.rng
    out = []
    for _ in range(turns):
        a = c.ask(kind)
        q = a.text
        if rng.random() < 0.4:
            q += (
                "\n```\n"
                + code(rng, a.lang if a.lang != "any" else "py", rng.randint(500, 4000))
                + "```"
            )
        lang = a.lang if a.lang in FENCE else "py"
        answer = (
            f"{prose(rng, rng.randint(150, 600))}\n\n```{FENCE[lang]}\n"
            f"{code(rng, lang, rng.randint(200, 1500))}```\n{prose(rng, rng.randint(100, 500))}"
        )
        out += [f"USER: {q}", f"ASSISTANT: {answer}"]
    return "\n".join(out)


def owui_rows(c: Corpus) -> None:
    rng = c.rng
    names = list(OWUI_TASKS)
    for i in range(16):
        task = names[i % len(names)]
        head, out, _ = OWUI_TASKS[task]
        kind = [COMPLEX, "foreign", INSTRUCTION, MULTI][i % 4]
        hist = chat_history(c, rng.randint(1, 3), kind)
        content = (
            f"{head}{prose(rng, 500, '- ')}\n{out}### Chat History:\n<chat_history>\n"
            f"{hist}\n</chat_history>"
        )
        body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], "stream": False}
        if task == "title" and i % 2:
            body["max_tokens"] = 50
        c.add(
            "open-webui",
            INSTRUCTION,
            f"open-webui {task} task, {kind} chat embedded",
            body,
            background=task,
        )
    for i in range(2):
        a = c.ask("foreign" if i else COMPLEX)
        emoji = (
            "Your task is to reflect the speaker's likely facial expression through a fitting "
            "emoji. " + prose(rng, 300) + f"\n\nMessage: ```{a.text}```"
        )
        c.add(
            "open-webui",
            INSTRUCTION,
            "open-webui emoji task",
            {"messages": [{"role": "user", "content": emoji}], "max_tokens": 4},
            background="emoji",
        )
    kinds = cycle_kinds(15, {INSTRUCTION: 2, COMPLEX: 2, "foreign": 1, MULTI: 1})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        msgs: list[Msg] = []
        if i % 2 == 0:  # RAG: retrieved context in the system message
            sources = "".join(
                f'<source id="{k}" name="{rng.choice(SOURCE_NAMES)}">'
                f"{paragraphs(rng, rng.randint(800, 4000))}</source>\n"
                for k in range(1, rng.randint(2, 6))
            )
            msgs.append(
                {
                    "role": "system",
                    "content": "### Task:\nRespond to the user query using "
                    "the provided context, incorporating inline citations in the format [id] "
                    "**only when the <source> tag includes an explicit id attribute**.\n\n"
                    "### Guidelines:\n" + prose(rng, 900, "- ") + "\n\n### Output:\nProvide "
                    f"a clear and direct response.\n\n<context>\n{sources}</context>\n\n"
                    f"<user_query>\n{a.text}\n</user_query>",
                }
            )
        elif i % 3 == 0:
            msgs.append({"role": "system", "content": "You are a helpful coding assistant."})
        if i % 4 == 1:
            prev = c.ask(INSTRUCTION)
            msgs += [
                {"role": "user", "content": prev.text},
                {"role": "assistant", "content": prose(rng, 900)},
            ]
        msgs.append({"role": "user", "content": a.text})
        c.add(
            "open-webui",
            a.label,
            f"open-webui chat{' with RAG' if i % 2 == 0 else ''}: {a.text[:60]}",
            {"messages": msgs, "stream": True},
        )


# ================================================================= OpenAI tool-calling agents

AGENT_TOOLS = ["read_file", "write_file", "run_shell", "search_code", "list_dir", "apply_patch"]


def openai_tools_rows(c: Corpus) -> None:
    rng = c.rng
    kinds = cycle_kinds(20, {INSTRUCTION: 2, COMPLEX: 2, "foreign": 1, MULTI: 1})
    for i, kind in enumerate(kinds):
        a = c.ask(kind)
        lang = a.lang if a.lang != "any" else "py"
        tools = [
            {
                "type": "function",
                "function": {
                    "name": n,
                    "description": prose(rng, 150),
                    "parameters": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"],
                    },
                },
            }
            for n in AGENT_TOOLS
        ]
        if i % 5 == 4:
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": "transfer_to_reviewer_agent",
                        "description": "Handoff to the reviewer agent.",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            )
        role = "developer" if i % 6 == 5 else "system"
        msgs: list[Msg] = [
            {
                "role": role,
                "content": "You are a coding agent working in a "
                "repository. " + prose(rng, rng.randint(300, 2500)),
            }
        ]
        msgs.append({"role": "user", "content": a.text})
        rounds = [0, 1, 2, 4, 8, 12][i % 6]
        for _ in range(rounds):
            calls = []
            for _ in range(rng.choice([1, 1, 2, 3])):
                p = files_of(rng, lang, 1)[0]
                name = rng.choice(AGENT_TOOLS)
                calls.append(
                    {
                        "id": f"call_{rng.getrandbits(64):016x}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps({"path": p})},
                    }
                )
            msgs.append({"role": "assistant", "content": None, "tool_calls": calls})
            for call in calls:
                p = json.loads(call["function"]["arguments"])["path"]
                out = (
                    code(rng, lang_of(p), rng.randint(500, 6000))
                    if call["function"]["name"] == "read_file"
                    else log_lines(rng, rng.randint(2, 15))
                )
                msgs.append({"role": "tool", "tool_call_id": call["id"], "content": out})
        c.add(
            "openai-tools",
            a.label,
            f"openai tools loop, {rounds} round(s): {a.text[:60]}",
            {"messages": msgs, "tools": tools, "tool_choice": "auto", "parallel_tool_calls": True},
        )
    # a later turn: the new short ask after a finished loop governs
    a, first = c.ask(INSTRUCTION), c.ask(COMPLEX)
    msgs = [
        {"role": "system", "content": "You are a coding agent. " + prose(rng, 800)},
        {"role": "user", "content": first.text},
    ]
    for _ in range(6):
        cid = f"call_{rng.getrandbits(64):016x}"
        msgs += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": "read_file", "arguments": '{"path":"a.py"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": cid, "content": code(rng, "py", 4000)},
        ]
    msgs += [{"role": "assistant", "content": prose(rng, 700)}, {"role": "user", "content": a.text}]
    c.add(
        "openai-tools",
        INSTRUCTION,
        "openai tools: small new ask after a finished complex loop",
        {
            "messages": msgs,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "read_file",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
        },
    )
    # legacy functions API and a ReAct prompt on /v1/completions
    a = c.ask(INSTRUCTION)
    c.add(
        "openai-tools",
        INSTRUCTION,
        "legacy functions + function_call + role:function",
        {
            "functions": [
                {"name": "search_code", "parameters": {"type": "object", "properties": {}}}
            ],
            "messages": [
                {"role": "user", "content": a.text},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "search_code", "arguments": '{"q": "main"}'},
                },
                {"role": "function", "name": "search_code", "content": log_lines(rng, 6)},
            ],
        },
    )
    for kind in [INSTRUCTION, COMPLEX]:
        a = c.ask(kind)
        react = (
            "Answer the following questions as best you can. You have access to the "
            "following tools:\n\nsearch_code: "
            + prose(rng, 150)
            + "\nrun_shell: "
            + prose(rng, 150)
            + "\n\nUse the following format:\n\nQuestion: the input question"
            "\nThought: you should always think about what to do\nAction: the action to "
            "take\nAction Input: the input to the action\nObservation: the result of the "
            "action\n... (this Thought/Action/Action Input/Observation can repeat N times)\n"
            f"Thought: I now know the final answer\nFinal Answer: the answer\n\nBegin!\n\n"
            f"Question: {a.text}\nThought:"
        )
        c.add(
            "openai-tools",
            a.label,
            f"ReAct prompt on /v1/completions: {a.text[:50]}",
            {"prompt": react, "stop": ["\nObservation:"], "max_tokens": 512},
            COMP,
        )


# ================================================================= commit-message generators


def commit_rows(c: Corpus) -> None:
    rng = c.rng
    sizes = [1, 2, 3, 5, 8, 12, 20, 1, 4, 6, 15, 2, 9, 3]
    for i, n in enumerate(sizes):
        lang = ["py", "ts", "go", "rs", "java", "rb", "any"][i % 7]
        d = diff(rng, files_of(rng, lang, n), rng.randint(3, 10))
        style = [
            "aicommits",
            "aicommits-conventional",
            "opencommit",
            "opencommit-gitmoji",
            "llm-cli",
            "lazygit",
        ][i % 6]
        if style.startswith("aicommits"):
            lang_name = rng.choice(["en", "en", "ja", "es", "de"])
            sysm = (
                "Generate a concise git commit message written in present tense for the "
                "following code diff with the given specifications below:\nMessage language: "
                f"{lang_name}\nCommit message must be a maximum of 72 characters.\nExclude "
                "anything unnecessary such as translation. Your entire response will be "
                "passed directly into git commit."
            )
            if style.endswith("conventional"):
                sysm += (
                    "\nChoose a type from the type-to-description JSON below that best "
                    "describes the git diff:\n"
                    + json.dumps(
                        {
                            "feat": "A new feature",
                            "fix": "A bug fix",
                            "perf": "A code change that improves performance",
                            "refactor": "A code change that neither fixes a bug nor adds a feature",
                        }
                    )
                    + "\nThe output response must be in format:\n<type>(<optional scope>): "
                    "<commit message>"
                )
            msgs = [{"role": "system", "content": sysm}, {"role": "user", "content": d}]
        elif style.startswith("opencommit"):
            sysm = (
                "You are to act as an author of a commit message in git. Your mission is to "
                "create clean and comprehensive commit messages as per the Conventional Commit "
                "Convention and explain WHAT were the changes and mainly WHY the changes were "
                "done. I'll send you an output of 'git diff --staged' command, and you are to "
                "convert it into a commit message."
            )
            if style.endswith("gitmoji"):
                sysm += " Use GitMoji convention to preface the commit."
            sysm += " " + prose(rng, 400)
            ex = diff(rng, ["src/server.ts"], 3)
            msgs = [
                {"role": "system", "content": sysm},
                {"role": "user", "content": ex},
                {"role": "assistant", "content": "fix(server.ts): change port variable case"},
                {"role": "user", "content": d},
            ]
        elif style == "llm-cli":
            msgs = [
                {
                    "role": "user",
                    "content": "Write a conventional commit message for these "
                    f"staged changes. Only output the message.\n\n```diff\n{d}```",
                }
            ]
        else:
            msgs = [
                {
                    "role": "system",
                    "content": "You write git commit messages: a subject line "
                    "under 50 characters, a blank line, then a wrapped body.",
                },
                {"role": "user", "content": d},
            ]
        c.add(
            "commit",
            INSTRUCTION,
            f"commit message {style}, {n}-file diff",
            {"messages": msgs, "temperature": 0.7},
            background="commit",
        )


# ================================================================= generic and hostile


def generic_rows(c: Corpus) -> None:
    rng = c.rng
    u = lambda t: {"messages": [{"role": "user", "content": t}]}  # noqa: E731
    c.add(
        "generic",
        INSTRUCTION,
        "question that merely mentions FIM tokens",
        u(
            "What is the difference between <|fim_prefix|>, <fim_prefix> and <PRE> tokens? Which "
            "models use which?"
        ),
    )
    fim_py = (
        'FORMATS = {\n    "qwen": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),\n'
        '    "starcoder": ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),\n'
        '    "codellama": ("<PRE> ", " <SUF>", " <MID>"),\n}\n\n\n'
        "def render(fmt, prefix, suffix):\n    p, s, m = FORMATS[fmt]\n"
        '    return f"{p}{prefix}{s}{suffix}{m}"\n'
    )
    c.add(
        "generic",
        INSTRUCTION,
        "edit a file whose content contains FIM token strings",
        u(f"Add a 'deepseek' entry to FORMATS in fim.py:\n```python\n{fim_py}```"),
    )
    c.add(
        "aider",
        INSTRUCTION,
        "aider: edit a file whose content has FIM tokens",
        aider_body(
            c,
            "add `granite` to FORMATS, it uses the same tokens as qwen",
            lang="py",
            files=[("proxy/fim.py", fim_py + code(rng, "py", 1500))],
        ),
    )
    d2 = diff(rng, ["src/api/user.ts", "src/components/Profile.tsx"])
    c.add(
        "generic",
        INSTRUCTION,
        "review a diff touching 2 files",
        u(f"Is the null check in this diff right?\n\n```diff\n{d2}```"),
    )
    paste = code(rng, "go", 30000)
    c.add(
        "generic",
        INSTRUCTION,
        "one-line follow-up after an earlier ~8k-token paste",
        {
            "messages": [
                {
                    "role": "user",
                    "content": f"Here's scheduler.go:\n```go\n{paste}```\n"
                    "Explain the overall structure.",
                },
                {"role": "assistant", "content": prose(rng, 2000)},
                {
                    "role": "user",
                    "content": "thanks. what does the `%w` verb do in those Errorf calls?",
                },
            ]
        },
    )
    for t in [
        "redesign the auth flow to use OAuth with token rotation",
        "update every call site of fetchJson to the new typed client",
        "We need to shard the users table. Plan it.",
    ]:
        c.add("generic", COMPLEX, "short architecture ask", u(t))
    c.add(
        "generic",
        COMPLEX,
        "large pasted log with a question",
        u(
            "The service falls over every night around 3am. Logs:\n"
            + log_lines(rng, 120)
            + "\nWhat's going on?"
        ),
    )
    c.add(
        "generic",
        COMPLEX,
        "many pasted files with a refactor ask",
        u(
            "Refactor these into one consistent repository layer:\n"
            + "".join(f"=== {p} ===\n{code(rng, 'go', 3000)}\n" for p in files_of(rng, "go", 7))
        ),
    )
    c.add(
        "generic",
        INSTRUCTION,
        "file names that look like keywords (lock, profile)",
        u(
            "In internal/queue/lock.go and app/services/profile.py, fix the spelling of 'adress' "
            "in the comments"
        ),
    )
    c.add(
        "generic",
        INSTRUCTION,
        "conversion within one language",
        u(
            "Convert this to a list comprehension:\n```python\nout = []\nfor x in xs:\n"
            "    if x > 0:"
            "\n        out.append(x * 2)\n```"
        ),
    )
    for t in [
        'Port this bash script to Python:\n```bash\nfor f in *.log; do gzip "$f"; done\n```',
        "¿Cómo invierto una lista en Python?",
        "Write a Rust function and its C header so C code can call it",
    ]:
        c.add("generic", MULTI, "generic multi-language", u(t))
    # other cursor-marker prompts (next-edit / fill) on chat
    for marker in ["<|cursor|>", "<CURSOR>", "<cursorPosition>"]:
        path, pre, suf = _prefix_suffix(rng, rng.choice(["py", "ts", "go"]))
        hole = f"{marker}</cursorPosition>" if marker == "<cursorPosition>" else marker
        hole = "<cursorPosition></cursorPosition>" if marker == "<cursorPosition>" else hole
        c.add(
            "generic",
            COMPLETION,
            f"cursor-marker completion prompt {marker}",
            {
                "messages": [
                    {
                        "role": "system",
                        "content": "You complete code at the cursor. Reply with the code "
                        "to insert only.",
                    },
                    {"role": "user", "content": f"File: {path}\n```\n{pre}{hole}{suf}\n```"},
                ],
                "max_tokens": 128,
            },
        )
    path, pre, suf = _prefix_suffix(rng, "py")
    c.add(
        "generic",
        COMPLETION,
        "raw code continuation on /v1/completions",
        {"prompt": pre, "max_tokens": 64, "stop": ["\n\n"]},
        COMP,
    )
    path, pre, suf = _prefix_suffix(rng, "ts")
    c.add(
        "generic",
        COMPLETION,
        "copilot-NES-like next edit with <|code_to_edit|>",
        {
            "messages": [
                {
                    "role": "user",
                    "content": f"<|area_around_code_to_edit|>\n{pre[-600:]}"
                    f"<|code_to_edit|>\n{pre[-200:]}<|cursor|>{suf[:200]}\n<|/code_to_edit|>\n"
                    f"{suf[200:600]}\n<|/area_around_code_to_edit|>",
                }
            ]
        },
    )


def main() -> None:
    c = Corpus()
    aider_rows(c)
    agent_rows(c, "cline", 24)
    cline_small_rows(c)
    agent_rows(c, "roo", 24)
    continue_chat_rows(c)
    continue_edit_rows(c)
    continue_autocomplete_rows(c)
    zed_agent_rows(c)
    zed_prediction_rows(c)
    owui_rows(c)
    openai_tools_rows(c)
    commit_rows(c)
    generic_rows(c)
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for row in c.rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = Counter((r["client"], r["label"]) for r in c.rows)
    print(f"{len(c.rows)} rows, {OUT.stat().st_size / 1e6:.2f} MB -> {OUT}")
    for (client, label), n in sorted(counts.items()):
        print(f"  {client:<13} {label:<15} {n}")


if __name__ == "__main__":
    main()
