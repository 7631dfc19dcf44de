"""Raw material for the client corpus: the human asks, filler prose, code, file trees, diffs.

Everything here is written for this corpus (no client's prompt text is copied): the
asks are what a user would type, labelled by what they need (see ../README.md); the
filler stands in for long client boilerplate, so only its size and headings matter;
the code and file trees look like real projects (``package-lock.json``,
``Profile.tsx``, ``scheduler.go``…) so that the envelope carries the same traps a real
one does. All randomness comes from the ``random.Random`` the caller passes in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INSTRUCTION = "instruction"
COMPLEX = "complex"
MULTI = "multi-language"
COMPLETION = "completion"


@dataclass(frozen=True)
class Ask:
    """What the human typed, the class it needs, and the project language it fits."""

    text: str
    label: str
    lang: str  # py, ts, go, java, rs, rb, any


def _asks(label: str, rows: list[tuple[str, str]]) -> list[Ask]:
    return [Ask(text, label, lang) for lang, text in rows]


# Small, single-language work: fixes, typos, renames, features of modest size, questions.
INSTRUCTION_ASKS = _asks(
    INSTRUCTION,
    [
        ("any", "Fix the typo 'recieve' in README.md"),
        ("ts", "Rename getUserData to fetchUserProfile in src/api/user.ts and its two callers"),
        ("py", "Add a --verbose flag to cli.py that sets the log level to DEBUG"),
        ("py", "write a unit test for parse_duration that covers '1h30m' and the empty string"),
        (
            "ts",
            "Why does this throw TypeError: Cannot read properties of undefined (reading 'map')?",
        ),
        ("ts", "Explain what the cleanup function in the useEffect of Profile.tsx is for"),
        ("any", "change the default port from 8080 to 3000"),
        ("ts", "Disable the submit button while the form is submitting"),
        ("py", "Reject negative quantities in the create_order endpoint with a 400 and a message"),
        ("go", "sort the jobs returned by ListJobs by created_at, newest first"),
        ("ts", "Convert fetchSettings from callbacks to async/await"),
        ("go", 'Add a /healthz endpoint that returns {"status":"ok"}'),
        ("py", "Dates show as 2024-1-5 on the invoice page, pad month and day with zeros"),
        ("py", "Replace datetime.utcnow() in models.py with timezone-aware datetime.now(UTC)"),
        ("any", "Write a SQL query that returns the top 5 customers by total order value"),
        ("any", "add .env and dist/ to .gitignore"),
        ("any", "Update the README with a section on how to run the tests locally"),
        ("rs", "What does the ? operator do in load_config in src/config.rs?"),
        ("py", "Wrap the HTTP call in fetch_rates with 3 retries and a 2 second timeout"),
        ("go", "remove the unused imports in internal/scheduler/scheduler.go"),
        ("ts", "Bump lodash in package.json to 4.17.21"),
        ("ts", "Show a loading spinner on the Profile page while the user is being fetched"),
        ("ts", "Make the card grid two columns on screens wider than 768px"),
        ("py", "add type hints to the functions in config_loader.py"),
        ("py", "Log a warning instead of crashing when settings.toml is missing"),
        ("any", "Write a bash script that tars the uploads directory into a dated .tar.gz"),
        ("py", "Implement __repr__ for the Invoice dataclass"),
        ("ts", "The last page never shows in the pagination, fix the off-by-one"),
        (
            "java",
            "Use a StringBuilder instead of string concatenation in the loop in ReportWriter.java",
        ),
        ("go", "How do I read an environment variable with a default value in Go?"),
        ("any", "Add a migration that creates an index on orders.customer_id"),
        ("py", "make the error message say which field is missing"),
        ("ts", "can you add a dark mode toggle that remembers the choice in localStorage"),
        ("rb", "Rename the usr variable to user in app/services/auth.rb"),
        ("java", "Add a null check for the customer in OrderMapper.toDto"),
        ("rs", "Derive Serialize and Deserialize for the Settings struct"),
        ("py", "What's the difference between a list and a tuple? when should I use which?"),
        ("ts", "Add an aria-label to the icon buttons in Navbar.tsx"),
        ("py", "The test test_total_with_discount fails with 90.00000001 != 90, fix the rounding"),
        ("go", "Return a 404 instead of a 500 when the user is not found in GetUser"),
        ("any", "Add a Makefile target `lint` that runs the linters"),
        ("ts", "Extract the date formatting in OrderRow.tsx into a formatDate helper"),
        ("py", "Add a docstring to slugify explaining the arguments"),
        ("java", "Write a JUnit test for PriceCalculator.applyCoupon with an expired coupon"),
        ("py", "What's the difference between a mutex and a semaphore, in two sentences?"),
        (
            "ts",
            "Use optional chaining like Kotlin's `?.` where user.address can be null in "
            "Checkout.tsx",
        ),
        ("go", "Add a context timeout of 5s to the database ping in main.go"),
        ("rb", "Add a validation that the email is present on the User model"),
        ("py", "Add pagination parameters limit and offset to the /items endpoint"),
        ("ts", "Write a small React hook useDebounce(value, delay)"),
        ("any", "Change the copyright year in the footer to 2026"),
    ],
)

# Hard or large work, however short the sentence.
COMPLEX_ASKS = _asks(
    COMPLEX,
    [
        ("any", "Redesign the auth flow to use OAuth with token rotation"),
        ("py", "Update every call site of the old Logger API to the new structured logger"),
        (
            "java",
            "Refactor the monolithic OrderService into separate pricing, inventory and "
            "notification modules while keeping the public API stable",
        ),
        (
            "go",
            "We get an intermittent deadlock in the worker pool under load. Find the cause "
            "and fix it.",
        ),
        (
            "ts",
            "The websocket server leaks memory, RSS grows by about 200 MB an hour. Track it "
            "down and fix it.",
        ),
        (
            "any",
            "Design a distributed rate limiter that works across 12 API nodes with Redis, "
            "with bursts and fair queueing",
        ),
        (
            "py",
            "p99 latency of /search went from 80ms to 900ms after the last release; profile "
            "it and fix the regression",
        ),
        (
            "rs",
            "Implement a lock-free MPMC ring buffer with correct memory ordering and tests "
            "under loom",
        ),
        (
            "py",
            "Prove that the balance invariant holds after every rotation in avl.py and add "
            "property tests for it",
        ),
        ("py", "Count inversions in O(n log n) for n up to 10^6 within 1 second and 64 MB"),
        ("ts", "Migrate the whole frontend from Redux to Zustand, all 40 connected components"),
        (
            "go",
            "Split scheduler.go (3000 lines) into packages with clear interfaces and "
            "dependency injection, without changing behaviour",
        ),
        (
            "py",
            "Replace our hand-rolled event bus with a transactional outbox so events are "
            "never lost when the DB commit succeeds but publishing fails",
        ),
        (
            "any",
            "Add multi-tenancy: every query, background job and admin page must be scoped "
            "by tenant_id",
        ),
        (
            "py",
            "test_checkout_concurrent fails about 1 in 20 runs, only in CI. Find the race "
            "condition and fix it properly",
        ),
        (
            "java",
            "The connection pool is exhausted during the nightly batch and requests hang. "
            "Find out why and redesign how the batch jobs use connections",
        ),
        (
            "any",
            "Rewrite the caching layer for write-through with cross-service invalidation "
            "and a zero-downtime migration plan",
        ),
        (
            "ts",
            "Implement CRDT-based collaborative editing for notes so concurrent edits from "
            "several clients converge",
        ),
        ("rs", "Segfault in the PNG decoder on some images, only in release builds. Find it."),
        (
            "py",
            "The CSV import loads 50M rows into memory and takes 3 hours; make it stream and "
            "finish in minutes",
        ),
        (
            "any",
            "Design the schema and service boundaries for multi-warehouse inventory with "
            "reservations and eventual consistency",
        ),
        (
            "py",
            "Go through the codebase and replace request.user_id with the new Session object "
            "everywhere, tests included",
        ),
        (
            "go",
            "Make the job queue exactly-once across restarts: design the state machine, the "
            "storage and the recovery path",
        ),
        (
            "ts",
            "Rearchitect the app state so offline edits sync with conflict resolution when "
            "the device comes back online",
        ),
        (
            "java",
            "Our Kafka consumers rebalance constantly and lag grows to millions; diagnose "
            "and fix the consumer group setup and the processing loop",
        ),
        (
            "py",
            "Implement a B+ tree index with range scans, splits and merges, persisted to "
            "pages on disk",
        ),
        (
            "go",
            "goroutine count climbs to 80k after a day in production and the service OOMs. "
            "Find the leak",
        ),
        (
            "ts",
            "Introduce a plugin architecture so third parties can add payment providers "
            "without touching the core, and move Stripe and PayPal onto it",
        ),
        (
            "any",
            "Plan and implement zero-downtime migration from MySQL to Postgres for the "
            "orders service",
        ),
        (
            "rs",
            "Make the parser incremental so re-parsing after a one-character edit is "
            "O(log n) instead of re-reading the file",
        ),
    ],
)

# Another programming language is involved, or the user writes in another human language.
MULTI_ASKS = _asks(
    MULTI,
    [
        ("py", "Port this module to Rust, keeping the same public functions"),
        (
            "java",
            "Translate the validation rules in Validators.java to TypeScript for the frontend",
        ),
        ("any", "Write Python bindings for our C library libgeo using ctypes"),
        ("rs", "Expose the Rust tokenizer to Node.js with napi-rs"),
        ("any", "Write an Elixir GenServer that keeps a per-user counter with a TTL"),
        ("any", "Add a Haskell function that parses ISO-8601 dates with megaparsec"),
        ("any", "Write a Lua config for Neovim that maps <leader>ff to telescope find_files"),
        ("any", "Convert deploy.sh to a PowerShell script for the Windows runners"),
        ("py", "Rewrite analysis.R in Python with pandas, same plots"),
        ("any", "Write a Scala case class and a circe codec for Order"),
        ("any", "Write a Zig function that reverses a slice in place"),
        ("any", "Add a Dart model class with fromJson/toJson for the profile API"),
        ("go", "Call this Go package from Python through a cgo shared library"),
        ("any", "Port the Objective-C category NSString+Slug to Swift"),
        (
            "go",
            "Add a nickname field end to end: the Go struct and handler and the TypeScript "
            "type and form",
        ),
        ("any", "Write a Julia function for a moving average over a vector"),
        ("any", "Fix the bug in this Fortran subroutine: the loop bounds look wrong"),
        ("any", "Write an OCaml function that flattens a list of lists"),
        ("py", "Call our Kotlin library from Python through JNI"),
        ("any", "Add a Clojure function that groups orders by customer"),
    ],
)

# Instruction-sized asks written in another human language → multi-language.
FOREIGN_ASKS = _asks(
    MULTI,
    [
        ("any", "Añade validación al formulario de registro para que el correo sea obligatorio"),
        ("py", "¿Por qué este bucle nunca termina? Explícamelo, por favor"),
        ("any", "Ajoute une option --dry-run au script de déploiement"),
        ("ts", "Corrige la faute de frappe dans le message d'erreur de connexion"),
        ("py", "Füge eine Funktion hinzu, die die Summe aller Bestellungen eines Kunden berechnet"),
        ("ts", "Warum wird der Button nicht deaktiviert, wenn das Formular ungültig ist?"),
        ("py", "给这个函数添加单元测试，覆盖空列表的情况"),
        ("go", "把这个接口的返回值改成分页格式，每页20条"),
        ("ts", "このコンポーネントにローディング表示を追加してください"),
        ("any", "READMEのタイポを直してください"),
        ("java", "Adicione um endpoint que retorna a lista de produtos ordenada por preço"),
        ("py", "Добавь обработку ошибки, если файл конфигурации не найден"),
        ("py", "Aggiungi un controllo per evitare la divisione per zero nella funzione media"),
        ("py", "이 함수에 타입 힌트를 추가해 주세요"),
        ("ts", "Dodaj walidację numeru telefonu w formularzu kontaktowym"),
        ("go", "Bu fonksiyona birim testi ekler misin? Boş liste durumunu da kapsasın"),
        ("ts", "Voeg een knop toe om de lijst te exporteren als CSV"),
        ("py", "Thêm kiểm tra đầu vào cho hàm tính thuế, số âm thì báo lỗi"),
        ("any", "Renomeia a variável tmp para buffer no ficheiro utils.js"),
        ("go", "Переименуй функцию getCfg в loadConfig и обнови вызовы"),
        ("py", "请解释一下这个装饰器是做什么的"),
        ("ts", "Explique-moi ce que fait ce hook useMemo ici"),
        ("any", "Schreibe ein Shell-Skript, das alte Logdateien älter als 7 Tage löscht"),
        ("py", "Crea una función que convierta grados Celsius a Fahrenheit con pruebas"),
    ],
)

# Hard work asked in another human language: complex wins by precedence.
FOREIGN_COMPLEX_ASKS = _asks(
    COMPLEX,
    [
        ("any", "Rediseña el flujo de autenticación para usar OAuth con rotación de tokens"),
        (
            "go",
            "Finde die Race Condition im Worker-Pool, die unter Last sporadisch zu Deadlocks führt",
        ),
        ("java", "重构整个订单模块的架构，拆分成独立的服务，并保证数据一致性"),
        (
            "ts",
            "Le serveur websocket fuit de la mémoire (200 Mo par heure) : trouve la cause et "
            "corrige-la",
        ),
        (
            "py",
            "検索APIのp99レイテンシが10倍に悪化しました。プロファイルして原因を特定し、修正してください",
        ),
        ("any", "Спроектируй распределённый ограничитель запросов для 12 узлов с Redis"),
    ],
)


class Pool:
    """Draw asks without repeats until the pool is used up, then reshuffle."""

    def __init__(self, rng: random.Random, asks: list[Ask]) -> None:
        self.rng, self.asks, self.left = rng, asks, list[Ask]()

    def draw(self) -> Ask:
        if not self.left:
            self.left = list(self.asks)
            self.rng.shuffle(self.left)
        return self.left.pop()


# ---------------------------------------------------------------- filler prose

_SUBJ = [
    "the assistant",
    "you",
    "each tool call",
    "the user",
    "every edit",
    "the response",
    "a command",
    "the workspace",
    "the final answer",
    "this mode",
    "a file change",
]
_VERB = [
    "must respect",
    "should mention",
    "may include",
    "needs to follow",
    "cannot skip",
    "is expected to confirm",
    "will usually describe",
    "ought to preserve",
    "has to check",
]
_OBJ = [
    "the existing indentation",
    "the project's conventions",
    "the current working directory",
    "the result of the previous step",
    "the approval setting",
    "any open terminals",
    "the exact file path",
    "the formatting rules above",
    "the diff markers",
    "the parameters listed in the schema",
    "the user's custom instructions",
    "the environment details",
    "one tool per message",
    "the plan agreed with the user",
]
_TAIL = [
    "before moving on",
    "without asking again",
    "unless the user says otherwise",
    "so that the next step has what it needs",
    "and nothing more",
    "when it is relevant",
    "in a single message",
    "after the tool result arrives",
    "even for small changes",
]


def prose(rng: random.Random, chars: int, bullet: str = "") -> str:
    """Plausible instruction-like filler of about ``chars`` characters."""
    out: list[str] = []
    n = 0
    while n < chars:
        s = (
            f"{bullet}{rng.choice(_SUBJ).capitalize()} {rng.choice(_VERB)} "
            f"{rng.choice(_OBJ)} {rng.choice(_TAIL)}."
        )
        out.append(s)
        n += len(s) + 1
    return ("\n" if bullet else " ").join(out)


def paragraphs(rng: random.Random, chars: int) -> str:
    parts, n = [], 0
    while n < chars:
        p = prose(rng, rng.randint(250, 600), bullet=rng.choice(["", "", "- "]))
        parts.append(p)
        n += len(p) + 2
    return "\n\n".join(parts)


# ---------------------------------------------------------------- code

_NOUNS = [
    "order",
    "user",
    "invoice",
    "cart",
    "item",
    "payment",
    "session",
    "report",
    "account",
    "ticket",
    "shipment",
    "coupon",
    "profile",
    "job",
    "webhook",
]
_VERBS = [
    "load",
    "save",
    "validate",
    "compute",
    "render",
    "merge",
    "sync",
    "parse",
    "export",
    "archive",
    "refresh",
    "notify",
]


def _py(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS), rng.choice(_VERBS)
    return (
        f"def {v}_{n}(db, {n}_id: int, *, strict: bool = False) -> dict:\n"
        f'    """{v.capitalize()} one {n}."""\n'
        f'    row = db.fetch_one("SELECT * FROM {n}s WHERE id = ?", ({n}_id,))\n'
        f"    if row is None:\n        if strict:\n            raise KeyError({n}_id)\n"
        f"        return {{}}\n"
        f"    return {{k: v for k, v in row.items() if not k.startswith('_')}}\n\n\n"
    )


def _ts(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS), rng.choice(_VERBS)
    cap = n.capitalize()
    return (
        f"export async function {v}{cap}(id: string): Promise<{cap} | null> {{\n"
        f"  const res = await fetch(`/api/{n}s/${{id}}`);\n"
        f"  if (!res.ok) {{\n    return null;\n  }}\n"
        f"  const data = (await res.json()) as {cap};\n"
        f"  return {{ ...data, updatedAt: new Date(data.updatedAt) }};\n}}\n\n"
    )


def _tsx(rng: random.Random) -> str:
    n = rng.choice(_NOUNS)
    cap = n.capitalize()
    return (
        f"export function {cap}Card({{ {n} }}: {{ {n}: {cap} }}) {{\n"
        f"  const [open, setOpen] = useState(false);\n"
        f"  useEffect(() => {{\n    if (!open) return;\n"
        f"    const t = setTimeout(() => setOpen(false), 5000);\n"
        f"    return () => clearTimeout(t);\n  }}, [open]);\n"
        f'  return (\n    <div className="card" onClick={{() => setOpen(!open)}}>\n'
        f"      <h3>{{{n}.name}}</h3>\n      {{open && <p>{{{n}.description}}</p>}}\n"
        f"    </div>\n  );\n}}\n\n"
    )


def _go(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS).capitalize(), rng.choice(_VERBS).capitalize()
    return (
        f"func (s *Service) {v}{n}(ctx context.Context, id int64) (*{n}, error) {{\n"
        f'\trow := s.db.QueryRowContext(ctx, "SELECT id, status FROM {n.lower()}s '
        f'WHERE id = $1", id)\n\tvar out {n}\n'
        f"\tif err := row.Scan(&out.ID, &out.Status); err != nil {{\n"
        f'\t\treturn nil, fmt.Errorf("{v.lower()} {n.lower()} %d: %w", id, err)\n\t}}\n'
        f"\treturn &out, nil\n}}\n\n"
    )


def _java(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS).capitalize(), rng.choice(_VERBS)
    return (
        f"    public Optional<{n}Dto> {v}{n}(long id) {{\n"
        f"        {n} entity = repository.findById(id).orElse(null);\n"
        f"        if (entity == null) {{\n            return Optional.empty();\n        }}\n"
        f"        return Optional.of(mapper.toDto(entity));\n    }}\n\n"
    )


def _rs(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS), rng.choice(_VERBS)
    cap = n.capitalize()
    return (
        f"pub fn {v}_{n}(conn: &Connection, id: i64) -> Result<Option<{cap}>, Error> {{\n"
        f'    let mut stmt = conn.prepare("SELECT id, status FROM {n}s WHERE id = ?1")?;\n'
        f"    let mut rows = stmt.query([id])?;\n"
        f"    match rows.next()? {{\n"
        f"        Some(row) => Ok(Some({cap} {{ id: row.get(0)?, status: row.get(1)? }})),\n"
        f"        None => Ok(None),\n    }}\n}}\n\n"
    )


def _rb(rng: random.Random) -> str:
    n, v = rng.choice(_NOUNS), rng.choice(_VERBS)
    return (
        f"  def {v}_{n}(id)\n    record = {n.capitalize()}.find_by(id: id)\n"
        f"    return nil if record.nil?\n\n    record.attributes.except('secret')\n"
        f"  end\n\n"
    )


_CODE = {"py": _py, "ts": _ts, "tsx": _tsx, "go": _go, "java": _java, "rs": _rs, "rb": _rb}
_HEAD = {
    "py": "import logging\nfrom datetime import UTC, datetime\n\n"
    "log = logging.getLogger(__name__)\n\n\n",
    "ts": 'import { z } from "zod";\nimport type { Order, User } from "./types";\n\n',
    "tsx": 'import { useEffect, useState } from "react";\n\n',
    "go": 'package service\n\nimport (\n\t"context"\n\t"fmt"\n)\n\n',
    "java": "package com.acme.shop;\n\nimport java.util.Optional;\n\npublic class Service {\n",
    "rs": "use rusqlite::{Connection, Error};\n\n",
    "rb": "class Service\n",
}


def code(rng: random.Random, lang: str, chars: int) -> str:
    """A source file of about ``chars`` characters in ``lang`` (py, ts, tsx, go…)."""
    fn = _CODE.get(lang, _py)
    out = [_HEAD.get(lang, "")]
    n = len(out[0])
    while n < chars:
        out.append(fn(rng))
        n += len(out[-1])
    if lang == "java":
        out.append("}\n")
    if lang == "rb":
        out.append("end\n")
    return "".join(out)


# ---------------------------------------------------------------- projects and file trees

PROJECTS: dict[str, list[str]] = {
    "ts": [
        "package.json",
        "package-lock.json",
        "tsconfig.json",
        "vite.config.ts",
        "README.md",
        ".eslintrc.cjs",
        "src/main.tsx",
        "src/App.tsx",
        "src/api/user.ts",
        "src/api/orders.ts",
        "src/components/Profile.tsx",
        "src/components/Navbar.tsx",
        "src/components/OrderRow.tsx",
        "src/components/Checkout.tsx",
        "src/hooks/useAuth.ts",
        "src/hooks/useDebounce.ts",
        "src/store/index.ts",
        "src/store/cartSlice.ts",
        "src/styles/global.css",
        "src/utils/format.ts",
        "src/utils/lock.ts",
        "public/index.html",
        "public/favicon.ico",
        "tests/Profile.test.tsx",
        "tests/setup.ts",
        ".github/workflows/ci.yml",
    ],
    "py": [
        "pyproject.toml",
        "poetry.lock",
        "README.md",
        "Makefile",
        ".gitignore",
        "app/__init__.py",
        "app/main.py",
        "app/models.py",
        "app/api/orders.py",
        "app/api/users.py",
        "app/services/pricing.py",
        "app/services/profile.py",
        "app/workers/scheduler.py",
        "app/db/session.py",
        "app/db/migrations/0007_index.py",
        "app/utils/strings.py",
        "app/config_loader.py",
        "cli.py",
        "tests/test_orders.py",
        "tests/test_pricing.py",
        "tests/conftest.py",
        "benchmarks/bench_search.py",
        "docker-compose.yml",
        "Dockerfile",
        "settings.toml",
    ],
    "go": [
        "go.mod",
        "go.sum",
        "README.md",
        "Makefile",
        "cmd/server/main.go",
        "internal/scheduler/scheduler.go",
        "internal/scheduler/scheduler_test.go",
        "internal/queue/lock.go",
        "internal/queue/worker.go",
        "internal/api/handlers.go",
        "internal/api/middleware.go",
        "internal/store/postgres.go",
        "internal/store/cache.go",
        "internal/profile/pprof.go",
        "migrations/0001_init.sql",
        "migrations/0002_jobs.sql",
        "deploy/k8s/deployment.yaml",
        "Dockerfile",
        ".golangci.yml",
    ],
    "java": [
        "pom.xml",
        "README.md",
        "src/main/java/com/acme/shop/OrderService.java",
        "src/main/java/com/acme/shop/OrderMapper.java",
        "src/main/java/com/acme/shop/PriceCalculator.java",
        "src/main/java/com/acme/shop/ReportWriter.java",
        "src/main/java/com/acme/shop/Validators.java",
        "src/main/resources/application.yml",
        "src/test/java/com/acme/shop/PriceCalculatorTest.java",
        "docker-compose.yml",
        "mvnw",
        ".mvn/wrapper/maven-wrapper.properties",
    ],
    "rs": [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
        "src/config.rs",
        "src/parser/mod.rs",
        "src/parser/lexer.rs",
        "src/decoder/png.rs",
        "src/queue.rs",
        "benches/throughput.rs",
        "tests/integration.rs",
        ".github/workflows/rust.yml",
    ],
    "rb": [
        "Gemfile",
        "Gemfile.lock",
        "README.md",
        "config/routes.rb",
        "config/database.yml",
        "app/models/user.rb",
        "app/models/order.rb",
        "app/controllers/orders_controller.rb",
        "app/services/auth.rb",
        "app/views/orders/index.html.erb",
        "db/schema.rb",
        "spec/models/user_spec.rb",
        "yarn.lock",
        "Procfile",
    ],
}
PROJECTS["any"] = PROJECTS["py"][:8] + PROJECTS["ts"][:10] + ["scripts/deploy.sh", "analysis.R"]
EXT = {"py": "py", "ts": "ts", "go": "go", "java": "java", "rs": "rs", "rb": "rb", "any": "py"}
FENCE = {
    "py": "python",
    "ts": "typescript",
    "tsx": "tsx",
    "go": "go",
    "java": "java",
    "rs": "rust",
    "rb": "ruby",
}


SOURCE_EXT = {
    "py": ("py",),
    "ts": ("ts", "tsx"),
    "go": ("go",),
    "java": ("java",),
    "rs": ("rs",),
    "rb": ("rb",),
    "any": ("py", "ts", "tsx", "sh"),
}


def files_of(rng: random.Random, lang: str, n: int, ext: str | None = None) -> list[str]:
    """``n`` distinct source-file paths of the project (extension ``ext`` if given)."""
    tree = PROJECTS.get(lang, PROJECTS["any"])
    exts = (ext,) if ext else SOURCE_EXT.get(lang, ("py",))
    src = [f for f in tree if f.rsplit(".", 1)[-1] in exts] or tree
    out = list(src)
    rng.shuffle(out)
    extra = 0
    while len(out) < n:
        extra += 1
        stem, _, suffix = rng.choice(src).rpartition(".")
        out.append(f"{stem}_{extra}.{suffix}")
    return out[:n]


_PASCAL = [
    "OrderList",
    "UserMenu",
    "InvoiceTable",
    "CartDrawer",
    "PaymentForm",
    "SessionBanner",
    "ReportChart",
    "AccountSettings",
    "TicketBadge",
    "CouponInput",
    "JobStatus",
]


def listing(rng: random.Random, lang: str, lines: int) -> str:
    """A recursive file listing like the agents' first-turn environment details."""
    tree = list(PROJECTS.get(lang, PROJECTS["any"]))
    exts = SOURCE_EXT.get(lang, ("py",))
    dirs = sorted({f.rsplit("/", 1)[0] for f in tree if "/" in f and f.rsplit(".", 1)[-1] in exts})
    k = 0
    while len(tree) < lines and dirs:
        k += 1
        d = rng.choice(dirs)
        ext = rng.choice(exts)
        if ext == "tsx" or "components" in d:
            name = f"{rng.choice(_PASCAL)}{k}.tsx"
        elif ext in ("ts", "java"):
            name = f"{rng.choice(_VERBS)}{rng.choice(_NOUNS).capitalize()}.{ext}"
        else:
            name = f"{rng.choice(_NOUNS)}_{rng.choice(_VERBS)}.{ext}"
        if d.startswith("test") or d.startswith("spec"):
            name = ("test_" + name) if ext == "py" else name.replace(f".{ext}", f".test.{ext}")
        tree.append(f"{d}/{name}")
    return "\n".join(sorted(set(tree[:lines])) + sorted(d + "/" for d in dirs))


def lang_of(path: str) -> str:
    ext = path.rsplit(".", 1)[-1]
    return {
        "tsx": "tsx",
        "ts": "ts",
        "js": "ts",
        "go": "go",
        "java": "java",
        "rs": "rs",
        "rb": "rb",
    }.get(ext, "py")


# ---------------------------------------------------------------- diffs and logs


def diff(rng: random.Random, paths: list[str], hunk_lines: int = 6) -> str:
    """A ``git diff`` touching exactly ``paths``."""
    out: list[str] = []
    for p in paths:
        lang = lang_of(p)
        old = code(rng, lang, 200 + 40 * hunk_lines).splitlines()[: hunk_lines + 3]
        a = rng.randint(5, 300)
        out.append(
            f"diff --git a/{p} b/{p}\n"
            f"index {rng.getrandbits(28):07x}..{rng.getrandbits(28):07x} 100644"
        )
        out.append(f"--- a/{p}\n+++ b/{p}\n@@ -{a},{len(old)} +{a},{len(old) + 1} @@")
        for i, line in enumerate(old):
            if i == 2:
                out.append("-" + line)
                out.append(
                    "+"
                    + line.replace("id", "key", 1)
                    + ("  # changed" if lang in ("py", "rb") else "  // changed")
                )
            else:
                out.append(" " + line)
        out.append("+" + ("    log.debug('done')" if lang == "py" else "    // done"))
    return "\n".join(out) + "\n"


def log_lines(rng: random.Random, n: int) -> str:
    out = []
    for i in range(n):
        lvl = rng.choice(["INFO", "WARN", "ERROR", "DEBUG"])
        out.append(
            f"2026-11-30T03:{i % 60:02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z "
            f"{lvl} worker-{rng.randint(1, 8)} {rng.choice(_VERBS)} {rng.choice(_NOUNS)} "
            f"id={rng.randint(1000, 99999)} took={rng.randint(1, 4000)}ms"
        )
    return "\n".join(out)
