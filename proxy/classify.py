"""Request classifier: an OpenAI-style request body → one class and the reason. Pure.

Classes (names are fixed):

* ``completion``: editor autocomplete / fill-in-the-middle.
* ``instruction``: write, change or explain code from a plain instruction (the default).
* ``complex``: long context, design/architecture, deep debugging, concurrency,
  performance, proofs, algorithms under constraints.
* ``multi-language``: several programming languages (translate, port, bindings), a
  language outside ``primary_languages``, or a prompt not written in English.

Design, in two stages:

1. Signals. The body is read into named facts (:class:`Signals`: token estimate, FIM
   markers, detected languages, vocabulary scores…). Cheap signals (endpoint, FIM,
   suffix, token counts) are read first; the rest (code/prose split, languages, human
   language, vocabulary) only when a rule asks for one of them, so autocomplete traffic
   never pays for prose analysis. Expensive scans read bounded windows of text (the
   head and tail of the last user message), and vocabulary is matched by dictionary
   lookups on word tokens rather than by big regex alternations, so the cost stays flat
   for long prompts. Language and intent signals read what the user wrote (the last
   user message, or the one before it when the last is only code); system prompts
   count only toward ``tokens``.
2. Rules. Each rule proposes a class when its condition holds. The decision is the
   matching rule whose class comes first in ``order``; among rules of the same class,
   the one listed first. Rules are evaluated in exactly that order and evaluation stops
   at the first match, which gives the same answer as "evaluate all, then pick". No
   match → ``default_class`` with rule ``"default"``.

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
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from proxy import fim

__all__ = [
    "CLASSES",
    "Classification",
    "Classifier",
    "ClassifierConfig",
    "Condition",
    "KNOWN_LANGUAGES",
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


def _table(spec: str) -> dict[str, str]:
    """'a b:x c' → {'a': 'a', 'b': 'x', 'c': 'c'}: compact alias tables."""
    out: dict[str, str] = {}
    for item in spec.split():
        key, _, value = item.partition(":")
        out[key] = value or key
    return out


# Every spelling (fence info string, file extension, alias) → canonical language name.
_ALIASES: dict[str, str] = _table(
    "python py:python python3:python py3:python ipython:python pyi:python ipynb:python "
    "javascript js:javascript node:javascript nodejs:javascript jsx:javascript "
    "mjs:javascript cjs:javascript vue:javascript svelte:javascript typescript "
    "ts:typescript tsx:typescript java kotlin kt:kotlin kts:kotlin c h:c cpp c++:cpp "
    "cxx:cpp cc:cpp hpp:cpp hh:cpp csharp c#:csharp cs:csharp dotnet:csharp go "
    "golang:go rust rs:rust swift php ruby rb:ruby shell sh:shell bash:shell zsh:shell "
    "console:shell shellscript:shell fish:shell sql postgresql:sql postgres:sql mysql:sql "
    "sqlite:sql plsql:sql tsql:sql psql:sql html htm:html xhtml:html css scss:css sass:css "
    "less:css haskell hs:haskell elixir ex:elixir exs:elixir erlang erl:erlang ocaml "
    "ml:ocaml mli:ocaml fsharp fs:fsharp f#:fsharp fsx:fsharp clojure clj:clojure "
    "cljs:clojure julia jl:julia perl pl:perl pm:perl objc objective-c:objc "
    "objectivec:objc mm:objc powershell ps1:powershell pwsh:powershell assembly "
    "asm:assembly nasm:assembly solidity sol:solidity verilog sv:verilog "
    "systemverilog:verilog vhdl vhd:vhdl fortran f90:fortran f95:fortran cobol "
    "cob:cobol cbl:cobol scheme scm:scheme racket rkt:racket lisp elisp:lisp el:lisp "
    "commonlisp:lisp cuda cu:cuda glsl hlsl:glsl frag:glsl vert:glsl nim zig dart lua r "
    "scala sc:scala groovy gradle:groovy prolog matlab crystal elm purescript ada pascal "
    "delphi:pascal vb vbnet:vb vba:vb apex abap mojo gleam nix wasm wat:wasm "
    "webassembly:wasm coq lean idris agda tla dafny smalltalk awk tcl d"
)

#: Every language name the classifier can report (valid in ``primary_languages``).
KNOWN_LANGUAGES: frozenset[str] = frozenset(_ALIASES.values())

# File extensions. Data/config formats count toward ``n_files`` but name no language.
_DATA_EXTENSIONS = frozenset(
    "json yaml yml toml ini cfg conf md rst txt xml csv lock env proto graphql gql tf hcl "
    "mk cmake properties plist sbt".split()
)
_CODE_EXTENSIONS = frozenset(
    "py pyi js mjs cjs jsx ts tsx java kt kts c h cc cpp cxx hpp cs go rs swift php rb sh "
    "bash zsh sql html htm css scss sass less vue svelte hs ex exs erl ml mli fs fsx clj "
    "cljs jl pl pm mm ps1 asm sol sv vhd f90 f95 cob cbl scm rkt cu glsl frag vert nim "
    "zig dart lua scala groovy ipynb".split()
)
_FILE_EXT_RE = re.compile(
    r"\.("
    + "|".join(sorted(_CODE_EXTENSIONS | _DATA_EXTENSIONS, key=len, reverse=True))
    + r")(?![\w(-])",
    re.IGNORECASE,
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
_SPECIAL_FILES = ("Dockerfile", "Makefile", "CMakeLists.txt", "Cargo.toml", "go.mod")
_HEADER_NEEDLES = (
    "diff --git a/", "+++ b/", "file: ", "File: ", "FILE: ", "filename: ", "Filename: ",
    "path: ", "Path: ",
)  # fmt: skip
_BANNER_RE = re.compile(r"^={3,} *(\S+\.\w+) *={3,}", re.MULTILINE)


def _header_names(text: str, limit: int = 400) -> list[str]:
    """File names from headers: ``diff --git a/x``, ``# file: x.py``, ``=== x.go ===``."""
    out: list[str] = []
    for needle in _HEADER_NEEDLES:
        pos = text.find(needle)
        while pos >= 0 and len(out) < limit:
            end = text.find("\n", pos)
            rest = text[pos + len(needle) : end if end >= 0 else len(text)].split()
            if rest and "." in rest[0]:
                out.append(rest[0])
            pos = text.find(needle, pos + len(needle))
    if "===" in text:
        out += _BANNER_RE.findall(text)
    return out


# Language names in prose. "Strong" names are unambiguous words (matched in any case);
# "weak" ones (Go, C, R, Swift…) are ordinary words or letters and count only with a
# context that makes them a language ("in Go", "to C", "Go code", "Swift package").
_STRONG_NAMES: dict[str, str] = _table(
    "python python3:python javascript typescript nodejs:javascript java kotlin c++:cpp "
    "cpp c#:csharp csharp golang:go rust php bash:shell powershell sql html css haskell "
    "elixir erlang ocaml f#:fsharp fsharp clojure perl fortran cobol scala lua zig "
    "solidity verilog systemverilog:verilog vhdl matlab groovy racket prolog lisp cuda "
    "webassembly:wasm purescript smalltalk vba:vb delphi:pascal abap mojo gleam idris "
    "agda dafny tla+:tla coq glsl hlsl:glsl django:python flask:python fastapi:python "
    "numpy:python pandas:python pytorch:python laravel:php jquery:javascript pyo3:rust "
    "tokio:rust asyncio:python"
)
_NAME_PHRASES: dict[tuple[str, ...], str] = {
    ("shell", "script"): "shell", ("visual", "basic"): "vb", ("common", "lisp"): "lisp",
    ("ruby", "on", "rails"): "ruby", ("spring", "boot"): "java", ("objective", "c"): "objc",
    ("node", "js"): "javascript", ("asp", "net"): "csharp", ("vb", "net"): "vb",
    ("x86", "assembly"): "assembly", ("arm", "assembly"): "assembly",
}  # fmt: skip
_WEAK_NAMES: dict[str, str] = _table(
    "Go:go C:c R:r Swift:swift Dart:dart Julia:julia Elm:elm Crystal:crystal Nim:nim "
    "Ada:ada Scheme:scheme Pascal:pascal Ruby:ruby Lean:lean Nix:nix Apex:apex Tcl:tcl "
    "AWK:awk Awk:awk Wasm:wasm Assembly:assembly assembly:assembly"
)
_WEAK_BEFORE = frozenset(
    "in to into from using use with via and or nor for pure plain idiomatic modern native "
    "vs versus write writing learn learning port rewrite translate convert".split()
)
_WEAK_SKIP = frozenset("a an the some simple small basic short quick tiny idiomatic modern".split())
_WEAK_AFTER = frozenset(
    "code codes program programs version implementation port library libraries module "
    "modules package packages crate binary binding bindings extension api abi header "
    "headers function functions struct structs class script scripts service services "
    "client server app application source compiler side equivalent developer project "
    "backend frontend cli tool routine routines generics interface macro macros file "
    "files language lang toolchain sdk runtime worker microservice idiom idioms syntax "
    "proc procs trait traits closure closures snippet equivalents type types s".split()
)
_COMPARISON_WORDS = frozenset("like unlike akin".split())
# "a Java developer learning Python": the first language is background, not the task.
_BACKGROUND_AFTER = frozenset(
    "developer developers dev devs programmer programmers background".split()
)
_COMPARISON_PAIRS = frozenset(
    {("similar", "to"), ("inspired", "by"), ("compared", "to"), ("compared", "with"),
     ("as", "in"), ("style", "of"), ("equivalent", "of"), ("coming", "from"),
     ("background", "in"), ("experience", "in"), ("experience", "with")}
)  # fmt: skip

_FENCE_RE = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_SHEBANG_RE = re.compile(
    r"^#!\s*/\S*?(?:env\s+)?(python3?|node|bash|sh|zsh|ruby|perl|php|deno|bun|lua|Rscript|pwsh)\b",
    re.MULTILINE,
)
_SHEBANG_LANG = _table(
    "python python3:python node:javascript bash:shell sh:shell zsh:shell ruby perl php "
    "deno:typescript bun:javascript lua Rscript:r pwsh:powershell"
)

# Syntax fingerprints: distinctive code tokens with weights. A code segment goes to the
# best-scoring language (≥ 4 and clearly ahead of the runner-up).
_CODE_TOKEN_RE = re.compile(
    r"[A-Za-z_]\w*|:=|=>|->|::|===|!==|<\?php|</?[a-zA-Z]+\d?|#\w+|\$\w+|\|>|<-|@\w+"
)
_LANG_TOKENS: dict[str, str] = {
    "python": "def:2 elif:4 self:2 None:2 True:1 False:1 lambda:2 __init__:4 __name__:4 "
    "print:1 pass:2 except:3 raise:2 isinstance:4 kwargs:3 nonlocal:4 yield:1 len:1 "
    "range:1 dict:1 @property:3 @dataclass:4 import:1 from:1 is:1 not:1 and:1 or:1",
    "javascript": "const:2 let:1 function:2 =>:1 console:4 ===:4 !==:4 undefined:3 "
    "require:2 exports:3 document:3 window:2 var:1 typeof:2 prototype:3 JSON:1 async:1 "
    "await:1 null:1 this:1",
    "typescript": "const:2 let:1 =>:1 ===:2 interface:3 number:3 boolean:3 readonly:2 "
    "keyof:4 unknown:2 implements:1 Promise:2 export:1 string:1 type:1 any:1 enum:1",
    "java": "public:1 private:1 static:1 void:1 class:1 extends:1 System:4 String:2 "
    "@Override:4 final:1 new:1 throws:4 ArrayList:3 HashMap:2 List:1 println:1 "
    "package:1 int:1 boolean:1 implements:1",
    "kotlin": "fun:4 val:3 println:1 when:1 companion:4 override:1 suspend:4 lateinit:4 "
    "data:1 object:1 listOf:4 mutableListOf:4",
    "c": "#include:3 #define:2 printf:3 malloc:4 free:1 struct:1 sizeof:2 char:1 int:1 "
    "void:1 ->:1 NULL:3 size_t:2 typedef:2 unsigned:1 #ifndef:2 fprintf:2",
    "cpp": "#include:3 std:4 :::1 cout:4 template:3 namespace:1 nullptr:4 auto:2 vector:2 "
    "virtual:2 unique_ptr:4 shared_ptr:4 class:1 const:1 int:1 void:1 ->:1 endl:4",
    "csharp": "using:2 namespace:2 Console:4 var:1 get:1 set:1 Task:2 IEnumerable:4 "
    "public:1 string:1 async:1 await:1 LINQ:3 WriteLine:4 static:1 void:1 class:1",
    "go": "package:2 func:4 :=:4 fmt:4 chan:4 defer:4 go:1 err:2 nil:3 struct:1 range:1 "
    "Println:2 Errorf:4 interface:1",
    "rust": "fn:4 let:1 mut:4 impl:4 pub:2 :::1 ->:1 match:1 Some:2 Ok:2 Err:2 unwrap:4 "
    "println:1 Vec:3 use:1 crate:4 struct:1 enum:1 trait:3 Box:2 Option:1 Result:1 "
    "self:1 &mut:4",
    "swift": "func:2 let:1 var:1 guard:4 SwiftUI:5 UIKit:5 Foundation:2 struct:1 some:1 "
    "View:2 @State:4 nil:1 init:1 extension:2 protocol:2",
    "php": "<?php:6 echo:2 $this:4 function:1 array:1 foreach:2 namespace:1",
    "ruby": "end:2 puts:4 attr_accessor:5 attr_reader:5 do:1 elsif:5 unless:3 nil:1 "
    "each:2 def:1 require:1 module:1",
    "shell": "echo:2 fi:4 done:2 esac:5 then:1 export:2 sudo:4 apt:3 grep:3 chmod:4 "
    "mkdir:3 cd:1 ls:1 curl:2 $HOME:4 $PATH:4 $1:3 set:1",
    "sql": "SELECT:3 select:2 FROM:2 WHERE:2 JOIN:3 GROUP:2 ORDER:1 INSERT:3 INTO:2 "
    "VALUES:3 CREATE:2 TABLE:3 VARCHAR:5 PRIMARY:3 KEY:1 UPDATE:2 DELETE:2 where:1 join:1",
    "html": "<div:3 <html:5 <body:4 <span:3 <p:2 </div:3 <a:1 <ul:3 <li:3 <button:3 "
    "<form:3 <input:3 <head:4 <script:3 href:2 <h1:3 <section:3 </p:2",
    "css": "margin:3 padding:3 display:2 flex:2 color:1 background:2 border:2 font:2 "
    "px:2 width:1 height:1 hover:2 rem:3",
    "haskell": "where:1 :::1 data:1 instance:3 deriving:5 Maybe:3 Just:4 Nothing:4 "
    "mapM_:5 qualified:4 IO:3 putStrLn:5 <-:1 of:1",
    "elixir": "defmodule:6 do:1 end:1 |>:2 Enum:4 defp:5 GenServer:5 fn:1",
}
_LANG_MARKERS: dict[str, tuple[str, ...]] = {
    "erlang": ("-module(", "-export("),
    "cobol": ("DIVISION.", "PIC X", "WORKING-STORAGE"),
    "fortran": ("implicit none", "IMPLICIT NONE", "end program", "END PROGRAM"),
    "zig": ('@import("std")', "!void"),
    "solidity": ("pragma solidity",),
    "objc": ("@interface", "@implementation", "#import <Foundation"),
    "cuda": ("__global__", "cudaMalloc", "<<<"),
    "glsl": ("gl_FragColor", "gl_Position", "uniform vec", "uniform sampler"),
    "perl": ("use strict;", "my $", "my @", "my %"),
    "clojure": ("(defn ", "(ns "),
    "lisp": ("(defun ", "(defmacro "),
    "scheme": ("(define (",),
    "r": ("<- function(", "library(", "%>%", "data.frame("),
    "julia": ("::Float64", "::Int64", "using LinearAlgebra", "end\n\nfunction"),
    "lua": ("local function", "local ", " then\n", "~="),
    "ocaml": ("let rec ", ";;", " with\n  |", "| [] ->"),
    "fsharp": ("printfn", "let mutable"),
    "scala": ("case class ", "object ", "implicit ", "def main(args: Array[String])"),
    "dart": ("Widget build(", "import 'package:", "void main()"),
    "powershell": ("Write-Host", "Get-ChildItem", "$PSVersionTable"),
    "verilog": ("endmodule", "always @("),
    "vhdl": ("std_logic", "end architecture", "entity "),
    "assembly": ("section .text", "global _start", "mov eax", "mov rax", "syscall"),
    "nim": ("proc ",),
    "prolog": (":- ",),
    "haskell": ("import qualified", ":: IO ()", "where\n"),
    "elixir": ("defmodule ",),
}


def _parse_weights() -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for lang, spec in _LANG_TOKENS.items():
        for item in spec.split():
            tok, _, weight = item.rpartition(":")
            out.setdefault(tok, []).append((lang, int(weight)))
    return out


_TOKEN_WEIGHTS = _parse_weights()

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
# Word tokens: punctuation (except + and #, for C++ and C#) becomes a space, then split.
# str.translate + str.split run in C and are several times faster than a regex findall.
_PUNCT = "!\"$%&'()*,-./:;<=>?@[\\]^`{|}~¿¡«»“”‘’…、。，！？：；（）「」"
_PUNCT_TABLE = str.maketrans(_PUNCT, " " * len(_PUNCT))


def _words(text: str) -> list[str]:
    return text.translate(_PUNCT_TABLE).split()


_STOPWORDS: dict[str, str] = {
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
}
_STOP_INDEX: dict[str, tuple[str, ...]] = {}
for _lang, _spec in _STOPWORDS.items():
    for _w in _spec.split():
        _STOP_INDEX[_w] = (*_STOP_INDEX.get(_w, ()), _lang)
_DIACRITICS: dict[str, str] = {
    "es": "ñ¿¡",
    "fr": "èêëçœ",
    "de": "äöüß",
    "pt": "ãõ",
    "pl": "ąćęłńśźż",
    "tr": "ğış",
    "vi": "ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ",
}

# ---------------------------------------------------------------------------------------
# Intent and difficulty vocabulary, matched on lower-cased word tokens of the prose.
# A term is one to three words; a trailing "*" makes the last word a prefix.
# Hyphenated terms match both "lock-free" and "lock free" (the tokenizer splits them).
# ---------------------------------------------------------------------------------------

_VOCAB: dict[str, tuple[tuple[int, str], ...]] = {
    "translate": ((1,
        "translat* port porting ported convert* rewrit* re-writ* transpil* migrat* "
        "reimplement* re-implement* equivalent counterpart traduc* tradui* traduz* "
        "convier* convertir reescrib* übersetz* portier* umschreib* перепиш* перевед* "
        "переве* портир* перенес*"),),
    "interop": ((1,
        "binding bindings ffi interop* ctypes cffi pybind11 pyo3 maturin napi n-api "
        "node-gyp jni cgo wasm-bindgen p/invoke pinvoke cython swig extern-c"),),
    "sequence": ((1, "then afterwards finally after-that secondly thirdly step-by-step"),),
    "constraint": ((1,
        "must without cannot at-most at-least no-more-than guarantee* invariant* "
        "constant-time constant-memory constant-space in-place thread-safe lock-free "
        "wait-free zero-copy backward-compatib* backwards-compatib* no-dependencies "
        "exactly-once idempoten* p99 p95 should-not must-not never"),),
    "design": (
        (2,
         "architect* system-design microservice* event-sourc* cqrs domain-driven hexagonal "
         "clean-architecture distributed-system* distributed-lock* distributed-transaction* "
         "distributed-cache distributed-queue consensus raft paxos shard* multi-tenan* "
         "multitenan* high-availability fault-toleran* horizontal-scal* horizontally-scal* "
         "eventual-consistency eventually-consistent saga-pattern service-mesh "
         "plugin-system plugin-architecture trade-off* tradeoff* scalab* design-doc* "
         "migration-plan migration-strateg* whole-codebase entire-codebase whole-project "
         "entire-project entire-application whole-application entire-module whole-repo* "
         "entire-repo* across-the-codebase across-multiple-files across-modules "
         "across-services end-to-end zero-downtime rate-limit* replicat* disaster-recovery "
         "schema-design data-model* api-design load-balanc* message-queue message-broker "
         "kafka backpressure back-pressure observability crdt conflict-resolution "
         "clock-skew offline-first schema-version* schema-migration* backfill* dual-write* "
         "rollback-plan sandbox* backward-compatib* backwards-compatib* step-by-step-plan "
         "bounded-context* rebalanc* compiler interpreter bytecode type-check* "
         "virtual-machine geo-index* multi-region"),
        (1,
         "design* refactor* restructur* decoupl* modular* extensib* infrastructure "
         "abstraction* monolith* scaling requirement* strateg* roadmap versioning "
         "rollback* protocol* layered-architecture"),
    ),
    "debug": (
        (2,
         "race-condition* data-race* deadlock* livelock* memory-leak* leaks-memory "
         "leaking-memory segfault* segmentation-fault use-after-free double-free "
         "heap-corruption stack-smashing undefined-behavior undefined-behaviour heisenbug* "
         "intermittent* nondeterministic* non-deterministic* only-in-production "
         "only-in-prod only-under-load only-in-ci under-load under-heavy-load core-dump* "
         "sigsegv sigabrt oom oom-killed out-of-memory goroutine-leak* starvation corrupt* "
         "root-cause bisect* flaky sporadic* randomly-fails randomly-crash* memory-grows "
         "memory-keeps-growing hangs-forever hangs-indefinitely strict-aliasing "
         "signed-overflow different-results-with only-in-release works-locally-but asan "
         "valgrind gdb tsan thread-sanitizer race-detector memory-usage-grows "
         "file-descriptor* emfile"),
        (1,
         "crash* hang hangs hanging freez* leak* panic* stack-trace stacktrace traceback "
         "stack-overflow profil* regression debug* investigat* diagnos* timeout* slow* "
         "sometimes occasionally* randomly in-production"),
    ),
    "concurrency": (
        (2,
         "lock-free wait-free mutex* semaphore* atomic* memory-ordering compare-and-swap "
         "cas-loop work-stealing thread-safe* thread-pool condition-variable actor-model "
         "mpmc spsc mpsc concurren* multi-thread* multithread* parallelism goroutine* "
         "channels linearizab* happens-before rwlock spinlock* green-threads event-loop "
         "data-parallel lock-contention lock-ordering"),
        (1,
         "thread threads async asynchronous* lock locks synchroni* worker workers tokio "
         "parallel parallelize* parallelise* "
         "asyncio futures coroutine*"),
    ),
    "performance": (
        (2,
         "latency throughput p99 p95 simd vectori* cache-friendly cache-miss* cache-line* "
         "cache-locality hot-path bottleneck* zero-copy allocation* memory-footprint "
         "flame-graph* flamegraph* benchmark* profil* sub-millisecond submillisecond "
         "millions-of million-rows million-records million-requests gc-pause* "
         "faster-than 5x 10x 100x requests-per-second rps qps per-second tail-latency"),
        (1,
         "performance optimi* faster speed-up speedup efficien* memory-usage scales "
         "cach* ms µs ns"),
    ),
    "proof": (
        (2,
         "prove proof proofs formally-verif* formal-verif* lemma* theorem* by-induction "
         "loop-invariant* invariant invariants termination terminates soundness tla+ coq "
         "isabelle dafny model-check* correctness-proof amortized-analysis"),
        (1, "correctness formal* verif* guarantee* complexity"),
    ),
    "algorithm": (
        (2,
         "dynamic-programming dp shortest-path* dijkstra* bellman* np-hard np-complete "
         "approximation-algorithm* segment-tree* fenwick suffix-array* suffix-tree* "
         "suffix-automaton max-flow maximum-flow min-cut minimum-cut bipartite knapsack "
         "topological-sort* minimum-spanning union-find interval-tree* b-tree* b+-tree* "
         "skip-list* bloom-filter* convex-hull branch-and-bound backtracking memoiz* "
         "amortized time-limit memory-limit sublinear streaming-algorithm* "
         "consistent-hashing rope persistent-data-structure* succinct lru red-black avl "
         "node-split* range-quer* edit-distance levenshtein longest-common-sub* "
         "longest-increasing-sub* minimum-number-of maximum-number-of min-number-of "
         "max-number-of efficient-solution efficient-algorithm lower-bound "
         "number-of-ways modulo fibonacci-heap trie* heap-based"),
        (1,
         "algorithm* graph graphs heuristic* optimal* complexity worst-case heap "
         "priority-queue constraint constraints"),
    ),
}  # fmt: skip

# Patterns that are not words: big-O, bounds like n ≤ 10^5, sizes, "TLA+".
_SYMBOLIC: tuple[tuple[str, str, int, re.Pattern[str]], ...] = (
    ("O(", "algorithm", 2, re.compile(r"O\([^)]{1,20}\)")),
    ("10^", "algorithm", 2, re.compile(r"10\^\d")),
    ("≤", "algorithm", 2, re.compile(r"≤")),
    ("<=", "algorithm", 2, re.compile(r"<=\s*\d{3,}|<=\s*\d+\s*[*·x×]\s*10")),
    ("e5", "algorithm", 1, re.compile(r"\b\de[5-9]\b")),
)


@dataclass(frozen=True)
class _Term:
    table: str
    weight: int
    key: str


def _build_vocab() -> tuple[
    dict[str, list[_Term]],
    dict[str, list[tuple[str, _Term]]],
    dict[str, list[tuple[tuple[str, ...], bool, _Term]]],
]:
    exact: dict[str, list[_Term]] = {}
    stems: dict[str, list[tuple[str, _Term]]] = {}  # first 3 chars → (stem, term)
    phrases: dict[str, list[tuple[tuple[str, ...], bool, _Term]]] = {}
    for table, groups in _VOCAB.items():
        for weight, spec in groups:
            for raw in spec.split():
                term = _Term(table, weight, raw)
                is_stem = raw.endswith("*")
                words = [w for w in re.split(r"[-/]", raw.rstrip("*").lower()) if w]
                if len(words) == 1 and not is_stem:
                    exact.setdefault(words[0], []).append(term)
                elif len(words) == 1:
                    stems.setdefault(words[0][:3], []).append((words[0], term))
                else:
                    phrases.setdefault(words[0], []).append((tuple(words[1:]), is_stem, term))
    return exact, stems, phrases


_V_EXACT, _V_STEMS, _V_PHRASES = _build_vocab()

_TEMPLATE_TOKEN_RE = re.compile(
    r"<\|[\w▁]{1,30}\|>|<｜[^｜]{1,30}｜>|\[/?INST\]|</?s>|<(?:start|end)_of_turn>|"
    r"<fim_\w+>|<(?:PRE|SUF|MID|EOT)>|\[(?:SUFFIX|PREFIX)\]|<repo_name>|<file_sep>|<filename>"
)
_CHAT_TEMPLATE_MARKS = (
    "<|im_start|>", "[INST]", "<start_of_turn>", "<|user|>", "<|start_header_id|>",
    "<|User|>", "<｜User｜>",
)  # fmt: skip
_CHAT_TEMPLATE_RE = re.compile(
    r"^(?:#{2,4} ?\w[^\n]{0,30}:\s*$|(?:USER|User|Human|Question|Instruction):)", re.MULTILINE
)
_IMPERATIVE_RE = re.compile(
    r"\s*(?:please[, ]+)?(?:write|create|implement|explain|generate|build|make|design|"
    r"refactor|fix|convert|translate|port|describe|summari[sz]e|add|remove|rewrite|"
    r"optimi[sz]e|review|debug|document|how|what|why|when|where|which|can you|could you|"
    r"i need|i want|i'd like|help|show me|give me|list|find|tell me|is there|should i)\b",
    re.IGNORECASE,
)
# "Fill the hole" markers that chat-based autocomplete prompts use.
_HOLE_RE = re.compile(
    r"\{\{(?:FILL_HERE|CURSOR|HOLE)\}\}|<(?:FILL_HERE|FILL_ME|CURSOR|HOLE|INSERT|fim_hole)>"
    r"|<\|(?:fill_here|cursor|hole)\|>"
)
_NUMBERED_RE = re.compile(r"\d\d?[.)] +[A-Za-z]")
_BULLETS = ("- ", "* ", "• ")
_LOG_MARKERS = (
    "ERROR", "WARN", "FATAL", "CRITICAL", "Exception", "Traceback", 'File "', "\tat ",
    "    at ", "panicked at", "goroutine ", "Caused by:",
)  # fmt: skip
_LOG_TIMESTAMP_RE = re.compile(r"\n\[?\d{4}-\d\d-\d\d[T ]\d\d:")

# Window sizes (characters) for the scans that are not O(1) per character in C.
_HEAD, _TAIL = 2500, 800  # of the last user message: prose/code split, vocabulary
_CODE_SAMPLE = 1500  # per code segment, for syntax fingerprints
# Past ~12 KB of user text the long-context rule (3000 tokens) decides anyway, so file
# headers and log lines are counted in the first 8 KB and the last 4 KB only.
_FILE_WINDOW = 12000  # file names and headers
_LOG_WINDOW = 12000  # log marker counts


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

# Read before any rule runs; everything else is computed on first use.
_CHEAP_SIGNALS = frozenset(
    {"endpoint", "has_suffix", "fim_family", "fim_marker", "max_tokens", "has_stop",
     "n_messages", "tokens", "user_tokens"}
)  # fmt: skip


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


_DEFAULTS: dict[str, Any] = asdict(Signals())
assert {f.name for f in fields(Signals)} == set(SIGNAL_KINDS)


def _jsonable(value: object) -> object:
    if isinstance(value, frozenset | set):
        return sorted(value)
    return value


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
                kind = part.get("type", "text")
                if isinstance(text, str) and kind in ("text", "input_text", "output_text"):
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


def _window(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


def _as_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


# --- prose / code split ------------------------------------------------------------------

_CODE_START_RE = re.compile(
    r"\s*(?:def |class |import |from \S+ import|return\b|#include|#define|package \w|func |"
    r"fn |pub |let |const |var |public |private |protected |static |function\b|@\w|//|/\*|"
    r"\*/|<\?php|</?[a-zA-Z][\w-]*(?:\s[^>]*)?>|[}\])]|\w+(?:\.\w+)*\(.*\);?\s*$|"
    r"[\w.\[\]]+\s*[-+*/]?=\s*\S)"
)
_SENTENCE_END_RE = re.compile(r"[a-zA-Z\u00c0-\uffff][.?!:。？！]\s*$")


def _looks_like_sentence(line: str) -> bool:
    words = line.split()
    if len(words) < 4:
        return False
    if not line.isascii() or _SENTENCE_END_RE.search(line):
        return not any(c in line for c in ";{}=")
    alpha = sum(1 for w in words if w.isalpha())
    return alpha >= 0.7 * len(words)


def _is_code_line(line: str) -> bool:
    stripped = line.rstrip()
    if not stripped:
        return False
    if stripped[-1] in ";{}" or line.startswith(("    ", "\t")):
        return not _looks_like_sentence(line)
    return bool(_CODE_START_RE.match(line)) and not _looks_like_sentence(line)


@dataclass
class _Split:
    prose: str
    code_segments: list[tuple[str, str]]  # (fence info string or "", code)
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
            if _is_code_line(line):
                unfenced.append(line)
                code_chars += len(line)
            elif line.strip():
                if unfenced:
                    segments.append(("", "\n".join(unfenced)))
                    unfenced = []
                prose_lines.append(line)
    if unfenced:
        segments.append(("", "\n".join(unfenced)))
    prose = "\n".join(prose_lines)
    if "`" in prose:
        prose = re.sub(r"`[^`\n]{1,200}`", " ", prose)
    return _Split(prose, segments, code_chars, blocks)


_COMMENT_LINE_RE = re.compile(r"\s*(?:#(?![#!\s]*\w+:\s*$)|//|--|/\*|\*|;;|%|<!--)")


def _ends_in_code(text: str) -> bool:
    """A raw completion prompt that stops inside code (a continuation, not a question)."""
    tail = text[-400:]
    if tail.endswith((" ", "\t")) and "\n" in tail and tail.rsplit("\n", 1)[1].strip() == "":
        return True  # ends on indentation: the cursor is inside a block
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return False
    line = lines[-1]
    if _looks_like_sentence(line):
        return False
    if line.rstrip().endswith((":", "{", "(", "[", "=", ",", "=>", "->")):
        return True
    return _is_code_line(line) or bool(_COMMENT_LINE_RE.match(line))


# --- languages ---------------------------------------------------------------------------


def _fence_language(info: str) -> str | None:
    if not info:
        return None
    word = re.split(r"[\s{:,]", info, maxsplit=1)[0].lower().strip(".")
    lang = _ALIASES.get(word)
    if lang is None and "." in word:  # "```src/main.rs"
        lang = _ALIASES.get(word.rsplit(".", 1)[1])
    return lang


def _syntax_language(code: str) -> str | None:
    sample = code[:_CODE_SAMPLE]
    scores: Counter[str] = Counter()
    for tok in set(_CODE_TOKEN_RE.findall(sample)):
        for lang, weight in _TOKEN_WEIGHTS.get(tok, ()):
            scores[lang] += weight
    for lang, markers in _LANG_MARKERS.items():
        hits = sum(1 for m in markers if m in sample)
        if hits:
            scores[lang] += 4 + 2 * hits
    if not scores:
        return None
    (best, top), *rest = scores.most_common(2) + [("", 0)]
    second = rest[0][1]
    if top < 5 or top < second + 2:
        return None
    return best


_NAME_FIRST_WORDS = frozenset(_STRONG_NAMES) | {k[0] for k in _NAME_PHRASES}


def _prose_languages(tokens: list[str], lower: list[str]) -> set[str]:
    found: set[str] = set()
    n = len(tokens)
    strong = _NAME_FIRST_WORDS.intersection(lower)
    weak = _WEAK_NAMES.keys() & set(tokens)
    if not strong and not weak:
        return found
    for i, low in enumerate(lower):
        if low not in strong and tokens[i] not in weak:
            continue
        lang = _STRONG_NAMES.get(low)
        if lang is None:
            for rest_lang in _phrase_name(lower, i):
                lang = rest_lang
        if lang is None:
            weak_lang = _WEAK_NAMES.get(tokens[i])
            if weak_lang is None:
                continue
            before = lower[i - 1] if i > 0 else ""
            if before in _WEAK_SKIP and i > 1:
                before = lower[i - 2] if lower[i - 2] in _WEAK_BEFORE else before
            after = lower[i + 1] if i + 1 < n else ""
            if before not in _WEAK_BEFORE and after not in _WEAK_AFTER:
                continue
            lang = weak_lang
        prev = lower[i - 1] if i > 0 else ""
        if prev in _COMPARISON_WORDS or (i > 1 and (lower[i - 2], prev) in _COMPARISON_PAIRS):
            continue
        if i + 1 < n and lower[i + 1] in _BACKGROUND_AFTER and (i < 1 or lower[i - 1] != "for"):
            continue
        found.add(lang)
    return found


def _phrase_name(lower: list[str], i: int) -> Iterable[str]:
    for length in (2, 3):
        key = tuple(lower[i : i + length])
        if len(key) == length and key in _NAME_PHRASES:
            yield _NAME_PHRASES[key]


def _human_language(prose: str, lower: list[str]) -> str:
    if not prose.isascii():
        non_ascii = "".join(_NON_ASCII_RE.findall(prose))
        words = max(1, len(lower))
        for lang, pattern in _SCRIPTS:
            n = len(pattern.findall(non_ascii))
            if lang == "ja" and n >= 2:
                return "ja"
            if (n >= 4 and n >= 0.15 * words) or n >= 12:
                return lang
    else:
        non_ascii = ""
    if len(lower) < 3:
        return "en"
    scores: dict[str, float] = {}
    for word, count in Counter(lower).items():
        for lang in _STOP_INDEX.get(word, ()):
            scores[lang] = scores.get(lang, 0.0) + count
    if non_ascii:
        for lang, chars in _DIACRITICS.items():
            hits = sum(non_ascii.count(c) for c in chars)
            scores[lang] = scores.get(lang, 0.0) + 0.5 * min(10, hits)
    english = scores.pop("en", 0.0)
    if not scores:
        return "en"
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    if best >= 2 and best > 1.3 * english and best >= 0.12 * len(lower):
        return lang
    return "en"


# --- vocabulary ----------------------------------------------------------------------------


def _vocab_scores(lower: list[str], prose: str) -> tuple[dict[str, int], dict[str, int]]:
    """Weighted scores per table (distinct terms) and raw hit counts per table."""
    hits: dict[_Term, int] = {}
    covered: set[int] = set()  # words inside a matched phrase don't count again alone
    n = len(lower)
    firsts = _V_PHRASES.keys() & set(lower)
    for i, word in enumerate(lower):
        if word not in firsts:
            continue
        for rest, is_stem, term in _V_PHRASES[word]:
            k = len(rest)
            if i + k >= n:
                continue
            if all(lower[i + 1 + j] == rest[j] for j in range(k - 1)) and (
                lower[i + k].startswith(rest[-1]) if is_stem else lower[i + k] == rest[-1]
            ):
                hits[term] = hits.get(term, 0) + 1
                covered.update(range(i, i + k + 1))
    words = [w for i, w in enumerate(lower) if i not in covered] if covered else lower
    for word, count in Counter(words).items():
        for term in _V_EXACT.get(word, ()):
            hits[term] = hits.get(term, 0) + count
        for stem, term in _V_STEMS.get(word[:3], ()):
            if word.startswith(stem):
                hits[term] = hits.get(term, 0) + count
    scores: dict[str, int] = dict.fromkeys(_VOCAB, 0)
    counts: dict[str, int] = dict.fromkeys(_VOCAB, 0)
    for term, count in hits.items():
        scores[term.table] += term.weight
        counts[term.table] += count
    for probe, table, weight, pattern in _SYMBOLIC:
        if probe in prose:
            found = len(pattern.findall(prose))
            if found:
                scores[table] += weight
                counts[table] += found
                if table == "algorithm":
                    counts["constraint"] += found
    return scores, counts


# --- extraction ----------------------------------------------------------------------------


@dataclass
class _Context:
    kind: str
    user_msgs: list[str]
    prompt_text: str
    fim_parts: fim.FimParts | None
    user_tokens: int
    primary: frozenset[str]


def _cheap_stage(
    endpoint: object, body: object, primary: frozenset[str]
) -> tuple[dict[str, Any], _Context]:
    kind = _endpoint_kind(endpoint)
    cheap: dict[str, Any] = {name: _DEFAULTS[name] for name in _CHEAP_SIGNALS}
    cheap["endpoint"] = kind
    ctx = _Context(kind, [], "", None, 0, primary)
    if not isinstance(body, Mapping):
        return cheap, ctx

    user_msgs: list[str] = []
    tokens = 0
    n_messages = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            if not isinstance(msg, Mapping):
                continue
            n_messages += 1
            text = _content_text(msg.get("content"))
            role = msg.get("role")
            if role == "user" or role is None:
                user_msgs.append(text)
            else:  # system/developer prompts and replies count only toward `tokens`
                tokens += _estimate_tokens(text)
    prompt = body.get("prompt")
    prompt_text = ""
    if isinstance(prompt, str):
        prompt_text = prompt
    elif isinstance(prompt, list):
        prompt_text = "\n".join(p for p in prompt if isinstance(p, str))
    has_suffix = False
    for key in ("input_prefix", "input_suffix"):  # llama.cpp /infill
        value = body.get(key)
        if isinstance(value, str):
            has_suffix = has_suffix or key == "input_suffix"
            prompt_text = prompt_text + "\n" + value if prompt_text else value
    suffix = body.get("suffix")
    if isinstance(suffix, str):
        has_suffix = True
        tokens += _estimate_tokens(suffix)
    if prompt_text:
        user_msgs.append(prompt_text)

    fim_parts = None
    hole = False
    candidates = [prompt_text] if prompt_text else user_msgs[-2:]
    for text in candidates:
        if text and fim_parts is None:
            fim_parts = fim.detect(text)
    if fim_parts is None and not has_suffix and candidates:
        last = candidates[-1]
        low = last.lower()  # cheap probes first: the regex is slower on big bodies
        if "fill" in low or "cursor" in low or "hole" in low or "insert>" in low:
            hole = _HOLE_RE.search(last) is not None
    user_tokens = sum(_estimate_tokens(t) for t in user_msgs)

    max_tokens = None
    for key in ("max_tokens", "max_completion_tokens", "n_predict"):
        max_tokens = _as_int(body.get(key))
        if max_tokens is not None:
            break
    options = body.get("options")
    if max_tokens is None and isinstance(options, Mapping):
        max_tokens = _as_int(options.get("num_predict"))
    stop = body.get("stop")

    cheap.update(
        has_suffix=has_suffix,
        fim_family=fim_parts.family if fim_parts is not None else None,
        fim_marker=fim_parts is not None or hole,
        max_tokens=max_tokens,
        has_stop=bool(stop) and isinstance(stop, str | list),
        n_messages=n_messages,
        tokens=tokens + user_tokens,
        user_tokens=user_tokens,
    )
    return cheap, _Context(kind, user_msgs, prompt_text, fim_parts, user_tokens, primary)


def _deep_stage(ctx: _Context) -> dict[str, Any]:
    user_msgs = ctx.user_msgs
    last = user_msgs[-1] if user_msgs else ""
    if ctx.fim_parts is not None:
        last = ctx.fim_parts.prefix + "\n" + ctx.fim_parts.suffix
    last = _window(last, _HEAD, _TAIL)
    if "<" in last or "[" in last:
        last = _TEMPLATE_TOKEN_RE.sub(" ", last)
    split = _split_prose_code(last)
    prose = split.prose
    if len(prose) < 40 and len(user_msgs) > 1:
        # The last message is (almost) only code: the instruction is in an earlier one.
        earlier = _split_prose_code(_window(user_msgs[-2], _HEAD // 2, _TAIL // 2))
        prose = earlier.prose + "\n" + prose
        split.code_segments.extend(earlier.code_segments)
    tokens = _words(prose)
    lower = " ".join(tokens).lower().split(" ") if tokens else []

    # Languages: fences, syntax, file names, shebangs, and names in prose.
    code_langs: set[str] = set()
    sampled = 0
    for info, code in split.code_segments:
        lang = _fence_language(info)
        if lang is None and sampled < 3 and len(code) >= 20:
            sampled += 1
            lang = _syntax_language(code)
        if lang is not None:
            code_langs.add(lang)
    joined = "\n".join(user_msgs)
    scan = _window(joined, _FILE_WINDOW * 2 // 3, _FILE_WINDOW // 3)
    # File names: mentioned in prose, in fence info strings, in file/diff headers.
    names = [prose, *(info for info, _ in split.code_segments if "." in info)]
    names += _header_names(scan)
    files: set[str] = set()
    for m in _FILE_EXT_RE.finditer("\n".join(names)):
        text = m.string
        start = m.start()
        while start > 0 and text[start - 1] in _NAME_CHARS:
            start -= 1
        name = text[start : m.end()].strip("./-").lower()
        if "." not in name or name.startswith(("http", "www")) or name[0].isdigit():
            continue
        files.add(name)
        ext = m.group(1).lower()
        if ext in _CODE_EXTENSIONS:
            code_langs.add(_ALIASES.get(ext) or ext)
    for special in _SPECIAL_FILES:
        if special in scan:
            files.add(special.lower())
    if "#!" in scan:
        for m in _SHEBANG_RE.finditer(scan):
            code_langs.add(_SHEBANG_LANG.get(m.group(1), "shell"))
    code_langs &= KNOWN_LANGUAGES
    if "cpp" in code_langs:
        code_langs.discard("c")  # C++ code matches C fingerprints and .h headers
    if "typescript" in code_langs:
        code_langs.discard("javascript")
    mentioned = _prose_languages(tokens, lower)
    languages = frozenset(code_langs | mentioned)

    # Intent and difficulty.
    scores, counts = _vocab_scores(lower, prose)
    translate = counts["translate"] > 0 or any(w in prose for w in _CJK_TRANSLATE)
    core = {lang for lang in languages if lang not in ANCILLARY_LANGUAGES}
    if {"typescript", "javascript"} <= core and not translate:
        core.discard("javascript")  # one ecosystem, unless converting between them
    if {"c", "cpp"} <= core and not ({"c", "cpp"} <= code_langs or translate):
        core.discard("c")
    human = _human_language(prose, lower)
    steps = counts["sequence"] + len(_NUMBERED_RE.findall(prose))
    steps += sum(1 for line in prose.splitlines() if line.lstrip()[:2] in _BULLETS)
    constraints = counts["constraint"]
    log_lines = _log_lines(_window(joined, _LOG_WINDOW * 2 // 3, _LOG_WINDOW // 3))
    debug = scores["debug"] + (2 if log_lines >= 5 else 0)
    complexity = (
        scores["design"] + debug + scores["concurrency"] + scores["performance"]
        + scores["proof"] + scores["algorithm"]
        + max(0, steps - 3) * 0.5 + max(0, constraints - 2) * 0.5
        + min(4.0, ctx.user_tokens / 1000)
    )  # fmt: skip

    prompt_or_last = ctx.prompt_text or last
    templated = any(m in prompt_or_last for m in _CHAT_TEMPLATE_MARKS) or bool(
        _CHAT_TEMPLATE_RE.search(prompt_or_last[:4000])
    )
    if ctx.kind == "chat":
        instruction_like = True
    elif templated:
        instruction_like = True
    else:
        instruction_like = not _ends_in_code(prompt_or_last) and (
            (len(lower) >= 4 and any(_IMPERATIVE_RE.match(ln) for ln in prose.splitlines()))
            or (len(lower) >= 8 and split.code_chars < 0.4 * len(last))
        )

    return {
        "code_chars": split.code_chars,
        "code_ratio": round(min(1.0, split.code_chars / (len(last) or 1)), 3),
        "code_blocks": split.code_blocks,
        "n_files": len(files),
        "languages": languages,
        "code_languages": frozenset(code_langs),
        "n_languages": len(languages),
        "n_core_languages": len(core),
        "non_primary_languages": frozenset(languages - ctx.primary),
        "human_language": human,
        "non_english": human != "en",
        "translation_intent": translate and len(languages) >= 2,
        "interop_intent": counts["interop"] > 0,
        "instruction_like": instruction_like,
        "prose_words": len(lower),
        "step_count": steps,
        "constraint_count": constraints,
        "design_score": scores["design"],
        "debug_score": debug,
        "concurrency_score": scores["concurrency"],
        "performance_score": scores["performance"],
        "proof_score": scores["proof"],
        "algorithm_score": scores["algorithm"],
        "complexity_score": round(complexity, 2),
        "log_lines": log_lines,
    }


_CJK_TRANSLATE = ("翻译", "转换", "改写", "移植", "変換", "書き換え", "翻訳", "변환", "포팅")


def _log_lines(text: str) -> int:
    n = sum(text.count(marker) for marker in _LOG_MARKERS)
    if "\n" in text:
        n += len(_LOG_TIMESTAMP_RE.findall(text))
    return n


class _LazySignals:
    """Signals computed on first use: the cheap ones up front, the rest on demand."""

    __slots__ = ("_cheap", "_ctx", "_deep")

    def __init__(self, endpoint: object, body: object, primary: frozenset[str]) -> None:
        try:
            self._cheap, self._ctx = _cheap_stage(endpoint, body, primary)
        except Exception:  # noqa: BLE001 - the classifier is total: odd input → defaults
            self._cheap = {name: _DEFAULTS[name] for name in _CHEAP_SIGNALS}
            self._cheap["endpoint"] = _endpoint_kind(endpoint)
            self._ctx = _Context("other", [], "", None, 0, primary)
        self._deep: dict[str, Any] | None = None

    def get(self, name: str) -> Any:
        if name in self._cheap:
            return self._cheap[name]
        if self._deep is None:
            try:
                self._deep = _deep_stage(self._ctx)
            except Exception:  # noqa: BLE001 - see above
                self._deep = {k: v for k, v in _DEFAULTS.items() if k not in _CHEAP_SIGNALS}
        return self._deep[name]

    def full(self) -> Signals:
        self.get("log_lines")
        assert self._deep is not None
        return Signals(**self._cheap, **self._deep)


def extract_signals(
    endpoint: str,
    body: Mapping[str, Any],
    primary_languages: Iterable[str] = DEFAULT_PRIMARY_LANGUAGES,
) -> Signals:
    """Read ``body`` (an OpenAI chat or completion request) into :class:`Signals`.

    Total: any input, however malformed, gives a result and never raises.
    """
    return _LazySignals(endpoint, body, frozenset(primary_languages)).full()


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

_Pred = Callable[[_LazySignals], bool]


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

    def leaf(s: _LazySignals) -> bool:
        got = s.get(name)
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
    """The decision: class, deciding rule, a short reason and the deciding signals.

    ``signals`` holds only the signals the winning rule read. :meth:`signals_dict`
    gives all of them; it computes any signal the rules did not need, so call it only
    when you log or show the decision.
    """

    cls: str
    rule: str
    reason: str
    signals: dict[str, Any]
    _lazy: _LazySignals = field(repr=False, compare=False)

    def all_signals(self) -> Signals:
        """Every signal (computed on first call)."""
        return self._lazy.full()

    def signals_dict(self) -> dict[str, Any]:
        """Every signal, JSON-able (for logs and debug headers)."""
        return self.all_signals().as_dict()


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    cls: str
    pred: _Pred
    reads: tuple[str, ...]


class Classifier:
    """Rules compiled once from a :class:`ClassifierConfig`; :meth:`classify` is pure."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        order = list(self.config.order) + [c for c in DEFAULT_ORDER if c not in self.config.order]
        rank = {c: i for i, c in enumerate(order)}
        self._primary = frozenset(self.config.primary_languages)
        # Evaluation order = decision order: class rank, then position in the file.
        indexed = sorted(enumerate(self.config.rules), key=lambda ir: (rank[ir[1].class_], ir[0]))
        self._rules = [
            _CompiledRule(r.name, r.class_, _compile(r.when), tuple(r.when.signals()))
            for _, r in indexed
        ]

    def signals(self, endpoint: str, body: Mapping[str, Any]) -> Signals:
        """All signals for one request, with this classifier's primary languages."""
        return extract_signals(endpoint, body, self._primary)

    def classify(self, endpoint: str, body: Mapping[str, Any]) -> Classification:
        """Classify one request. Never raises."""
        lazy = _LazySignals(endpoint, body, self._primary)
        for rule in self._rules:
            try:
                ok = rule.pred(lazy)
            except Exception:  # noqa: BLE001 - e.g. a custom rule comparing mixed types
                ok = False
            if ok:
                deciding = {name: _jsonable(lazy.get(name)) for name in rule.reads}
                shown = ", ".join(f"{k}={v}" for k, v in deciding.items())
                return Classification(
                    rule.cls, rule.name, f"rule {rule.name}: {shown}", deciding, lazy
                )
        return Classification(self.config.default_class, "default", "no rule matched", {}, lazy)
