"""The routing config: a YAML file, validated by one strict, frozen schema.

Loading is all-or-nothing. `load_config` reads the file, expands `${VAR}` and
`${VAR:-default}` in string values, validates the schema (unknown keys are
rejected), then checks the cross references (a variant's backend exists, a
route names real variants, names and aliases don't collide). Every problem is
reported as `path.to.key: reason` in one `ConfigError`, so a reload that
fails can keep the running config and log exactly what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .classify import CLASSES, ClassifierConfig
from .errors import ConfigError, ConfigIssue
from .origin import normalize_origin
from .quirks import QUIRKS
from .swapping import Group, check_groups

__all__ = [
    "CLASSES",
    "Backend",
    "BackendKind",
    "BenchmarkConfig",
    "Pin",
    "RouteCandidate",
    "RouterConfig",
    "Routes",
    "ServerConfig",
    "StatusPage",
    "Timeouts",
    "Variant",
    "load_config",
    "parse_config",
]

Policy = Literal["enforce", "warn", "off"]
BackendKind = Literal["ollama", "lmstudio", "llamacpp", "vllm", "openai"]
FimFormat = Literal["codellama", "starcoder", "qwen", "deepseek", "codestral", "native-suffix"]
#: what a variant's model was trained for: chat turns, or raw text continuation (a base model)
VariantApi = Literal["chat", "completion"]
#: request fields a variant's `defaults` may not set: they are the request itself
_NOT_DEFAULTS = frozenset({"model", "messages", "prompt", "suffix", "input", "stream"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Seconds. `first_byte` is long: a local server may load a model first."""

    connect: float = Field(5.0, gt=0)
    first_byte: float = Field(300.0, gt=0)
    idle: float = Field(120.0, gt=0)
    total: float | None = Field(None, gt=0)
    write: float = Field(30.0, gt=0)


class Backoff(_Strict):
    initial: float = Field(1.0, gt=0)
    max: float = Field(30.0, gt=0)


class Backend(_Strict):
    """A model server: where it is, how to talk to it, optionally how to run it."""

    kind: BackendKind
    url: str | None = None
    api_key_env: str | None = None
    #: the server answers `/v1/responses` itself, and Responses requests are relayed to it
    #: as sent. false: they are served as chat completions (`proxy.responses`), which every
    #: kind speaks the same way; local servers' own Responses support differs by version.
    responses_api: bool = False
    timeouts: Timeouts = Timeouts()
    max_concurrency: int | None = Field(None, ge=1)
    max_queue: int = Field(64, ge=0)
    queue_timeout: float = Field(30.0, gt=0)
    breaker: Breaker | None = None
    pid_file: str | None = None
    # Managed backends: variant-proxy starts and supervises the server itself.
    command: list[str] | None = None
    port: int | None = Field(None, ge=1, le=65535)
    model_file: str | None = None
    start: Literal["eager", "lazy"] = "eager"
    start_timeout: float = Field(120.0, gt=0)
    idle_ttl: float | None = Field(None, gt=0)
    restart_backoff: Backoff = Backoff()
    log_file: str | None = None
    env: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        value = value.rstrip("/")
        if value.endswith("/v1"):
            value = value[: -len("/v1")]
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must name a program to run")
        return value

    @property
    def managed(self) -> bool:
        return self.command is not None


class Pin(_Strict):
    """Identity fields a variant must match; any subset may be given."""

    digest: str | None = None
    sha256: str | None = None
    quantization: str | None = None
    family: str | None = None
    parameter_size: str | None = None
    size: int | None = None
    n_params: int | None = None
    model_path: str | None = None
    id: str | None = None


class Caps(_Strict):
    """Hard limits on what a request may ask of a variant."""

    #: a larger `max_tokens` / `max_completion_tokens` is lowered to this; a request
    #: without one gets it
    max_tokens: int | None = Field(None, ge=1)


class Variant(_Strict):
    """A model as one backend knows it, under a name clients can ask for."""

    backend: str
    replicas: list[str] = []
    model: str
    aliases: list[str] = []
    fim: FimFormat | None = None
    #: the context window the variant's server runs with (tokens); a request estimated
    #: not to fit skips the variant. None: not declared, never skipped for size.
    context_window: int | None = Field(None, gt=0)
    #: Ollama only: the context window to run the model with. Ollama's OpenAI endpoint
    #: can't take it, so chat goes to its native /api/chat with `options.num_ctx`
    #: (proxy.ollamanative); None: the server's own window (learned, proxy.contextwindow)
    num_ctx: int | None = Field(None, gt=0)
    #: can drive tool calls; false: a request that offers tools skips the variant.
    #: None: not declared, never skipped for tools.
    tools: bool | None = None
    #: chat: an instruct model with a chat template; completion: a base model that takes
    #: raw prompts (chat requests are rendered as a plain transcript, see proxy.prompting)
    api: VariantApi = "chat"
    #: request fields set when the client didn't send them (max_tokens, temperature, stop…)
    defaults: dict[str, Any] = {}
    caps: Caps = Caps()
    pin: Pin | None = None
    description: str | None = None
    strengths: list[str] = []
    timeouts: Timeouts | None = None

    @field_validator("defaults")
    @classmethod
    def _defaults_are_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        wrong = sorted(k for k in value if k in _NOT_DEFAULTS)
        if wrong:
            raise ValueError(
                f"defaults may not set {', '.join(wrong)}: only sampling and length options "
                "(max_tokens, temperature, top_p, stop, ...)"
            )
        return value

    @property
    def backends(self) -> tuple[str, ...]:
        """Every backend serving this variant: `backend`, then its `replicas`."""
        return (self.backend, *self.replicas)


class PinningConfig(_Strict):
    """The ``pinning:`` section of the routing config."""

    #: enforce: a drifted, unverifiable or unreachable pinned variant does not serve;
    #: warn: it serves, the drift is logged and counted; off: no identity checks at all.
    policy: Policy = "enforce"
    #: Seconds between background re-checks of every variant's identity.
    interval: float = Field(60.0, gt=0)
    #: The lockfile; default ``models.lock`` beside the config file
    #: (``config/models.lock`` for ``config/router.yaml``). Relative paths are from the cwd.
    lockfile: str | None = None
    #: Hash local weights files (llama.cpp ``model_path``) into ``sha256``. Each file is
    #: hashed once per (path, size, mtime), in a thread.
    hash_files: bool = True


class RouteCandidate(_Strict):
    variant: str
    weight: float | None = Field(None, gt=0)


def _candidates(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [{"variant": item} if isinstance(item, str) else item for item in value]
    return value


RouteOrder = Literal["config", "benchmark"]


class Routes(_Strict):
    """Class name → ordered candidates; `default` serves `auto` when nothing else does.

    A route is a list, or `{order: benchmark, candidates: [...]}` to rank its
    candidates by the latest benchmark (pass ratio for the class, then speed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _route_objects(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        order: dict[str, Any] = dict(data.get("order") or {})
        cold: dict[str, Any] = dict(data.get("max_cold_start") or {})
        for key, value in list(data.items()):
            if isinstance(value, dict) and key not in ("order", "default", "max_cold_start"):
                extra = set(value) - {"order", "candidates", "max_cold_start"}
                if extra:
                    raise ValueError(
                        f"{key}: unknown key {sorted(extra)[0]!r} (a route object takes "
                        "order, candidates and max_cold_start)"
                    )
                data[key] = value.get("candidates", [])
                order[key] = value.get("order", "config")
                if "max_cold_start" in value:
                    cold[key] = value["max_cold_start"]
        if order:
            data["order"] = order
        if cold:
            data["max_cold_start"] = cold
        return data

    order: dict[str, RouteOrder] = {}
    #: class → seconds a request of that class may wait for a cold variant to load; a
    #: candidate expected to take longer is skipped while a warm one is left
    #: (`proxy.warmth`). No entry: wait for the best candidate, however long.
    max_cold_start: dict[str, Annotated[float, Field(ge=0)]] = {}

    completion: list[RouteCandidate] = []
    instruction: list[RouteCandidate] = []
    complex: list[RouteCandidate] = []
    multi_language: list[RouteCandidate] = Field([], alias="multi-language")
    embeddings: list[RouteCandidate] = []
    default: str

    _coerce = field_validator(
        "completion", "instruction", "complex", "multi_language", "embeddings", mode="before"
    )(_candidates)

    def for_class(self, cls: str) -> list[RouteCandidate]:
        match cls:
            case "completion":
                return self.completion
            case "instruction":
                return self.instruction
            case "complex":
                return self.complex
            case "multi-language":
                return self.multi_language
            case "embeddings":
                return self.embeddings
            case _:
                return []


class Breaker(_Strict):
    """Circuit breaker: open after `failures` consecutive failures, probe after `cooldown`."""

    failures: int = Field(3, ge=1)
    cooldown: float = Field(10.0, gt=0)
    #: distinct requests answered with a request-specific 5xx (500, 501, …), with no
    #: success between, that open the breaker while the health probe still passes
    request_errors: int = Field(10, ge=1)


class Auth(_Strict):
    """Bearer API keys clients must send. Keys come from env or a file, never from here."""

    api_keys_env: str | None = None
    api_keys_file: str | None = None
    protect_admin: bool = True
    protect_metrics: bool = False
    #: a reload may go from some keys to none (off: such a reload is refused)
    allow_disable_on_reload: bool = False


class StatusPage(_Strict):
    """`server.status_page`: the page at `/` and its JSON (`GET /status.json`)."""

    #: serve the page, its assets and `/status.json` (off: they answer 404)
    enabled: bool = True
    #: finished requests kept in memory for the table and the charts (nothing on disk)
    history: int = Field(2000, ge=10, le=1_000_000)


class ServerConfig(_Strict):
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    #: seconds to receive a request's line and headers (from connect, or from the first
    #: byte of the next request on a kept-alive connection); then 408 and close
    header_timeout: float = Field(10.0, gt=0)
    #: seconds to receive a whole request body once its headers are in; then 408
    body_timeout: float = Field(60.0, gt=0)
    #: seconds an idle kept-alive connection stays open between requests
    idle_timeout: float = Field(5.0, gt=0)
    #: open client connections at most (idle ones count); more are answered 503 and closed
    max_connections: int = Field(512, ge=1)
    #: after an early answer (413, 431, 401...), seconds to read and discard the rest of
    #: the request before closing, so a client still sending reads the status, not a reset
    linger_timeout: float = Field(5.0, ge=0)
    keepalive_after: float = Field(5.0, gt=0)
    keepalive_interval: float = Field(5.0, gt=0)
    health_interval: float = Field(10.0, gt=0)
    resource_interval: float = Field(5.0, gt=0)
    drain_timeout: float = Field(30.0, ge=0)
    watch_config: bool = True
    log_prompts: bool = False
    #: tell clients the backend's URL and the exception behind an upstream error
    expose_upstream_errors: bool = False
    state_dir: str = ".variant-proxy"
    breaker: Breaker = Breaker()
    auth: Auth = Auth()
    status_page: StatusPage = StatusPage()
    #: extra names `Host` may carry besides loopback and the bound address; "*": any (unsafe)
    allowed_hosts: list[str] = Field(default_factory=list)
    #: browser origins (`http://host:port`) allowed cross-origin, with CORS headers
    cors_origins: list[str] = Field(default_factory=list)
    #: the routed variant in answers (`proxy.rewrite`): `model` rewritten to its public
    #: name and an `x_route` object added; auto: when the proxy chose (`auto`, a class)
    show_variant: Literal["auto", "always", "off"] = "auto"
    #: known-quirk repairs to skip (`proxy.quirks`), by repair or quirk name, or "all"
    repairs_off: list[str] = Field(default_factory=list)
    #: routing decisions kept for `GET /route/explain/{replay_id}`; 0: no replay ids
    replay_size: int = Field(1024, ge=0)

    @field_validator("repairs_off")
    @classmethod
    def _repairs(cls, value: list[str]) -> list[str]:
        known = {"all"} | {q.repair for q in QUIRKS} | {q.name for q in QUIRKS}
        wrong = [name for name in value if name not in known]
        if wrong:
            raise ValueError(
                f"unknown repair {wrong[0]!r}; expected one of: {', '.join(sorted(known))}"
            )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if host != "*" and (not host or any(c in host for c in "/@ ") or "*" in host):
                raise ValueError(f"{host!r} is not a host name or address (or '*')")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if normalize_origin(origin) is None:
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], "
                    "e.g. http://localhost:3000"
                )
        return value


class BenchmarkConfig(_Strict):
    """`benchmark:` in the routing config. Without `schedule` nothing runs by itself.

    Suites are the shipped ones, one per request class and named after it
    (`proxy/bench/suites/<class>.json`), or suite files.
    """

    #: seconds between runs; None: only `variant-proxy bench` runs benchmarks
    schedule: float | None = Field(None, gt=0)
    #: shipped suite names or suite file paths
    suites: list[str] = Field(default_factory=lambda: list(CLASSES))
    #: None: every variant
    variants: list[str] | None = None
    #: only start when no request was seen for this long
    idle_seconds: float = Field(300.0, ge=0)
    #: where results go; None: <server.state_dir>/bench
    state_dir: str | None = None
    repeat: int = Field(1, ge=1, le=100)
    concurrency: int = Field(1, ge=1, le=64)
    limit: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    #: abandon a run when a user request arrives
    pause_on_traffic: bool = True
    #: runs kept in the state dir
    keep: int = Field(50, ge=1)

    @field_validator("suites")
    @classmethod
    def _suites(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in CLASSES and not name.endswith((".json", ".yaml", ".yml")):
                known = ", ".join(CLASSES)
                raise ValueError(f"unknown suite {name!r}: use one of {known} or a suite file")
        return value


class RouterConfig(_Strict):
    """The whole routing config file."""

    server: ServerConfig = ServerConfig()
    backends: dict[str, Backend]
    variants: dict[str, Variant]
    routes: Routes
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    pinning: PinningConfig = PinningConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    #: managed backends that share a memory or process budget (llama-swap's groups)
    groups: dict[str, Group] = {}

    def backend_url(self, name: str) -> str:
        backend = self.backends[name]
        if backend.url is not None:
            return backend.url
        assert backend.port is not None, "managed backends get a port at start"
        return f"http://127.0.0.1:{backend.port}"

    def names(self) -> Iterator[str]:
        """Every model name a client may send."""
        yield "auto"
        yield from (c for c in CLASSES)
        for name, variant in self.variants.items():
            yield name
            yield from variant.aliases


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, path: str, issues: list[ConfigIssue]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is None or (found == "" and default is not None):
                if default is None:
                    issues.append(ConfigIssue(path, f"environment variable {name} is not set"))
                    return ""
                return default
            return found

        return _ENV.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, f"{path}.{k}" if path else str(k), issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}.{i}", issues) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _check_references(cfg: RouterConfig) -> list[ConfigIssue]:
    """What one section can't check alone: names that must exist, secrets that must be set."""
    return [
        *_check_backends(cfg),
        *_check_variants(cfg),
        *_check_routes(cfg),
        *check_groups(
            cfg.groups,
            managed={n for n, b in cfg.backends.items() if b.managed},
            known=set(cfg.backends),
        ),
    ]


def _check_backends(cfg: RouterConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if not cfg.backends:
        issues.append(ConfigIssue("backends", "at least one backend is required"))
    if not cfg.variants:
        issues.append(ConfigIssue("variants", "at least one variant is required"))
    auth = cfg.server.auth
    if auth.api_keys_env is not None and not os.environ.get(auth.api_keys_env):
        issues.append(
            ConfigIssue(
                "server.auth.api_keys_env",
                f"environment variable {auth.api_keys_env} is not set",
            )
        )
    if auth.api_keys_file is not None and not Path(auth.api_keys_file).is_file():
        issues.append(
            ConfigIssue("server.auth.api_keys_file", f"no such file: {auth.api_keys_file}")
        )
    for name, backend in cfg.backends.items():
        if backend.url is None and backend.command is None:
            issues.append(ConfigIssue(f"backends.{name}.url", "required (or give a command)"))
        if backend.api_key_env is not None and not os.environ.get(backend.api_key_env):
            issues.append(
                ConfigIssue(
                    f"backends.{name}.api_key_env",
                    f"environment variable {backend.api_key_env} is not set",
                )
            )
        if backend.command is not None and "{model}" in " ".join(backend.command):
            if backend.model_file is None:
                issues.append(
                    ConfigIssue(f"backends.{name}.model_file", "required: command uses {model}")
                )
    return issues


def _check_variants(cfg: RouterConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    reserved = {"auto", *CLASSES}
    owner: dict[str, str] = {}
    for name, variant in cfg.variants.items():
        path = f"variants.{name}"
        known = ", ".join(sorted(cfg.backends)) or "none"
        if variant.backend not in cfg.backends:
            issues.append(
                ConfigIssue(
                    f"{path}.backend", f"unknown backend {variant.backend!r} (known: {known})"
                )
            )
        for i, replica in enumerate(variant.replicas):
            if replica not in cfg.backends:
                issues.append(
                    ConfigIssue(
                        f"{path}.replicas.{i}", f"unknown backend {replica!r} (known: {known})"
                    )
                )
        if variant.num_ctx is not None and any(
            cfg.backends[b].kind != "ollama" for b in variant.backends if b in cfg.backends
        ):
            issues.append(
                ConfigIssue(f"{path}.num_ctx", "only for ollama backends (others: context_window)")
            )
        for key, label in [(name, path), *((a, f"{path}.aliases") for a in variant.aliases)]:
            if not _NAME.match(key):
                issues.append(ConfigIssue(label, f"{key!r} is not a valid model name"))
            if key in reserved:
                issues.append(ConfigIssue(label, f"{key!r} is reserved (auto and class names)"))
            elif key in owner and owner[key] != name:
                issues.append(ConfigIssue(label, f"{key!r} is already used by {owner[key]}"))
            owner.setdefault(key, name)
    return issues


def _check_routes(cfg: RouterConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    known_variants = ", ".join(sorted(cfg.variants)) or "none"
    for cls in (*CLASSES, "embeddings"):
        key = "multi-language" if cls == "multi-language" else cls
        for i, candidate in enumerate(cfg.routes.for_class(cls)):
            if candidate.variant not in cfg.variants:
                issues.append(
                    ConfigIssue(
                        f"routes.{key}.{i}.variant",
                        f"unknown variant {candidate.variant!r} (known: {known_variants})",
                    )
                )
        weights = [c.weight for c in cfg.routes.for_class(cls)]
        if any(w is not None for w in weights) and any(w is None for w in weights):
            issues.append(
                ConfigIssue(f"routes.{key}", "give every candidate a weight, or none of them")
            )
    for cls in cfg.routes.max_cold_start:
        if cls not in CLASSES:
            issues.append(
                ConfigIssue(
                    f"routes.max_cold_start.{cls}",
                    f"unknown class {cls!r} (use one of {', '.join(CLASSES)})",
                )
            )
    if cfg.routes.default not in cfg.variants:
        issues.append(
            ConfigIssue(
                "routes.default",
                f"unknown variant {cfg.routes.default!r} (known: {known_variants})",
            )
        )
    return issues


def parse_config(data: Any, source: str = "<config>") -> RouterConfig:
    """Validate already-parsed YAML data; raise `ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, [ConfigIssue("", "the file must be a YAML mapping")])
    issues: list[ConfigIssue] = []
    data = _expand(data, "", issues)
    if issues:
        raise ConfigError(source, issues)
    try:
        cfg = RouterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            source,
            [
                ConfigIssue(
                    _loc(err["loc"]),
                    "unknown key" if err["type"] == "extra_forbidden" else err["msg"],
                )
                for err in exc.errors()
            ],
        ) from exc
    issues = _check_references(cfg)
    if issues:
        raise ConfigError(source, issues)
    return cfg


def load_config(path: str | os.PathLike[str]) -> RouterConfig:
    """Read, expand, validate and cross-check a config file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read file: {exc.strerror}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [ConfigIssue("", f"not valid YAML: {where}{exc}")]) from exc
    return parse_config(data, source)
