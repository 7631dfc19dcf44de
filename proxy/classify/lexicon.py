"""The classifier's vocabulary: every table it reads, and nothing that reads them.

Language aliases and names, file extensions, syntax fingerprints, stop words, the
intent and difficulty vocabulary, and the regular expressions that are pure data. Code
here only builds lookup tables from the compact specs (``_table``, the token weights,
the vocabulary index) once, at import, so the signal code does dictionary lookups on
word tokens instead of running big regex alternations.

Tuning the classifier is mostly editing this file: add a spelling to ``ALIASES``, a term
to ``VOCAB``, a fingerprint to ``LANG_TOKENS``. ``tests/unit/test_corpus.py`` says
whether the change helped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
ALIASES: dict[str, str] = _table(
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
KNOWN_LANGUAGES: frozenset[str] = frozenset(ALIASES.values())

# File extensions. Data/config formats count toward ``n_files`` but name no language.
DATA_EXTENSIONS = frozenset(
    "json yaml yml toml ini cfg conf md rst txt xml csv lock env proto graphql gql tf hcl "
    "mk cmake properties plist sbt".split()
)
CODE_EXTENSIONS = frozenset(
    "py pyi js mjs cjs jsx ts tsx java kt kts c h cc cpp cxx hpp cs go rs swift php rb sh "
    "bash zsh sql html htm css scss sass less vue svelte hs ex exs erl ml mli fs fsx clj "
    "cljs jl pl pm mm ps1 asm sol sv vhd f90 f95 cob cbl scm rkt cu glsl frag vert nim "
    "zig dart lua scala groovy ipynb r".split()
)
FILE_EXT_RE = re.compile(
    r"\.("
    + "|".join(sorted(CODE_EXTENSIONS | DATA_EXTENSIONS, key=len, reverse=True))
    + r")(?![\w(-])",
    re.IGNORECASE,
)
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
SPECIAL_FILES = ("Dockerfile", "Makefile", "CMakeLists.txt", "Cargo.toml", "go.mod")
HEADER_NEEDLES = (
    "diff --git a/", "+++ b/", "file: ", "File: ", "FILE: ", "filename: ", "Filename: ",
    "path: ", "Path: ",
)  # fmt: skip
BANNER_RE = re.compile(r"^={3,} *(\S+\.\w+) *={3,}", re.MULTILINE)


# Language names in prose. "Strong" names are unambiguous words (matched in any case);
# "weak" ones (Go, C, R, Swift…) are ordinary words or letters and count only with a
# context that makes them a language ("in Go", "to C", "Go code", "Swift package").
STRONG_NAMES: dict[str, str] = _table(
    "python python3:python javascript typescript nodejs:javascript java kotlin c++:cpp "
    "cpp c#:csharp csharp golang:go rust php bash:shell powershell sql html css haskell "
    "elixir erlang ocaml f#:fsharp fsharp clojure perl fortran cobol scala lua zig "
    "solidity verilog systemverilog:verilog vhdl matlab groovy racket prolog lisp cuda "
    "webassembly:wasm purescript smalltalk vba:vb delphi:pascal abap mojo gleam idris "
    "agda dafny tla+:tla coq glsl hlsl:glsl django:python flask:python fastapi:python "
    "numpy:python pandas:python pytorch:python laravel:php jquery:javascript pyo3:rust "
    "tokio:rust asyncio:python ggplot2:r dplyr:r tidyverse:r tidyr:r nextjs:javascript "
    "vuejs:javascript"
)
#: Names above that are frameworks or libraries, not languages.
FRAMEWORK_NAMES = frozenset(
    "django flask fastapi numpy pandas pytorch laravel jquery pyo3 tokio asyncio ggplot2 "
    "dplyr tidyverse tidyr nextjs vuejs".split()
)
NAME_PHRASES: dict[tuple[str, ...], str] = {
    ("shell", "script"): "shell", ("visual", "basic"): "vb", ("common", "lisp"): "lisp",
    ("ruby", "on", "rails"): "ruby", ("spring", "boot"): "java", ("objective", "c"): "objc",
    ("node", "js"): "javascript", ("asp", "net"): "csharp", ("vb", "net"): "vb",
    ("x86", "assembly"): "assembly", ("arm", "assembly"): "assembly",
}  # fmt: skip
WEAK_NAMES: dict[str, str] = _table(
    "Go:go C:c R:r Swift:swift Dart:dart Julia:julia Elm:elm Crystal:crystal Nim:nim "
    "Ada:ada Scheme:scheme Pascal:pascal Ruby:ruby Lean:lean Nix:nix Apex:apex Tcl:tcl "
    "AWK:awk Awk:awk Wasm:wasm Assembly:assembly assembly:assembly React:javascript "
    "Angular:typescript Svelte:javascript"
)
WEAK_BEFORE = frozenset(
    "in to into from using use with via and or nor for pure plain idiomatic modern native "
    "vs versus write writing learn learning port rewrite translate convert add create "
    "generate new".split()
)
WEAK_SKIP = frozenset("a an the some simple small basic short quick tiny idiomatic modern".split())
WEAK_AFTER = frozenset(
    "code codes program programs version implementation port library libraries module "
    "modules package packages crate binary binding bindings extension api abi header "
    "headers function functions struct structs class script scripts service services "
    "client server app application source compiler side equivalent developer project "
    "backend frontend cli tool routine routines generics interface macro macros file "
    "files language lang toolchain sdk runtime worker microservice idiom idioms syntax "
    "proc procs trait traits closure closures snippet equivalents type types s".split()
)
COMPARISON_WORDS = frozenset("like unlike akin".split())
# "a Java developer learning Python": the first language is background, not the task.
BACKGROUND_AFTER = frozenset(
    "developer developers dev devs programmer programmers background".split()
)
COMPARISON_PAIRS = frozenset(
    {("similar", "to"), ("inspired", "by"), ("compared", "to"), ("compared", "with"),
     ("as", "in"), ("style", "of"), ("equivalent", "of"), ("coming", "from"),
     ("background", "in"), ("experience", "in"), ("experience", "with")}
)  # fmt: skip

FENCE_RE = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
SHEBANG_RE = re.compile(
    r"^#!\s*/\S*?(?:env\s+)?(python3?|node|bash|sh|zsh|ruby|perl|php|deno|bun|lua|Rscript|pwsh)\b",
    re.MULTILINE,
)
SHEBANG_LANG = _table(
    "python python3:python node:javascript bash:shell sh:shell zsh:shell ruby perl php "
    "deno:typescript bun:javascript lua Rscript:r pwsh:powershell"
)

# Syntax fingerprints: distinctive code tokens with weights. A code segment goes to the
# best-scoring language (≥ 4 and clearly ahead of the runner-up).
CODE_TOKEN_RE = re.compile(
    r"[A-Za-z_]\w*|:=|=>|->|::|===|!==|<\?php|</?[a-zA-Z]+\d?|#\w+|\$\w+|\|>|<-|@\w+"
)
LANG_TOKENS: dict[str, str] = {
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
LANG_MARKERS: dict[str, tuple[str, ...]] = {
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
    for lang, spec in LANG_TOKENS.items():
        for item in spec.split():
            tok, _, weight = item.rpartition(":")
            out.setdefault(tok, []).append((lang, int(weight)))
    return out


TOKEN_WEIGHTS = _parse_weights()

# ---------------------------------------------------------------------------------------
# Human-language detection (prose only).
# ---------------------------------------------------------------------------------------

SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
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
NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
# Word tokens: punctuation (except + and #, for C++ and C#) becomes a space, then split.
# str.translate + str.split run in C and are several times faster than a regex findall.
_PUNCT = "!\"$%&'()*,-./:;<=>?@[\\]^`{|}~¿¡«»“”‘’…、。，！？：；（）「」"
PUNCT_TABLE = str.maketrans(_PUNCT, " " * len(_PUNCT))


STOPWORDS: dict[str, str] = {
    "en": "the and is are to of that this with for it be how what can you should which from not "
    "have does my me please i we an when if will would there these they your make using "
    "use want need but into get all so just also like only its",
    "es": "el la los las una que por para con es está cómo qué función código escribe necesito "
    "quiero mi y en del al se lo más pero este esta puedes hacer usando archivo hay muy "
    "sin sobre cuando también donde tengo mis ejemplo escribir agrega añade crea corrige "
    "arregla implementa cambia elimina renombra mueve actualiza explica optimiza "
    "refactoriza usa hazlo",
    "fr": "le la les des une un est et pour avec dans que qui sur pas ce cette je vous écris "
    "écrire fonction comment fichier du au aux mon ma mes peux faire utilisant il elle "
    "sont ou mais tout être voici moi très ajoute corrige crée implémente modifie "
    "supprime renomme déplace mets explique optimise utilise fais",
    "de": "der die das und ist nicht ein eine mit für auf den dem ich wie kann bitte schreibe "
    "schreib funktion datei sie es zu von im einen einer wird werden soll mein meine "
    "diese dieser noch auch oder aber wenn warum sollte füge hinzu erstelle ändere behebe "
    "implementiere entferne benenne verschiebe aktualisiere erkläre optimiere verwende",
    "pt": "o os as um uma que de não para com é em do da dos das na no como função código "
    "escreva preciso quero meu minha você pode usando arquivo mas está são isso esse essa "
    "por ao também adicione crie corrija implemente altere remova renomeie mova atualize "
    "explique otimize faça",
    "it": "il lo gli una che di per con è non del della nel come funzione scrivi codice voglio "
    "mio puoi usando sono questo questa anche ma perché dei delle aggiungi crea correggi "
    "implementa modifica rimuovi rinomina sposta aggiorna spiega ottimizza usa",
    "nl": "de het een en van is niet met voor op dat die ik je hoe kun schrijf functie bestand "
    "mijn deze wordt moet maak ook maar waarom naar bij voeg toe maak verwijder pas aan "
    "hernoem verplaats werk bij leg uit gebruik",
    "pl": "i w z na się nie do to jak że jest czy funkcję funkcja napisz kod plik dla może "
    "proszę oraz ale gdy jako tego który która dodaj zmień usuń popraw napraw utwórz "
    "stwórz zaimplementuj przenieś zaktualizuj wyjaśnij użyj przez po od przy są",
    "tr": "ve bir bu için ile de da ne nasıl fonksiyon yaz kod dosya değil olan gibi bana "
    "lütfen şu daha çok her ekle düzelt oluştur kaldır değiştir güncelle açıkla kullan",
    "vi": "và của là có không cho với một này được hàm viết mã tôi các những trong để khi nếu",
    "id": "dan yang di ke dari untuk dengan ini itu tidak saya buat fungsi kode bagaimana "
    "tolong adalah tambahkan perbaiki hapus ubah buatkan jelaskan gunakan",
}
STOP_INDEX: dict[str, tuple[str, ...]] = {}
for _lang, _spec in STOPWORDS.items():
    for _w in _spec.split():
        STOP_INDEX[_w] = (*STOP_INDEX.get(_w, ()), _lang)
DIACRITICS: dict[str, str] = {
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

VOCAB: dict[str, tuple[tuple[int, str], ...]] = {
    "translate": ((1,
        "translat* port porting ported convert* rewrit* re-writ* transpil* migrat* "
        "reimplement* re-implement* equivalent counterpart traduc* tradui* traduz* "
        "convier* convertir reescrib* übersetz* portier* umschreib* перепиш* перевед* "
        "переве* портир* перенес*"),),
    "interop": ((1,
        "binding bindings ffi interop* ctypes cffi pybind11 pyo3 maturin napi n-api "
        "node-gyp jni cgo wasm-bindgen p/invoke pinvoke cython swig extern-c"),),
    "sequence": ((1,
        "then afterwards finally after-that secondly thirdly step-by-step luego después "
        "puis ensuite danach dann затем потом depois poi następnie"),),
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
         "virtual-machine geo-index* multi-region redesign* re-design* re-architect* "
         "rearchitect* oauth* oidc openid-connect single-sign-on sso auth-flow* "
         "authentication-flow* authorization-flow* login-flow* token-rotation "
         "rotate-tokens rotating-tokens refresh-token* key-rotation secret-rotation "
         "every-call-site* all-call-sites all-the-call-sites every-caller all-callers "
         "every-usage all-usages every-place-that codebase-wide project-wide repo-wide "
         "breaking-change* public-api api-versioning state-machine* dependency-injection "
         "outbox transactional-outbox event-bus event-driven message-bus "
         "whole-frontend whole-backend entire-frontend entire-backend all-components "
         "every-component every-file all-files every-endpoint all-endpoints every-service "
         "all-services through-the-codebase throughout-the-codebase across-the-code* "
         "zero-downtime storage-engine* buffer-pool write-ahead-log circuit-breaker* "
         "resilience-layer resilience retry-polic* collaborative-edit* real-time-collab* "
         "multi-tenan* tenant-scoped tenant-isolation "
         # the same ideas in other languages (tokenised scripts; CJK is in SUBSTRINGS)
         "arquitectura arquitetura architettura architektur* architektura архитектур* "
         "rediseñ* redesenh* riprogett* refonte neugestalt* перепроектир* переработ* "
         "distribuid* distribué* distribuée* verteilt* distribuit* rozproszon* распредел* "
         "microservic* microservizi mikroservic* микросервис* escalab* skalierb* "
         "масштабир* skalowaln* consistencia cohérence konsistenz согласованност* "
         "coerenza ограничител* autenticaci* authentifi* authentifizier* аутентифик* "
         "autenticazion* uwierzytelni* autorizaci* autorisation autorisierung "
         "авторизац*"),
        (1,
         "design* refactor* restructur* decoupl* modular* extensib* infrastructure "
         "abstraction* monolith* scaling requirement* strateg* roadmap versioning "
         "rollback* protocol* layered-architecture authentication authorization "
         "permission* rbac session-management call-site* callers overhaul* rework* "
         "migration migrations diseñ* concevoir conception entwurf entwer* проектир* "
         "progett* refactoriz* refactoris* refaktor* рефактор* refatora* migraci* "
         "migrazion* миграц* migrac* plan-and-implement migrate everywhere plan planning "
         "structure how-should-we collaborative offline-edit* offline-sync backoff jitter* "
         "tenant tenants autoscal* replica replicas only-while"),
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
         "file-descriptor* emfile fuga-de-memoria fuite-de-mémoire fuites-de-mémoire "
         "speicherleck* утечк* perdita-di-memoria wyciek* vazamento-de-memória "
         "condición-de-carrera condição-de-corrida wettlaufsituation гонк* "
         "interbloqueo interblocage взаимоблокир* zakleszczen* fuit fuite race-between "
         "never-locally only-on-ci fails-intermittently oomkill* oom-kill* crashloop* "
         "leak-memory leaks-memory "
         "crash-loop*"),
        (1,
         "crash* hang hangs hanging freez* leak* panic* stack-trace stacktrace traceback "
         "stack-overflow profiling profiler profiled regression debug* investigat* diagnos* "
         "timeout* slow* "
         "sometimes occasionally* randomly in-production absturz* зависа* падает "
         "depur* débogu* отлад* plante* cuelga"),
    ),
    "concurrency": (
        (2,
         "lock-free wait-free mutex* semaphore* atomic* memory-ordering compare-and-swap "
         "cas-loop work-stealing thread-safe* thread-pool condition-variable actor-model "
         "mpmc spsc mpsc concurren* multi-thread* multithread* parallelism goroutine* "
         "channels linearizab* happens-before rwlock spinlock* green-threads event-loop "
         "data-parallel lock-contention lock-ordering nebenläufig* многопоточ* "
         "wielowątk* multihilo семафор* мьютекс* memory-order* single-producer* "
         "single-consumer* multi-producer* ring-buffer* latch-crabbing all-cores multi-core "
         "multicore"),
        (1,
         "thread threads async asynchronous* lock locks synchroni* worker workers tokio "
         "parallel parallelize* parallelise* "
         "asyncio futures coroutine* single-threaded"),
    ),
    "performance": (
        (2,
         "latency throughput p99 p95 simd vectori* cache-friendly cache-miss* cache-line* "
         "cache-locality hot-path bottleneck* zero-copy allocation* memory-footprint "
         "flame-graph* flamegraph* benchmark* profiling profiler profilers profiled "
         "sub-millisecond submillisecond incremental-pars* re-pars* reparse reparsing "
         "millions-of million-rows million-records million-requests gc-pause* "
         "faster-than 5x 10x 100x requests-per-second rps qps per-second tail-latency "
         "latencia latence latenz латентност* задержк* latenza opóźnieni* rendimiento "
         "débit durchsatz пропускн* производительност* desempenho wydajnoś* "
         "cuello-de-botella goulot* engpass* engpäss* профилир* perfilar profilier* "
         "оптимиз* zoptymaliz* cpu-bound io-bound memory-bound"),
        (1,
         "performance optimi* faster speed-up speedup efficien* memory-usage scales "
         "cach* ms µs ns incremental* streaming into-memory in-memory out-of-core "
         "batching batch-insert* bulk-insert* hours stunden horas heures часов otimiz* "
         "optimis*"),
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
         "b+tree* btree* "
         "skip-list* bloom-filter* convex-hull branch-and-bound backtracking memoiz* "
         "amortized time-limit memory-limit sublinear streaming-algorithm* "
         "consistent-hashing rope persistent-data-structure* succinct lru red-black avl "
         "node-split* range-quer* edit-distance levenshtein longest-common-sub* "
         "longest-increasing-sub* minimum-number-of maximum-number-of min-number-of "
         "max-number-of efficient-solution efficient-algorithm lower-bound "
         "number-of-ways modulo fibonacci-heap trie* heap-based"),
        (1,
         "algorithm* graph graphs heuristic* optimal* complexity worst-case heap "
         "priority-queue constraint constraints range-scan* on-disk algoritm* алгоритм* "
         "optimality otimalidade optimalidad"),
    ),
}  # fmt: skip

# The same difficulty ideas in scripts written without spaces between words (Chinese,
# Japanese, Korean): matched as substrings of the prose, each counted once.
SUBSTRINGS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    "design": (
        (2, ("架构", "架構", "アーキテクチャ", "再設計", "設計し直", "重新设计", "重构", "重構",
             "リファクタ", "分布式", "分散シス", "分散型", "微服务", "マイクロサービス", "一致性",
             "整合性", "限流", "レート制限", "可扩展", "スケーラ", "아키텍처", "분산", "재설계",
             "마이크로서비스", "리팩터", "认证", "認証", "인증", "授权", "認可",
             "आर्किटेक्चर", "वितरित", "स्केलेबल", "माइक्रोसर्विस", "موزع", "موزّع", "الاتساق",
             "معمارية", "بنية النظام", "الخدمات المصغرة", "قابلية التوسع")),
        (1, ("设计", "設計", "설계", "迁移", "移行", "마이그레이션", "डिज़ाइन", "डिजाइन", "صمم",
             "صمّم", "تصميم")),
    ),
    "debug": (
        (2, ("内存泄漏", "内存泄露", "メモリリーク", "메모리 누수", "死锁", "デッドロック",
             "데드락", "竞态", "競合状態", "경쟁 상태", "段错误", "间歇", "断続的",
             "रेस कंडीशन", "डेडलॉक", "मेमोरी लीक", "मूल कारण", "حالة سباق", "تسرب الذاكرة",
             "السبب الجذري", "الجمود")),
        (1, ("调试", "デバッグ", "디버그", "崩溃", "クラッシュ", "크래시", "卡死", "フリーズ")),
    ),
    "concurrency": (
        (2, ("并发", "並行", "並列", "병렬", "동시성", "多线程", "マルチスレッド", "멀티스레드",
             "互斥", "ミューテックス", "뮤텍스", "समवर्ती", "मल्टीथ्रेड", "متزامن",
             "تعدد الخيوط")),
    ),
    "performance": (
        (2, ("p99", "p95", "10倍", "延迟", "レイテンシ", "지연", "吞吐", "スループット",
             "처리량", "性能", "パフォーマンス", "성능", "瓶颈", "ボトルネック", "병목",
             "プロファイル", "프로파일", "प्रदर्शन", "लेटेंसी", "थ्रूपुट", "الأداء",
             "زمن الاستجابة", "الإنتاجية")),
    ),
    "algorithm": (
        (2, ("动态规划", "動的計画法", "동적 계획법")),
        (1, ("复杂度", "計算量", "복잡도", "算法", "アルゴリズム", "알고리즘", "एल्गोरिदम",
             "خوارزمية")),
    ),
    "proof": ((2, ("证明", "証明", "증명")),),
}  # fmt: skip

# Patterns that are not words: big-O, bounds like n ≤ 10^5, sizes, "TLA+".
#: (probe or probes, table, weight, pattern): the pattern runs only where a probe is found.
SYMBOLIC: tuple[tuple[str | tuple[str, ...], str, int, re.Pattern[str]], ...] = (
    ("O(", "algorithm", 2, re.compile(r"O\([^)]{1,20}\)")),
    ("10^", "algorithm", 2, re.compile(r"10\^\d")),
    ("≤", "algorithm", 2, re.compile(r"≤")),
    ("<=", "algorithm", 2, re.compile(r"<=\s*\d{3,}|<=\s*\d+\s*[*·x×]\s*10")),
    ("e5", "algorithm", 1, re.compile(r"\b\de[5-9]\b")),
    # volumes: "50M rows", "10 million records", "200,000 requests"
    (("rows", "records", "events", "requests", "messages", "documents", "users", "items",
      "entries", "lines", "files", "keys", "images", "jobs", "nodes", "filas", "registros",
      "lignes", "Zeilen", "zeilen", "linhas", "nós", "строк"),
     "performance", 2, re.compile(
        r"\b(?:\d+(?:[.,]\d+)?\s?(?:[kKmMbB]|million|billion|thousand|mio|millones|millions"
        r"|millionen|milhões|milhão|миллион\w*)"
        r"|\d{5,}|\d{1,3}(?:,\d{3}){2,})\s+(?:rows|records|events|requests|messages|documents"
        r"|users|items|entries|lines|files|keys|images|jobs|nodes|filas|registros|lignes"
        r"|zeilen|linhas|nós|строк)\b")),
    # a rate: "1M rides a day", "5k requests per second"
    (("a day", "per day", "a second", "per second", "/s", "an hour", "per hour", "a minute",
      "per minute"), "performance", 2,
     re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:[kKmMbB]|million|billion|thousand)?\s+\w+\s+"
                r"(?:a|per|each)\s+(?:day|second|hour|minute)\b|\b\d+[kKmM]?\s?\w*/s\b")),
    # a count of things to change: "all 40 components", "every 12 services"
    (("all ", "every ", "each of the"), "design", 1,
     re.compile(r"\b(?:all|every|each of the)\s+\d{2,}\s+\w+")),
    # many things to change: "about 40 files", "in 25 services"
    (("files", "modules", "services", "components", "endpoints", "handlers", "models",
      "repositories", "tables", "clients", "call sites", "packages"), "design", 2,
     re.compile(r"\b(?:about|around|roughly|over|some|all|in|across)\s+~?\d{2,}\s+(?:\w+\s+)?"
                r"(?:files|modules|services|components|endpoints|handlers|models|repositories"
                r"|tables|clients|call sites|packages)\b")),
    # a failure rate: "fails 1 run in 50", "1 in 20 times"
    ((" in ",), "debug", 2,
     re.compile(r"\b1\s+(?:run\s+|time\s+|build\s+)?(?:in|out of)\s+\d{2,}\b")),
    # a memory bound: "under 2 GB", "within 512 MiB"
    (("GB", "MB", "GiB", "MiB"), "performance", 2,
     re.compile(
         r"\b(?:under|below|within|at most|less than)\s+\d+(?:\.\d+)?\s?(?:GB|MB|GiB|MiB)\b"
     )),
    # durations that hurt: "takes 3 hours"
    ("hour", "performance", 1, re.compile(r"\b(?:takes?|took|taking)\s+\S+\s+hours?\b")),
)  # fmt: skip


@dataclass(frozen=True)
class Term:
    table: str
    weight: int
    key: str


def _build_vocab() -> tuple[
    dict[str, list[Term]],
    dict[str, list[tuple[str, Term]]],
    dict[str, list[tuple[tuple[str, ...], bool, Term]]],
]:
    exact: dict[str, list[Term]] = {}
    stems: dict[str, list[tuple[str, Term]]] = {}  # first 3 chars → (stem, term)
    phrases: dict[str, list[tuple[tuple[str, ...], bool, Term]]] = {}
    for table, groups in VOCAB.items():
        for weight, spec in groups:
            for raw in spec.split():
                term = Term(table, weight, raw)
                is_stem = raw.endswith("*")
                words = [w for w in re.split(r"[-/]", raw.rstrip("*").lower()) if w]
                if len(words) == 1 and not is_stem:
                    exact.setdefault(words[0], []).append(term)
                elif len(words) == 1:
                    stems.setdefault(words[0][:3], []).append((words[0], term))
                else:
                    phrases.setdefault(words[0], []).append((tuple(words[1:]), is_stem, term))
    return exact, stems, phrases


V_EXACT, V_STEMS, V_PHRASES = _build_vocab()

TEMPLATE_TOKEN_RE = re.compile(
    r"<\|[\w▁]{1,30}\|>|<｜[^｜]{1,30}｜>|\[/?INST\]|</?s>|<(?:start|end)_of_turn>|"
    r"<fim_\w+>|<(?:PRE|SUF|MID|EOT)>|\[(?:SUFFIX|PREFIX)\]|<repo_name>|<file_sep>|<filename>"
)
CHAT_TEMPLATE_MARKS = (
    "<|im_start|>", "[INST]", "<start_of_turn>", "<|user|>", "<|start_header_id|>",
    "<|User|>", "<｜User｜>",
)  # fmt: skip
CHAT_TEMPLATE_RE = re.compile(
    r"^(?:#{2,4} ?\w[^\n]{0,30}:\s*$|(?:USER|User|Human|Question|Instruction):)", re.MULTILINE
)
IMPERATIVE_RE = re.compile(
    r"\s*(?:please[, ]+)?(?:write|create|implement|explain|generate|build|make|design|"
    r"refactor|fix|convert|translate|port|describe|summari[sz]e|add|remove|rewrite|"
    r"optimi[sz]e|review|debug|document|how|what|why|when|where|which|can you|could you|"
    r"i need|i want|i'd like|help|show me|give me|list|find|tell me|is there|should i)\b",
    re.IGNORECASE,
)
# "Fill the hole" markers that chat-based autocomplete prompts use.
HOLE_RE = re.compile(
    r"\{\{(?:FILL_HERE|CURSOR|HOLE)\}\}"
    r"|<(?:FILL_HERE|FILL_ME|CURSOR|HOLE|INSERT|fim_hole|cursorPosition|cursor_position|cursor)>"
    r"|<\|(?:fill_here|cursor|hole|user_cursor_is_here|user_cursor)\|>"
    r"|<\|code_(?:prefix|suffix|middle)\|>|\[BLANK\]"
)
#: Cheap probes (lower-cased) before the hole regex runs on a big text.
HOLE_PROBES = ("fill", "cursor", "hole", "insert>", "code_", "[blank]")
NUMBERED_RE = re.compile(r"\d\d?[.)] +[A-Za-z]")
BULLETS = ("- ", "* ", "• ")
LOG_MARKERS = (
    "ERROR", "WARN", "FATAL", "CRITICAL", "Exception", "Traceback", 'File "', "\tat ",
    "    at ", "panicked at", "goroutine ", "Caused by:",
)  # fmt: skip
LOG_TIMESTAMP_RE = re.compile(r"\n\[?\d{4}-\d\d-\d\d[T ]\d\d:")

# Prose/code split: how a line of code starts, and how a sentence ends.
CODE_START_RE = re.compile(
    r"\s*(?:def |class |import |from \S+ import|return\b|#include|#define|package \w|func |"
    r"fn |pub |let |const |var |public |private |protected |static |function\b|@\w|//|/\*|"
    r"\*/|<\?php|</?[a-zA-Z][\w-]*(?:\s[^>]*)?>|[}\])]|\w+(?:\.\w+)*\(.*\);?\s*$|"
    r"[\w.\[\]]+\s*[-+*/]?=\s*\S)"
)
SENTENCE_END_RE = re.compile(r"[a-zA-Z\u00c0-\uffff][.?!:。？！]\s*$")
# A comment line at the end of a raw completion prompt (the cursor is in code).
COMMENT_LINE_RE = re.compile(r"\s*(?:#(?![#!\s]*\w+:\s*$)|//|--|/\*|\*|;;|%|<!--)")

# Words that can start a language name in prose (a strong name or a phrase).
NAME_FIRST_WORDS = frozenset(STRONG_NAMES) | {k[0] for k in NAME_PHRASES}

# Chinese, Japanese and Korean words for translate / convert / port / rewrite.
CJK_TRANSLATE = ("翻译", "转换", "改写", "移植", "変換", "書き換え", "翻訳", "변환", "포팅")
