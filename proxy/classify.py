"""Request classifier: an OpenAI-style request body → one class and the reason. Pure.

Classes (names are fixed):

* ``completion``: editor autocomplete / fill-in-the-middle.
* ``instruction``: write, change or explain code from a plain instruction (the default).
* ``complex``: long context, design/architecture, deep debugging, concurrency,
  performance, proofs, algorithms under constraints.
* ``multi-language``: several programming languages (translate, port, bindings), a
  language outside ``primary_languages``, or a prompt not written in English.

Design, in two stages:

1. :func:`extract_signals` reads the body once and returns :class:`Signals`, a frozen
   set of named facts (token estimate, FIM markers, detected languages, vocabulary
   scores…). Expensive scans look only at bounded windows of text, so the cost stays
   flat for long prompts. Language and intent signals read what the user wrote (the
   last user message first); system prompts count only toward ``tokens``.
2. :class:`Classifier` evaluates the configured rules against the signals. Every rule
   whose condition holds is a candidate; the winner is the candidate whose class comes
   first in ``order`` (ties: the rule listed first). No candidate → ``default_class``
   with rule ``"default"``.

Rule syntax (YAML, see ``config/classifier.default.yaml`` and ``docs/classifier.md``)::

    - name: long-context
      class: complex
      when:
        any:
          - {signal: user_tokens, op: ">=", value: 3000}
          - {signal: n_files, gte: 4}          # compact form of the same leaf

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: cond}`` or a leaf
``{signal, op, value}``; ops are ``> >= < <= == != in contains is`` and the compact
keys ``gt gte lt lte eq ne in contains is``. Validation happens at load and names the
offending key (``rules.2.when.all.0.signal: unknown signal 'tokenz' (known: …)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from proxy import fim

__all__ = [
    "CLASSES",
    "Classification",
    "Classifier",
    "ClassifierConfig",
    "Condition",
    "Rule",
    "SIGNAL_KINDS",
    "Signals",
    "extract_signals",
]

CLASSES: tuple[str, ...] = ("completion", "instruction", "complex", "multi-language")
DEFAULT_ORDER: tuple[str, ...] = ("completion", "complex", "multi-language", "instruction")

# Mainstream languages: using one of them alone is plain "instruction" work.
DEFAULT_PRIMARY_LANGUAGES: tuple[str, ...] = (
    "python", "javascript", "typescript", "java", "kotlin", "c", "cpp", "csharp", "go",
    "rust", "swift", "php", "ruby", "shell", "sql", "html", "css",
)  # fmt: skip

# Languages that accompany another one without making the request "multi-language"
# (a Python script with a SQL query, a page with HTML and CSS, a shell one-liner).
ANCILLARY_LANGUAGES: frozenset[str] = frozenset({"sql", "html", "css", "shell"})

# ---------------------------------------------------------------------------------------
# Languages: names, aliases, file extensions, fence info strings, syntax fingerprints.
# ---------------------------------------------------------------------------------------

_ALIASES: dict[str, str] = {
    "py": "python", "python3": "python", "py3": "python", "ipython": "python",
    "js": "javascript", "node": "javascript", "nodejs": "javascript", "jsx": "javascript",
    "mjs": "javascript", "cjs": "javascript", "ts": "typescript", "tsx": "typescript",
    "c++": "cpp", "cxx": "cpp", "cc": "cpp", "hpp": "cpp", "h++": "cpp",
    "c#": "csharp", "cs": "csharp", "dotnet": "csharp", "golang": "go", "rs": "rust",
    "kt": "kotlin", "kts": "kotlin", "rb": "ruby", "sh": "shell", "bash": "shell",
    "zsh": "shell", "console": "shell", "shellscript": "shell", "fish": "shell",
    "postgresql": "sql", "postgres": "sql", "mysql": "sql", "sqlite": "sql", "plsql": "sql",
    "tsql": "sql", "psql": "sql", "htm": "html", "xhtml": "html", "vue": "javascript",
    "svelte": "javascript", "scss": "css", "sass": "css", "less": "css", "hs": "haskell",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "ml": "ocaml", "mli": "ocaml",
    "fs": "fsharp", "f#": "fsharp", "fsx": "fsharp", "clj": "clojure", "cljs": "clojure",
    "jl": "julia", "pl": "perl", "pm": "perl", "objective-c": "objc", "objectivec": "objc",
    "m": "objc", "mm": "objc", "ps1": "powershell", "pwsh": "powershell", "asm": "assembly",
    "nasm": "assembly", "s": "assembly", "sol": "solidity", "v": "verilog", "sv": "verilog",
    "systemverilog": "verilog", "vhd": "vhdl", "f90": "fortran", "f95": "fortran",
    "f": "fortran", "for": "fortran", "cob": "cobol", "cbl": "cobol", "scm": "scheme",
    "rkt": "racket", "lisp": "lisp", "el": "lisp", "elisp": "lisp", "commonlisp": "lisp",
    "cu": "cuda", "glsl": "glsl", "hlsl": "glsl", "frag": "glsl", "vert": "glsl",
    "nim": "nim", "zig": "zig", "dart": "dart", "lua": "lua", "r": "r", "scala": "scala",
    "sc": "scala", "groovy": "groovy", "gradle": "groovy", "php": "php", "swift": "swift",
    "java": "java", "c": "c", "h": "c", "go": "go", "cpp": "cpp", "csharp": "csharp",
    "python": "python", "javascript": "javascript", "typescript": "typescript",
    "rust": "rust", "kotlin": "kotlin", "ruby": "ruby", "shell": "shell", "sql": "sql",
    "html": "html", "css": "css", "haskell": "haskell", "elixir": "elixir",
    "erlang": "erlang", "ocaml": "ocaml", "fsharp": "fsharp", "clojure": "clojure",
    "julia": "julia", "perl": "perl", "objc": "objc", "powershell": "powershell",
    "assembly": "assembly", "solidity": "solidity", "verilog": "verilog", "vhdl": "vhdl",
    "fortran": "fortran", "cobol": "cobol", "scheme": "scheme", "racket": "racket",
    "cuda": "cuda", "prolog": "prolog", "matlab": "matlab", "crystal": "crystal",
    "elm": "elm", "purescript": "purescript", "ada": "ada", "pascal": "pascal",
    "delphi": "pascal", "vb": "vb", "vbnet": "vb", "vba": "vb", "apex": "apex",
    "abap": "abap", "mojo": "mojo", "gleam": "gleam", "nix": "nix", "wasm": "wasm",
    "wat": "wasm", "webassembly": "wasm", "coq": "coq", "lean": "lean", "idris": "idris",
    "agda": "agda", "tla": "tla", "dafny": "dafny", "smalltalk": "smalltalk",
    "awk": "awk", "tcl": "tcl", "d": "d", "hack": "php", "reason": "ocaml",
}  # fmt: skip

#: Every language name the classifier can report (valid in ``primary_languages``).
KNOWN_LANGUAGES: frozenset[str] = frozenset(_ALIASES.values())

# Extensions that name a file in prose or a header ("src/app.py"). Data and config
# formats (json, yaml, toml, md…) still count toward ``n_files`` but not as languages.
_DATA_EXTENSIONS = (
    "json", "yaml", "yml", "toml", "ini", "cfg", "conf", "md", "rst", "txt", "xml",
    "csv", "lock", "env", "proto", "graphql", "gql", "tf", "hcl", "dockerfile", "mk",
    "cmake", "gradle", "properties", "plist", "sbt",
)  # fmt: skip
_CODE_EXTENSIONS = (
    "py", "pyi", "js", "mjs", "cjs", "jsx", "ts", "tsx", "java", "kt", "kts", "c", "h",
    "cc", "cpp", "cxx", "hpp", "cs", "go", "rs", "swift", "php", "rb", "sh", "bash",
    "zsh", "sql", "html", "htm", "css", "scss", "sass", "less", "vue", "svelte", "hs",
    "ex", "exs", "erl", "ml", "mli", "fs", "fsx", "clj", "cljs", "jl", "pl", "pm", "m",
    "mm", "ps1", "asm", "sol", "sv", "vhd", "f90", "f95", "cob", "cbl", "scm", "rkt",
    "el", "cu", "glsl", "frag", "vert", "nim", "zig", "dart", "lua", "r", "scala",
    "groovy", "ipynb", "lean", "v",
)  # fmt: skip
_EXT_LANG = {"ipynb": "python", "pyi": "python", "lean": "lean", "v": "verilog"}

_FILE_RE = re.compile(
    r"(?<![\w@/.-])((?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.("
    + "|".join(sorted(set(_CODE_EXTENSIONS + _DATA_EXTENSIONS), key=len, reverse=True))
    + r"))(?![\w(])"
    + r"|\b(Dockerfile|Makefile|CMakeLists\.txt|Cargo\.toml|go\.mod|package\.json)\b",
    re.IGNORECASE,
)
_FILE_HEADER_RE = re.compile(
    r"^(?:diff --git a/(\S+)|\+\+\+ b/(\S+)|(?:#|//|--|;|<!--)\s*(?:file(?:name)?|path)\s*:"
    r"\s*(\S+)|={3,}\s*(\S+)\s*={3,}|[-#]{2,}\s+(\S+\.\w+)\s+[-#]{2,})",
    re.IGNORECASE | re.MULTILINE,
)

# Language names in prose. "Strong" names are unambiguous words; "weak" ones (Go, C, R,
# Swift…) are English words or letters and only count with a context that makes them a
# language ("in Go", "to C", "Go code", "Swift package").
_STRONG_NAMES: dict[str, str] = {
    "python": "python", "python3": "python", "javascript": "javascript",
    "typescript": "typescript", "node.js": "javascript", "nodejs": "javascript",
    "java": "java", "kotlin": "kotlin", "c\\+\\+": "cpp", "cpp": "cpp", "c#": "csharp",
    "csharp": "csharp", "\\.net": "csharp", "golang": "go", "rust": "rust",
    "php": "php", "bash": "shell", "powershell": "powershell", "shell script": "shell",
    "sql": "sql", "html": "html", "css": "css", "haskell": "haskell", "elixir": "elixir",
    "erlang": "erlang", "ocaml": "ocaml", "f#": "fsharp", "clojure": "clojure",
    "perl": "perl", "objective-c": "objc", "fortran": "fortran", "cobol": "cobol",
    "scala": "scala", "lua": "lua", "zig": "zig", "solidity": "solidity",
    "verilog": "verilog", "systemverilog": "verilog", "vhdl": "vhdl", "matlab": "matlab",
    "groovy": "groovy", "racket": "racket", "prolog": "prolog", "common lisp": "lisp",
    "lisp": "lisp", "cuda": "cuda", "webassembly": "wasm", "assembly": "assembly",
    "x86 asm": "assembly", "purescript": "purescript", "smalltalk": "smalltalk",
    "visual basic": "vb", "vb\\.net": "vb", "vba": "vb", "delphi": "pascal",
    "abap": "abap", "mojo": "mojo", "gleam": "gleam", "idris": "idris", "agda": "agda",
    "dafny": "dafny", "tla\\+": "tla", "coq": "coq", "glsl": "glsl", "hlsl": "glsl",
    "kotlin/native": "kotlin", "typescript/javascript": "typescript",
    "ruby on rails": "ruby", "rails": "ruby", "django": "python", "flask": "python",
    "fastapi": "python", "spring boot": "java", "asp\\.net": "csharp", "laravel": "php",
}  # fmt: skip
_WEAK_NAMES: dict[str, str] = {
    "Go": "go", "C": "c", "R": "r", "Swift": "swift", "Dart": "dart", "Julia": "julia",
    "Elm": "elm", "Crystal": "crystal", "Nim": "nim", "Ada": "ada", "Scheme": "scheme",
    "Pascal": "pascal", "Ruby": "ruby", "Lean": "lean", "Nix": "nix", "D": "d",
    "Apex": "apex", "Tcl": "tcl", "Awk": "awk", "AWK": "awk", "Wasm": "wasm",
}  # fmt: skip
_STRONG_RE = re.compile(
    r"(?<![\w.+#/-])("
    + "|".join(sorted(_STRONG_NAMES, key=len, reverse=True))
    + r")(?![\w+#]|-\w)",
    re.IGNORECASE,
)
_STRONG_LOOKUP = {k.replace("\\", "").lower(): v for k, v in _STRONG_NAMES.items()}
_WEAK_ALT = "|".join(sorted(_WEAK_NAMES, key=len, reverse=True))
_WEAK_BEFORE = (
    r"(?:\b(?:[Ii]n|[Tt]o|[Ii]nto|[Ff]rom|[Uu]sing|[Ww]ith|[Vv]ia|and|or|nor|[Ff]or|pure|"
    r"plain|idiomatic|modern|native|vs\.?|versus|[Ww]rite|[Ll]earn(?:ing)?|[Pp]ort)\s+"
    r"(?:(?:a|an|the|some|simple|small|basic|short|quick|tiny|idiomatic|modern|pure)\s+)?)"
)
_WEAK_AFTER = (
    r"(?:\s+(?:code|codes|program|programs|version|implementation|port|librar(?:y|ies)|"
    r"module|modules|package|packages|crate|binary|bindings?|extension|API|ABI|header|"
    r"headers|function|functions|struct|structs|class|script|scripts|service|services|"
    r"client|server|app|application|source|compiler|side|equivalent|developer|project|"
    r"backend|frontend|CLI|tool|routine|routines|generics|interface|macro|file|files|"
    r"language|lang|toolchain|SDK|runtime|worker|microservice|idioms?|syntax|program's|proc|"
    r"procs|macro|macros|trait|traits|closure|closures|snippet|equivalents?|types?)\b)"
)
_WEAK_RE = re.compile(
    rf"{_WEAK_BEFORE}({_WEAK_ALT})(?![\w+#'’-])|\b({_WEAK_ALT})(?=[’']s\b|{_WEAK_AFTER})"
)
# "like Haskell's Maybe", "inspired by Erlang": a comparison, not work in that language.
_COMPARISON_BEFORE = re.compile(
    r"(?:\blike|\bunlike|similar to|inspired by|compared (?:to|with)|as in|à la|"
    r"style of|equivalent of|akin to)\s+(?:in\s+)?(?:the\s+)?$",
    re.IGNORECASE,
)

_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)",
                       re.MULTILINE | re.DOTALL)  # fmt: skip
_SHEBANG_RE = re.compile(r"^#!\s*/\S*?(?:env\s+)?(python3?|node|bash|sh|zsh|ruby|perl|php|"
                         r"deno|bun|lua|Rscript|pwsh)\b", re.MULTILINE)  # fmt: skip
_SHEBANG_LANG = {
    "python": "python", "python3": "python", "node": "javascript", "bash": "shell",
    "sh": "shell", "zsh": "shell", "ruby": "ruby", "perl": "perl", "php": "php",
    "deno": "typescript", "bun": "javascript", "lua": "lua", "Rscript": "r",
    "pwsh": "powershell",
}  # fmt: skip


def _fp(*patterns: str, flags: int = re.MULTILINE) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags)


# Syntax fingerprints: (decisive pattern or None, supporting patterns). A code segment
# goes to the best-scoring language; a decisive hit counts 3, each supporting hit 1.
_SYNTAX: dict[str, tuple[re.Pattern[str] | None, tuple[re.Pattern[str], ...]]] = {
    "python": (
        _fp(r"^\s*def \w+\(.*\)(?:\s*->\s*[^:]+)?:\s*$", r"^\s*from [\w.]+ import \w",
            r"^\s*class \w+(?:\(.*\))?:\s*$", r"\bself\.\w+\s*=", r"if __name__ == "),
        (_fp(r"^\s*import \w+(?:\.\w+)*(?: as \w+)?\s*$"), _fp(r"^\s*elif\b"),
         _fp(r"\bprint\("), _fp(r"^\s*(?:for|if|while|with|try|except)\b.*:\s*$"),
         _fp(r"\bNone\b|\bTrue\b|\bFalse\b"), _fp(r"^\s*@\w+"), _fp(r"\blen\(|\brange\(")),
    ),
    "javascript": (
        _fp(r"\bconsole\.log\(", r"\brequire\(['\"]", r"\bmodule\.exports\b",
            r"\bdocument\.\w+", r"^\s*export default\b"),
        (_fp(r"\b(?:const|let) \w+ = "), _fp(r"=>\s*[{(]?"), _fp(r"\bfunction\s*\w*\("),
         _fp(r"\bawait\b"), _fp(r"===|!=="), _fp(r"\bnew Promise\b|\.then\("),
         _fp(r"^\s*import .* from ['\"]"), _fp(r"\bundefined\b|\bnull\b")),
    ),
    "typescript": (
        _fp(r"^\s*(?:export\s+)?(?:interface|type) \w+(?:<.*>)?\s*(?:=|\{)",
            r":\s*(?:string|number|boolean|void|unknown|any)(?:\[\])?\s*[,;)=|{]",
            r"\bas const\b", r"^\s*(?:public|private|readonly) \w+:"),
        (_fp(r"\b(?:const|let) \w+: \w+"), _fp(r"<\w+>\("), _fp(r"^\s*import .* from ['\"]"),
         _fp(r"=>\s*[{(]?"), _fp(r"\bPromise<")),
    ),
    "java": (
        _fp(r"\bpublic (?:static )?(?:final )?class \w+", r"\bSystem\.out\.print",
            r"public static void main\(String", r"^\s*import java\.", r"^\s*package [\w.]+;"),
        (_fp(r"@Override"), _fp(r"\b(?:private|public|protected) (?:final )?\w+(?:<.*>)? \w+"),
         _fp(r"\bnew \w+(?:<.*>)?\(.*\);"), _fp(r"\bString\[\]"), _fp(r"\bthrows \w+")),
    ),
    "kotlin": (
        _fp(r"^\s*fun \w+\(.*\)(?:\s*:\s*\w+)?\s*[{=]", r"\bdata class \w+",
            r"\bcompanion object\b", r"^\s*import kotlinx?\."),
        (_fp(r"^\s*val \w+(?::\s*\w+)? = "), _fp(r"^\s*var \w+: \w+"), _fp(r"\bprintln\("),
         _fp(r"\bwhen\s*\(.*\)\s*\{"), _fp(r"\?:")),
    ),
    "c": (
        _fp(r"^\s*#include <(?:stdio|stdlib|string|unistd|pthread|stdint|stdbool)\.h>",
            r"\bint main\((?:void|int argc)", r"\bmalloc\(|\bfree\(\w+\);"),
        (_fp(r"\bprintf\("), _fp(r"^\s*#(?:include|define|ifdef|ifndef)\b"),
         _fp(r"\bstruct \w+\s*\{"), _fp(r"\w->\w"), _fp(r"\b(?:int|char|void|size_t)\s*\*")),
    ),
    "cpp": (
        _fp(r"\bstd::\w+", r"^\s*#include <(?:iostream|vector|string|memory|map|thread|mutex"
            r"|algorithm|unordered_map)>", r"\btemplate\s*<", r"\bnamespace \w+\s*\{"),
        (_fp(r"\bcout\s*<<"), _fp(r"\bnullptr\b"), _fp(r"\bauto\s+\w+\s*="),
         _fp(r"\bclass \w+\s*(?::\s*public \w+)?\s*\{"), _fp(r"::")),
    ),
    "csharp": (
        _fp(r"^\s*using System", r"\bConsole\.Write", r"\{\s*get;\s*(?:set;|init;)?\s*\}",
            r"\bpublic (?:async )?Task<?"),
        (_fp(r"^\s*namespace [\w.]+"), _fp(r"\bvar \w+ = new\b"),
         _fp(r"\bpublic (?:static )?(?:void|string|int|bool) [A-Z]\w*\("), _fp(r"\[\w+\]\s*$")),
    ),
    "go": (
        _fp(r"^\s*package \w+\s*$", r"^\s*func (?:\(\w+ \*?\w+\) )?\w+\(", r"\bfmt\.\w+\(",
            r"\berr != nil\b"),
        (_fp(r"\w+ := "), _fp(r"\bgo func\("), _fp(r"\bchan \w+"), _fp(r"^\s*import \(")),
    ),
    "rust": (
        _fp(r"^\s*(?:pub(?:\(crate\))? )?fn \w+(?:<.*>)?\(", r"\blet mut \w+",
            r"^\s*use (?:std|crate|super)::", r"\bprintln!\(", r"^\s*impl(?:<.*>)? \w+"),
        (_fp(r"&mut \w+"), _fp(r"-> (?:Result|Option|Self|Vec)<"), _fp(r"::new\("),
         _fp(r"\bmatch \w+ \{"), _fp(r"#\[derive\("), _fp(r"\.unwrap\(\)")),
    ),
    "swift": (
        _fp(r"^\s*import (?:SwiftUI|UIKit|Foundation)\s*$", r"\bvar body: some View\b",
            r"\bguard let\b"),
        (_fp(r"^\s*func \w+\(.*\)(?:\s*->\s*\w+)?\s*\{"), _fp(r"\blet \w+: \w+"),
         _fp(r"\bif let\b"), _fp(r"@State\b|@Published\b")),
    ),
    "php": (_fp(r"<\?php", r"\$this->\w+"), (_fp(r"\$\w+\s*=\s*"), _fp(r"\becho\b"),
                                               _fp(r"function \w+\(\$"))),
    "ruby": (
        _fp(r"^\s*require ['\"]\w+['\"]\s*$", r"\battr_(?:accessor|reader)\b",
            r"\bdo \|\w+(?:, \w+)?\|", r"^\s*puts\b"),
        (_fp(r"^\s*def \w+[?!]?(?:\(.*\))?\s*$"), _fp(r"^\s*end\s*$"), _fp(r"\.each\b"),
         _fp(r"^\s*module \w+\s*$")),
    ),
    "shell": (
        _fp(r"^\s*#!\s*/bin/(?:ba)?sh", r"^\s*(?:sudo |apt(?:-get)? |brew |systemctl |"
            r"chmod |docker |kubectl |git )"),
        (_fp(r"^\s*(?:export|echo|cd|ls|grep|cat|curl|pip|npm|mkdir|rm)\s"),
         _fp(r"\$\{?\w+\}?"), _fp(r"^\s*(?:fi|done|esac)\s*$"), _fp(r"\s\|\s\w+"),
         _fp(r"^\s*if \[\[? ")),
    ),
    "sql": (
        _fp(r"^\s*(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (?:TABLE|INDEX|VIEW)"
            r"|ALTER TABLE|WITH \w+ AS)\b", flags=re.MULTILINE | re.IGNORECASE),
        (_fp(r"\bFROM \w+", r"\bWHERE\b", r"\bJOIN\b", r"\bGROUP BY\b"),),
    ),
    "html": (_fp(r"<!DOCTYPE html>|<html\b|<(?:div|body|head|span|ul|form|button)[\s>]",
                 flags=re.IGNORECASE),
             (_fp(r"</\w+>"), _fp(r"\bclass=\""))),
    "css": (_fp(r"^\s*[.#]?[\w-]+(?:\s*[,>]\s*[.#]?[\w-]+)*\s*\{\s*$"),
            (_fp(r"^\s*(?:color|margin|padding|display|font-size|background|width|height)"
                 r"\s*:[^;]+;"),)),
    "haskell": (
        _fp(r"^\w+\s*::\s*.+->", r"^\s*import qualified\b", r"^\s*module \w+.* where\s*$",
            r"^\s*instance \w+"),
        (_fp(r"^\s*data \w+ = "), _fp(r"<-"), _fp(r"\bwhere\s*$"), _fp(r"\bMaybe\b")),
    ),
    "elixir": (_fp(r"^\s*defmodule\b", r"^\s*def \w+.*\bdo\s*$", r"\|>\s*Enum\."),
               (_fp(r"\|>"), _fp(r"%\{"), _fp(r":ok\b"), _fp(r"^\s*end\s*$"))),
    "erlang": (_fp(r"^-module\(", r"^-export\("), (_fp(r"->"), _fp(r"\.\s*$"))),
    "scala": (_fp(r"\bobject \w+ extends\b", r"\bcase class \w+", r"^\s*def \w+.*:\s*\w+.*="),
              (_fp(r"^\s*val \w+"), _fp(r"\bimplicit\b"), _fp(r"=>"))),
    "lua": (_fp(r"^\s*local \w+ = ", r"^\s*local function\b"),
            (_fp(r"\bthen\s*$"), _fp(r"^\s*end\s*$"), _fp(r"~="), _fp(r"\.\.\s*\w"))),
    "ocaml": (_fp(r"\blet rec\b", r"\bmatch \w+ with\b", r";;\s*$", r"= struct\b"),
              (_fp(r"^\s*\|\s*\w+.*->"), _fp(r"\blet \w+ ="), _fp(r"\bin\s*$"))),
    "fsharp": (_fp(r"\bprintfn\b", r"\blet mutable\b"), (_fp(r"\|>"), _fp(r"^\s*let \w+"))),
    "clojure": (_fp(r"^\s*\(defn-? ", r"^\s*\(ns "), (_fp(r"\(let \["),)),
    "julia": (_fp(r"^\s*using \w+(?:\.\w+)*\s*$", r"::(?:Int|Float)\d*\b"),
              (_fp(r"^\s*function \w+\(.*\)\s*$"), _fp(r"^\s*end\s*$"), _fp(r"\.\+|\.\*"))),
    "zig": (_fp(r"@import\(\"std\"\)", r"\bpub fn main\(\) !void"), ()),
    "r": (_fp(r"<-\s*function\(", r"^\s*library\(\w+\)", r"%>%", r"\bdata\.frame\("),
          (_fp(r"\w+ <- "), _fp(r"\bggplot\("))),
    "perl": (_fp(r"^\s*use strict;", r"\bmy \$\w+", r"=~\s*[sm]?/"), ()),
    "dart": (_fp(r"^\s*import 'package:", r"\bWidget build\("), (_fp(r"\bvoid main\(\)"),)),
    "fortran": (_fp(r"^\s*program \w+", r"\bimplicit none\b", r"\binteger\s*::",
                    flags=re.MULTILINE | re.IGNORECASE), ()),
    "cobol": (_fp(r"\bIDENTIFICATION DIVISION\b", r"\bPROCEDURE DIVISION\b", r"\bPIC X"), ()),
    "assembly": (_fp(r"^\s*section \.text", r"^\s*global _start", r"^\s*mov\s+[er]?[abcd]x,"),
                 (_fp(r"^\s*(?:push|pop|call|ret|jmp|syscall)\b"),)),
    "solidity": (_fp(r"pragma solidity", r"^\s*contract \w+"), ()),
    "objc": (_fp(r"^\s*@interface\b", r"^\s*@implementation\b", r"#import <Foundation"), ()),
    "powershell": (_fp(r"\bWrite-Host\b", r"\b(?:Get|Set|New)-[A-Z]\w+"), ()),
    "verilog": (_fp(r"\balways @\(", r"^\s*endmodule\b"), (_fp(r"^\s*assign "),)),
    "vhdl": (_fp(r"\bentity \w+ is\b", r"\bstd_logic\b", flags=re.MULTILINE | re.IGNORECASE),
             ()),
    "prolog": (_fp(r"^\w+\(.*\)\s*:-"), ()),
    "lisp": (_fp(r"^\s*\(defun ", r"^\s*\(defmacro "), ()),
    "scheme": (_fp(r"^\s*\(define \("), ()),
    "cuda": (_fp(r"__global__", r"<<<.*>>>", r"\bcudaMalloc"), ()),
    "glsl": (_fp(r"\bgl_(?:FragColor|Position)\b", r"\buniform\s+(?:vec|mat|sampler)"), ()),
    "nim": (_fp(r"^\s*proc \w+\*?\(.*\)(?::\s*\w+)?\s*=\s*$"), ()),
}  # fmt: skip

# A line looks like code (used outside fences, where code is pasted unfenced).
_CODE_LINE_RE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import|return\b|if .*[:{]\s*$|for .*[:{]\s*$|"
    r"while .*[:{]\s*$|#include|#define|package \w|func |fn |pub |let |const |var |"
    r"public |private |protected |static |function\b|[}\])]+[;,)]*\s*$|@\w+|//|/\*|\*/|"
    r"<\?php|<[a-zA-Z]+[^>]*>|</)"
    r"|[;{]\s*$|^\s{4,}\S|^\t+\S|\)\s*(?:->.*)?:\s*$|^\s*\w+(?:\.\w+)*\(.*\);?\s*$|"
    r"^\s*[\w.\[\]]+\s*[-+*/]?=\s*\S.*$"
)
_INLINE_CODE_RE = re.compile(r"`[^`\n]{1,200}`")

# ---------------------------------------------------------------------------------------
# Human-language detection (prose only).
# ---------------------------------------------------------------------------------------

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),  # kana first: Japanese also uses Han
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("bn", re.compile(r"[\u0980-\u09ff]")),
    ("ta", re.compile(r"[\u0b80-\u0bff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
)
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
_WORD_RE = re.compile(r"[^\W\d_]+")

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and is are to of that this with for it be how what can you should which "
        "from not have does my me please i we an when if will would there these they "
        "your make using use want need but into get all so just also like only its",
        "es": "el la los las una que por para con es está cómo qué función código escribe "
        "necesito quiero mi y en del al se lo más pero este esta puedes hacer usando "
        "archivo hay muy sin sobre cuando también donde tengo mis ejemplo escribir",
        "fr": "le la les des une un est et pour avec dans que qui sur pas ce cette je vous "
        "écris écrire fonction comment fichier du au aux mon ma mes peux faire utilisant "
        "il elle sont ou mais tout être voici moi très",
        "de": "der die das und ist nicht ein eine mit für auf den dem ich wie kann bitte "
        "schreibe schreib funktion datei sie es zu von im einen einer wird werden soll "
        "mein meine diese dieser noch auch oder aber wenn warum sollte",
        "pt": "o os as um uma que de não para com é em do da dos das na no como função "
        "código escreva preciso quero meu minha você pode usando arquivo mas está são "
        "isso esse essa por ao também",
        "it": "il lo gli una che di per con è non del della nel come funzione scrivi codice "
        "voglio mio puoi usando sono questo questa anche ma perché dei delle",
        "nl": "de het een en van is niet met voor op dat die ik je hoe kun schrijf functie "
        "bestand mijn deze wordt moet maak ook maar waarom naar bij",
        "pl": "i w z na się nie do to jak że jest czy funkcję funkcja napisz kod plik dla "
        "może proszę oraz ale gdy jako tego który która",
        "tr": "ve bir bu için ile de da ne nasıl fonksiyon yaz kod dosya değil olan gibi "
        "bana lütfen şu daha çok her",
        "vi": "và của là có không cho với một này được hàm viết mã tôi các những trong để khi nếu",
        "id": "dan yang di ke dari untuk dengan ini itu tidak saya buat fungsi kode bagaimana "
        "tolong adalah",
    }.items()
}
_DIACRITICS: dict[str, re.Pattern[str]] = {
    "es": re.compile(r"[ñ¿¡]"),
    "fr": re.compile(r"[èêëçœ]|\bà\b"),
    "de": re.compile(r"[äöüß]"),
    "pt": re.compile(r"[ãõ]"),
    "pl": re.compile(r"[ąćęłńśźż]"),
    "tr": re.compile(r"[ğış]"),
    "vi": re.compile(r"[ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"),
}

# ---------------------------------------------------------------------------------------
# Intent and difficulty vocabulary (prose of the user's message).
# ---------------------------------------------------------------------------------------


def _terms(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")", re.IGNORECASE)


_TRANSLATE_RE = _terms(
    r"translat\w*",
    r"port(?:ing|ed)?\b",
    r"convert\w*",
    r"rewrit\w*",
    r"re-writ\w*",
    r"transpil\w*",
    r"migrat\w*",
    r"re-?implement\w*",
    r"equivalent",
    r"counterpart",
    r"traduc\w*",
    r"tradu[iz]\w*",
    r"convier\w*",
    r"convertir",
    r"reescrib\w*",
    r"übersetz\w*",
    r"portier\w*",
    r"umschreib\w*",
    r"перепиш\w*",
    r"перевед\w*",
    r"переве\w*",
    r"портир\w*",
)
_TRANSLATE_CJK_RE = re.compile(r"翻译|转换|改写|移植|変換|書き換え|翻訳|변환|포팅|번역")
_INTEROP_RE = _terms(
    r"bindings?\b",
    r"FFI\b",
    r"interop\w*",
    r"ctypes\b",
    r"cffi\b",
    r"pybind11\b",
    r"PyO3\b",
    r"maturin\b",
    r"napi\b",
    r"N-API\b",
    r"node-gyp\b",
    r"JNI\b",
    r"cgo\b",
    r"wasm-bindgen\b",
    r"P/Invoke\b",
    r"extern \"C\"",
    r"Cython\b",
    r"SWIG\b",
    r"GraalVM polyglot",
    r"call(?:ing)? (?:\w+ ){0,3}from (?:Python|Rust|Go|C|C\+\+|Java|Node|JavaScript)\b",
    r"embed(?:ding)? (?:a |the )?(?:Lua|Python|JavaScript|V8)\b",
)
_NUMBERED_RE = re.compile(
    r"^\s*(?:\d{1,2}[.)]|[-*•]|\(\w\)|[a-h]\))\s+\S|(?<=\s)\d{1,2}[.)] (?=[A-Za-z])", re.MULTILINE
)
_SEQUENCE_RE = _terms(
    r"then\b",
    r"after that",
    r"afterwards",
    r"finally\b",
    r"next,",
    r"first,",
    r"second,",
    r"third,",
    r"step \d",
    r"phase \d",
)
_CONSTRAINT_RE = _terms(
    r"must\b",
    r"must not",
    r"should not",
    r"without\b",
    r"cannot\b",
    r"can't\b",
    r"at most\b",
    r"at least\b",
    r"no more than",
    r"within \d",
    r"O\([^)]{1,20}\)",
    r"guarantee\w*",
    r"invariant\w*",
    r"constant (?:time|memory|space)",
    r"in[- ]place\b",
    r"thread[- ]safe",
    r"lock[- ]free",
    r"wait[- ]free",
    r"zero[- ]copy",
    r"backward[s]? "
    r"compatib\w*",
    r"no (?:external )?dependenc\w*",
    r"exactly once",
    r"idempoten\w*",
    r"≤|≥|<=\s*10\^?\d|10\^\d",
    r"under \d+ ?(?:ms|MB|GB|KB|µs|us)",
    r"p99",
)

# (pattern, weight). Strong terms name hard problems on their own.
_DESIGN_TERMS = (
    (
        _terms(
            r"architect\w*",
            r"system design",
            r"microservices?",
            r"event[- ]sourc\w*",
            r"CQRS",
            r"domain[- ]driven",
            r"hexagonal",
            r"clean architecture",
            r"distributed (?:system|lock|transaction|cache|queue)s?",
            r"consensus",
            r"raft\b",
            r"paxos",
            r"shard\w*",
            r"multi[- ]tenan\w*",
            r"high[- ]availability",
            r"fault[- ]toleran\w*",
            r"horizontal\w* scal\w*",
            r"eventual consistency",
            r"saga pattern",
            r"service mesh",
            r"plugin (?:system|architecture)",
            r"trade-?offs?\b",
            r"scalab\w*",
            r"design doc",
            r"migration (?:plan|strategy)",
            r"(?:whole|entire) (?:codebase|code base|project|repo\w*|application|module)",
            r"across (?:the|all|multiple|several) (?:files|modules|services|packages)",
            r"end-to-end",
            r"zero[- ]downtime",
            r"rate limit\w*",
            r"replicat\w*",
            r"disaster recovery",
            r"schema design",
            r"data model\w*",
            r"API design",
            r"load balanc\w*",
            r"message (?:queue|broker)",
            r"kafka\b",
            r"back-?pressure",
            r"idempoten\w*",
            r"exactly[- ]once",
            r"observability",
            r"CRDT",
            r"conflict resolution",
            r"clock skew",
            r"offline[- ]first",
            r"schema version\w*",
            r"schema migration\w*",
            r"backfill\w*",
            r"dual[- ]writes?",
            r"rollback plan",
            r"sandbox\w*",
            r"backward[s]?[- ]compat\w*",
            r"step[- ]by[- ]step plan",
            r"bounded contexts?",
            r"rebalanc\w*",
            r"compiler",
            r"interpreter",
            r"bytecode",
            r"type[- ]check\w*",
            r"virtual machine",
        ),
        2,
    ),
    (
        _terms(
            r"design\w*",
            r"refactor\w*",
            r"restructur\w*",
            r"decoupl\w*",
            r"modular\w*",
            r"extensib\w*",
            r"pipeline",
            r"infrastructure",
            r"component\w*",
            r"layer\w*",
            r"abstraction\w*",
            r"interfaces",
            r"monolith\w*",
            r"scal(?:e|ing)\b",
            r"throughput",
            r"requirements?",
            r"strateg\w*",
            r"roadmap",
            r"deploy\w*",
            r"plan\b",
            r"protocol\w*",
            r"versioning",
            r"rollback\w*",
            r"parser",
        ),
        1,
    ),
)
_DEBUG_TERMS = (
    (
        _terms(
            r"race condition\w*",
            r"data race\w*",
            r"deadlock\w*",
            r"livelock\w*",
            r"memory leak\w*",
            r"leak\w* memory",
            r"segfault\w*",
            r"segmentation fault",
            r"use[- ]after[- ]free",
            r"double free",
            r"heap corruption",
            r"stack smashing",
            r"undefined behaviou?r",
            r"heisenbug",
            r"intermittent\w*",
            r"non-?deterministic\w*",
            r"only (?:happens |fails |occurs )?(?:in|under|on) (?:production|prod|load|CI)",
            r"under (?:heavy )?load",
            r"core dump\w*",
            r"SIGSEGV",
            r"SIGABRT",
            r"OOM\w*",
            r"out of memory",
            r"goroutine leak",
            r"starvation",
            r"corrupt\w*",
            r"root cause",
            r"bisect\w*",
            r"flaky",
            r"sporadic\w*",
            r"randomly (?:fails|crash"
            r"\w*|hangs)",
            r"memory (?:keeps )?grow\w*",
            r"hangs? (?:forever|indefinitely)",
            r"strict aliasing",
            r"signed overflow",
            r"different results with",
            r"-O[0-3s]\b",
            r"only in release",
            r"works locally but",
            r"ASan\b",
            r"valgrind",
            r"gdb\b",
            r"thread sanitizer|TSan\b",
            r"race detector",
        ),
        2,
    ),
    (
        _terms(
            r"crash\w*",
            r"hang(?:s|ing)?\b",
            r"freez\w*",
            r"leak\w*",
            r"panic\w*",
            r"stack ?trace",
            r"traceback",
            r"stack overflow",
            r"profil\w*",
            r"regression",
            r"debug\w*",
            r"investigat\w*",
            r"diagnos\w*",
            r"timeout\w*",
            r"slow\w*",
        ),
        1,
    ),
)
_CONCURRENCY_TERMS = (
    (
        _terms(
            r"lock[- ]free",
            r"wait[- ]free",
            r"mutex\w*",
            r"semaphore\w*",
            r"atomic\w*",
            r"memory ordering",
            r"compare[- ]and[- ]swap",
            r"CAS loop",
            r"work[- ]stealing",
            r"thread[- ]safe\w*",
            r"thread pool",
            r"condition variable",
            r"actor model",
            r"MPMC",
            r"SPSC",
            r"MPSC",
            r"concurren\w*",
            r"multi-?thread\w*",
            r"parallel\w*",
            r"goroutines?",
            r"channels?\b",
            r"linearizab\w*",
            r"happens[- ]before",
            r"RwLock",
            r"spinlock\w*",
            r"green threads",
            r"event loop",
        ),
        2,
    ),
    (
        _terms(
            r"threads?\b(?!-)",
            r"async\b",
            r"asynchronous\w*",
            r"locks?\b",
            r"synchroni\w*",
            r"workers?\b",
            r"tokio",
            r"asyncio",
            r"futures?\b",
            r"coroutines?",
        ),
        1,
    ),
)
_PERF_TERMS = (
    (
        _terms(
            r"latency",
            r"throughput",
            r"p99",
            r"p95",
            r"SIMD",
            r"vectori[sz]\w*",
            r"cache[- ](?:friendly|miss\w*|line\w*|locality)",
            r"hot path",
            r"bottleneck\w*",
            r"zero[- ]copy",
            r"allocation\w*",
            r"memory footprint",
            r"flame ?graph\w*",
            r"benchmark\w*",
            r"profil\w*",
            r"sub-?millisecond",
            r"\d+\s?(?:ms|µs|us|ns)\b",
            r"million\w* (?:of )?(?:rows|records|requests|events|items)",
            r"\d+ ?(?:GB|TB)\b",
            r"(?:10|100)x faster",
            r"GC pauses?",
        ),
        2,
    ),
    (
        _terms(
            r"performance",
            r"optimi[sz]\w*",
            r"faster",
            r"speed ?up",
            r"efficien\w*",
            r"memory usage",
            r"scal(?:e|es|ing)\b",
            r"cach\w*",
        ),
        1,
    ),
)
_PROOF_TERMS = (
    (
        _terms(
            r"prove\b",
            r"proofs?\b",
            r"formal(?:ly)? verif\w*",
            r"lemma",
            r"theorem",
            r"by induction",
            r"loop invariant",
            r"invariants?",
            r"termination",
            r"soundness",
            r"TLA\+",
            r"Coq\b",
            r"Isabelle",
            r"Dafny",
            r"model check\w*",
            r"correctness proof",
            r"prove (?:that|correctness)",
            r"amortized analysis",
        ),
        2,
    ),
    (_terms(r"correctness", r"formal\w*", r"verif\w*", r"guarantee\w*", r"complexity"), 1),
)
_ALGO_TERMS = (
    (
        _terms(
            r"dynamic programming",
            r"\bDP\b",
            r"shortest path\w*",
            r"dijkstra",
            r"bellman",
            r"NP-?hard",
            r"NP-?complete",
            r"approximation algorithm",
            r"segment tree\w*",
            r"fenwick",
            r"suffix (?:array|tree|automaton)",
            r"max(?:imum)?[- ]flow",
            r"min(?:imum)?[- ]cut",
            r"bipartite",
            r"knapsack",
            r"topological sort",
            r"minimum spanning",
            r"union[- ]find",
            r"interval tree",
            r"B-tree",
            r"skip list",
            r"bloom filter",
            r"convex hull",
            r"A\* search",
            r"branch and bound",
            r"backtracking",
            r"memoiz\w*",
            r"O\(n(?:\s*log\s*n|\^?2|²)?\)",
            r"O\(1\)",
            r"O\(log n\)",
            r"amortized",
            r"time limit",
            r"memory limit",
            r"\b[nmkq]\s*(?:<=|≤)\s*\d",
            r"10\^\d|10\*\*\d|1e\d\b",
            r"sublinear",
            r"streaming algorithm",
            r"consistent hashing",
            r"rope data structure",
            r"(?:persistent|succinct|concurrent) data structure\w*",
            r"LRU",
            r"B\+? ?-?tree\w*",
            r"red[- ]black",
            r"AVL",
            r"node split\w*",
            r"range quer\w*",
            r"edit distance",
            r"levenshtein",
            r"longest (?:common|increasing) sub\w*",
            r"(?:minimum|maximum|min|max) number of",
            r"efficient (?:solution|algorithm)",
            r"(?:<=|≤)\s*\d{4,}",
            r"(?:<=|≤)\s*\d+\s*[*·x×]\s*10",
            r"lower bound",
            r"\bcount the number of ways",
            r"modulo 10\^9|mod 1e9|1_?000_?000_?007",
        ),
        2,
    ),
    (
        _terms(
            r"algorithm\w*",
            r"graph\w*",
            r"heuristic\w*",
            r"optimal\w*",
            r"complexity",
            r"worst[- ]case",
            r"heap\b",
            r"priority queue",
            r"trie\b",
            r"constraints?",
        ),
        1,
    ),
)
_LOG_LINE_RE = re.compile(
    r"^(?:\s*at [\w$.<>/]+\(|\s*File \".*\", line \d+|[^\n]*\b(?:ERROR|WARN(?:ING)?|FATAL|"
    r"CRITICAL|panic(?:ked)?|Exception|Traceback)\b|\s*\d{4}-\d\d-\d\d[T ]\d\d:\d\d|"
    r"\s*#\d+\s+0x[0-9a-f]+|goroutine \d+ \[|\s*\[\s*\d+\.\d+\]|\s+\d+: 0x[0-9a-f]+)",
    re.MULTILINE,
)
_TEMPLATE_TOKEN_RE = re.compile(
    r"<\|[\w▁]{1,30}\|>|<｜[^｜]{1,30}｜>|\[/?INST\]|</?s>|<(?:start|end)_of_turn>|"
    r"<fim_\w+>|<(?:PRE|SUF|MID|EOT)>|\[(?:SUFFIX|PREFIX)\]|<repo_name>|<file_sep>|<filename>"
)
_CHAT_TEMPLATE_RE = re.compile(
    r"<\|im_start\|>|\[INST\]|^#{2,4} ?\w[^\n]{0,30}:\s*$|<start_of_turn>"
    r"|<\|user\|>|<\|start_header_id\|>|^(?:USER|User|Human|Question):",
    re.MULTILINE,
)
_IMPERATIVE_RE = re.compile(
    r"^\s*(?:please[, ]+)?(?:write|create|implement|explain|generate|build|make|design|"
    r"refactor|fix|convert|translate|port|describe|summari[sz]e|add|remove|rewrite|"
    r"optimi[sz]e|review|debug|document|how|what|why|when|where|which|can you|could you|"
    r"i need|i want|i'd like|help|show me|give me|list|find|tell me|is there|should i)\b",
    re.IGNORECASE | re.MULTILINE,
)
_HOLE_MARKERS: tuple[str, ...] = (
    "{{FILL_HERE}}", "<FILL_HERE>", "<FILL_ME>", "<|fill_here|>", "<CURSOR>", "<|cursor|>",
    "{{CURSOR}}", "<HOLE>", "{{HOLE}}", "<|hole|>", "<fim_hole>", "<INSERT>",
)  # fmt: skip

# Window sizes (characters) for the expensive scans.
_PROSE_WINDOW = 6000
_CODE_WINDOW = 12000
_FILE_WINDOW = 48000
_LOG_WINDOW = 48000


# ---------------------------------------------------------------------------------------
# Signals.
# ---------------------------------------------------------------------------------------

SignalKind = Literal["num", "bool", "str", "set"]

#: Every signal name → its kind; the rule validator and the docs use this table.
SIGNAL_KINDS: dict[str, SignalKind] = {
    "endpoint": "str", "has_suffix": "bool", "fim_family": "str", "fim_marker": "bool",
    "max_tokens": "num", "has_stop": "bool", "n_messages": "num", "tokens": "num",
    "user_tokens": "num", "code_chars": "num", "code_ratio": "num", "code_blocks": "num",
    "n_files": "num", "languages": "set", "code_languages": "set", "n_languages": "num",
    "n_core_languages": "num", "non_primary_languages": "set", "human_language": "str",
    "non_english": "bool", "translation_intent": "bool", "interop_intent": "bool",
    "instruction_like": "bool", "prose_words": "num", "step_count": "num",
    "constraint_count": "num", "design_score": "num", "debug_score": "num",
    "concurrency_score": "num", "performance_score": "num", "proof_score": "num",
    "algorithm_score": "num", "complexity_score": "num", "log_lines": "num",
}  # fmt: skip


@dataclass(frozen=True)
class Signals:
    """Named facts about one request; see ``docs/classifier.md`` for each one."""

    endpoint: str = "other"
    has_suffix: bool = False
    fim_family: str | None = None
    fim_marker: bool = False
    max_tokens: int | None = None
    has_stop: bool = False
    n_messages: int = 0
    tokens: int = 0
    user_tokens: int = 0
    code_chars: int = 0
    code_ratio: float = 0.0
    code_blocks: int = 0
    n_files: int = 0
    languages: frozenset[str] = frozenset()
    code_languages: frozenset[str] = frozenset()
    n_languages: int = 0
    n_core_languages: int = 0
    non_primary_languages: frozenset[str] = frozenset()
    human_language: str = "en"
    non_english: bool = False
    translation_intent: bool = False
    interop_intent: bool = False
    instruction_like: bool = False
    prose_words: int = 0
    step_count: int = 0
    constraint_count: int = 0
    design_score: int = 0
    debug_score: int = 0
    concurrency_score: int = 0
    performance_score: int = 0
    proof_score: int = 0
    algorithm_score: int = 0
    complexity_score: float = 0.0
    log_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        """All signals as a JSON-able dict (sets become sorted lists)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def _jsonable(value: object) -> object:
    if isinstance(value, frozenset | set):
        return sorted(value)
    return value


assert {f.name for f in fields(Signals)} == set(SIGNAL_KINDS)


def _endpoint_kind(endpoint: object) -> str:
    if not isinstance(endpoint, str):
        return "other"
    e = endpoint.lower().rstrip("/")
    if "chat" in e:
        return "chat"
    if e.endswith("completions") or e.endswith("/api/generate") or e.endswith("/infill"):
        return "completions"
    return "other"


def _content_text(content: object) -> str:
    """Text of a message ``content``: a string or a list of parts; other parts ignored."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str) and part.get("type", "text") in (
                    "text",
                    "input_text",
                    "output_text",
                ):
                    out.append(text)
        return "\n".join(out)
    return ""


def _estimate_tokens(text: str) -> int:
    if not text:
        return 0
    n = len(text)
    non_ascii = n - len(text.encode("ascii", "ignore"))
    # ~3.6 ASCII chars per token (code is denser than prose's ~4); most non-ASCII
    # characters (CJK, Cyrillic…) cost close to one token each.
    return math.ceil((n - non_ascii) / 3.6 + non_ascii * 0.8)


def _window(text: str, size: int) -> str:
    if len(text) <= size:
        return text
    head = size * 3 // 4
    return text[:head] + "\n" + text[-(size - head) :]


@dataclass
class _Split:
    prose: str
    code_segments: list[tuple[str, str]]  # (info string or "", code)
    code_chars: int
    code_blocks: int


def _split_prose_code(text: str) -> _Split:
    """Separate fenced and unfenced code from prose."""
    segments: list[tuple[str, str]] = []
    prose_parts: list[str] = []
    code_chars = 0
    blocks = 0
    pos = 0
    if "```" in text or "~~~" in text:
        for m in _FENCE_RE.finditer(text):
            prose_parts.append(text[pos : m.start()])
            segments.append((m.group(2).strip(), m.group(3)))
            code_chars += len(m.group(3))
            blocks += 1
            pos = m.end()
    prose_parts.append(text[pos:])
    prose_lines: list[str] = []
    unfenced: list[str] = []
    for part in prose_parts:
        for line in part.splitlines():
            if not line.strip():
                continue
            if _CODE_LINE_RE.search(line) and not _looks_like_sentence(line):
                unfenced.append(line)
                code_chars += len(line)
            else:
                if unfenced:
                    segments.append(("", "\n".join(unfenced)))
                    unfenced = []
                prose_lines.append(line)
    if unfenced:
        segments.append(("", "\n".join(unfenced)))
    prose = _INLINE_CODE_RE.sub(" ", "\n".join(prose_lines))
    return _Split(prose, segments, code_chars, blocks)


_SENTENCE_RE = re.compile(r"^\s*(?:\d+[.)]\s+|[-*•]\s+)?[A-Z¿¡\w][^;{}=<>]*[a-z][.?!:]\s*$|"
                          r"^\s*[^\x00-\x7f]", re.UNICODE)  # fmt: skip


def _looks_like_sentence(line: str) -> bool:
    words = line.split()
    if len(words) < 4:
        return False
    if _SENTENCE_RE.search(line):
        return True
    letters = sum(1 for w in words if w.isalpha())
    return letters >= 0.7 * len(words)


_COMMENT_LINE_RE = re.compile(r"^\s*(?:#(?![#!\s]*\w+:\s*$)|//|--|/\*|\*|;;|%|<!--)")


def _ends_in_code(text: str) -> bool:
    """A raw completion prompt that stops inside code (a continuation, not a question)."""
    tail = text[-400:]
    if tail.endswith((" ", "\t")) and "\n" in tail and tail.rsplit("\n", 1)[1].strip() == "":
        return True  # ends on indentation: the cursor is inside a block
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return False
    line = lines[-1]
    if line.rstrip().endswith(
        (":", "{", "(", "[", "=", ",", "=>", "->")
    ) and not _looks_like_sentence(line):
        return True
    return bool(_CODE_LINE_RE.search(line) or _COMMENT_LINE_RE.search(line)) and not (
        _looks_like_sentence(line)
    )


def _fence_language(info: str) -> str | None:
    if not info:
        return None
    word = re.split(r"[\s{:,]", info, maxsplit=1)[0].lower().strip(".")
    lang = _ALIASES.get(word)
    if lang is None and "." in word:  # "```src/main.rs"
        lang = _ALIASES.get(word.rsplit(".", 1)[1])
    return lang


def _syntax_language(code: str) -> str | None:
    code = code[:4000]
    best, best_score = None, 0
    for lang, (decisive, support) in _SYNTAX.items():
        score = 0
        if decisive is not None:
            score += 3 * min(2, len(decisive.findall(code)))
        if score == 0 and not support:
            continue
        for pat in support:
            if pat.search(code):
                score += 1
        if score > best_score:
            best, best_score = lang, score
    if best_score < 3:
        return None
    # A TypeScript segment also matches JavaScript; C++ also matches C.
    return best


def _prose_languages(prose: str) -> set[str]:
    found: set[str] = set()
    for m in _STRONG_RE.finditer(prose):
        if _COMPARISON_BEFORE.search(prose, max(0, m.start() - 30), m.start()):
            continue
        lang = _STRONG_LOOKUP.get(m.group(1).lower())
        if lang is not None:
            found.add(lang)
    for m in _WEAK_RE.finditer(prose):
        name = m.group(1) or m.group(2)
        if _COMPARISON_BEFORE.search(prose, max(0, m.start() - 30), m.start()):
            continue
        found.add(_WEAK_NAMES[name])
    return found


def _human_language(prose: str) -> str:
    window = _window(prose, _PROSE_WINDOW)
    non_ascii = "".join(_NON_ASCII_RE.findall(window))
    if non_ascii:
        letters = len(_WORD_RE.findall(window))  # words, a cheap denominator
        for lang, pattern in _SCRIPTS:
            n = len(pattern.findall(non_ascii))
            if lang == "ja" and n >= 2:
                return "ja"
            if n >= 4 and n >= 0.15 * max(1, letters):
                return lang
            if n >= 12:
                return lang
    words = [w.lower() for w in _WORD_RE.findall(window)]
    if len(words) < 3:
        return "en"
    scores: dict[str, float] = {}
    for lang, stop in _STOPWORDS.items():
        scores[lang] = float(sum(1 for w in words if w in stop))
    for lang, pattern in _DIACRITICS.items():
        scores[lang] += 0.5 * min(10, len(pattern.findall(non_ascii))) if non_ascii else 0.0
    english = scores.pop("en")
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    if best >= 2 and best > 1.3 * english and best >= 0.12 * len(words):
        return lang
    return "en"


def _weighted(text: str, table: tuple[tuple[re.Pattern[str], int], ...]) -> int:
    score = 0
    for pattern, weight in table:
        hits = {m.lower() for m in pattern.findall(text)}
        score += weight * len(hits)
    return score


def _as_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


def extract_signals(
    endpoint: str,
    body: Mapping[str, Any],
    primary_languages: Iterable[str] = DEFAULT_PRIMARY_LANGUAGES,
) -> Signals:
    """Read ``body`` (an OpenAI chat or completion request) into :class:`Signals`.

    Total: any input, however malformed, gives a result and never raises.
    """
    try:
        return _extract(endpoint, body, frozenset(primary_languages))
    except Exception:  # noqa: BLE001 - the classifier must be total; odd input → defaults
        return Signals(endpoint=_endpoint_kind(endpoint))


def _extract(endpoint: str, body: Mapping[str, Any], primary: frozenset[str]) -> Signals:
    kind = _endpoint_kind(endpoint)
    if not isinstance(body, Mapping):
        return Signals(endpoint=kind)

    # --- gather text -------------------------------------------------------------------
    all_text: list[str] = []  # everything, for the token estimate
    user_msgs: list[str] = []  # user-authored text, oldest first
    other_tokens = 0  # non-system, non-user (assistant, tool) text
    system_tokens = 0
    n_messages = 0
    fim_parts: fim.FimParts | None = None
    hole = False
    has_suffix = False

    messages = body.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            if not isinstance(msg, Mapping):
                continue
            n_messages += 1
            text = _content_text(msg.get("content"))
            role = msg.get("role")
            if role in ("system", "developer"):
                system_tokens += _estimate_tokens(text)
            elif role == "user" or role is None:
                user_msgs.append(text)
            else:
                other_tokens += _estimate_tokens(text)
            all_text.append(text)
    prompt = body.get("prompt")
    prompt_text = ""
    if isinstance(prompt, str):
        prompt_text = prompt
    elif isinstance(prompt, list):
        prompt_text = "\n".join(p for p in prompt if isinstance(p, str))
    for key in ("input_prefix", "input_suffix"):  # llama.cpp /infill
        if isinstance(body.get(key), str):
            has_suffix = has_suffix or key == "input_suffix"
            prompt_text = prompt_text + "\n" + body[key] if prompt_text else body[key]
    suffix = body.get("suffix")
    if isinstance(suffix, str):
        has_suffix = True
        all_text.append(suffix)
    if prompt_text:
        user_msgs.append(prompt_text)
        all_text.append(prompt_text)

    for text in (prompt_text, *user_msgs[-2:]):
        if text and fim_parts is None:
            fim_parts = fim.detect(text)
            if fim_parts is None and any(marker in text for marker in _HOLE_MARKERS):
                hole = True

    user_tokens = sum(_estimate_tokens(t) for t in user_msgs)
    tokens = (
        user_tokens
        + other_tokens
        + system_tokens
        + (_estimate_tokens(suffix) if isinstance(suffix, str) else 0)
    )

    max_tokens = None
    for key in ("max_tokens", "max_completion_tokens", "n_predict"):
        max_tokens = _as_int(body.get(key))
        if max_tokens is not None:
            break
    options = body.get("options")
    if max_tokens is None and isinstance(options, Mapping):
        max_tokens = _as_int(options.get("num_predict"))
    stop = body.get("stop")
    has_stop = bool(stop) and isinstance(stop, str | list)

    # --- the user's request ------------------------------------------------------------
    last = user_msgs[-1] if user_msgs else ""
    if fim_parts is not None:
        last = fim_parts.prefix + "\n" + fim_parts.suffix
    last = _window(last, _CODE_WINDOW + _PROSE_WINDOW)
    if "<" in last or "[" in last:
        last = _TEMPLATE_TOKEN_RE.sub(" ", last)
    split = _split_prose_code(last)
    prose = split.prose
    if len(_WORD_RE.findall(prose[:400])) < 4 and len(user_msgs) > 1:
        # The last message is only code: the instruction is in an earlier one.
        earlier = _split_prose_code(_window(user_msgs[-2], _PROSE_WINDOW))
        prose = earlier.prose + "\n" + prose
        split.code_segments.extend(earlier.code_segments)
    prose_w = _window(prose, _PROSE_WINDOW)
    words = _WORD_RE.findall(prose_w)

    # Languages: fences, syntax, file names, shebangs, and names in prose.
    code_langs: set[str] = set()
    budget = _CODE_WINDOW
    for info, code in split.code_segments:
        lang = _fence_language(info)
        if lang is None and budget > 0:
            lang = _syntax_language(code)
            budget -= min(len(code), 4000)
        if lang is not None:
            code_langs.add(lang)
    joined_user = "\n".join(user_msgs)
    file_scan = _window(joined_user, _FILE_WINDOW)
    files: set[str] = set()
    for m in _FILE_RE.finditer(file_scan):
        name = m.group(1) or m.group(3)
        files.add(name.lower())
        ext = (m.group(2) or "").lower()
        if ext in _CODE_EXTENSIONS:
            lang = _EXT_LANG.get(ext) or _ALIASES.get(ext)
            if lang is not None:
                code_langs.add(lang)
    for m in _FILE_HEADER_RE.finditer(file_scan):
        name = next((g for g in m.groups() if g), None)
        if name:
            files.add(name.lower().lstrip("./"))
    for m in _SHEBANG_RE.finditer(file_scan[:_CODE_WINDOW]):
        code_langs.add(_SHEBANG_LANG.get(m.group(1), "shell"))
    if "cpp" in code_langs:
        code_langs.discard("c")  # C++ code matches C fingerprints and .h headers
    if "typescript" in code_langs:
        code_langs.discard("javascript")
    mentioned = _prose_languages(prose_w)
    languages = frozenset(code_langs | mentioned)
    core = {lang for lang in languages if lang not in ANCILLARY_LANGUAGES}
    # "TypeScript" with JavaScript code is one ecosystem, not two languages.
    if {"typescript", "javascript"} <= core and not (
        _TRANSLATE_RE.search(prose_w) or _TRANSLATE_CJK_RE.search(prose_w)
    ):
        core.discard("javascript")
    if {"c", "cpp"} <= core and not ("c" in code_langs and "cpp" in code_langs):
        core.discard("c")

    # Intent and difficulty.
    human = _human_language(prose)
    translate = bool(_TRANSLATE_RE.search(prose_w) or _TRANSLATE_CJK_RE.search(prose_w))
    translation_intent = translate and len(languages) >= 2
    interop = bool(_INTEROP_RE.search(prose_w))
    step_count = len(_NUMBERED_RE.findall(prose_w)) + len(_SEQUENCE_RE.findall(prose_w))
    constraint_count = len(_CONSTRAINT_RE.findall(prose_w))
    design = _weighted(prose_w, _DESIGN_TERMS)
    debug = _weighted(prose_w, _DEBUG_TERMS)
    concurrency = _weighted(prose_w, _CONCURRENCY_TERMS)
    perf = _weighted(prose_w, _PERF_TERMS)
    proof = _weighted(prose_w, _PROOF_TERMS)
    algo = _weighted(prose_w, _ALGO_TERMS)
    log_lines = len(_LOG_LINE_RE.findall(_window(joined_user, _LOG_WINDOW)))
    if log_lines >= 5:
        debug += 2
    complexity = (
        design + debug + concurrency + perf + proof + algo
        + max(0, step_count - 3) * 0.5 + max(0, constraint_count - 2) * 0.5
        + min(4.0, user_tokens / 1000)
    )  # fmt: skip

    instruction_like = bool(
        _CHAT_TEMPLATE_RE.search(prompt_text[:4000] if prompt_text else last[:4000])
    ) or (
        not _ends_in_code(prompt_text if prompt_text else last)
        and bool(
            (len(words) >= 4 and _IMPERATIVE_RE.search(prose_w[:2000]))
            or (len(words) >= 8 and split.code_chars < 0.4 * len(last))
        )
    )
    if kind == "chat":
        instruction_like = True
    last_len = len(last) or 1

    return Signals(
        endpoint=kind,
        has_suffix=has_suffix,
        fim_family=fim_parts.family if fim_parts is not None else None,
        fim_marker=fim_parts is not None or hole,
        max_tokens=max_tokens,
        has_stop=has_stop,
        n_messages=n_messages,
        tokens=tokens,
        user_tokens=user_tokens,
        code_chars=split.code_chars,
        code_ratio=round(min(1.0, split.code_chars / last_len), 3),
        code_blocks=split.code_blocks,
        n_files=len(files),
        languages=languages,
        code_languages=frozenset(code_langs),
        n_languages=len(languages),
        n_core_languages=len(core),
        non_primary_languages=frozenset(languages - primary),
        human_language=human,
        non_english=human != "en",
        translation_intent=translation_intent,
        interop_intent=interop,
        instruction_like=instruction_like,
        prose_words=len(words),
        step_count=step_count,
        constraint_count=constraint_count,
        design_score=design,
        debug_score=debug,
        concurrency_score=concurrency,
        performance_score=perf,
        proof_score=proof,
        algorithm_score=algo,
        complexity_score=round(complexity, 2),
        log_lines=log_lines,
    )


# ---------------------------------------------------------------------------------------
# Configuration: rules and their validation.
# ---------------------------------------------------------------------------------------

OPS: tuple[str, ...] = (">", ">=", "<", "<=", "==", "!=", "in", "contains", "is")
_COMPACT_OPS: dict[str, str] = {
    "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!=", "in": "in",
    "contains": "contains", "is": "is",
}  # fmt: skip
_OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "num": (">", ">=", "<", "<=", "==", "!=", "in", "is"),
    "bool": ("==", "!=", "is"),
    "str": ("==", "!=", "in", "is"),
    "set": ("contains", "is"),
}


class Condition(BaseModel):
    """One node of a rule's condition tree: exactly one of ``all``, ``any``, ``not`` or a
    leaf ``signal``/``op``/``value`` (compact leaf: ``{signal: tokens, gte: 3000}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    signal: str | None = None
    op: str | None = None
    value: Any = Field(default=None, validate_default=True)
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _compact_leaf(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "signal" in data and "op" not in data:
            compact = [k for k in data if k in _COMPACT_OPS]
            if len(compact) == 1:
                rest = {k: v for k, v in data.items() if k != compact[0]}
                return {**rest, "op": _COMPACT_OPS[compact[0]], "value": data[compact[0]]}
        return data

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, v: str | None) -> str | None:
        if v is not None and v not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal {v!r} (known: {', '.join(SIGNAL_KINDS)})")
        return v

    @field_validator("op")
    @classmethod
    def _known_op(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if v not in OPS:
            raise ValueError(
                f"unknown op {v!r} (known: {', '.join(OPS)}; compact keys: "
                f"{', '.join(_COMPACT_OPS)})"
            )
        signal = info.data.get("signal")
        if signal in SIGNAL_KINDS:
            allowed = _OPS_BY_KIND[SIGNAL_KINDS[signal]]
            if v not in allowed:
                raise ValueError(
                    f"op {v!r} does not apply to {SIGNAL_KINDS[signal]} signal {signal!r} "
                    f"(use one of: {', '.join(allowed)})"
                )
        return v

    @field_validator("value")
    @classmethod
    def _value_type(cls, v: Any, info: ValidationInfo) -> Any:
        signal, op = info.data.get("signal"), info.data.get("op")
        if signal not in SIGNAL_KINDS or op is None:
            return v
        kind = SIGNAL_KINDS[signal]
        if op == "is":
            if v is not None and not isinstance(v, bool):
                raise ValueError(f"op 'is' needs true, false or null, got {v!r}")
            return v
        if op == "in":
            if not isinstance(v, list) or not v:
                raise ValueError(f"op 'in' needs a non-empty list, got {v!r}")
            for item in v:
                _check_scalar(kind, signal, item)
            return tuple(v)
        if op == "contains":
            if isinstance(v, list):
                if not v or not all(isinstance(i, str) for i in v):
                    raise ValueError(f"op 'contains' needs a string or list of strings, got {v!r}")
                return tuple(v)
            if not isinstance(v, str):
                raise ValueError(f"op 'contains' needs a string or list of strings, got {v!r}")
            return v
        _check_scalar(kind, signal, v)
        return v

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [
            name
            for name, present in (
                ("all", self.all is not None),
                ("any", self.any is not None),
                ("not", self.not_ is not None),
                ("signal", self.signal is not None),
            )
            if present
        ]
        if len(forms) != 1:
            raise ValueError(
                "a condition needs exactly one of all, any, not, or signal+op+value; "
                f"got {', '.join(forms) or 'none'}"
            )
        if self.signal is not None and self.op is None:
            raise ValueError(
                f"condition on signal {self.signal!r} needs op and value "
                f"(e.g. {{signal: {self.signal}, op: '>=', value: 1}} or a compact key)"
            )
        if self.signal is None and self.op is not None:
            raise ValueError("op given without signal")
        if (self.all is not None and not self.all) or (self.any is not None and not self.any):
            raise ValueError("all/any need at least one condition")
        return self

    def signals(self) -> list[str]:
        """Signal names this condition reads, in order, without repeats."""
        if self.signal is not None:
            return [self.signal]
        out: list[str] = []
        for child in (self.all or []) + (self.any or []) + ([self.not_] if self.not_ else []):
            for name in child.signals():
                if name not in out:
                    out.append(name)
        return out


def _check_scalar(kind: str, signal: str, v: Any) -> None:
    if kind == "num" and (isinstance(v, bool) or not isinstance(v, int | float)):
        raise ValueError(f"signal {signal!r} is a number; got {v!r}")
    if kind == "bool" and not isinstance(v, bool):
        raise ValueError(f"signal {signal!r} is true/false; got {v!r}")
    if kind == "str" and v is not None and not isinstance(v, str):
        raise ValueError(f"signal {signal!r} is a string; got {v!r}")
    if kind == "set":
        raise ValueError(f"signal {signal!r} is a set; use op 'contains' or 'is'")


def _check_class(v: str) -> str:
    if v not in CLASSES:
        raise ValueError(f"unknown class {v!r} (known: {', '.join(CLASSES)})")
    return v


class Rule(BaseModel):
    """A named condition that, when it holds, proposes ``class``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    class_: str = Field(alias="class")
    when: Condition
    description: str = ""

    @field_validator("class_")
    @classmethod
    def _known_class(cls, v: str) -> str:
        return _check_class(v)


def _c(signal: str, op: str, value: Any) -> dict[str, Any]:
    return {"signal": signal, "op": op, "value": value}


# The shipped defaults; config/classifier.default.yaml says the same thing in YAML.
_DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "fim-markers", "class": "completion", "when": _c("fim_marker", "is", True)},
    {"name": "suffix-field", "class": "completion", "when": _c("has_suffix", "is", True)},
    {"name": "code-continuation", "class": "completion",
     "when": {"all": [_c("endpoint", "==", "completions"),
                      _c("instruction_like", "is", False)]}},
    {"name": "long-context", "class": "complex",
     "when": {"any": [_c("user_tokens", ">=", 3000), _c("tokens", ">=", 8000),
                      _c("n_files", ">=", 4), _c("log_lines", ">=", 30)]}},
    {"name": "hard-problem", "class": "complex", "when": _c("complexity_score", ">=", 3)},
    {"name": "deep-debugging", "class": "complex", "when": _c("debug_score", ">=", 2)},
    {"name": "translation", "class": "multi-language",
     "when": {"any": [_c("translation_intent", "is", True), _c("interop_intent", "is", True)]}},
    {"name": "several-languages", "class": "multi-language",
     "when": _c("n_core_languages", ">=", 2)},
    {"name": "non-primary-language", "class": "multi-language",
     "when": _c("non_primary_languages", "is", True)},
    {"name": "non-english", "class": "multi-language", "when": _c("non_english", "is", True)},
]  # fmt: skip


def _default_rules() -> list[Rule]:
    return [Rule.model_validate(r) for r in _DEFAULT_RULES]


class ClassifierConfig(BaseModel):
    """The ``classifier:`` section of the router config.

    ``rules`` replaces the shipped rules entirely when given. ``order`` ranks classes
    when several rules match; classes it leaves out rank after the listed ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: list[str] = Field(default_factory=lambda: list(DEFAULT_ORDER))
    primary_languages: list[str] = Field(default_factory=lambda: list(DEFAULT_PRIMARY_LANGUAGES))
    default_class: str = "instruction"
    rules: list[Rule] = Field(default_factory=_default_rules)

    @field_validator("order")
    @classmethod
    def _valid_order(cls, v: list[str]) -> list[str]:
        for name in v:
            _check_class(name)
        if len(set(v)) != len(v):
            raise ValueError(f"order lists a class twice: {v}")
        return v

    @field_validator("primary_languages")
    @classmethod
    def _valid_languages(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for name in v:
            lang = _ALIASES.get(str(name).lower())
            if lang is None:
                raise ValueError(
                    f"unknown language {name!r} (known: {', '.join(sorted(KNOWN_LANGUAGES))})"
                )
            out.append(lang)
        return out

    @field_validator("default_class")
    @classmethod
    def _valid_default(cls, v: str) -> str:
        return _check_class(v)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> ClassifierConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rules: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return self


# ---------------------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------------------

_Pred = Callable[[Signals], bool]


def _compile(cond: Condition) -> _Pred:
    if cond.all is not None:
        parts = [_compile(c) for c in cond.all]
        return lambda s: all(p(s) for p in parts)
    if cond.any is not None:
        parts = [_compile(c) for c in cond.any]
        return lambda s: any(p(s) for p in parts)
    if cond.not_ is not None:
        inner = _compile(cond.not_)
        return lambda s: not inner(s)
    assert cond.signal is not None and cond.op is not None
    name, op, want = cond.signal, cond.op, cond.value

    def leaf(s: Signals) -> bool:
        got = getattr(s, name)
        if op == "is":
            return got is None if want is None else bool(got) is want
        if op == "==":
            return bool(got == want)
        if op == "!=":
            return bool(got != want)
        if op == "in":
            return got in want
        if op == "contains":
            if isinstance(want, tuple):
                return any(w in got for w in want)
            return want in got
        if got is None:
            return False
        if op == ">":
            return bool(got > want)
        if op == ">=":
            return bool(got >= want)
        if op == "<":
            return bool(got < want)
        return bool(got <= want)

    return leaf


@dataclass(frozen=True)
class Classification:
    """The decision: class, deciding rule, a short reason and the deciding signals."""

    cls: str
    rule: str
    reason: str
    signals: dict[str, Any]
    all_signals: Signals
    matched: tuple[str, ...] = ()

    def signals_dict(self) -> dict[str, Any]:
        """Every signal, JSON-able (for logs and debug headers)."""
        return self.all_signals.as_dict()


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    cls: str
    rank: int
    pred: _Pred
    reads: tuple[str, ...]


class Classifier:
    """Rules compiled once from a :class:`ClassifierConfig`; :meth:`classify` is pure."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        order = list(self.config.order) + [c for c in DEFAULT_ORDER if c not in self.config.order]
        self._rank = {c: i for i, c in enumerate(order)}
        self._primary = frozenset(self.config.primary_languages)
        self._rules = [
            _CompiledRule(r.name, r.class_, self._rank[r.class_], _compile(r.when),
                          tuple(r.when.signals()))
            for r in self.config.rules
        ]  # fmt: skip

    def signals(self, endpoint: str, body: Mapping[str, Any]) -> Signals:
        return extract_signals(endpoint, body, self._primary)

    def classify(self, endpoint: str, body: Mapping[str, Any]) -> Classification:
        """Classify one request. Never raises."""
        sig = self.signals(endpoint, body)
        best: _CompiledRule | None = None
        matched: list[str] = []
        for rule in self._rules:
            try:
                ok = rule.pred(sig)
            except Exception:  # noqa: BLE001 - e.g. comparing None; treat as no match
                ok = False
            if ok:
                matched.append(rule.name)
                if best is None or rule.rank < best.rank:
                    best = rule
        if best is None:
            cls = self.config.default_class
            return Classification(cls, "default", "no rule matched", {}, sig, ())
        deciding = {name: _jsonable(getattr(sig, name)) for name in best.reads}
        shown = ", ".join(f"{k}={v}" for k, v in deciding.items())
        return Classification(
            best.cls, best.name, f"rule {best.name}: {shown}", deciding, sig, tuple(matched)
        )
