"""Client envelopes (proxy.classify.envelope): the ask found inside each client's shape.

The request skeletons below reproduce the structure, the fixed marker strings and the
sizes of what aider, Cline/Roo, Continue, Zed, Open WebUI, OpenAI tool-calling agents
and commit-message generators send (see /work/notes/client_shapes.md); the boilerplate
text itself is our own filler. ``benchmarks/envelope.py`` times the same builders.
"""

# ruff: noqa: E501 - request skeletons quote client marker strings whole, on one line

from __future__ import annotations

import copy
from typing import Any

import pytest

from proxy.classify import Classifier
from proxy.classify.envelope import Envelope, read_envelope
from proxy.classify.text import READ_HEAD, READ_TAIL

Body = dict[str, Any]

# --- filler -------------------------------------------------------------------------------

PROSE = (
    "Follow the project's conventions, explain each step briefly and prefer small, "
    "reviewable changes; never invent files that were not shown to you. "
)


def filler(chars: int, unit: str = PROSE) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


def source(chars: int, name: str = "handler") -> str:
    unit = (
        f"def {name}(request, db):\n"
        "    rows = db.query('SELECT * FROM t WHERE id = ?', (request.id,))\n"
        "    return [row for row in rows if row.active]\n\n"
    )
    return filler(chars, unit)


# --- Cline / Roo ----------------------------------------------------------------------------


def cline_system(chars: int = 50_000, who: str = "Cline") -> str:
    head = (
        f"You are {who}, a highly skilled software engineer with extensive knowledge in many "
        "programming languages, frameworks, design patterns, and best practices.\n\n"
    )
    sections = ["TOOL USE", "EDITING FILES", "CAPABILITIES", "RULES", "SYSTEM INFORMATION"]
    body = "".join(f"====\n\n{s}\n\n{filler(chars // len(sections))}\n\n" for s in sections)
    return (head + body)[:chars]


def env_details(first: bool = False) -> str:
    files = "\n".join(f"src/components/Profile{i}.tsx" for i in range(120)) if first else ""
    listing = (
        f"\n\n# Current Working Directory (/home/u/proj) Files\npackage-lock.json\n{files}"
        if first
        else ""
    )
    return (
        "<environment_details>\n# Visual Studio Code Visible Files\nsrc/a.ts\n\n"
        "# Visual Studio Code Open Tabs\nsrc/a.ts, package-lock.json\n\n"
        "# Current Time\n2026-05-02, 10:41:07 AM (Europe/Paris, UTC+2:00)"
        f"{listing}\n\n# Context Window Usage\n12,345 / 200K tokens used (6%)\n\n"
        "# Current Mode\nACT MODE\n</environment_details>"
    )


def text(t: str) -> dict[str, str]:
    return {"type": "text", "text": t}


def cline_body(
    ask: str,
    steps: int = 0,
    *,
    who: str = "Cline",
    wrapper: str = "task",
    file: str | None = None,
    feedback: str | None = None,
    native: bool = False,
    system_chars: int = 50_000,
    result_chars: int = 3000,
) -> Body:
    task = f"<{wrapper}>\n{ask}"
    if file is not None:
        task += f'\n\n<file_content path="src/a.ts">\n{file}\n</file_content>'
    task += f"\n</{wrapper}>"
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": cline_system(system_chars, who)},
        {"role": "user", "content": [text(task), text(env_details(first=True))]},
    ]
    for i in range(steps):
        result = f"[read_file for 'src/f{i}.ts'] Result:\n{source(result_chars)}"
        if native:
            msgs.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"c{i}", "type": "function",
                 "function": {"name": "read_file", "arguments": f'{{"path": "src/f{i}.ts"}}'}}]})  # fmt: skip
            msgs.append({"role": "tool", "tool_call_id": f"c{i}", "content": result})
            msgs.append({"role": "user", "content": [text(env_details())]})
        else:
            msgs.append({"role": "assistant", "content": f"<read_file>\n<path>src/f{i}.ts</path>\n</read_file>"})  # fmt: skip
            msgs.append({"role": "user", "content": [text(result), text(env_details())]})
    if feedback is not None:
        msgs.append({"role": "assistant", "content": "<attempt_completion><result>Done</result></attempt_completion>"})  # fmt: skip
        msgs.append({"role": "user", "content": [
            text("[attempt_completion] Result:\nThe user has provided feedback on the results. "
                 f"Consider their input to continue the task.\n<feedback>\n{feedback}\n</feedback>"),
            text(env_details())]})  # fmt: skip
    body: Body = {"model": "auto", "stream": True, "messages": msgs}
    if native:
        body["tools"] = TOOLS
    return body


# --- aider ----------------------------------------------------------------------------------

AIDER_RULES = (
    "# *SEARCH/REPLACE block* Rules:\n\nEvery *SEARCH/REPLACE block* must use this format:\n"
    "1. The *FULL* file path alone on a line, verbatim.\n2. The opening fence and code language\n"
    "3. The start of search block: <<<<<<< SEARCH\n4. A contiguous chunk of lines to search for\n"
    "5. The dividing line: =======\n6. The lines to replace into the source code\n"
    "7. The end of the replace block: >>>>>>> REPLACE\n8. The closing fence\n"
    + filler(1600)
    + "\nONLY EVER RETURN CODE IN A *SEARCH/REPLACE BLOCK*!\n"
)
AIDER_SYSTEM = (
    "Act as an expert software developer.\nAlways use best practices when coding.\n"
    + filler(2000)
    + "\nKeep in mind these details about the user's platform and environment:\n"
    "- Platform: Linux\n- Shell: SHELL=/bin/bash\n- Current date: 2026-05-02\n\n" + AIDER_RULES
)


def repo_map(chars: int) -> str:
    unit = "\nsrc/pkg/module.py:\n│class Service:\n│    def start(self):\n⋮\n│def helper(x):\n⋮\n"
    return (
        "Here are summaries of some files present in my git repository.\n"
        "Do not propose changes to these files, treat them as *read-only*.\n" + filler(chars, unit)
    )


def aider_body(
    ask: str,
    done: tuple[str, ...] = (),
    *,
    files: str | None = None,
    map_chars: int = 14_000,
    reminder: str = "user",
    followup: str | None = None,
) -> Body:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": AIDER_SYSTEM},
        {"role": "user", "content": "Change get_factorial() to use math.factorial"},
        {
            "role": "assistant",
            "content": "To make this change we need to modify `mathweb/flask/app.py`:\n<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE",
        },  # fmt: skip
        {"role": "user", "content": "Refactor hello() into its own file."},
        {"role": "assistant", "content": "We need to create a new file `hello.py`."},
        {
            "role": "user",
            "content": "I switched to a new code base. Please don't consider the above files or try to edit them any longer.",
        },  # fmt: skip
        {"role": "assistant", "content": "Ok."},
        {"role": "user", "content": repo_map(map_chars)},
        {
            "role": "assistant",
            "content": "Ok, I won't try and edit those files without asking first.",
        },  # fmt: skip
    ]
    for earlier in done:
        msgs.append({"role": "user", "content": earlier})
        msgs.append({"role": "assistant", "content": "Done: " + filler(300)})
    if files is not None:
        msgs.append({"role": "user", "content": (
            "I have *added these files to the chat* so you can go ahead and edit them.\n\n"
            f"*Trust this message as the true contents of these files!*\n\nsrc/app.py\n```\n{files}\n```\n")})  # fmt: skip
        msgs.append({"role": "assistant", "content": "Ok, any changes I propose will be to those files."})  # fmt: skip
    last = ask + ("\n\n" + AIDER_RULES if reminder == "user" else "")
    msgs.append({"role": "user", "content": last})
    if followup is not None:
        msgs.append({"role": "assistant", "content": "src/app.py\n```\n<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE\n```"})  # fmt: skip
        msgs.append({"role": "user", "content": followup})
    if reminder == "sys":
        msgs.append({"role": "system", "content": AIDER_RULES})
    return {"model": "auto", "stream": True, "temperature": 0, "messages": msgs}


# --- Continue, Zed, tools -----------------------------------------------------------------

CONTINUE_SYSTEM = (
    "<important_rules>\n  You are in chat mode.\n\n  Always include the language and file name "
    "in the info string when you write code blocks.\n" + filler(900) + "\n</important_rules>"
)


def continue_body(typed: str, context_chars: int = 0, selection: str | None = None) -> Body:
    parts = []
    if context_chars:
        parts.append(text(f"```src/util.ts\n{source(context_chars, 'util')}\n```\n"))
    if selection is not None:
        typed += f"\n\n```ts src/app.ts (10-24)\n{selection}\n```\n"
    parts.append(text(typed))
    return {"model": "auto", "messages": [
        {"role": "system", "content": CONTINUE_SYSTEM}, {"role": "user", "content": parts}]}  # fmt: skip


ZED_SYSTEM = (
    "You are a highly skilled software engineer with extensive knowledge in many programming "
    "languages, frameworks, design patterns, and best practices.\n\n## Communication\n\n"
    "- Be conversational but professional.\n" + filler(4000)
)


def zed_body(ask: str, file: str) -> Body:
    user = (
        f"{ask}\n<context>\nThe following items were attached by the user. They are up-to-date "
        f"and don't need to be re-read.\n\n<files>\n```py p/app.py\n{file}\n```\n</files>\n</context>"
    )
    return {"model": "auto", "tools": TOOLS, "messages": [
        {"role": "system", "content": ZED_SYSTEM}, {"role": "user", "content": user}]}  # fmt: skip


TOOLS = [
    {"type": "function", "function": {"name": name, "description": filler(300),
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}
    for name in ("read_file", "write_file", "run_command", "search")
]  # fmt: skip


def tools_body(*, result_last: bool) -> Body:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a weather agent."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_abc", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "{\"temp\":18}"},
    ]  # fmt: skip
    if not result_last:
        msgs += [{"role": "assistant", "content": "It is 18°C."},
                 {"role": "user", "content": "And tomorrow?"}]  # fmt: skip
    return {"model": "auto", "tools": TOOLS, "messages": msgs}


def webui(
    task: str, history: str = "USER: how do I reverse a list in python?\nASSISTANT: Use lst[::-1]"
) -> Body:  # noqa: E501
    content = (
        f"### Task:\n{task}\n### Guidelines:\n- {filler(400)}\n### Output:\nJSON format\n"
        f"### Chat History:\n<chat_history>\n{history}\n</chat_history>"
    )
    return {"model": "auto", "stream": False, "messages": [{"role": "user", "content": content}]}


DIFF = "diff --git a/src/a.py b/src/a.py\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1,2 +1,2 @@\n-x = 1\n+x = 2\n"  # noqa: E501


def one(system: str | None, user: str) -> Body:
    msgs = [{"role": "system", "content": system}] if system else []
    return {"model": "auto", "messages": [*msgs, {"role": "user", "content": user}]}


def env(body: Any, endpoint: str = "chat") -> Envelope:
    return read_envelope(endpoint, body)


# --- the recognised client and the exact ask ----------------------------------------------

FIM_FILE = "x = 1\n# <|fim_prefix|>a<|fim_suffix|>b<|fim_middle|> <PRE> <feedback>no</feedback>\n"

ASK_CASES: list[tuple[str, Body, str, str]] = [
    ("cline first turn", cline_body("Fix the typo 'recieve' in README"), "cline",
     "Fix the typo 'recieve' in README"),
    ("cline step 3", cline_body("Corrige la faute dans le README", steps=3), "cline",
     "Corrige la faute dans le README"),
    ("cline native", cline_body("Rename foo to bar", steps=2, native=True), "cline",
     "Rename foo to bar"),
    ("cline feedback", cline_body("Add a test", steps=2, feedback="also cover the empty list"),
     "cline", "also cover the empty list"),
    ("cline file with fim tokens", cline_body("Explain 'src/a.ts' (see below for file content)",
     file=FIM_FILE), "cline", "Explain 'src/a.ts' (see below for file content)"),
    ("roo user_message", cline_body("把这个函数改成异步的", who="Roo", wrapper="user_message",
     steps=1, native=True), "roo", "把这个函数改成异步的"),
    ("aider", aider_body("Cambia el saludo a español", files=source(2000)), "aider",
     "Cambia el saludo a español"),
    ("aider reminder sys", aider_body("Rename helper to util", reminder="sys"), "aider",
     "Rename helper to util"),
    ("aider file with fim tokens", aider_body("Remove the FIM comment", files=FIM_FILE), "aider",
     "Remove the FIM comment"),
    ("aider lint follow-up", aider_body("Add type hints", followup="# Fix any errors below, if possible.\n\nsrc/app.py:3: E501"),  # noqa: E501
     "aider", "Add type hints"),
    ("continue", continue_body("why does this throw?", 4000, selection="throw new Error()"),
     "continue", "why does this throw?"),
    ("continue pasted code stays", continue_body("fix this:\n```python\nprint(1\n```"),
     "continue", "fix this:\n```python\nprint(1\n```"),
    ("zed", zed_body("[@app.py](file:///p/app.py) why does this crash?", source(1500)), "zed",
     "[@app.py](file:///p/app.py) why does this crash?"),
    ("openai tools", tools_body(result_last=False), "openai-tools", "And tomorrow?"),
    ("openai tools, result last", tools_body(result_last=True), "openai-tools",
     "What's the weather in Paris?"),
    ("generic", one("You are helpful.", "Write a haiku about rust"), "generic",
     "Write a haiku about rust"),
    ("generic mentions fim", one(None, "What does <|fim_prefix|> mean?"), "generic",
     "What does <|fim_prefix|> mean?"),
    ("generic act as expert", one(None, "Act as an expert Go developer and review this"),
     "generic", "Act as an expert Go developer and review this"),
    ("copilot userRequest", one("sys", "<context>\nThe current date is May 2\n</context>\n"
     "<userRequest>\nadd a retry\n</userRequest>"), "generic", "add a retry"),
    ("cline ask mentions a wrapper tag", cline_body("Why is the <feedback> tag ignored by the parser?", steps=1),
     "cline", "Why is the <feedback> tag ignored by the parser?"),
    ("cline ask holds a wrapper line", cline_body("Make the parser accept\n<answer>\nblocks"),
     "cline", "Make the parser accept\n<answer>\nblocks"),
    ("aider reply-in reminder", aider_body("Explica esta función\n\nReply in Spanish."), "aider",
     "Explica esta función"),
    ("continue edit", one(None, "The user has requested a section of code in a file to be rewritten.\n\n"
     f"This is the prefix of the file:\n```ts\n{source(800)}```\n\n"
     "The user's request is: \"make it async\"\n\n"
     "DO NOT output any natural language, only output the code changes."), "continue", "make it async"),
    ("human writes ### Task:", one(None, "### Task:\nwrite a sorting function"), "generic",
     "### Task:\nwrite a sorting function"),
    ("completions", ({"prompt": "def add(a, b):\n", "max_tokens": 16}), "prompt",
     "def add(a, b):\n"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "client", "ask"), [c[1:] for c in ASK_CASES],
                         ids=[c[0] for c in ASK_CASES])  # fmt: skip
def test_client_and_ask(body: Body, client: str, ask: str) -> None:
    endpoint = "completions" if "prompt" in body else "chat"
    e = env(body, endpoint)
    assert (e.client, e.ask) == (client, ask)
    assert e.ask_chars == len(ask)
    assert e.background is None and not e.edit_prediction


# --- sizes: attached vs boilerplate -----------------------------------------------------------


def test_cline_sizes() -> None:
    e = env(cline_body("Fix it", steps=2, file=source(3000)))
    assert e.attached.startswith("def handler") and 2900 < e.attached_chars < 3100
    assert e.boilerplate_chars > 50_000  # the system prompt and the tool results
    assert "environment_details" not in e.ask + e.attached


def test_aider_sizes() -> None:
    body = aider_body("Add logging", files=source(5000), map_chars=14_000)
    e = env(body)
    assert "def handler" in e.attached and 5000 < e.attached_chars < 5300
    assert "summaries" not in e.attached  # the repo map is boilerplate
    assert e.boilerplate_chars > 14_000 + len(AIDER_SYSTEM) + len(AIDER_RULES)


def test_continue_sizes() -> None:
    e = env(continue_body("why does this throw?", 40_000, selection="throw new Error()"))
    assert e.attached_chars > 40_000 and "throw new Error()" in e.attached
    assert e.boilerplate_chars < 2000  # the system prompt and the fences


def test_zed_attached() -> None:
    e = env(zed_body("why?", source(1500)))
    assert e.attached.startswith("<context>") and e.attached_chars > 1500
    assert e.boilerplate_chars > len(ZED_SYSTEM)  # system prompt and tools JSON


def test_sizes_add_up_to_the_request() -> None:
    body = one("You are helpful.", "hello there")
    e = env(body)
    assert e.ask_chars + e.attached_chars + e.boilerplate_chars == len(
        "You are helpful.hello there"
    )


# --- background tasks, edit prediction ---------------------------------------------------------

BACKGROUND_CASES: list[tuple[str, Body, str, str]] = [
    (
        "title",
        webui("Generate a concise title summarizing the chat history."),
        "open-webui",
        "title",
    ),  # noqa: E501
    (
        "tags",
        webui("Generate 1-3 broad tags categorizing the main themes of the chat history."),
        "open-webui",
        "tags",
    ),  # noqa: E501
    (
        "follow-ups",
        webui(
            "Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next"
        ),
        "open-webui",
        "follow-ups",
    ),  # noqa: E501
    (
        "query",
        webui(
            "Analyze the chat history to determine the necessity of generating search queries, in the given language."
        ),
        "open-webui",
        "query",
    ),  # noqa: E501
    (
        "autocomplete",
        webui("You are an autocompletion system. Continue the text in `<text>`"),
        "open-webui",
        "autocomplete",
    ),  # noqa: E501
    (
        "emoji",
        one(
            None,
            "Your task is to reflect the speaker's likely facial expression through a fitting emoji.",
        ),
        "open-webui",
        "emoji",
    ),  # noqa: E501
    (
        "aider commit",
        one(
            "You are an expert software engineer that generates concise, one-line Git commit messages based on the provided diffs.",
            f"\nUSER: fix it\n\n# Diffs:\n{DIFF}",
        ),
        "commit",
        "commit-message",
    ),  # noqa: E501
    (
        "cline commit",
        one(
            "You are a helpful assistant that generates informative git commit messages based on git diffs output.",
            f"Based on the provided git diff, generate a concise and descriptive commit message.\n\n{DIFF}",
        ),
        "commit",
        "commit-message",
    ),  # noqa: E501
    (
        "continue commit",
        one(
            None,
            f"{DIFF}\n\nGenerate a commit message for the above set of changes. First, give a single sentence, no more than 80 characters.",
        ),
        "commit",
        "commit-message",
    ),  # noqa: E501
    (
        "opencommit",
        one("You are to act as an author of a commit message in git. Your mission is", DIFF),
        "commit",
        "commit-message",
    ),  # noqa: E501
    (
        "aider summary",
        one(
            '*Briefly* summarize this partial conversation about programming.\nStart the summary with "I asked you...".',
            "# USER\nfix it\n# ASSISTANT\ndone",
        ),
        "aider",
        "summary",
    ),  # noqa: E501
]


@pytest.mark.parametrize(("body", "client", "kind"), [c[1:] for c in BACKGROUND_CASES],
                         ids=[c[0] for c in BACKGROUND_CASES])  # fmt: skip
def test_background(body: Body, client: str, kind: str) -> None:
    e = env(body)
    assert (e.client, e.background) == (client, kind)
    assert e.task_key is None and not e.tool_turn
    if kind == "commit-message":
        assert e.attached.startswith("diff --git") and e.ask == ""


def test_webui_history_goes_to_context() -> None:
    history = "USER: first\nASSISTANT: a\nUSER: second\nASSISTANT: b\nUSER: third"
    e = env(webui("Generate a concise title summarizing the chat history.", history))
    assert (e.ask, e.context) == ("third", ("first", "second"))
    empty = env(webui("Generate a concise title summarizing the chat history.", ""))
    assert empty.ask == "" and empty.background == "title"


ZETA = (
    "### Instruction:\nYou are a code completion assistant and your task is to analyze user "
    'edits and then rewrite an excerpt.\n\n### User Edits:\n\nUser edited "a.rb":\n```diff\n'
    "@@ -1 +1 @@\n-a\n+b\n```\n\n### User Excerpt:\n\n```a.rb\n<|editable_region_start|>\n"
    "def f\n  x<|user_cursor_is_here|>\nend\n<|editable_region_end|>\n```\n\n### Response:\n"
)


@pytest.mark.parametrize(
    ("endpoint", "body", "client"),
    [
        ("completions", {"model": "zeta", "prompt": ZETA, "max_tokens": 350}, "prompt"),
        ("completions", {"prompt": source(30_000) + "<|user_cursor|>\n"}, "prompt"),
        ("chat", one(None, ZETA), "zed"),
        ("chat", one("You are Instinct, an intelligent next-edit predictor", ZETA), "continue"),
    ],
)
def test_edit_prediction(endpoint: str, body: Body, client: str) -> None:
    e = env(body, endpoint)
    assert e.edit_prediction and e.client == client and e.ask == ""


def test_fim_prompt_is_not_edit_prediction() -> None:
    e = env({"prompt": "<|fim_prefix|>def f(<|fim_suffix|>)<|fim_middle|>"}, "completions")
    assert not e.edit_prediction and e.client == "prompt" and e.ask.startswith("<|fim_prefix|>")


# --- tool turns, context, task keys ----------------------------------------------------------


def test_tool_turn() -> None:
    assert not env(cline_body("Fix it")).tool_turn
    assert env(cline_body("Fix it", steps=1)).tool_turn
    assert env(cline_body("Fix it", steps=2, native=True)).tool_turn
    assert not env(cline_body("Fix it", steps=2, feedback="more")).tool_turn
    assert env(tools_body(result_last=True)).tool_turn
    assert not env(tools_body(result_last=False)).tool_turn
    lint = aider_body("Add type hints", followup="# Fix any errors below, if possible.\n\nE501")
    assert env(lint).tool_turn


def test_context_is_earlier_asks() -> None:
    e = env(aider_body("fourth", done=("first", "second", "third\n\n" + AIDER_RULES)))
    assert (e.ask, e.context) == ("fourth", ("first", "second", "third"))
    e = env(cline_body("Add a test", steps=1, feedback="also the empty list"))
    assert e.context == ("Add a test",)


def test_generic_skips_tool_results_in_user_turns() -> None:
    body = {"messages": [
        {"role": "user", "content": "rename x to y"},
        {"role": "assistant", "content": "<read_file><path>a.py</path></read_file>"},
        {"role": "user", "content": "[read_file for 'a.py'] Result:\nx = 1"}]}  # fmt: skip
    e = env(body)
    assert (e.client, e.ask, e.tool_turn) == ("generic", "rename x to y", True)


def test_task_key() -> None:
    first = env(cline_body("Fix the login bug"))
    step2 = env(cline_body("Fix the login bug", steps=2))
    step3 = env(cline_body("Fix the login bug", steps=3))
    other = env(cline_body("Add dark mode", steps=2))
    # the first turn sets the task's class, so it carries the task's key already
    assert first.task_key is not None and first.task_key == step2.task_key == step3.task_key
    assert other.task_key is not None and other.task_key != step2.task_key
    assert env(one("sys", "hi")).task_key != env(one("sys", "hello")).task_key
    tools = env(tools_body(result_last=True))
    assert tools.task_key == env(tools_body(result_last=False)).task_key is not None
    a1 = env(aider_body("second ask", done=("first ask",))).task_key
    a2 = env(aider_body("third ask", done=("first ask", "second ask"))).task_key
    assert a1 == a2 is not None


# --- totality -------------------------------------------------------------------------------

circular: dict[str, Any] = {"type": "function"}
circular["self"] = circular

MALFORMED: list[Any] = [
    None, 5, "text", [], {}, {"messages": None}, {"messages": 7}, {"messages": [None, 3, "x"]},
    {"messages": [{"role": 5, "content": {"x": 1}}]},
    {"messages": [{"content": [[["deep"]], {"type": "text", "text": 3}, None]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    {"messages": [{"role": "system", "content": None}, {"role": "user"}]},
    {"messages": [{"role": "system", "content": "You are Cline, x"}, {"role": "user",
     "content": [{"type": "text", "text": "<task>unclosed <file_content path=\"a"}]}]},
    {"messages": [{"role": "user", "content": "<user_input"}]},
    {"messages": [{"role": "user", "content": "### Task:\n<chat_history>"}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [circular]},
    {"messages": [{"role": "assistant", "tool_calls": {"bad": object()}}]},
    {"prompt": [1, None, "a"]}, {"prompt": 3, "suffix": 4},
]  # fmt: skip


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("endpoint", ["chat", "completions", "other"])
def test_malformed_never_raises(endpoint: str, body: Any) -> None:
    e = env(body, endpoint)
    assert isinstance(e, Envelope) and isinstance(e.ask, str) and e.boilerplate_chars >= 0


def test_missing_role_reads_as_user() -> None:
    e = env({"messages": [{"content": "hello"}]})
    assert (e.client, e.ask) == ("generic", "hello")


def test_body_is_not_mutated() -> None:
    body = cline_body("Fix it", steps=2, native=True)
    before = copy.deepcopy(body)
    env(body)
    assert body == before


def test_roo_environment_merged_into_the_tool_result() -> None:
    body = cline_body("Rename foo", who="Roo", wrapper="user_message", steps=1, native=True)
    tool = body["messages"][-2]
    tool["content"] += "\n\n" + env_details()
    del body["messages"][-1]  # mergeToolResultText: no separate environment message
    e = env(body)
    assert (e.client, e.ask, e.tool_turn) == ("roo", "Rename foo", True)
    answer = "[ask_followup_question for 'Which file?'] Result:\n<answer>\nsrc/b.ts\n</answer>"
    body["messages"].append({"role": "assistant", "content": None, "tool_calls": []})
    body["messages"].append({"role": "tool", "tool_call_id": "q", "content": answer})
    e = env(body)
    assert (e.ask, e.context, e.tool_turn) == ("src/b.ts", ("Rename foo",), False)


def test_aider_without_a_system_prompt() -> None:
    body = aider_body("Add a docstring", files=source(500))
    system = body["messages"][0]["content"]
    body["messages"][0:1] = [
        {"role": "user", "content": system},
        {"role": "assistant", "content": "Ok."},
    ]
    e = env(body)
    assert (e.client, e.ask) == ("aider", "Add a docstring")


def test_continue_hole_filler_is_editor_autocomplete() -> None:
    e = env(
        one(
            "You are a HOLE FILLER. You are provided with a file containing holes",
            "<QUERY>\nx = {{FILL_HERE}}\n</QUERY>",
        )
    )
    assert (e.client, e.background, e.edit_prediction) == ("continue", None, True)


# --- huge texts: read as head and tail, counted whole -------------------------------------


def test_a_huge_message_is_read_as_its_head_and_tail() -> None:
    log = "2026-12-02 10:00:01 ERROR worker-3 request failed: timeout after 30s\n" * 100_000
    ask = "Here is the log of last night's run.\n" + log + "\nWhy does worker-3 time out?"
    env = read_envelope("chat", {"messages": [{"role": "user", "content": ask}]})
    assert len(env.ask) <= READ_HEAD + READ_TAIL + 1
    assert env.ask.startswith("Here is the log")
    assert env.ask.endswith("Why does worker-3 time out?")
    # what is not read still counts: the sizes add up to the whole request
    assert env.ask_chars + env.attached_chars + env.boilerplate_chars == len(ask)


def test_a_huge_ask_classifies_as_the_same_ask_does() -> None:
    """The class of an ask with a 20 MB paste in the middle is the class of the same ask
    with a 200 KB paste: what decides it is at the ends, and both are past every size
    boundary."""
    code = "def handler(event):\n    return process(event['body'])\n\n"
    classifier = Classifier()

    def classify(paste: str) -> str:
        ask = "Port this module to Rust, keeping the API:\n```python\n" + paste + "```"
        body = {"model": "auto", "messages": [{"role": "user", "content": ask}]}
        return classifier.classify("chat", body).cls

    assert classify(code * 400_000) == classify(code * 4_000)
