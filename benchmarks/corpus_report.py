"""Per-client accuracy of the default classifier on labelled corpus files.

Run: .venv/bin/python benchmarks/corpus_report.py [FILE.jsonl ...] [--no-rows]

With no files it reads every ``tests/corpus/**/*.jsonl`` (the unit-tested corpus and the
client-shaped corpus in ``tests/corpus/clients/``). Rows without a ``client`` field are
counted as ``-``. Prints accuracy per client and per corpus file, the confusion matrix
(rows: label, columns: predicted) and every misrouted row with the rule that decided
it. It asserts nothing: the unit test ``tests/unit/test_corpus.py`` is the gate for the
files it reads; this report is how we measure the rest honestly before it becomes one.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy.classify import CLASSES, Classifier  # noqa: E402
from proxy.runtime import PATH_TO_ENDPOINT  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                row["where"] = (
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{n}"
                )
                row["file"] = path.name
                rows.append(row)
    return rows


def accuracy_table(title: str, rows: list[dict[str, Any]], key: str) -> list[str]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        groups[str(r.get(key, "-"))].append(r["label"] == r["got"])
    lines = [f"{title:<16}{'n':>6}{'right':>7}{'accuracy':>10}"]
    for name in sorted(groups):
        ok = groups[name]
        lines.append(f"{name:<16}{len(ok):>6}{sum(ok):>7}{sum(ok) / len(ok):>10.1%}")
    total = sum(r["label"] == r["got"] for r in rows)
    lines.append(f"{'all':<16}{len(rows):>6}{total:>7}{total / len(rows):>10.1%}")
    return lines


def confusion(rows: list[dict[str, Any]]) -> list[str]:
    matrix = Counter((r["label"], r["got"]) for r in rows)
    width = max(len(c) for c in CLASSES) + 2
    lines = [
        "confusion matrix (rows: label, columns: predicted)",
        " " * width + "".join(c[:12].rjust(14) for c in CLASSES),
    ]
    for label in CLASSES:
        lines.append(
            label.ljust(width) + "".join(str(matrix[(label, p)]).rjust(14) for p in CLASSES)
        )
    return lines


def label_counts(rows: list[dict[str, Any]]) -> list[str]:
    counts = Counter((str(r.get("client", "-")), r["label"]) for r in rows)
    clients = sorted({c for c, _ in counts})
    lines = [
        "rows per client x label",
        f"{'client':<16}" + "".join(c[:12].rjust(14) for c in CLASSES),
    ]
    for client in clients:
        lines.append(f"{client:<16}" + "".join(str(counts[(client, c)]).rjust(14) for c in CLASSES))
    return lines


def main(argv: list[str]) -> int:
    show_rows = "--no-rows" not in argv
    args = [a for a in argv if not a.startswith("--")]
    paths = [Path(a).resolve() for a in args] or sorted(CORPUS.glob("**/*.jsonl"))
    rows = load(paths)
    classifier = Classifier()
    for r in rows:
        result = classifier.classify(PATH_TO_ENDPOINT[r["endpoint"]], r["body"])
        r["got"], r["rule"] = result.cls, result.rule
    out = accuracy_table("client", rows, "client") + [""]
    out += accuracy_table("file", rows, "file") + [""]
    out += label_counts(rows) + [""] + confusion(rows)
    wrong = [r for r in rows if r["label"] != r["got"]]
    if show_rows and wrong:
        out += ["", f"misrouted ({len(wrong)}): client | want -> got (rule) | note | where"]
        out += [
            f"  {r.get('client', '-'):<13} {r['label']} -> {r['got']} ({r['rule']}) | "
            f"{r.get('note', '')[:90]} | {r['where']}"
            for r in wrong
        ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
