# ruff: noqa: E501
"""Write ``tests/corpus/clients/holdout.jsonl``: a held-out set of client-shaped requests.

Run: .venv/bin/python tests/corpus/make_holdout.py

Why a second corpus: the development corpus was written by the same hand that tuned the
classifier, so its score is optimistic. This set was written independently, from the
research notes on client envelopes only (``/work/notes/client_shapes.md``) and the class
definitions in ``docs/classifier.md``, without reading the classifier or the first corpus.

Design:
- Every ask, file tree, code snippet and filler paragraph is our own; from the clients we
  keep only their *structure* (message order, content parts, tool loops) and their short
  fixed marker strings (headings, prefixes, FIM and cursor tokens). Boilerplate is filler
  prose generated from a small vocabulary up to the size the real client sends.
- Each row is labelled by what the *human ask* needs, never by the envelope: a mid-task
  tool step or a one-word "continue" carries the label of the task's ask; background
  chores (titles, tags, follow-ups, queries, commit messages, summaries) are
  ``instruction`` and carry ``"background": <kind>``.
- Deterministic: one seeded ``random.Random``; the output is byte-identical between runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "clients" / "holdout.jsonl"
CHAT, LEGACY = "/v1/chat/completions", "/v1/completions"
Row = dict[str, Any]
Msg = dict[str, Any]
rng = random.Random(1512)

# ----------------------------------------------------------------------------- filler
_SUBJ = "the assistant|every tool call|your next step|the working directory|a shell command|the file you edit|this mode|the final answer|each reply|the user's project|a search result|the diff you propose|an unknown path|the open editor".split(
    "|"
)
_VERB = "must be checked against|should wait for|never overrides|is described by|depends on|is confirmed by|stays consistent with|is limited by|has to mention|must not repeat|should summarise|may refer to".split(
    "|"
)
_OBJ = "the result of the previous step|the instructions given above|the contents of the workspace|what the user approved|the exact path relative to the project root|the output printed by the terminal|the rules in this section|a short plain-language explanation|the tool that fits best|the current date and platform|one parameter per line|the file as it exists on disk".split(
    "|"
)
_TAIL = [
    "",
    "",
    " before anything else",
    " whenever it is unclear",
    " in every case",
    " unless told otherwise",
    " without guessing",
]


def prose(n: int) -> str:
    """Neutral instruction-like filler of about ``n`` characters."""
    out: list[str] = []
    size = 0
    while size < n:
        s = f"{rng.choice(_SUBJ).capitalize()} {rng.choice(_VERB)} {rng.choice(_OBJ)}{rng.choice(_TAIL)}."
        out.append(s + ("\n\n" if rng.random() < 0.2 else " "))
        size += len(s) + 1
    return "".join(out).strip()


# ----------------------------------------------------------------------------- code
_ID = "order user invoice cart token session item price record entry batch report slot queue page node account".split()
_VB = "load parse build apply check format merge split fetch store render count".split()


def _ident() -> tuple[str, str]:
    return rng.choice(_VB), rng.choice(_ID)


def code(path: str, n: int = 6) -> str:
    """A plausible source file of ``n`` small functions in the language of ``path``."""
    ext = path.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    parts: list[str] = []
    for i in range(n):
        v, o = _ident()
        k = rng.randint(2, 90)
        if ext == "py":
            parts.append(
                f'def {v}_{o}_{i}({o}s, limit={k}):\n    """Return the {o}s we keep."""\n    kept = []\n    for {o} in {o}s:\n        if {o}.size > limit:\n            kept.append({o})\n    return kept\n'
            )
        elif ext in ("ts", "tsx", "js", "jsx"):
            parts.append(
                f"export function {v}{o.title()}{i}({o}s{': any[]' if 't' in ext[:1] else ''}) {{\n  const kept = {o}s.filter((x) => x.size > {k});\n  return kept.map((x) => ({{ ...x, seen: true }}));\n}}\n"
            )
        elif ext == "go":
            parts.append(
                f"func {v.title()}{o.title()}{i}({o}s []{o.title()}) []{o.title()} {{\n\tvar kept []{o.title()}\n\tfor _, x := range {o}s {{\n\t\tif x.Size > {k} {{\n\t\t\tkept = append(kept, x)\n\t\t}}\n\t}}\n\treturn kept\n}}\n"
            )
        elif ext == "rs":
            parts.append(
                f"pub fn {v}_{o}_{i}({o}s: &[{o.title()}]) -> Vec<&{o.title()}> {{\n    {o}s.iter().filter(|x| x.size > {k}).collect()\n}}\n"
            )
        elif ext in ("java", "kt", "cs"):
            parts.append(
                f"    public List<{o.title()}> {v}{o.title()}{i}(List<{o.title()}> {o}s) {{\n        List<{o.title()}> kept = new ArrayList<>();\n        for ({o.title()} x : {o}s) {{\n            if (x.getSize() > {k}) kept.add(x);\n        }}\n        return kept;\n    }}\n"
            )
        elif ext == "rb":
            parts.append(
                f"  def {v}_{o}_{i}({o}s)\n    {o}s.select {{ |x| x.size > {k} }}\n  end\n"
            )
        elif ext == "php":
            parts.append(
                f"    public function {v}{o.title()}{i}(array ${o}s): array\n    {{\n        return array_filter(${o}s, fn($x) => $x->size > {k});\n    }}\n"
            )
        elif ext in ("c", "cpp", "h"):
            parts.append(
                f"int {v}_{o}_{i}(const struct {o} *xs, int n) {{\n    int kept = 0;\n    for (int i = 0; i < n; i++) {{\n        if (xs[i].size > {k}) kept++;\n    }}\n    return kept;\n}}\n"
            )
        elif ext == "css":
            parts.append(
                f".{o}-{v} {{\n  margin: {k % 20}px;\n  color: #{k:02x}{k:02x}{k:02x};\n}}\n"
            )
        elif ext in ("md", "txt"):
            parts.append(f"## {v.title()} {o}s\n\n{prose(200)}\n")
        elif ext in ("toml", "json", "lock", "mod", "sum", "kts", "lockfile", "yaml"):
            parts.append(f'{o}-{v} = "{k}.{i}.{k % 7}"\n')
        elif ext in ("sh", "Makefile"):
            parts.append(f"{v}_{o}() {{\n  find . -name '*.{o}' -size +{k}k | xargs -r rm -f\n}}\n")
        elif ext == "dart":
            parts.append(
                f"List<{o.title()}> {v}{o.title()}{i}(List<{o.title()}> xs) =>\n    xs.where((x) => x.size > {k}).toList();\n"
            )
        else:
            parts.append(f"-- {v} {o} {i}\n{v}_{o} x = filter (\\y -> size y > {k}) x\n")
    return "\n".join(parts)


TREES = {
    "web": "package.json package-lock.json tsconfig.json src/App.tsx src/components/Profile.tsx src/components/LoginForm.tsx src/components/ProfileCard.tsx src/hooks/useLock.ts src/api/client.ts src/utils/formatDate.ts src/styles.css routes/books.js server/index.js README.md".split(),
    "rust": "Cargo.toml Cargo.lock src/main.rs src/lock.rs src/pool.rs src/profile.rs src/scheduler.rs src/tokenize.rs benches/throughput.rs tests/race.rs README.md".split(),
    "go": "go.mod go.sum cmd/server/main.go internal/cache/cache.go internal/profile/profile.go internal/worker/deadlock_test.go internal/worker/pool.go internal/lock/mutex.go Makefile README.md".split(),
    "py": "pyproject.toml poetry.lock app/__init__.py app/models.py app/scheduler.py app/settings.py app/profile.py utils/time.py utils/fetch.py tests/test_scheduler.py tests/test_render.py cli.py README.md".split(),
    "jvm": "build.gradle.kts settings.gradle.kts src/main/java/shop/OrderService.java src/main/java/shop/LockManager.java src/main/kotlin/shop/Invoice.kt src/test/java/shop/OrderServiceTest.java gradle.lockfile".split(),
}


def tree_for(path: str | None) -> list[str]:
    ext = (path or "x.py").rsplit(".", 1)[-1]
    key = {
        "ts": "web",
        "tsx": "web",
        "js": "web",
        "css": "web",
        "rs": "rust",
        "go": "go",
        "java": "jvm",
        "kt": "jvm",
    }.get(ext, "py")
    files = list(TREES[key])
    if path and path not in files:
        files.append(path)
    extra = [
        f"{rng.choice(['docs', 'scripts', 'assets', 'fixtures'])}/{rng.choice(_ID)}_{i}.md"
        for i in range(rng.randint(5, 60))
    ]
    return sorted(files + extra)


def default_path(ask: dict[str, Any]) -> str:
    return ask.get("path") or rng.choice(
        [
            "app/models.py",
            "src/api/client.ts",
            "internal/cache/cache.go",
            "src/pool.rs",
            "src/main/java/shop/OrderService.java",
        ]
    )


def diff(paths: list[str]) -> str:
    chunks = []
    for p in paths:
        line = rng.randint(3, 400)
        v, o = _ident()
        chunks.append(
            f'diff --git a/{p} b/{p}\nindex {rng.getrandbits(28):07x}..{rng.getrandbits(28):07x} 100644\n--- a/{p}\n+++ b/{p}\n@@ -{line},6 +{line},7 @@\n     # {o} handling\n-    value = {v}({o})\n+    value = {v}({o}, strict=True)\n+    log.debug("{v} %s", value)\n     return value\n'
        )
    return "".join(chunks)


# ----------------------------------------------------------------------------- rows
ROWS: list[Row] = []


def add(
    endpoint: str,
    body: dict[str, Any],
    label: str,
    client: str,
    note: str,
    background: str | None = None,
) -> None:
    row: Row = {"endpoint": endpoint, "body": body, "label": label, "client": client, "note": note}
    if background:
        row["background"] = background
    ROWS.append(row)


_POOLS: dict[str, list[dict[str, Any]]] = {}


def take(kind: str) -> dict[str, Any]:
    """Next unused ask of ``kind`` (instr, complex, multi, multi_hard): each ask used once."""
    if not _POOLS:
        for a in ASKS:
            _POOLS.setdefault(a["kind"], []).append(a)
        for pool in _POOLS.values():
            rng.shuffle(pool)
    pool = _POOLS[kind]
    ask = pool.pop()
    pool.insert(0, ask)  # recycle only if a client asks for more than the pool holds
    return ask


# ----------------------------------------------------------------------------- asks
# Our own asks. kind -> label: instr -> instruction, complex -> complex, multi ->
# multi-language, cxl -> complex written in a human language other than English
# (precedence complex > multi-language).
LABEL = {"instr": "instruction", "complex": "complex", "multi": "multi-language", "cxl": "complex"}


def _a(kind: str, t: str, path: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "t": t, "path": path}


ASKS = [
    _a(
        "instr",
        "Fix the typo 'recieve' -> 'receive' in README.md and in the docstring of utils/fetch.py.",
        "utils/fetch.py",
    ),
    _a(
        "instr",
        "Rename the function `get_usr` to `get_user` everywhere in app/models.py.",
        "app/models.py",
    ),
    _a(
        "instr",
        "Add a `--verbose` flag to the argparse setup in cli.py that sets the log level to DEBUG.",
        "cli.py",
    ),
    _a("instr", "why does `[] == []` give True but `[] is []` give False in python?"),
    _a(
        "instr",
        "Write a TypeScript `debounce` helper with a generic signature so the wrapped function keeps its parameter types.",
        "src/utils/formatDate.ts",
    ),
    _a(
        "instr",
        "Add unit tests for `parse_duration` in utils/time.py: '5m', '2h', '90s' and a bad input that should raise ValueError.",
        "utils/time.py",
    ),
    _a(
        "instr",
        "The login button in LoginForm.tsx isn't disabled while the request is pending. Disable it and show a spinner.",
        "src/components/LoginForm.tsx",
    ),
    _a(
        "instr",
        "Convert the callback-style `fs.readFile` calls in server/index.js to async/await.",
        "server/index.js",
    ),
    _a(
        "instr",
        "Explain what this query does and whether the LEFT JOIN is needed:\n\nSELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NOT NULL;",
    ),
    _a(
        "instr",
        "Add a null check before `order.getCustomer().getAddress()` in OrderService.java so we return 400 instead of a NullPointerException.",
        "src/main/java/shop/OrderService.java",
    ),
    _a("instr", "make the header sticky", "src/styles.css"),
    _a(
        "instr",
        "Write a bash script that deletes files older than 30 days from /var/log/myapp, with a dry-run option.",
    ),
    _a(
        "instr",
        "Add limit/offset pagination to GET /books in routes/books.js; default limit 20, max 100.",
        "routes/books.js",
    ),
    _a(
        "instr",
        "Add a computed property `isExpired` to the Swift `Token` struct that compares `expiresAt` with `Date()`.",
    ),
    _a(
        "instr",
        "Write a Kotlin data class Invoice(id, amount, currency) with a `total()` that adds 19% VAT.",
        "src/main/kotlin/shop/Invoice.kt",
    ),
    _a("instr", "How do I read an environment variable with a default value in Go?"),
    _a(
        "instr",
        "Add a `__repr__` to the Point class so the tests print something readable.",
        "app/models.py",
    ),
    _a(
        "instr",
        "Replace the for loop in `sum_prices` with a generator expression.",
        "app/models.py",
    ),
    _a(
        "instr",
        "Create an HTML signup form with name, email and password fields and basic `required` validation.",
    ),
    _a(
        "instr",
        "`formatDate` throws on null. Return an empty string instead.",
        "src/utils/formatDate.ts",
    ),
    _a(
        "instr",
        "Add a CHECK constraint so `quantity` can never be negative in the orders table (Postgres migration).",
    ),
    _a(
        "instr",
        "Update the error message in PaymentController.php to include the order id.",
        "app/Http/PaymentController.php",
    ),
    _a("instr", "Write a C function that reverses a null-terminated string in place."),
    _a("instr", "Sort users by last name, then first name, case-insensitively.", "app/models.py"),
    _a("instr", "add docstrings to the public functions in this file", "app/settings.py"),
    _a(
        "instr",
        "`GetTotal` in Cart.cs returns int but prices are decimal. Change the return type and fix the two callers.",
        "src/Cart.cs",
    ),
    _a(
        "instr",
        "Write a Rust function that counts word frequencies in a &str and returns a HashMap<String, usize>.",
        "src/tokenize.rs",
    ),
    _a(
        "instr",
        "The Express 404 handler returns status 200. Make it return 404 with a JSON body.",
        "server/index.js",
    ),
    _a(
        "instr",
        "Add type hints to `load_config` and make it return a dataclass instead of a dict.",
        "app/settings.py",
    ),
    _a(
        "instr",
        "Wrap the requests.get call in fetch.py in a retry: 3 attempts, 1 second apart.",
        "utils/fetch.py",
    ),
    _a("instr", "Explain this regex please: ^(?=.*\\d)(?=.*[a-z]).{8,}$"),
    _a("instr", "Write a C++ function `is_prime(uint64_t n)` and a couple of asserts for it."),
    _a(
        "instr",
        "Change the default port from 8080 to 9090 and read it from PORT if set.",
        "config/puma.rb",
    ),
    _a(
        "instr",
        "What's the difference between `let` and `const` here, and should `total` be const?",
        "src/App.tsx",
    ),
    _a(
        "instr",
        "Add a `Dockerfile` for this small Flask app using python:3.12-slim, running gunicorn on port 8000.",
    ),
    _a("instr", "Add an index on users(email) and make it unique in the migration."),
    _a(
        "instr",
        "Make ProfileCard show the user's initials when there's no avatar URL.",
        "src/components/ProfileCard.tsx",
    ),
    _a("instr", "Add a `--json` output option to the `report` subcommand.", "cli.py"),
    _a(
        "complex",
        "The Go service deadlocks under load roughly once a day. Goroutine dumps show one goroutine holding `c.mu` in cache.go while waiting to send on `results`, and a worker in pool.go holding `p.mu` while calling `cache.Get`. Find the lock-ordering problem and fix it without a global lock, and add a test that reproduces it.",
        "internal/cache/cache.go",
    ),
    _a(
        "complex",
        "Redesign the plugin system so plugins run out of process behind a versioned RPC protocol, with hot reload and crash isolation. Write up the architecture first (process model, protocol, lifecycle, failure modes), then implement the host side.",
        "app/__init__.py",
    ),
    _a(
        "complex",
        "RSS of the Node worker grows about 50 MB an hour until it's OOM-killed. Heap snapshots show retained closures under EventEmitter listeners. Find the leak and fix it.",
        "server/index.js",
    ),
    _a(
        "complex",
        "Implement a lock-free single-producer/single-consumer ring buffer in C++ with the right memory orderings, and justify each ordering.",
    ),
    _a(
        "complex",
        "The CSV import takes 14 minutes for 2M rows. Profile it and get it under a minute; the hot path seems to be row validation and the ORM inserts.",
        "app/models.py",
    ),
    _a(
        "complex",
        "Design a rate limiter for our API gateway that works across 12 regions with eventual consistency and a bounded overshoot, and sketch the data structures.",
    ),
    _a(
        "complex",
        "Prove that union-find with path compression and union by rank runs in O(m α(n)) amortized, step by step.",
    ),
    _a(
        "complex",
        "Migrate the auth module from session cookies to OAuth2 authorization code + PKCE with refresh token rotation, and update every call site that reads the session.",
        "app/settings.py",
    ),
    _a(
        "complex",
        "test_transfer fails about 1 run in 50 on CI with a balance mismatch and never locally. I suspect a race between the two payment workers. Find it and fix it properly.",
        "tests/test_scheduler.py",
    ),
    _a(
        "complex",
        "Split billing out of the monolith into its own service: define the boundary, the events it publishes, the data migration and a zero-downtime rollout plan.",
    ),
    _a(
        "complex",
        "Implement Raft leader election and log replication for our key-value store, with persistence and snapshotting.",
        "src/main.rs",
    ),
    _a(
        "complex",
        "Given n ≤ 2e5 intervals and k machines, find the minimum total cost to cover all intervals; I need an O(n log n) algorithm with a correctness argument.",
    ),
    _a("complex", "design exactly-once processing for our kafka consumers"),
    _a(
        "complex",
        "p99 latency jumps from 40 ms to 900 ms every ten minutes. Figure out why (GC? compaction? connection pool?) and fix it.",
        "cmd/server/main.go",
    ),
    _a(
        "complex",
        "Build the backend of a collaborative text editor on a sequence CRDT (RGA) with offline edits and sync.",
    ),
    _a(
        "complex",
        "The bug disappears when I add a printf. Two threads update `stats->count` and sometimes the total is off by one. Explain what's happening and fix it without killing throughput.",
        "src/stats.c",
    ),
    _a(
        "complex",
        "Implement a B+tree with concurrent readers and writers using latch crabbing.",
        "src/pool.rs",
    ),
    _a(
        "complex",
        "Add tenant_id to every model, repository, API handler and migration (about 40 files) and make every query tenant-scoped.",
        "app/models.py",
    ),
    _a("complex", "how would you re-architect this for multi-region active-active?"),
    _a(
        "complex",
        "Our scheduler starves low-priority jobs when the queue is deep. Rework it into a fair scheduler with aging, keep O(log n) per operation, and prove it can't starve.",
        "app/scheduler.py",
    ),
    _a(
        "multi",
        "Port this Python data-cleaning script to Rust, keeping the same CLI flags.",
        "utils/time.py",
    ),
    _a(
        "multi",
        "Translate these Java DTOs into TypeScript interfaces.",
        "src/main/java/shop/OrderService.java",
    ),
    _a(
        "multi",
        "Write pyo3 bindings so Python can call our Rust `tokenize` function.",
        "src/tokenize.rs",
    ),
    _a(
        "multi",
        "Call this small C library from Go with cgo and wrap it in an idiomatic Go API.",
        "internal/lock/mutex.go",
    ),
    _a("multi", "Write an Elixir GenServer that keeps a counter with increment/0 and get/0."),
    _a("multi", "Write a Haskell function that parses 'key=value' lines into a Map String String."),
    _a("multi", "How do I pattern match on a sealed trait in Scala 3?"),
    _a("multi", "Plot a histogram of the age column with ggplot2 and overlay a density curve."),
    _a("multi", "Vectorize this Julia loop that computes pairwise distances."),
    _a("multi", "Make this Flutter ListView support pull-to-refresh.", "lib/screens/feed.dart"),
    _a("multi", "Neovim: write a Lua keymap that toggles relative line numbers with <leader>rn."),
    _a("multi", "How do I read a file line by line in Zig?"),
    _a("multi", "Write an OCaml function that flattens a list of lists without using List.concat."),
    _a(
        "multi",
        "Add a `GET /stats` endpoint to the Go backend, the matching fetch call in the React page, and the SQL view it reads from.",
        "cmd/server/main.go",
    ),
    _a(
        "multi",
        "Corrige la faute de frappe dans le message d'erreur de login (« mot de pase » au lieu de « mot de passe »).",
        "app/settings.py",
    ),
    _a(
        "multi",
        "Agrega validación de correo electrónico al formulario de registro.",
        "src/components/LoginForm.tsx",
    ),
    _a("multi", "Schreib mir eine Python-Funktion, die prüft, ob ein String ein Palindrom ist."),
    _a("multi", "Como faço para ordenar um dicionário por valor em Python?"),
    _a(
        "multi",
        "Dodaj obsługę błędu, gdy plik konfiguracyjny nie istnieje, w funkcji load_config.",
        "app/settings.py",
    ),
    _a(
        "multi",
        "Bu fonksiyonun adını calculate_total yerine compute_total olarak değiştir ve çağrıldığı yerleri güncelle.",
        "app/models.py",
    ),
    _a(
        "multi",
        "Viết hàm JavaScript kiểm tra một chuỗi có phải là địa chỉ email hợp lệ hay không.",
        "src/utils/formatDate.ts",
    ),
    _a("multi", "이 파이썬 함수에 타입 힌트를 추가해 주세요.", "utils/time.py"),
    _a(
        "multi",
        "इस फ़ंक्शन में एक छोटी सी गलती है, कृपया इसे ठीक करें और बताएं कि क्या गलत था।",
        "utils/fetch.py",
    ),
    _a(
        "multi",
        "اكتب دالة بلغة بايثون تحسب متوسط قائمة من الأرقام وتعيد صفرًا إذا كانت القائمة فارغة.",
    ),
    _a(
        "multi",
        "このJavaクラスにtoStringメソッドを追加してください。",
        "src/main/java/shop/OrderService.java",
    ),
    _a("multi", "把这个函数里的变量名 tmp 改成 buffer，其他不要动。", "src/pool.rs"),
    _a("multi", "Объясни, пожалуйста, что делает этот SQL-запрос и зачем там GROUP BY."),
    _a("multi", "Aggiungi un test per la funzione somma in calc.py.", "calc.py"),
    _a(
        "cxl",
        "Notre service Go se bloque sous forte charge : deux goroutines s'attendent mutuellement entre cache.go et pool.go. Trouve l'ordre de verrouillage fautif, corrige-le et ajoute un test qui reproduit l'interblocage.",
        "internal/cache/cache.go",
    ),
    _a(
        "cxl",
        "Zaprojektuj architekturę rozproszonej kolejki zadań z gwarancją dokładnie jednokrotnego wykonania, odpornej na awarie węzłów i podział sieci.",
    ),
    _a(
        "cxl",
        "本番環境でだけ発生するメモリリークを調査して修正してください。ヒープは一日に約2GBずつ増え、最後はOOMで落ちます。",
        "server/index.js",
    ),
    _a(
        "cxl",
        "여러 리전에 걸친 분산 캐시의 일관성 문제를 해결하는 아키텍처를 설계하고, 장애 시나리오별로 동작을 설명해 주세요.",
    ),
    _a(
        "cxl",
        "Die Import-Pipeline braucht für 5 Millionen Zeilen drei Stunden. Profiliere sie, finde die Engpässe und bring sie unter zehn Minuten, ohne die Ergebnisse zu verändern.",
        "app/models.py",
    ),
    _a(
        "cxl",
        "Testlerimiz CI'da rastgele başarısız oluyor; iki iş parçacığı aynı sayacı güncellerken bir yarış durumu (race condition) var gibi görünüyor. Kök nedeni bul ve düzelt.",
        "tests/test_scheduler.py",
    ),
]

ASKS += [
    _a(
        "complex",
        "Postgres on the primary hits 100% CPU every weekday at 9am. Find the root cause from pg_stat_statements and design an indexing and caching plan that survives 3x growth.",
    ),
    _a(
        "complex",
        "Rewrite the job runner on a work-stealing thread pool; today one slow job blocks the whole queue and cores sit idle.",
        "app/scheduler.py",
    ),
    _a(
        "complex",
        "The Python gateway dies with 'too many open files' after about three days of uptime. Track down the descriptor leak and prove the fix holds.",
        "utils/fetch.py",
    ),
    _a(
        "complex",
        "Design the sync protocol for our offline-first mobile app: conflict resolution, clock skew, partial failures and schema migrations on old clients.",
    ),
    _a(
        "complex",
        "Implement a persistent segment tree with range-sum queries over historical versions, O(log n) per update and query.",
    ),
    _a(
        "complex",
        "We have 60 components passing props five levels deep and three competing stores. Propose a new state architecture and migrate the checkout flow first.",
        "src/App.tsx",
    ),
    _a(
        "complex",
        "Shutdown of the async server sometimes hangs forever. I think some task holds a MutexGuard across an .await. Find it and restructure the shutdown sequence.",
        "src/main.rs",
    ),
    _a(
        "complex",
        "Make the image thumbnailer use all cores; it's CPU bound and single-threaded, and memory has to stay under 2 GB for 40k images.",
        "app/profile.py",
    ),
    _a(
        "complex",
        "Replace the hand-rolled retry code in all 25 HTTP clients with one resilience layer (timeouts, circuit breaker, jittered backoff) without changing their public APIs.",
    ),
    _a(
        "complex",
        "Pods get OOMKilled only while the autoscaler is adding replicas. Work out why and fix it.",
        "cmd/server/main.go",
    ),
    _a(
        "complex",
        "Plan a zero-downtime migration that splits the 800M-row events table by tenant, with backfill, dual writes and a rollback path.",
    ),
    _a(
        "complex",
        "Our two-phase commit coordinator can leave a participant prepared forever after a coordinator crash. Show the failing interleaving and redesign recovery so it can't happen.",
    ),
    _a(
        "cxl",
        "Diseña la arquitectura de un sistema de pagos distribuido con idempotencia, reintentos y conciliación entre tres proveedores.",
    ),
    _a(
        "cxl",
        "Dịch vụ của chúng tôi thỉnh thoảng bị treo do deadlock giữa hai luồng; hãy phân tích thread dump và sửa lỗi tận gốc.",
        "src/main/java/shop/LockManager.java",
    ),
    _a(
        "cxl",
        "हमारी सेवा में उच्च लोड पर रेस कंडीशन है जिससे ऑर्डर दो बार बन जाते हैं; कृपया मूल कारण खोजें और ठीक करें।",
        "app/models.py",
    ),
    _a(
        "cxl",
        "صمّم نظام تخزين مؤقت موزع متعدد المناطق مع ضمان الاتساق عند انقطاع الشبكة بين المناطق.",
    ),
    _a(
        "cxl",
        "Otimize este algoritmo de roteamento que hoje roda em O(n³) para algo viável com um milhão de nós, sem perder a otimalidade.",
        "app/scheduler.py",
    ),
    _a("multi", "Port our bash deploy script to a Python CLI using click.", "scripts/deploy.sh"),
    _a("multi", "Expose this C++ class to Node.js through N-API.", "src/native/codec.cpp"),
    _a(
        "multi",
        "Cambia el nombre de la variable `cnt` a `contador` en este archivo.",
        "app/models.py",
    ),
    _a("multi", "Write a small Clojure function that groups words by their first letter."),
    _a(
        "multi",
        "Share this validation logic between the Android and iOS apps with Kotlin Multiplatform and call it from Swift.",
        "src/main/kotlin/shop/Invoice.kt",
    ),
    _a(
        "multi",
        "Write the same binary search in Python and in Go so I can compare them side by side.",
    ),
    _a(
        "multi",
        "Napisz funkcję w TypeScript, która zamienia pierwszą literę każdego słowa na wielką.",
        "src/utils/formatDate.ts",
    ),
    _a("multi", "Bu SQL sorgusuna tarih aralığı filtresi ekler misin?"),
]

# One-word or one-line follow-ups sent mid-task: they carry the label of the task.
FOLLOW = [
    "continue",
    "yes, do it",
    "ok go ahead",
    "looks good, keep going",
    "y",
    "proceed with the plan",
    "do the remaining files too",
]

# Hostile asks: each built into a specific client below, label in the tuple.
HOSTILE = {
    "fim_question": (
        "instruction",
        "In my Qwen prompt I build `<|fim_prefix|>` + prefix + `<|fim_suffix|>` + suffix + `<|fim_middle|>`. Is that the right order, and do I need `<|file_sep|>` in front? Just explain, no code.",
    ),
    "fim_file": (
        "instruction",
        "Rename the constant FIM_MIDDLE to FIM_MIDDLE_TOKEN in tokens.py and update its one use.",
    ),
    "cursor_file": (
        "instruction",
        "Fix the typo in the assertion message in test_render.py ('exepcted' -> 'expected').",
    ),
    "lock_rs": (
        "instruction",
        "In src/lock.rs the doc comment on `acquire` says 'retuns'. Fix the spelling.",
    ),
    "profile_go": (
        "instruction",
        "profile.go: rename the exported field `Usrname` to `Username` and update its json tag.",
    ),
    "scheduler_py": (
        "instruction",
        "app/scheduler.py imports heapq but never uses it. Remove the import.",
    ),
    "deadlock_test": (
        "instruction",
        "deadlock_test.go: the test is named TestDeadlcok. Rename it to TestDeadlock.",
    ),
    "short_arch": ("complex", "Should we move to event sourcing? Design it."),
    "paste_rename": (
        "instruction",
        "Rename every `usr` variable to `user` in the code below. Nothing else.\n\n",
    ),
}


# ----------------------------------------------------------------------------- aider
AIDER_RULES = {
    "diff": "# *SEARCH/REPLACE block* Rules:",
    "whole": "To suggest changes to a file you MUST return the entire content of the updated file.",
    "udiff": "# File editing rules:",
    "patch": "# V4A Diff Format Rules:",
}
AIDER_ENV = "Keep in mind these details about the user's platform and environment:\n- Platform: Linux-6.8.0-x86_64-with-glibc2.39\n- Shell: SHELL=/bin/zsh\n- Language: en_US\n- Current date: 2026-11-30\n- The user is operating inside a git repository\n"


def aider_reminder(fmt: str) -> str:
    body = [AIDER_RULES[fmt], ""]
    if fmt == "diff":
        body += [
            "Every *SEARCH/REPLACE block* must use this format:",
            "1. The *FULL* file path alone on a line, verbatim.",
            "2. The opening fence and code language, eg: ```python",
            "3. The start of search block: <<<<<<< SEARCH",
            "4. A contiguous chunk of lines to search for in the existing source code",
            "5. The dividing line: =======",
            "6. The lines to replace into the source code",
            "7. The end of the replace block: >>>>>>> REPLACE",
            "8. The closing fence: ```",
            "",
            "demo/shop/cart.py",
            "```python",
            "<<<<<<< SEARCH",
            "def total(items):",
            "=======",
            "def total(items, tax=0):",
            ">>>>>>> REPLACE",
            "```",
            "",
        ]
    body += [
        prose(1400),
        "",
        "ONLY EVER RETURN CODE IN A *SEARCH/REPLACE BLOCK*!" if fmt == "diff" else "",
    ]
    return "\n".join(body).strip() + "\n"


def aider_map(paths: list[str]) -> str:
    out = []
    for p in paths:
        v, o = _ident()
        out.append(
            f"\n{p}:\n⋮\n│def {v}_{o}(self, {o}):\n⋮\n│class {o.title()}Store:\n│    def {rng.choice(_VB)}(self):\n⋮\n"
        )
    return "".join(out)


def aider(
    ask: dict[str, Any],
    label: str,
    note: str,
    fmt: str = "diff",
    reminder: str = "user",
    done: list[str] | None = None,
    cur_extra: list[Msg] | None = None,
    mode: str = "code",
    files: dict[str, str] | None = None,
    map_files: int = 25,
) -> None:
    """One aider request: system, examples, repo map, done turns, chat files, cur (+ reminder)."""
    main = (
        "Act as an expert code analyst.\nAnswer questions about the supplied code."
        if mode == "ask"
        else (
            "Act as an expert architect engineer and provide direction to your editor engineer."
            if mode == "architect"
            else "Act as an expert software developer."
        )
    )
    rem = aider_reminder(fmt) if mode == "code" else ""
    system = main + "\n" + prose(900) + "\n\n" + AIDER_ENV + ("\n" + rem if rem else "")
    msgs: list[Msg] = [{"role": "system", "content": system}]
    if mode == "code" and fmt == "diff":
        msgs += [
            {"role": "user", "content": "Change get_factorial() to use math.factorial"},
            {
                "role": "assistant",
                "content": "We need to import math and replace the loop.\n\nmathweb/app.py\n```python\n<<<<<<< SEARCH\nfrom flask import Flask\n=======\nimport math\nfrom flask import Flask\n>>>>>>> REPLACE\n```\n",
            },
            {
                "role": "user",
                "content": "I switched to a new code base. Please don't consider the above files or try to edit them any longer.",
            },
            {"role": "assistant", "content": "Ok."},
        ]
    path = ask.get("path") or "app/models.py"
    tree = tree_for(path)
    prefix = (
        "I am working with you on code in a git repository.\nHere are summaries of some files present in my git repo.\n"
        if mode != "code"
        else "Here are summaries of some files present in my git repository.\nDo not propose changes to these files, treat them as *read-only*.\nIf you need to edit any of these files, ask me to *add them to the chat* first.\n"
    )
    msgs += [
        {"role": "user", "content": prefix + aider_map(tree[:map_files])},
        {
            "role": "assistant",
            "content": "Ok, I won't try and edit those files without asking first.",
        },
    ]
    for d in done or []:
        msgs += [{"role": "user", "content": d}, {"role": "assistant", "content": prose(500)}]
    files = files if files is not None else {path: code(path, rng.randint(4, 12))}
    if files:
        body = "".join(f"\n{p}\n```\n{c}```\n" for p, c in files.items())
        if mode == "code":
            head = "I have *added these files to the chat* so you can go ahead and edit them.\n\n*Trust this message as the true contents of these files!*\nAny other messages in the chat may contain outdated versions of the files' contents.\n"
            ack = "Ok, any changes I propose will be to those files."
        else:
            head = "I have *added these files to the chat* so you see all of their contents.\n*Trust this message as the true contents of the files!*\nOther messages in the chat may contain outdated versions of the files' contents.\n"
            ack = "Ok, I will use that as the true, current contents of the files."
        msgs += [{"role": "user", "content": head + body}, {"role": "assistant", "content": ack}]
    elif mode == "code":
        msgs += [
            {
                "role": "user",
                "content": "Don't try and edit any existing code without asking me to add the files to the chat!\nTell me which files in my repo are the most likely to **need changes** to solve the requests I make, and then stop so I can add them to the chat.\nOnly include the files that are most likely to actually need to be edited.",
            },
            {
                "role": "assistant",
                "content": "Ok, based on your requests I will suggest which files need to be edited and then stop and wait for your approval.",
            },
        ]
    else:
        msgs += [
            {
                "role": "user",
                "content": "I am not sharing the full contents of any files with you yet.",
            },
            {"role": "assistant", "content": "Ok."},
        ]
    msgs += cur_extra or []
    text = ask["t"]
    if rem and reminder == "user":
        text += "\n\n" + rem
    msgs.append({"role": "user", "content": text})
    if rem and reminder == "sys":
        msgs.append({"role": "system", "content": rem})
    add(
        CHAT,
        {"model": "auto", "stream": True, "temperature": 0, "messages": msgs},
        label,
        "aider",
        note,
    )


def build_aider() -> None:
    fmts = ["diff", "diff", "whole", "udiff", "patch", "diff"]
    plan = [
        "instr",
        "instr",
        "complex",
        "multi",
        "instr",
        "complex",
        "multi",
        "cxl",
        "instr",
        "complex",
        "multi",
        "instr",
        "multi",
        "multi",
    ]
    for i, kind in enumerate(plan):
        a = take(kind)
        fmt, rem = fmts[i % len(fmts)], ("user" if i % 3 else "sys")
        aider(
            a,
            LABEL[kind],
            f"{fmt}/{rem}: {a['t'][:60]}",
            fmt=fmt,
            reminder=rem,
            map_files=rng.choice([8, 25, 60]),
        )
    a = take("complex")
    aider(a, "complex", "ask mode: " + a["t"][:60], mode="ask")
    a = take("instr")
    aider(a, "instruction", "architect mode: " + a["t"][:60], mode="architect")
    # Done turns and summaries: a small follow-up after a big earlier turn.
    big = take("complex")
    aider(
        {"t": "also rename `tmp` to `buffer` in that function", "path": big["path"]},
        "instruction",
        "small follow-up after an earlier hard turn",
        done=[big["t"]],
    )
    aider(
        {"t": FOLLOW[0], "path": "routes/books.js"},
        "instruction",
        "'continue' after a simple done turn",
        done=["Add limit/offset pagination to GET /books."],
    )
    # Synthetic lint follow-up: governing ask is the previous human message of a complex task.
    a = take("complex")
    lint = "# Fix any errors below, if possible.\n\n## Running: flake8 --select=F app/models.py\n\napp/models.py:41:5: F841 local variable 'kept' is assigned to but never used\n"
    aider(
        {"t": lint, "path": a["path"]},
        "complex",
        "lint follow-up inside a complex task",
        cur_extra=[
            {"role": "user", "content": a["t"]},
            {"role": "assistant", "content": prose(700)},
        ],
    )
    # Hostile: file full of FIM tokens, trivial rename.
    tok = 'FIM_PREFIX = "<|fim_prefix|>"\nFIM_SUFFIX = "<|fim_suffix|>"\nFIM_MIDDLE = "<|fim_middle|>"\nSTOP = ["<|endoftext|>", "<fim_prefix>", "<PRE>", "<｜fim▁begin｜>"]\n\n\ndef render(prefix, suffix):\n    return FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE\n'
    lab, t = HOSTILE["fim_file"]
    aider(
        {"t": t, "path": "app/tokens.py"},
        lab,
        "hostile: file contains FIM tokens",
        files={"app/tokens.py": tok},
    )
    lab, t = HOSTILE["lock_rs"]
    aider(
        {"t": t, "path": "src/lock.rs"},
        lab,
        "hostile: tiny fix in lock.rs",
        files={
            "src/lock.rs": "/// Acquire the lock; retuns a guard.\npub fn acquire(&self) -> Guard<'_> {\n    Guard { inner: self.m.lock().unwrap() }\n}\n"
        },
    )
    # Long but trivial paste-and-rename (~8k chars of user-pasted code, nothing hard).
    lab, t = HOSTILE["paste_rename"]
    pasted = "\n".join(
        f"def handle_{i}(usr):\n    usr_name = usr.name.strip()\n    if not usr_name:\n        return None\n    return {{'id': usr.id, 'name': usr_name}}\n"
        for i in range(60)
    )
    aider(
        {"t": t + "```python\n" + pasted + "```", "path": "app/handlers.py"},
        lab,
        "hostile: long but trivial paste-and-rename",
        files={},
    )


# ----------------------------------------------------------------------------- cline / roo
CLINE_TOOLS = [
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
    "new_task",
]


def cline_system(who: str, size: int, role: str | None = None) -> str:
    """A Cline/Roo XML-era system prompt of about ``size`` chars under the real headings."""
    head = (
        role
        or f"You are {who}, a highly skilled software engineer with extensive knowledge in many programming languages, frameworks, design patterns, and best practices."
    )
    parts = [
        head,
        "====",
        "TOOL USE",
        prose(600),
        "# Tool Use Formatting",
        prose(400),
        "<tool_name>\n<parameter1_name>value1</parameter1_name>\n</tool_name>",
        "# Tools",
    ]
    for t in CLINE_TOOLS:
        parts += [
            f"## {t}",
            "Description: " + prose(500),
            "Parameters:\n- path: (required) " + prose(120),
            f"Usage:\n<{t}>\n<path>File path here</path>\n</{t}>",
        ]
    parts += ["# Tool Use Examples", prose(1500), "# Tool Use Guidelines", prose(1200)]
    sections = ["MCP SERVERS", "EDITING FILES", "ACT MODE V.S. PLAN MODE", "CAPABILITIES", "RULES"]
    filler = max(2000, (size - sum(len(p) for p in parts) - 1500) // len(sections))
    for sec in sections:
        parts += ["====", sec, prose(filler)]
    parts += [
        "====",
        "SYSTEM INFORMATION",
        "Operating System: Linux 6.8\nIDE: Visual Studio Code\nDefault Shell: /bin/bash\nHome Directory: /home/dev\nCurrent Working Directory: /home/dev/proj",
        "====",
        "OBJECTIVE",
        prose(700),
    ]
    if rng.random() < 0.5:
        parts += [
            "====",
            "USER'S CUSTOM INSTRUCTIONS",
            "The following additional instructions are provided by the user, and should be followed to the best of your ability without interfering with the TOOL USE guidelines.",
            "# .clinerules\n\n- Use pnpm, not npm.\n- Keep functions short.",
        ]
    return "\n\n".join(parts)


def env_details(
    path: str, first: bool, mode: str = "ACT MODE", ide: str = "Visual Studio Code"
) -> str:
    lines = [
        f"# {ide} Visible Files",
        path,
        "",
        f"# {ide} Open Tabs",
        ", ".join(tree_for(path)[:4]),
        "",
        "# Current Time",
        f"12/1/2026, {rng.randint(1, 11)}:{rng.randint(10, 59)}:07 PM (Europe/Warsaw, UTC+1:00)",
        "",
    ]
    if first:
        lines += [
            "# Current Working Directory (/home/dev/proj) Files",
            "\n".join(tree_for(path)),
            "",
        ]
    lines += [
        "# Context Window Usage",
        f"{rng.randint(9, 120)},{rng.randint(100, 999)} / 200K tokens used ({rng.randint(5, 60)}%)",
        "",
        "# Current Mode",
        mode,
    ]
    return "<environment_details>\n" + "\n".join(lines) + "\n</environment_details>"


def tparts(*texts: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": t} for t in texts]


def cline_task(a: dict[str, Any], wrap: str = "task", mention: bool = False) -> str:
    path = default_path(a)
    text = a["t"]
    if mention:
        text = f"{text} '{path}' (see below for file content)\n\n<file_content path=\"{path}\">\n{code(path, 5)}</file_content>"
    return f"<{wrap}>\n{text}\n</{wrap}>"


def cline_loop(steps: int, path: str) -> list[Msg]:
    """``steps`` XML tool round trips after the first user turn (assistant tool, user result)."""
    out: list[Msg] = []
    tree = tree_for(path)
    for s in range(steps):
        tool = rng.choice(["read_file", "search_files", "execute_command", "replace_in_file"])
        target = path if s == 0 else rng.choice(tree)
        test = {"py": "pytest -q", "go": "go test ./...", "rs": "cargo test"}.get(
            ext_of(path), "npm test"
        )
        arg = {"execute_command": test, "search_files": "TODO"}.get(tool, target)
        tag = (
            "command"
            if tool == "execute_command"
            else ("regex" if tool == "search_files" else "path")
        )
        out.append(
            {
                "role": "assistant",
                "content": f"<thinking>\n{prose(250)}\n</thinking>\n<{tool}>\n<{tag}>{arg}</{tag}>\n</{tool}>",
            }
        )
        result = (
            code(target, rng.randint(3, 10))
            if tool == "read_file"
            else (
                f'<final_file_content path="{target}">\n{code(target, 3)}</final_file_content>'
                if tool == "replace_in_file"
                else prose(400)
            )
        )
        out.append(
            {
                "role": "user",
                "content": tparts(
                    f"[{tool} for '{arg}'] Result:\n{result}", env_details(path, False)
                ),
            }
        )
    return out


def build_cline(who: str = "Cline", n_tasks: int = 8) -> None:
    client = who.lower()
    plan = [
        "instr",
        "complex",
        "multi",
        "cxl",
        "instr",
        "complex",
        "multi",
        "instr",
        "complex",
        "multi",
    ][:n_tasks]
    for i, kind in enumerate(plan):
        a = take(kind)
        path = default_path(a)
        sysmsg = cline_system(who, rng.randint(40_000, 60_000))
        wrap = "task" if who == "Cline" or i % 2 else "user_message"
        first: Msg = {
            "role": "user",
            "content": tparts(cline_task(a, wrap, mention=i % 3 == 1), env_details(path, True)),
        }
        steps = [0, 1, 3, 6][i % 4]
        msgs = [{"role": "system", "content": sysmsg}, first] + cline_loop(steps, path)
        where = "first turn" if steps == 0 else f"tool step {steps}"
        add(
            CHAT,
            {"model": "auto", "stream": True, "messages": msgs},
            LABEL[kind],
            client,
            f"{where}: {a['t'][:60]}",
        )
        if i % 3 == 2:  # answer to ask_followup_question mid-task: short, inherits the task
            q = {
                "role": "assistant",
                "content": "<ask_followup_question>\n<question>Should I apply the same change to the other modules?</question>\n</ask_followup_question>",
            }
            ans = {
                "role": "user",
                "content": tparts(
                    f"[ask_followup_question for 'Should I apply the same change to the other modules?'] Result:\n<answer>\n{FOLLOW[i % len(FOLLOW)]}\n</answer>",
                    env_details(path, False),
                ),
            }
            add(
                CHAT,
                {"model": "auto", "stream": True, "messages": msgs + [q, ans]},
                LABEL[kind],
                client,
                f"short answer mid-task of: {a['t'][:50]}",
            )


def build_cline_specials() -> None:
    # Feedback after attempt_completion that asks for something new and trivial.
    a = take("complex")
    path = default_path(a)
    msgs = [
        {"role": "system", "content": cline_system("Cline", 52_000)},
        {"role": "user", "content": tparts(cline_task(a), env_details(path, True))},
    ] + cline_loop(4, path)
    msgs += [
        {
            "role": "assistant",
            "content": "<attempt_completion>\n<result>\nThe refactor is done and tests pass.\n</result>\n</attempt_completion>",
        },
        {
            "role": "user",
            "content": tparts(
                "[attempt_completion] Result:\n\nThe user has provided feedback on the results. Consider their input to continue the task, and then attempt completion again.\n<feedback>\nthanks! one more thing: the README title says 'Instalation', fix that typo\n</feedback>",
                env_details(path, False),
            ),
        },
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs},
        "instruction",
        "cline",
        "feedback changes the ask to a typo fix after a complex task",
    )
    # Hostile: tiny fixes in files with alarming names, listing full of lock files and Profile.tsx.
    for key, path in (
        ("profile_go", "internal/profile/profile.go"),
        ("deadlock_test", "internal/worker/deadlock_test.go"),
    ):
        lab, t = HOSTILE[key]
        msgs = [
            {"role": "system", "content": cline_system("Cline", 47_000)},
            {"role": "user", "content": tparts(f"<task>\n{t}\n</task>", env_details(path, True))},
        ]
        add(
            CHAT,
            {"model": "auto", "stream": True, "messages": msgs},
            lab,
            "cline",
            f"hostile: tiny fix in {path.rsplit('/', 1)[-1]}",
        )
    # Plan mode, PLAN MODE env, then user_message reply switching to act.
    a = take("complex")
    path = default_path(a)
    msgs = [
        {"role": "system", "content": cline_system("Cline", 58_000)},
        {
            "role": "user",
            "content": tparts(
                cline_task(a),
                env_details(
                    path,
                    True,
                    mode="PLAN MODE\nIn this mode you should focus on information gathering, asking questions, and architecting a solution.",
                ),
            ),
        },
        {
            "role": "assistant",
            "content": "<plan_mode_respond>\n<response>\n"
            + prose(1500)
            + "\n</response>\n</plan_mode_respond>",
        },
        {
            "role": "user",
            "content": tparts(
                "[plan_mode_respond] Result:\n<user_message>\nok, switch to act mode and start with step 1\n</user_message>",
                env_details(path, False),
            ),
        },
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs},
        "complex",
        "cline",
        "plan-mode reply 'start with step 1' of a complex task",
    )
    # Task resumption with new instructions in Vietnamese (simple).
    a = take("instr")
    path = default_path(a)
    msgs = [
        {"role": "system", "content": cline_system("Cline", 44_000)},
        {"role": "user", "content": tparts(cline_task(a), env_details(path, True))},
    ] + cline_loop(2, path)
    msgs.append(
        {
            "role": "user",
            "content": tparts(
                "[TASK RESUMPTION] This task was interrupted 3 hours ago. It may or may not be complete, so please reassess the task context.\n\nNew instructions for task continuation:\n<user_message>\nThêm một bài kiểm tra đơn vị cho trường hợp danh sách rỗng.\n</user_message>",
                env_details(path, False),
            ),
        }
    )
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs},
        "multi-language",
        "cline",
        "resumption with a simple Vietnamese instruction",
    )


ROO_TOOLS = [
    "read_file",
    "write_to_file",
    "apply_diff",
    "search_files",
    "list_files",
    "execute_command",
    "ask_followup_question",
    "attempt_completion",
    "switch_mode",
    "new_task",
    "update_todo_list",
    "codebase_search",
]


def roo_tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": t,
                "description": prose(700),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": prose(120)},
                        "args": {"type": "string", "description": prose(80)},
                    },
                    "required": ["path"],
                    "additionalProperties": False,
                },
            },
        }
        for t in ROO_TOOLS
    ]


ROO_ROLES = {
    "code": "You are Roo, a highly skilled software engineer with extensive knowledge in many programming languages, frameworks, design patterns, and best practices.",
    "architect": "You are Roo, an experienced technical leader who is inquisitive and an excellent planner.",
    "debug": "You are Roo, an expert software debugger specializing in systematic problem diagnosis and resolution.",
    "ask": "You are Roo, a knowledgeable technical assistant focused on answering questions and providing information about software development, technology, and related topics.",
}


def roo_system(mode: str) -> str:
    parts = [ROO_ROLES[mode]]
    for sec in (
        "MARKDOWN RULES",
        "TOOL USE",
        "CAPABILITIES",
        "MODES",
        "RULES",
        "SYSTEM INFORMATION",
        "OBJECTIVE",
        "USER'S CUSTOM INSTRUCTIONS",
    ):
        body = (
            "Use the provider-native tool-calling mechanism. Do not include XML markup or examples.\n"
            if sec == "TOOL USE"
            else ""
        )
        body += (
            "Current Workspace Directory: /home/dev/proj\n" if sec == "SYSTEM INFORMATION" else ""
        )
        parts += ["====", sec, body + prose(rng.randint(1500, 2200))]
    return "\n\n".join(parts)


def roo_env(path: str, first: bool, mode: str) -> str:
    e = env_details(path, first, ide="VSCode").replace(
        "# Current Mode\nACT MODE",
        f"# Current Mode\n<slug>{mode}</slug>\n<name>{mode.title()}</name>",
    )
    return e


def build_roo() -> None:
    plan = [
        ("instr", "code"),
        ("complex", "debug"),
        ("multi", "code"),
        ("complex", "architect"),
        ("instr", "ask"),
        ("multi", "code"),
        ("complex", "code"),
        ("instr", "code"),
        ("cxl", "debug"),
        ("multi", "ask"),
    ]
    for i, (kind, mode) in enumerate(plan):
        a = take(kind)
        path = default_path(a)
        msgs: list[Msg] = [
            {"role": "system", "content": roo_system(mode)},
            {
                "role": "user",
                "content": tparts(
                    f"<user_message>\n{a['t']}\n</user_message>", roo_env(path, True, mode)
                ),
            },
        ]
        steps = [0, 2, 5, 1, 0][i % 5]
        for s in range(steps):
            cid = f"call_{i}_{s}"
            target = path if s == 0 else rng.choice(tree_for(path))
            msgs.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {
                                "name": "read_file",
                                "arguments": json.dumps({"path": target}),
                            },
                        }
                    ],
                }
            )
            msgs.append(
                {
                    "role": "tool",
                    "tool_call_id": cid,
                    "content": f"File: {target}\n{code(target, rng.randint(3, 9))}",
                }
            )
            msgs.append({"role": "user", "content": tparts(roo_env(path, False, mode))})
        add(
            CHAT,
            {"model": "auto", "stream": True, "tools": roo_tools(), "messages": msgs},
            LABEL[kind],
            "roo",
            f"native {mode}, {steps} steps: {a['t'][:55]}",
        )
        if i in (1, 6):  # denial with feedback that just says to carry on
            msgs2 = msgs + [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"d{i}",
                            "type": "function",
                            "function": {
                                "name": "execute_command",
                                "arguments": '{"path": ".", "args": "rm -rf build"}',
                            },
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": f"d{i}",
                    "content": "The user denied this operation and provided the following feedback:\n<feedback>\ndon't delete build, just continue with the fix\n</feedback>",
                },
                {"role": "user", "content": tparts(roo_env(path, False, mode))},
            ]
            add(
                CHAT,
                {"model": "auto", "stream": True, "tools": roo_tools(), "messages": msgs2},
                LABEL[kind],
                "roo",
                "denial with 'just continue' feedback mid-task",
            )
    # Roo XML era (2025): <task> wrapper, long system prompt, no tools field.
    for kind in ("instr", "complex"):
        a = take(kind)
        path = default_path(a)
        msgs = [
            {"role": "system", "content": cline_system("Roo", rng.randint(40_000, 45_000))},
            {
                "role": "user",
                "content": tparts(
                    f"<task>\n{a['t']}\n</task>", env_details(path, True, ide="VSCode")
                ),
            },
        ] + cline_loop(2, path)
        add(
            CHAT,
            {"model": "auto", "stream": True, "messages": msgs},
            LABEL[kind],
            "roo",
            f"xml era step 2: {a['t'][:55]}",
        )
    lab, t = HOSTILE["scheduler_py"]
    msgs = [
        {"role": "system", "content": roo_system("code")},
        {
            "role": "user",
            "content": tparts(
                f"<user_message>\n{t}\n</user_message>", roo_env("app/scheduler.py", True, "code")
            ),
        },
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "tools": roo_tools(), "messages": msgs},
        lab,
        "roo",
        "hostile: tiny fix in scheduler.py",
    )


# ----------------------------------------------------------------------------- continue
CONTINUE_SYS = {
    "chat": "<important_rules>\n  You are in chat mode.\n\n  If the user asks to make changes to files offer that they can use the Apply Button on the code block, or switch to Agent Mode to make the suggested updates automatically.\n\n  Always include the language and file name in the info string when you write code blocks, for example '```python file.py'.\n\n  "
    + "{p}"
    + "\n</important_rules>",
    "agent": "<important_rules>\n  You are in agent mode.\n\n  " + "{p}" + "\n</important_rules>",
}


def ext_of(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def build_continue() -> None:
    plan = ["instr", "complex", "multi", "instr", "cxl", "multi", "complex", "instr"]
    for i, kind in enumerate(plan):
        a = take(kind)
        path = default_path(a)
        mode = "agent" if i % 4 == 3 else "chat"
        system = CONTINUE_SYS[mode].format(p=prose(rng.randint(400, 1400))) + (
            "\n\nAlways write tests with pytest." if i % 2 else ""
        )
        items = [
            f"```{p}\n{code(p, rng.randint(3, 8))}```\n"
            for p in rng.sample(tree_for(path)[:12], rng.randint(0, 3))
            if "." in p
        ]
        sel = (
            f"\n\n```{ext_of(path)} {path} ({rng.randint(5, 40)}-{rng.randint(41, 80)})\n{code(path, 2)}```\n"
            if i % 2 == 0
            else ""
        )
        if i == 6:
            items.insert(
                0,
                "This is the currently open file:\n\n```" + path + "\n" + code(path, 14) + "```\n",
            )
        user: Msg = {"role": "user", "content": tparts(*items, a["t"] + sel)}
        body: dict[str, Any] = {
            "model": "auto",
            "stream": True,
            "messages": [{"role": "system", "content": system}, user],
        }
        if mode == "agent":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": n,
                        "description": prose(200),
                        "parameters": {
                            "type": "object",
                            "properties": {"filepath": {"type": "string"}},
                        },
                    },
                }
                for n in (
                    "read_file",
                    "create_new_file",
                    "run_terminal_command",
                    "grep_search",
                    "edit_existing_file",
                )
            ]
        add(
            CHAT,
            body,
            LABEL[kind],
            "continue",
            f"{mode} with {len(items)} context items: {a['t'][:50]}",
        )
    # Agent loop: the ask, then tool results; the last message is a tool result.
    a = take("complex")
    path = default_path(a)
    msgs: list[Msg] = [
        {"role": "system", "content": CONTINUE_SYS["agent"].format(p=prose(900))},
        {"role": "user", "content": tparts(a["t"])},
    ]
    for s in range(3):
        msgs += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": f"c{s}",
                        "type": "function",
                        "function": {
                            "name": "read_file",
                            "arguments": json.dumps({"filepath": path}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": f"c{s}", "content": code(path, 6)},
        ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs},
        "complex",
        "continue",
        "agent tool step 3 of a complex ask",
    )
    # Cmd-I edit template: the ask is the quoted request.
    for kind in ("instr", "multi", "complex"):
        a = take(kind)
        path = default_path(a)
        e = ext_of(path)
        prompt = (
            f"The user has requested a section of code in a file to be rewritten.\n\nThis is the prefix of the file:\n```{e}\n{code(path, 4)}```\n\n"
            f"This is the suffix of the file:\n```{e}\n{code(path, 3)}```\n\nThis is the code to rewrite:\n```{e}\n{code(path, 1)}```\n\n"
            f'The user\'s request is: "{a["t"]}"\n\nDO NOT output any natural language, only output the code changes.\n\nHere is the rewritten code:'
        )
        add(
            CHAT,
            {"model": "auto", "stream": True, "messages": [{"role": "user", "content": prompt}]},
            LABEL[kind],
            "continue",
            f"inline edit: {a['t'][:55]}",
        )

    # Autocomplete via /v1/completions with the templates Continue uses per model family.
    def fim(p: str) -> tuple[str, str]:
        src = code(p, rng.randint(2, 6))
        cut = rng.randint(len(src) // 3, 2 * len(src) // 3)
        return src[:cut], src[cut:]

    for model, p in (
        ("qwen2.5-coder-1.5b", "src/api/client.ts"),
        ("starcoder2-3b", "app/models.py"),
        ("codestral-latest", "internal/cache/cache.go"),
        ("codellama-7b", "src/pool.rs"),
        ("deepseek-coder-1.3b", "src/components/Profile.tsx"),
        ("gpt-4o-mini", "app/scheduler.py"),
    ):
        pre, suf = fim(p)
        ctx = (
            f"// Path: {rng.choice(tree_for(p))}\n// {code(p, 1).splitlines()[0]}\n// {p}\n"
            if not p.endswith(".py")
            else f"# Path: utils/time.py\n# import re\n# {p}\n"
        )
        if "qwen" in model:
            prompt, stop = (
                f"<|repo_name|>proj\n<|file_sep|>src/utils/formatDate.ts\n{code('x.ts', 2)}<|file_sep|>{p}\n<|fim_prefix|>{ctx}{pre}<|fim_suffix|>{suf}<|fim_middle|>",
                [
                    "<|endoftext|>",
                    "<|fim_prefix|>",
                    "<|fim_middle|>",
                    "<|fim_suffix|>",
                    "<|file_sep|>",
                ],
            )
        elif "starcoder" in model:
            prompt, stop = (
                f"<fim_prefix>{ctx}{pre}<fim_suffix>{suf}<fim_middle>",
                ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>"],
            )
        elif "codestral" in model:
            prompt, stop = (
                f"[SUFFIX]{suf}[PREFIX]+++++ {p}\n{pre}",
                ["[PREFIX]", "[SUFFIX]", "\n+++++ "],
            )
        elif "codellama" in model:
            prompt, stop = (
                f"<PRE> {ctx}{pre} <SUF>{suf} <MID>",
                ["<PRE>", "<SUF>", "<MID>", "<EOT>"],
            )
        elif "deepseek" in model:
            prompt, stop = (
                f"<｜fim▁begin｜>{ctx}{pre}<｜fim▁hole｜>{suf}<｜fim▁end｜>",
                ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
            )
        else:
            prompt, stop = (
                f"You are a HOLE FILLER. You are provided with a file containing holes, formatted as '{{{{HOLE_NAME}}}}'. {prose(1500)}\n\n<QUERY>\n{pre}{{{{FILL_HERE}}}}{suf}\n</QUERY>\nTASK: Fill the {{{{FILL_HERE}}}} hole. Answer only with the CORRECT completion, and NOTHING ELSE. Do it now.\n<COMPLETION>",
                ["</COMPLETION>"],
            )
        add(
            LEGACY,
            {
                "model": model,
                "prompt": prompt,
                "stop": stop,
                "max_tokens": 256,
                "stream": True,
                "temperature": 0.01,
            },
            "completion",
            "continue",
            f"autocomplete template for {model}",
        )
    # Next-edit (Instinct) prompt.
    p = "src/api/client.ts"
    excerpt = code(p, 3)
    cut = len(excerpt) // 2
    instinct = (
        f"Reference the user excerpt, user edits, and the snippets to understand the developer's intent. {prose(300)}\n\n### Context:\n<|context_file|> src/utils/formatDate.ts\n<|snippet|>\n{code('x.ts', 1)}\n\n"
        f"### User Edits:\n\n{diff([p])}\n\n### User Excerpt:\n{p}\n\n<|editable_region_start|>\n{excerpt[:cut]}<|user_cursor_is_here|>{excerpt[cut:]}<|editable_region_end|>\n"
    )
    add(
        CHAT,
        {
            "model": "instinct",
            "messages": [
                {
                    "role": "system",
                    "content": "You are Instinct, an intelligent next-edit predictor developed by Continue.dev. "
                    + prose(1500),
                },
                {"role": "user", "content": instinct},
            ],
        },
        "completion",
        "continue",
        "next-edit prediction (Instinct) over chat",
    )
    # Legacy /commit slash command: background.
    files = rng.sample(tree_for("x.py"), 4)
    add(
        CHAT,
        {
            "model": "auto",
            "stream": True,
            "messages": [
                {
                    "role": "user",
                    "content": diff(files)
                    + "\n\nGenerate a commit message for the above set of changes. First, give a single sentence, no more than 80 characters. "
                    + prose(200),
                }
            ],
        },
        "instruction",
        "continue",
        "/commit over a 4-file diff",
        background="commit",
    )
    # Hostile: chat question that quotes FIM tokens.
    lab, t = HOSTILE["fim_question"]
    add(
        CHAT,
        {
            "model": "auto",
            "stream": True,
            "messages": [
                {"role": "system", "content": CONTINUE_SYS["chat"].format(p=prose(600))},
                {"role": "user", "content": tparts(t)},
            ],
        },
        lab,
        "continue",
        "hostile: question quotes FIM tokens",
    )


# ----------------------------------------------------------------------------- zed
ZED_SYS = (
    "You are a highly skilled software engineer with extensive knowledge in many programming languages, frameworks, design patterns, and best practices.\n\n## Communication\n\n- Be conversational but professional.\n- "
    + "{a}"
    + "\n\n## Tool Use\n\n"
    + "{b}"
    + "\n\n## System Information\n\nOperating System: macos\nDefault Shell: zsh"
)
ZED_CTX = "\n<context>\nThe following items were attached by the user. They are up-to-date and don't need to be re-read.\n\n"


def zed_tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": n,
                "description": prose(300),
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
        for n in (
            "read_file",
            "edit_file",
            "grep",
            "find_path",
            "terminal",
            "diagnostics",
            "list_directory",
            "thinking",
        )
    ]


def zed_user(text: str, paths: list[str], rules: bool = False) -> str:
    if not paths and not rules:
        return text
    files = "".join(f"```{ext_of(p)} proj/{p}\n{code(p, rng.randint(3, 9))}```\n" for p in paths)
    extra = (
        "<rules>\nThe user has specified the following rules that should be applied:\n- Prefer small functions.\n</rules>\n"
        if rules
        else ""
    )
    return text + ZED_CTX + (f"<files>\n{files}</files>\n" if files else "") + extra + "</context>"


def build_zed() -> None:
    plan = ["instr", "complex", "multi", "instr", "complex", "multi", "cxl", "instr"]
    for i, kind in enumerate(plan):
        a = take(kind)
        path = default_path(a)
        link = f"[@{path.rsplit('/', 1)[-1]}](file:///Users/dev/proj/{path}) " if i % 2 else ""
        msgs: list[Msg] = [
            {"role": "system", "content": ZED_SYS.format(a=prose(800), b=prose(1500))},
            {
                "role": "user",
                "content": zed_user(link + a["t"], [path] if i % 3 else [], rules=i == 4),
            },
        ]
        if i % 4 == 1:  # mid-task: tool loop after the ask
            for s in range(2):
                msgs += [
                    {
                        "role": "assistant",
                        "content": "Let me look at the code.",
                        "tool_calls": [
                            {
                                "id": f"z{s}",
                                "type": "function",
                                "function": {
                                    "name": "read_file",
                                    "arguments": json.dumps({"path": f"proj/{path}"}),
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": f"z{s}", "content": code(path, 8)},
                ]
        add(
            CHAT,
            {"model": "auto", "stream": True, "tools": zed_tools(), "messages": msgs},
            LABEL[kind],
            "zed",
            f"agent panel: {a['t'][:60]}",
        )
    # Follow-up turn: "continue" after a complex ask and a long reply.
    a = take("complex")
    msgs = [
        {"role": "system", "content": ZED_SYS.format(a=prose(800), b=prose(1500))},
        {"role": "user", "content": zed_user(a["t"], [default_path(a)])},
        {"role": "assistant", "content": prose(3000)},
        {"role": "user", "content": "continue"},
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "tools": zed_tools(), "messages": msgs},
        "complex",
        "zed",
        "'continue' after a complex ask",
    )
    # Edit predictions over /v1/completions: Zeta 1 and Zeta 2 formats.
    for i, p in enumerate(
        ["models/customer.rb", "src/lock.rs", "app/profile.py", "src/components/Profile.tsx"]
    ):
        src = code(p, 3)
        cut = rng.randint(10, len(src) - 10)
        if i % 2 == 0:
            prompt = (
                f'### Instruction:\nYou are a code completion assistant. {prose(200)}\n\n### User Edits:\n\nUser edited "{p}":\n```diff\n{diff([p])}```\n\n'
                f"### User Excerpt:\n\n```{p}\n{'<|start_of_file|>' + chr(10) if i == 0 else ''}<|editable_region_start|>\n{src[:cut]}<|user_cursor_is_here|>{src[cut:]}\n<|editable_region_end|>\n```\n\n### Response:\n"
            )
        else:
            prompt = (
                f"<|file_sep|>{rng.choice(tree_for(p))}\n{code(p, 1)}...\n<|file_sep|>edit history\n--- a/{p}\n+++ b/{p}\n@@{diff([p]).split('@@', 1)[1]}"
                f"<|file_sep|>{p}\n<|fim_prefix|>{src[: cut // 2]}<<<<<<< CURRENT\n{src[cut // 2 : cut]}<|user_cursor|>{src[cut:]}=======\n<|fim_suffix|>{code(p, 1)}\n<|fim_middle|>"
            )
        add(
            LEGACY,
            {"model": "zeta", "prompt": prompt, "max_tokens": 512, "temperature": 0},
            "completion",
            "zed",
            f"edit prediction zeta{1 + i % 2} in {p}",
        )
    # Zed over an open-ai-compatible FIM format (code_llama) with a suffix-less prompt.
    pre = code("src/main.rs", 3)
    add(
        LEGACY,
        {"model": "codellama", "prompt": f"<PRE> {pre} <SUF>\n}}\n <MID>", "max_tokens": 128},
        "completion",
        "zed",
        "edit prediction code_llama format",
    )
    # Hostile: a file that contains <CURSOR> as test data, tiny typo fix.
    lab, t = HOSTILE["cursor_file"]
    fixture = 'def test_hole_marker():\n    out = render("def f(<CURSOR>):\\n    pass")\n    assert "<CURSOR>" not in out, "exepcted the marker to be replaced"\n'
    msgs = [
        {"role": "system", "content": ZED_SYS.format(a=prose(800), b=prose(1500))},
        {
            "role": "user",
            "content": t
            + ZED_CTX
            + f"<files>\n```py proj/tests/test_render.py\n{fixture}```\n</files>\n</context>",
        },
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "tools": zed_tools(), "messages": msgs},
        lab,
        "zed",
        "hostile: file contains <CURSOR>",
    )
    # Hostile: short but hard architecture ask.
    lab, t = HOSTILE["short_arch"]
    add(
        CHAT,
        {
            "model": "auto",
            "stream": True,
            "messages": [
                {"role": "system", "content": ZED_SYS.format(a=prose(800), b=prose(1500))},
                {"role": "user", "content": t},
            ],
        },
        lab,
        "zed",
        "hostile: short architecture ask",
    )


# ----------------------------------------------------------------------------- open webui
# Chats we embed in background prompts: other languages, hard topics.
WEBUI_CHATS = [
    [
        "USER: Jak zaprojektować system rozproszonych blokad z użyciem Redis, żeby nie było zakleszczeń?",
        "ASSISTANT: Najpierw ustalmy model awarii: "
        + "Redlock zakłada ograniczony dryf zegarów, więc potrzebne są tokeny ogrodzenia (fencing tokens). "
        * 40,
    ],
    [
        "USER: Kafka tüketicilerinde tam olarak bir kez işleme nasıl garanti edilir?",
        "ASSISTANT: İşlemsel üreticiler ve idempotent yazımlar kullanılabilir. " * 6,
        "USER: Peki yeniden dengeleme sırasında?",
    ],
    [
        "USER: 데드락이 가끔 발생하는 Go 서비스를 디버깅하는 방법을 알려주세요.",
        "ASSISTANT: 고루틴 덤프를 먼저 확인하고 뮤텍스 획득 순서를 비교하세요. " * 45,
    ],
    [
        "USER: Làm sao để tối ưu truy vấn SQL chạy mất 30 giây trên bảng 100 triệu dòng?",
        "ASSISTANT: Hãy bắt đầu bằng EXPLAIN ANALYZE. " * 9,
    ],
    [
        "USER: मेरे Rust प्रोग्राम में मेमोरी लीक है, Arc चक्र कैसे खोजूं?",
        "ASSISTANT: Weak संदर्भों का उपयोग करें। " * 8,
    ],
    [
        "USER: كيف أصمم بنية خدمات مصغرة تتحمل انقطاع الشبكة بين المناطق؟",
        "ASSISTANT: ابدأ بتحديد حدود الاتساق ونموذج الفشل لكل منطقة. " * 40,
    ],
    ["USER: how do I reverse a list in python?", "ASSISTANT: Use `lst[::-1]` or `lst.reverse()`."],
    [
        "USER: Explain the proof that Paxos is safe when acceptors can crash and recover.",
        "ASSISTANT: " + prose(2500),
        "USER: and what changes with Fast Paxos?",
    ],
]
WEBUI_TASKS = {
    "title": "### Task:\nGenerate a concise title summarizing the chat history.\n### Guidelines:\n"
    + "{g}"
    + '\n### Output:\nJSON format: { "title": "your concise title here" }\n### Chat History:\n<chat_history>\n{h}\n</chat_history>',
    "tags": "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.\n\n### Guidelines:\n"
    + "{g}"
    + '\n\n### Output:\nJSON format: { "tags": ["tag1", "tag2", "tag3"] }\n\n### Chat History:\n<chat_history>\n{h}\n</chat_history>',
    "follow_ups": "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next in this conversation as a **user**, based on the chat history.\n### Guidelines:\n"
    + "{g}"
    + '\n### Output:\nJSON format: { "follow_ups": ["Question 1?", "Question 2?"] }\n### Chat History:\n<chat_history>\n{h}\n</chat_history>',
    "search_query": "### Task:\nAnalyze the chat history to determine the necessity of generating search queries, in the given language. "
    + "{g}"
    + '\nToday\'s date is: 2026-12-01.\n\n### Output:\nJSON format: { "queries": ["query1"] }\n\n### Chat History:\n<chat_history>\n{h}\n</chat_history>',
}


def build_webui() -> None:
    kinds = list(WEBUI_TASKS)
    for i, chat in enumerate(WEBUI_CHATS):
        for k in (kinds[i % 4], kinds[(i + 1) % 4]):
            content = (
                WEBUI_TASKS[k]
                .replace("{g}", prose(rng.randint(500, 1500)))
                .replace("{h}", "\n".join(chat))
            )
            add(
                CHAT,
                {
                    "model": "auto",
                    "stream": False,
                    "messages": [{"role": "user", "content": content}],
                },
                "instruction",
                "open-webui",
                f"{k} task over chat: {chat[0][6:50]}",
                background=k if k != "follow_ups" else "follow_ups",
            )
    # Plain chats, optionally with a system prompt or a RAG system message.
    for i, kind in enumerate(
        ["multi", "cxl", "instr", "complex", "multi", "multi", "cxl", "instr", "multi", "cxl"]
    ):
        a = take(kind)
        msgs: list[Msg] = []
        if i % 3 == 0:
            msgs.append(
                {
                    "role": "system",
                    "content": "### Task:\nRespond to the user query using the provided context, incorporating inline citations in the format [id] only when the <source> tag includes an explicit id attribute.\n\n### Guidelines:\n"
                    + prose(900)
                    + f'\n\n<context>\n<source id="1" name="handbook.md">{prose(2500)}</source>\n</context>\n\n<user_query>\n{a["t"]}\n</user_query>',
                }
            )
        elif i % 3 == 1:
            msgs.append({"role": "system", "content": "You are a helpful coding assistant."})
        if i % 2:
            msgs += [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
            ]
        msgs.append({"role": "user", "content": a["t"]})
        add(
            CHAT,
            {"model": "auto", "stream": True, "messages": msgs},
            LABEL[kind],
            "open-webui",
            f"chat: {a['t'][:60]}",
        )
    # A one-line follow-up after a huge paste earlier in the chat.
    log = "\n".join(
        f"2026-11-30T03:{i // 60:02d}:{i % 60:02d}Z worker-{i % 7} WARN slow batch id={rng.getrandbits(32):08x} took {rng.randint(900, 9000)}ms"
        for i in range(450)
    )
    msgs = [
        {
            "role": "user",
            "content": "Here is last night's worker log, why do the batches stall?\n\n" + log,
        },
        {"role": "assistant", "content": prose(2000)},
        {"role": "user", "content": "thanks. how do I print the current date in bash?"},
    ]
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs},
        "instruction",
        "open-webui",
        "simple new question after an earlier huge log paste",
    )
    add(
        CHAT,
        {"model": "auto", "stream": True, "messages": msgs[:1]},
        "complex",
        "open-webui",
        "huge pasted log (~40k chars), find the stall",
    )


# ----------------------------------------------------------------------------- openai tools
AGENT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file from the repository.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "run_shell",
            "description": "Run a shell command and return stdout/stderr.",
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string"}},
                "required": ["cmd"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_code",
            "description": "ripgrep over the repository.",
            "parameters": {
                "type": "object",
                "properties": {"pattern": {"type": "string"}},
                "required": ["pattern"],
            },
        },
    },
]


def build_tools() -> None:
    plan = [
        "instr",
        "complex",
        "multi",
        "instr",
        "complex",
        "cxl",
        "multi",
        "instr",
        "complex",
        "instr",
        "multi",
        "complex",
    ]
    for i, kind in enumerate(plan):
        a = take(kind)
        path = default_path(a)
        msgs: list[Msg] = [
            {
                "role": "system" if i % 3 else "developer",
                "content": "You are a coding agent working in a git checkout. Use the tools to inspect and change files. "
                + prose(rng.randint(200, 1200)),
            },
            {"role": "user", "content": a["t"]},
        ]
        steps = 1 + i % 6
        for s in range(steps):
            name = [
                "read_file",
                "search_code",
                "run_shell",
                "read_file",
                "write_file",
                "run_shell",
            ][s]
            args = {
                "read_file": {"path": path},
                "search_code": {"pattern": "TODO|FIXME"},
                "run_shell": {"cmd": "pytest -q"},
                "write_file": {"path": path, "content": code(path, 2)},
            }[name]
            msgs.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{i}{s}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)},
                        }
                    ],
                }
            )
            out = (
                code(path, rng.randint(4, 12))
                if name == "read_file"
                else ("3 passed, 1 failed\nE   AssertionError" if name == "run_shell" else "ok")
            )
            msgs.append({"role": "tool", "tool_call_id": f"call_{i}{s}", "content": out})
        if i % 4 == 2:
            msgs += [
                {"role": "assistant", "content": "I found the spot. Shall I apply the change?"},
                {"role": "user", "content": FOLLOW[1 + i % 5]},
            ]
        add(
            CHAT,
            {
                "model": "auto",
                "tools": AGENT_TOOLS,
                "tool_choice": "auto",
                "parallel_tool_calls": True,
                "messages": msgs,
            },
            LABEL[kind],
            "openai-tools",
            f"{steps} tool steps: {a['t'][:55]}",
        )
    # A new, small ask after a finished hard task in the same conversation.
    a = take("complex")
    msgs = [
        {"role": "system", "content": "You are a coding agent. " + prose(400)},
        {"role": "user", "content": a["t"]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "x1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "app/models.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "x1", "content": code("app/models.py", 12)},
        {"role": "assistant", "content": prose(1200)},
        {"role": "user", "content": "Great. Separately: add a trailing newline to .editorconfig."},
    ]
    add(
        CHAT,
        {"model": "auto", "tools": AGENT_TOOLS, "messages": msgs},
        "instruction",
        "openai-tools",
        "new trivial ask after a finished complex task",
    )


# ----------------------------------------------------------------------------- commit
def commit_paths(n: int) -> list[str]:
    pool = [p for k in TREES for p in TREES[k] if "." in p.rsplit("/", 1)[-1]]
    return rng.sample(pool, n)


def build_commit() -> None:
    styles = [
        "aider",
        "cline",
        "aicommits",
        "opencommit",
        "aider",
        "cline",
        "aicommits",
        "opencommit",
        "plain",
        "aicommits-conv",
    ]
    sizes = [1, 3, 20, 6, 12, 2, 9, 15, 4, 7]
    for style, n in zip(styles, sizes, strict=True):
        d = diff(commit_paths(n))
        if style == "aider":
            hist = (
                "\nUSER: "
                + take(rng.choice(["complex", "cxl", "instr"]))["t"]
                + "\n\nASSISTANT: "
                + prose(600)
                + "\n"
            )
            msgs = [
                {
                    "role": "system",
                    "content": "You are an expert software engineer that generates concise, one-line Git commit messages based on the provided diffs.\n"
                    + prose(600)
                    + "\nReply only with the one-line commit message, without any additional text.",
                },
                {"role": "user", "content": hist + "\n# Diffs:\n" + d},
            ]
        elif style == "cline":
            notes = (
                "\n\nNotes from developer (ignore if not relevant): fixes the race we saw in prod, see ticket OPS-1432"
                if n > 5
                else ""
            )
            msgs = [
                {
                    "role": "system",
                    "content": "You are a helpful assistant that generates informative git commit messages based on git diffs output. Skip preamble and remove all backticks surrounding the commit message.",
                },
                {
                    "role": "user",
                    "content": "Based on the provided git diff, generate a concise and descriptive commit message.\n\nThe commit message should:\n1. Has a short title (50-72 characters)\n2. "
                    + prose(300)
                    + notes
                    + "\n\n"
                    + d,
                },
            ]
        elif style.startswith("aicommits"):
            lang = rng.choice(["en", "pl", "tr", "ko", "es"])
            conv = (
                '\nChoose a type from the type-to-description JSON below that best describes the git diff:\n{"feat": "A new feature", "fix": "A bug fix", "perf": "A code change that improves performance"}\nThe output response must be in format:\n<type>(<optional scope>): <commit message>'
                if style.endswith("conv")
                else ""
            )
            msgs = [
                {
                    "role": "system",
                    "content": f"Generate a concise git commit message written in present tense for the following code diff with the given specifications below:\nMessage language: {lang}\nCommit message must be a maximum of 72 characters.\nExclude anything unnecessary such as translation. Your entire response will be passed directly into git commit.{conv}",
                },
                {"role": "user", "content": d},
            ]
        elif style == "opencommit":
            msgs = [
                {
                    "role": "system",
                    "content": "You are to act as an author of a commit message in git. Your mission is to create clean and comprehensive commit messages as per the Conventional Commit Convention and explain WHAT were the changes and mainly WHY the changes were done. I'll send you an output of 'git diff --staged' command, and you are to convert it into a commit message.\nUse GitMoji convention to preface the commit. "
                    + prose(500),
                },
                {"role": "user", "content": diff(["src/server.ts"])},
                {
                    "role": "assistant",
                    "content": "🐛 fix(server.ts): change port variable case from lowercase port to uppercase PORT",
                },
                {"role": "user", "content": d},
            ]
        else:
            msgs = [
                {
                    "role": "user",
                    "content": "Write a commit message for this diff. Use conventional commits.\n\n"
                    + d,
                }
            ]
        add(
            CHAT,
            {"model": "auto", "stream": False, "max_tokens": 200, "messages": msgs},
            "instruction",
            "commit",
            f"{style} commit prompt, {n}-file diff",
            background="commit",
        )
    # aider chat summarization (weak model), history about a hard topic.
    hist = (
        "# USER\n"
        + take("complex")["t"]
        + "\n# ASSISTANT\n"
        + prose(3000)
        + "\n# USER\nkeep going\n# ASSISTANT\n"
        + prose(2000)
    )
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {
                    "role": "system",
                    "content": "*Briefly* summarize this partial conversation about programming.\n"
                    + prose(700)
                    + '\nStart the summary with "I asked you...".',
                },
                {"role": "user", "content": hist},
            ],
        },
        "instruction",
        "aider",
        "aider chat summarization over a hard-topic history",
        background="summary",
    )


# ----------------------------------------------------------------------------- generic
def build_generic() -> None:
    for kind in ("instr", "complex", "multi", "cxl", "instr", "multi"):
        a = take(kind)
        msgs: list[Msg] = [
            {
                "role": "user",
                "content": a["t"]
                + ("\n\n```\n" + code(default_path(a), 4) + "```" if a.get("path") else ""),
            }
        ]
        add(
            CHAT,
            {"model": "auto", "messages": msgs},
            LABEL[kind],
            "generic",
            f"plain chat: {a['t'][:60]}",
        )
    # Raw completion endpoints: prompt + suffix, and a bare code prefix to continue.
    src = code("app/models.py", 3)
    add(
        LEGACY,
        {"model": "auto", "prompt": src[:200], "suffix": src[200:], "max_tokens": 64},
        "completion",
        "generic",
        "prompt+suffix FIM",
    )
    add(
        LEGACY,
        {
            "model": "auto",
            "prompt": "import json\n\n\ndef load_rows(path):\n    with open(path) as fh:\n        ",
            "max_tokens": 48,
            "stop": ["\n\n"],
        },
        "completion",
        "generic",
        "bare code prefix to continue",
    )
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {
                    "role": "system",
                    "content": "Complete the code at the hole. Output only the missing code.",
                },
                {
                    "role": "user",
                    "content": "```ts\nexport function clamp(x: number, lo: number, hi: number) {\n  <CURSOR>\n}\n```",
                },
            ],
        },
        "completion",
        "generic",
        "chat hole-fill with <CURSOR>",
    )
    # LangChain ReAct-style legacy agent prompt over /v1/completions: a real ask inside.
    a = take("instr")
    react = f"Answer the following questions as best you can. You have access to the following tools:\n\npython_repl: {prose(200)}\n\nUse the following format:\n\nQuestion: the input question\nThought: you should always think about what to do\nAction: the action to take\nAction Input: the input to the action\nObservation: the result of the action\n\nBegin!\n\nQuestion: {a['t']}\nThought:"
    add(
        LEGACY,
        {"model": "auto", "prompt": react, "stop": ["\nObservation:"], "max_tokens": 400},
        LABEL["instr"],
        "generic",
        "ReAct prompt over /v1/completions",
    )
    # Copilot-style <userRequest> wrapper from a BYOK client.
    a = take("multi")
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": prose(3000)},
                {
                    "role": "user",
                    "content": f"<environment_info>\nOS: linux\n</environment_info>\n<workspace_info>\nI am working in a workspace with the following folders:\n- /home/dev/proj\n</workspace_info>\n<userRequest>\n{a['t']}\n</userRequest>",
                },
            ],
        },
        LABEL["multi"],
        "generic",
        "copilot-style userRequest wrapper",
    )


# ----------------------------------------------------------------------------- more autocomplete
def build_more_completion() -> None:
    """Autocomplete and edit prediction in files and shapes the rows above don't cover."""
    ex = "defmodule Counter do\n  use GenServer\n\n  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: __MODULE__)\n\n  def handle_call(:get, _from, n), do: "
    add(
        LEGACY,
        {
            "model": "qwen2.5-coder-7b",
            "prompt": f"<|repo_name|>counter\n<|file_sep|>lib/counter.ex\n<|fim_prefix|>{ex}<|fim_suffix|>\nend\n<|fim_middle|>",
            "stop": ["<|endoftext|>", "<|fim_prefix|>"],
            "max_tokens": 64,
            "stream": True,
        },
        "completion",
        "continue",
        "autocomplete in an Elixir file",
    )
    mutex = "// deadlock-free: always lock a before b\nfunc (s *Store) Move(a, b *Account, n int) {\n\ts.lockPair(a, b)\n\tdefer s.unlockPair(a, b)\n\t"
    add(
        LEGACY,
        {
            "model": "starcoder2-7b",
            "prompt": f"<fim_prefix>{mutex}<fim_suffix>\n}}\n<fim_middle>",
            "stop": ["<fim_prefix>", "<|endoftext|>"],
            "max_tokens": 80,
        },
        "completion",
        "continue",
        "autocomplete in Go code about locks and deadlocks",
    )
    src = code("src/api/client.ts", 4)
    cut = len(src) // 2
    mercury = (
        f"<|recently_viewed_code_snippets|>\n<|recently_viewed_code_snippet|>\ncode_snippet_file_path: src/utils/formatDate.ts\n{code('x.ts', 1)}<|/recently_viewed_code_snippet|>\n<|/recently_viewed_code_snippets|>\n\n"
        f"<|current_file_content|>\ncurrent_file_path: src/api/client.ts\n<|code_to_edit|>\n{src[:cut]}<|cursor|>{src[cut:]}<|/code_to_edit|>\n<|/current_file_content|>\n\n<|edit_diff_history|>\n{diff(['src/api/client.ts'])}<|/edit_diff_history|>"
    )
    add(
        CHAT,
        {
            "model": "mercury-coder",
            "messages": [
                {
                    "role": "system",
                    "content": "You are Mercury, created by Inception Labs. " + prose(800),
                },
                {"role": "user", "content": mercury},
            ],
        },
        "completion",
        "continue",
        "next-edit prediction (Mercury format) over chat",
    )
    py = "# Calcula el total del pedido con impuestos\ndef total_pedido(lineas, iva=0.21):\n    subtotal = sum(l.precio * l.cantidad for l in lineas)\n    "
    prompt = (
        f'### Instruction:\nYou are a code completion assistant. {prose(200)}\n\n### User Edits:\n\nUser edited "ventas/pedidos.py":\n```diff\n{diff(["ventas/pedidos.py"])}```\n\n'
        f"### User Excerpt:\n\n```ventas/pedidos.py\n<|editable_region_start|>\n{py}<|user_cursor_is_here|>\n    return subtotal\n<|editable_region_end|>\n```\n\n### Response:\n"
    )
    add(
        LEGACY,
        {"model": "zeta", "prompt": prompt, "max_tokens": 512},
        "completion",
        "zed",
        "edit prediction in a file with Spanish comments",
    )
    hs = "module Parse where\n\nimport qualified Data.Map as M\n\nparseLine :: String -> Maybe (String, String)\nparseLine s = "
    add(
        LEGACY,
        {
            "model": "auto",
            "prompt": hs,
            "suffix": "\n\nparseAll :: String -> M.Map String String\nparseAll = M.fromList . mapMaybe parseLine . lines\n",
            "max_tokens": 64,
        },
        "completion",
        "generic",
        "prompt+suffix FIM in a Haskell file",
    )
    hole = "def median(xs):\n    s = sorted(xs)\n    {{FILL_HERE}}\n"
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "You are a HOLE FILLER. You are provided with a file containing holes, formatted as '{{HOLE_NAME}}'. "
                    + prose(600)
                    + f"\n\n<QUERY>\n{hole}</QUERY>\nTASK: Fill the {{{{FILL_HERE}}}} hole. Answer only with the CORRECT completion, and NOTHING ELSE. Do it now.\n<COMPLETION>",
                }
            ],
            "stop": ["</COMPLETION>"],
        },
        "completion",
        "generic",
        "hole-filler template over chat",
    )
    nes = f"<|area_around_code_to_edit|>\n{code('app/profile.py', 1)}<|code_to_edit|>\ndef load_profile(uid):\n    row = db.get(uid)<|cursor|>\n<|/code_to_edit|>\n<|/area_around_code_to_edit|>"
    add(
        CHAT,
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": prose(1200)},
                {"role": "user", "content": nes},
            ],
        },
        "completion",
        "generic",
        "next-edit-suggestion tags with <|cursor|>",
    )
    p = "src/scheduler.rs"
    src = code(p, 4)
    add(
        LEGACY,
        {
            "model": "zeta",
            "prompt": f"<|file_sep|>{p}\n<|fim_prefix|>{src[:120]}<<<<<<< CURRENT\n{src[120:300]}<|user_cursor|>{src[300:400]}=======\n<|fim_suffix|>{src[400:]}\n<|fim_middle|>",
            "max_tokens": 400,
        },
        "completion",
        "zed",
        "edit prediction zeta2 in scheduler.rs",
    )


def main() -> None:
    build_aider()
    build_cline("Cline", 10)
    build_cline_specials()
    build_roo()
    build_continue()
    build_zed()
    build_webui()
    build_tools()
    build_commit()
    build_generic()
    build_more_completion()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in ROWS:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(ROWS)} rows, {OUT.stat().st_size / 1e6:.2f} MB to {OUT}")


if __name__ == "__main__":
    main()
