"""The shape of `proxy/`, held to what docs/architecture.md says.

Imports are read with `ast`, at module level and inside functions alike: no
cycle among the project's modules, no `importlib` loading of its own code,
the benchmark never reaching up into the web layer, and modules and
functions small enough to read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "proxy"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
#: the web layer: what serves requests; the benchmark drives it, never imports it
WEB = {"proxy.app", "proxy.edge", "proxy.service", "proxy.dispatch", "proxy.cli"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The project modules one `from … import …` names (a package's names may be modules)."""
    if node.level:
        base = module.split(".")
        if not MODULES[module].name == "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in MODULES:
            found.append(sub)
        elif target in MODULES:
            found.append(target)
    return found


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if _under_type_checking(tree, node):
                continue
            out.update(_resolve(module, node))
    out.discard(module)
    return out


def _under_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            if any(child is target for body in node.body for child in ast.walk(body)):
                return True
    return False


GRAPH = {m: _imports(m) for m in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(GRAPH[start])))]
    path = [start]
    seen = {start}
    while stack:
        node, children = stack[-1]
        for child in children:
            if child == start:
                return [*path, start]
            if child not in seen:
                seen.add(child)
                path.append(child)
                stack.append((child, iter(sorted(GRAPH[child]))))
                break
        else:
            stack.pop()
            path.pop()
    return None


def _is_package_face(module: str, imported: str) -> bool:
    """`proxy.x` importing its own subpackage's modules from `proxy/x/__init__.py`."""
    return imported.startswith(module + ".")


def test_no_import_cycles() -> None:
    cycles = []
    for module in MODULES:
        cycle = _cycle_from(module)
        if cycle is None:
            continue
        # a package's __init__ re-exporting its own modules is not a cycle of concerns
        edges = list(zip(cycle, cycle[1:], strict=False))
        if all(_is_package_face(a, b) or _is_package_face(b, a) for a, b in edges):
            continue
        cycles.append(" -> ".join(cycle))
    assert cycles == []


def test_no_importlib_of_own_modules() -> None:
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and arg.value == "pynvml"):
                    offenders.append(f"{module}: {ast.unparse(node)}")
    assert offenders == []


def test_bench_does_not_import_the_web_layer() -> None:
    # `python -m proxy.bench` is an entry point, the top of the house by definition
    upward = [
        f"{m} -> {i}"
        for m, imports in GRAPH.items()
        if m.startswith("proxy.bench") and not m.endswith(".__main__")
        for i in imports
        if any(i == w or i.startswith(w + ".") for w in WEB)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_are_small(module: str) -> None:
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module} has {text.count(chr(10))} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
