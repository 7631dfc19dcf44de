"""Benchmark suites: the file format, loading, and turning an answer into code.

A suite is a JSON (or YAML) file, versioned, holding tasks of one class:

    {"name": "complex", "version": 1, "class": "complex", "description": "...",
     "tasks": [{"id": "lru-cache", "language": "python", "max_tokens": 768,
                "messages": [{"role": "user", "content": "Write ..."}],
                "test": "c = LRU(2) ...", "reference": "```python\\n...```"}]}

A task is either a chat task (`messages`, answered by /v1/chat/completions,
code taken from the answer's fenced block) or a fill-in-the-middle task
(`prompt` + `suffix`, answered by /v1/completions; the filled text goes
between them). A chat task may also carry its `completion_prompt`, the form a
*base* model takes (HumanEval's original protocol: the signature and docstring,
continued on /v1/completions until one of `COMPLETION_STOP`); `as_completion`
turns it into that completion task, so a base variant is asked what it can
answer and scored the same way. The program that runs is `setup + answer + test` (with the
prompt and suffix around the answer for fill-in-the-middle), in `language`.
It passes when it exits 0 and, if `expected_output` is given, prints exactly
that. Where the language's toolchain is missing, `static` regexes are checked
against the answer instead. This module is pure: no I/O beyond reading files.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..classify import CLASSES
from ..errors import SuiteError

__all__ = [
    "COMPLETION_STOP",
    "Language",
    "Suite",
    "Task",
    "extract",
    "load_suite",
]

Language = Literal["python", "javascript", "c", "shell"]
Extract = Literal["fence", "fim", "raw"]

_FENCE_TAGS: dict[str, tuple[str, ...]] = {
    "python": ("python", "py", "python3"),
    "javascript": ("javascript", "js", "node", "nodejs"),
    "c": ("c", "h"),
    "shell": ("bash", "sh", "shell", "zsh"),
}
#: Tokens that end a model's turn; anything after them is not part of the answer.
_END_MARKERS = (
    "<EOT>",
    "<|endoftext|>",
    "<|file_separator|>",
    "<|fim_pad|>",
    "<end_of_turn>",
    "<|im_end|>",
    "<|im_start|>",
    "<|eot_id|>",
)


#: HumanEval's stop sequences (Chen et al., 2021): the function body ends where a new
#: top-level statement starts.
COMPLETION_STOP: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Task(BaseModel):
    """One benchmark problem."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$")
    cls: str | None = Field(None, alias="class")
    language: Language = "python"
    max_tokens: int = Field(512, ge=1, le=32768)
    messages: list[Message] | None = None
    prompt: str | None = None
    suffix: str = ""
    #: a chat task's problem as a base model takes it (see `as_completion`)
    completion_prompt: str | None = None
    #: stop sequences sent with the request
    stop: list[str] = []
    extract: Extract | None = None
    setup: str = ""
    test: str = ""
    expected_output: str | None = None
    static: list[str] = []
    reference: str | None = None
    human_language: str = "en"
    tags: list[str] = []

    @model_validator(mode="after")
    def _one_prompt(self) -> Task:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give either messages (chat) or prompt (+ suffix) (completion)")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        for pattern in self.static:
            re.compile(pattern)
        if not self.test and self.expected_output is None and not self.static:
            raise ValueError("give test code, expected_output or static patterns to check")
        return self

    @property
    def chat(self) -> bool:
        return self.messages is not None

    @property
    def extraction(self) -> Extract:
        return self.extract or ("fence" if self.chat else "fim")

    def as_completion(self) -> Task | None:
        """This problem in HumanEval's completion protocol, or None if it has no such form:
        the prompt is continued (no suffix, no chat turns) until a `COMPLETION_STOP`, and
        the program that runs is the prompt, the continuation and the test."""
        if self.completion_prompt is None:
            return None
        return self.model_copy(
            update={
                "messages": None,
                "prompt": self.completion_prompt,
                "suffix": "",
                "setup": "",
                "extract": "raw",
                "stop": list(COMPLETION_STOP),
            }
        )


class Suite(BaseModel):
    """A versioned set of tasks of one class."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: int | str
    cls: str = Field(alias="class")
    description: str = ""
    license: str | None = None
    source: str | None = None
    tasks: list[Task]

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        ids = [t.id for t in self.tasks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate task ids: {', '.join(dupes)}")
        if not self.tasks:
            raise ValueError("a suite needs at least one task")
        return self

    def task_class(self, task: Task) -> str:
        return task.cls or self.cls

    def limited(self, limit: int | None) -> Suite:
        if limit is None or limit >= len(self.tasks):
            return self
        return self.model_copy(update={"tasks": self.tasks[:limit]})


def _parse(text: str, source: str) -> Suite:
    try:
        data: Any = yaml.safe_load(text) if source.endswith((".yaml", ".yml")) else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SuiteError(f"{source}: not valid JSON/YAML: {exc}") from exc
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: "
            + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors()
        )
        raise SuiteError(f"{source}: {problems}") from exc


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name (`complex`) or a suite file by path.

    The shipped suites are one per request class, named after it (`classify.CLASSES`).
    """
    if name_or_path in CLASSES:
        res = resources.files("proxy.bench").joinpath("suites", f"{name_or_path}.json")
        return _parse(res.read_text(encoding="utf-8"), f"{name_or_path}.json")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(CLASSES)
        raise SuiteError(f"no suite {name_or_path!r}: not a shipped suite ({known}) nor a file")
    return _parse(path.read_text(encoding="utf-8"), str(path))


# -- turning an answer into code ----------------------------------------------------------------

_FENCE = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S
)


def extract(task: Task, answer: str) -> str:
    """The code in a model's answer, by the task's extraction rule."""
    match task.extraction:
        case "raw":
            return _strip_markers(answer)
        case "fim":
            return _fim(task, answer)
        case "fence":
            return _fenced(task.language, answer)


def _strip_markers(text: str) -> str:
    for marker in _END_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return text


def _fenced(language: str, answer: str) -> str:
    """The first code block tagged with the language, else the longest block, else all text."""
    answer = _strip_markers(answer)
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(answer)]
    if not blocks:
        return answer.strip("\n")
    tags = _FENCE_TAGS.get(language, (language,))
    for tag, body in blocks:
        if tag in tags:
            return body.rstrip()
    untagged = [body for tag, body in blocks if not tag]
    pool = untagged or [body for _, body in blocks]
    return max(pool, key=len).rstrip()


def _fim(task: Task, answer: str) -> str:
    """The infilled middle: up to an end marker, and not repeating the given suffix."""
    text = _strip_markers(answer)
    first = next((line for line in task.suffix.splitlines() if line.strip()), "")
    if first:
        # only a whole line with the suffix's own indentation repeats it: a deeper-indented
        # `return -1` inside the infill is code, not the suffix
        repeat = re.search(r"^" + re.escape(first.rstrip()) + r"[ \t]*$", text, re.M)
        if repeat is not None:
            text = text[: repeat.start()]
    return text.rstrip() if not task.suffix.startswith("\n") else text.rstrip(" \t")


def program(task: Task, code: str) -> str:
    """The source file that is executed for one extracted answer."""
    if task.chat:
        parts = [task.setup, code, task.test]
    else:
        assert task.prompt is not None
        parts = [task.setup, task.prompt + code + task.suffix, task.test]
    return "\n\n".join(p for p in parts if p) + "\n"
