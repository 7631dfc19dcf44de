"""Pinned model versions: expected identities, a lockfile, drift detection and its policy.

A tag can change under a variant without anyone editing the config (``ollama pull``
re-pulls ``codellama:7b-instruct``, a GGUF is replaced by another quantization, LM Studio
loads another variant). Two sources say what a variant *should* serve:

* ``variants.<name>.pin`` in the config: fields written by hand (``quantization: Q4_K_M``);
* the lockfile (``config/models.lock``), written by ``variant-proxy lock`` from what every
  server reported, and kept in git next to the config.

``expected_for`` merges them (the config wins). :mod:`proxy.backends.identity` reads what
the server really serves, ``compare`` lists the differences field by field, and a
:class:`PinState` says ``ok``, ``drifted``, ``unverifiable`` (a pinned field the server does
not report), ``unreachable`` or ``unpinned``. :class:`PinChecker` keeps the latest state per
variant and turns it into routing eligibility under a policy::

    enforce   a variant serves only when ok or unpinned (drift -> skipped / 409)
    warn      always serves; drift is logged and counted
    off       no checks

``compare``, ``expected_for``, the lockfile format and ``render_verify`` are pure; the
lockfile helpers do file I/O; ``lock``/``verify``/``PinChecker`` talk to the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, TextIO

import httpx
import yaml

from .backends import adapter_for
from .backends.identity import (
    DEFAULT_HASH_CACHE,
    FileHashCache,
    Identity,
    IdentityUnavailable,
    fetch_identity,
    now_iso,
)
from .config import Pin, PinningConfig, Policy, RouterConfig, load_config
from .errors import ConfigError, VersionMismatch
from .settings import Settings
from .supervisor import BackendStartError, ManagedProcess, find_free_port, render_command

__all__ = [
    "INFORMATIONAL_FIELDS",
    "FieldDrift",
    "LockEntry",
    "Lockfile",
    "LockfileError",
    "PinChecker",
    "PinState",
    "PinningConfig",
    "Policy",
    "Status",
    "Target",
    "canonical_quantization",
    "compare",
    "diff_lockfiles",
    "dump_lockfile",
    "expectations",
    "expected_for",
    "lock",
    "lockfile_path",
    "read_lockfile",
    "register_cli",
    "render_verify",
    "resolve_target",
    "run_cli",
    "verify",
    "version_mismatch",
    "write_lockfile",
]

log = logging.getLogger(__name__)

Status = Literal["ok", "drifted", "unverifiable", "unreachable", "unpinned"]
FieldValue = str | int

LOCKFILE_VERSION = 1
DEFAULT_LOCKFILE_NAME = "models.lock"

#: Recorded in the lockfile but never compared: they change without the model changing
#: (a llama-server upgrade, LM Studio loading/unloading, vLLM's --max-model-len).
INFORMATIONAL_FIELDS = frozenset({"build_info", "state", "owned_by", "max_model_len"})
#: Where the weights are, not what they are: ignored from the lockfile when it has a sha256,
#: so moving a file (or llama-server's id, which is the -m path) is not drift.
_LOCATION_FIELDS = frozenset({"model_path", "id"})
_HASH_FIELDS = frozenset({"digest", "sha256"})


def lockfile_path(config_path: str | os.PathLike[str], pinning: PinningConfig | None) -> Path:
    """Where the lockfile of the config at ``config_path`` lives."""
    if pinning is not None and pinning.lockfile is not None:
        return Path(pinning.lockfile)
    return Path(config_path).parent / DEFAULT_LOCKFILE_NAME


def _pinning_of(cfg: RouterConfig) -> PinningConfig:
    return cfg.pinning


# -- comparing ---------------------------------------------------------------------------------

_SIZE_SUFFIX = {"small": "S", "medium": "M", "large": "L", "extra large": "XL"}


def canonical_quantization(value: str) -> str:
    """One spelling per quantization, so pins written either way compare equal.

    >>> canonical_quantization("Q4_K - Medium"), canonical_quantization("q4_k_m")
    ('Q4_K_M', 'Q4_K_M')
    >>> canonical_quantization("IQ2_XXS - 2.0625 bpw"), canonical_quantization("all F32")
    ('IQ2_XXS', 'F32')

    llama.cpp's ``model_ftype`` says ``Q4_K - Medium``; Ollama and LM Studio say ``Q4_K_M``.
    ``Q2_K - Medium`` is plain ``Q2_K`` (there is no ``Q2_K_M``).
    """
    text = value.strip()
    if text.lower().startswith("all "):
        text = text[4:]
    if " - " in text:
        base, _, rest = text.partition(" - ")
        suffix = _SIZE_SUFFIX.get(rest.strip().lower())
        if suffix is None or base.upper() == "Q2_K" and suffix == "M":
            text = base
        else:
            text = f"{base}_{suffix}"
    return text.upper().replace(" ", "")


def _normalise(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if name in _HASH_FIELDS and isinstance(value, str):
        text = value.strip().lower()
        for prefix in ("sha256:", "sha256-"):
            text = text.removeprefix(prefix)
        return text
    if name == "quantization" and isinstance(value, str):
        return canonical_quantization(value)
    if name == "parameter_size" and isinstance(value, str):
        return value.strip().upper()
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _matches(name: str, expected: Any, observed: Any) -> bool:
    want, got = _normalise(name, expected), _normalise(name, observed)
    if name in _HASH_FIELDS and isinstance(want, str) and isinstance(got, str):
        # `ollama list` shows the first 12 hex digits of the digest; accept such a prefix.
        return got == want or (len(want) >= 12 and got.startswith(want))
    return bool(want == got)


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One pinned field that differs. ``observed=None``: the server does not report it."""

    field: str
    expected: FieldValue
    observed: FieldValue | None

    @property
    def unverifiable(self) -> bool:
        return self.observed is None

    def describe(self) -> str:
        """``quantization Q4_K_M != Q8_0`` or ``sha256 not reported``."""
        if self.observed is None:
            return f"{self.field} not reported"
        return f"{self.field} {_short(self.expected)} != {_short(self.observed)}"

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "expected": self.expected, "observed": self.observed}


def _short(value: FieldValue) -> str:
    text = str(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def compare(expected: Mapping[str, Any], observed: Identity) -> list[FieldDrift]:
    """Every expected field that the observed identity does not match, sorted by name."""
    drift: list[FieldDrift] = []
    for name in sorted(expected):
        want = expected[name]
        if want is None:
            continue
        got = observed.fields.get(name)
        if got is None:
            drift.append(FieldDrift(name, want, None))
        elif not _matches(name, want, got):
            drift.append(FieldDrift(name, want, got))
    return drift


@dataclass(frozen=True, slots=True)
class PinState:
    """The latest verdict on one variant."""

    variant: str
    status: Status
    expected: dict[str, FieldValue]
    observed: Identity | None
    drift: list[FieldDrift]
    checked_at: str
    detail: str | None = None  # why it is unreachable (or why an unpinned one could not be read)

    @classmethod
    def judge(
        cls,
        variant: str,
        expected: Mapping[str, FieldValue],
        observed: Identity | IdentityUnavailable,
    ) -> PinState:
        """The state for an identity (or the error reading it) against expectations."""
        now = now_iso()
        want = dict(sorted(expected.items()))
        if isinstance(observed, IdentityUnavailable):
            status: Status = "unpinned" if not want else "unreachable"
            return cls(variant, status, want, None, [], now, observed.reason)
        if not want:
            return cls(variant, "unpinned", want, observed, [], now)
        drift = compare(want, observed)
        if not drift:
            status = "ok"
        elif any(not d.unverifiable for d in drift):
            status = "drifted"
        else:
            status = "unverifiable"
        return cls(variant, status, want, observed, drift, now)

    @property
    def serving_ok(self) -> bool:
        return self.status in ("ok", "unpinned")

    def reason(self) -> str | None:
        """None when fine, else the one-line reason routing shows (``x-route-reason``,
        ``skipped``): ``pin drifted: quantization Q4_K_M != Q8_0``."""
        match self.status:
            case "ok" | "unpinned":
                return None
            case "drifted":
                real = [d for d in self.drift if not d.unverifiable]
                return "pin drifted: " + "; ".join(d.describe() for d in real)
            case "unverifiable":
                return "pin unverifiable: " + "; ".join(d.describe() for d in self.drift)
            case _:
                return f"pin unverified: {self.detail or 'backend unreachable'}"

    def info_labels(self) -> dict[str, str]:
        """Labels for an info metric (``variant_proxy_pin_info``): the status and the
        observed identity's key fields (hashes shortened to 12 hex digits), "" if unknown."""
        fields = self.observed.fields if self.observed is not None else {}
        return {
            "status": self.status,
            **{
                key: _short(fields[key]) if key in fields else ""
                for key in ("sha256", "digest", "quantization", "id")
            },
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON for ``GET /pins`` and ``verify --json``."""
        return {
            "variant": self.variant,
            "status": self.status,
            "reason": self.reason(),
            "expected": dict(self.expected),
            "observed": None if self.observed is None else self.observed.as_dict(),
            "drift": [d.as_dict() for d in self.drift],
            "checked_at": self.checked_at,
            "detail": self.detail,
        }


def version_mismatch(state: PinState) -> VersionMismatch:
    """The 409 ``model_version_mismatch`` for a request that names a drifted variant
    directly; the error body carries ``variant``, ``status``, ``expected``, ``observed``
    (only the differing fields) and ``drift``."""
    name = state.variant
    return VersionMismatch(
        f"Variant {name!r} is pinned, but its server serves a different model "
        f"({state.reason()}). Restore the pinned model, or accept the new one with "
        f"`variant-proxy lock --variant {name}`.",
        param="model",
        extra={
            "variant": name,
            "status": state.status,
            "expected": {d.field: d.expected for d in state.drift},
            "observed": {d.field: d.observed for d in state.drift},
            "drift": [d.as_dict() for d in state.drift],
        },
    )


# -- the lockfile ------------------------------------------------------------------------------


class LockfileError(Exception):
    """A lockfile that cannot be read; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One variant's identity as it was locked."""

    backend: str
    kind: str
    model: str
    resolved_at: str
    source: str
    fields: dict[str, FieldValue]

    @classmethod
    def from_identity(cls, backend: str, identity: Identity) -> LockEntry:
        return cls(
            backend=backend,
            kind=identity.kind,
            model=identity.model,
            resolved_at=identity.resolved_at,
            source=identity.source,
            fields=dict(sorted(identity.fields.items())),
        )

    def same_identity(self, other: LockEntry) -> bool:
        """Equal apart from when and where it was read."""
        return (self.backend, self.kind, self.model, self.fields) == (
            other.backend,
            other.kind,
            other.model,
            other.fields,
        )


@dataclass(frozen=True, slots=True)
class Lockfile:
    entries: dict[str, LockEntry] = field(default_factory=dict)
    version: int = LOCKFILE_VERSION


_HEADER = """\
# variant-proxy lockfile: the identity each variant's server reported when it was locked.
# Written by `variant-proxy lock`, checked by `variant-proxy verify` and by `serve`
# (policy: pinning.policy). Keep it in git next to the config; do not edit by hand.
"""


def dump_lockfile(lockfile: Lockfile) -> str:
    """The lockfile as YAML: variants sorted by name, fields sorted, one value per line."""
    variants: dict[str, Any] = {}
    for name in sorted(lockfile.entries):
        entry = lockfile.entries[name]
        variants[name] = {
            "backend": entry.backend,
            "kind": entry.kind,
            "model": entry.model,
            "resolved_at": entry.resolved_at,
            "source": entry.source,
            "fields": {k: entry.fields[k] for k in sorted(entry.fields)},
        }
    body = yaml.safe_dump(
        {"version": lockfile.version, "variants": variants},
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )
    return _HEADER + body


def parse_lockfile(text: str, source: str = "<lockfile>") -> Lockfile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LockfileError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return Lockfile()
    if not isinstance(data, dict):
        raise LockfileError(f"{source}: must be a mapping with 'version' and 'variants'")
    version = data.get("version", LOCKFILE_VERSION)
    if version != LOCKFILE_VERSION:
        raise LockfileError(f"{source}: version: unsupported {version!r} (expected 1)")
    unknown = set(data) - {"version", "variants"}
    if unknown:
        raise LockfileError(f"{source}: {sorted(unknown)[0]}: unknown key")
    raw = data.get("variants") or {}
    if not isinstance(raw, dict):
        raise LockfileError(f"{source}: variants: must be a mapping")
    entries: dict[str, LockEntry] = {}
    for name, item in raw.items():
        where = f"{source}: variants.{name}"
        if not isinstance(item, dict):
            raise LockfileError(f"{where}: must be a mapping")
        strings: dict[str, str] = {}
        for key in ("backend", "kind", "model", "resolved_at", "source"):
            value = item.get(key)
            if not isinstance(value, str):
                raise LockfileError(f"{where}.{key}: required, a string")
            strings[key] = value
        fields = item.get("fields") or {}
        if not isinstance(fields, dict):
            raise LockfileError(f"{where}.fields: must be a mapping")
        clean: dict[str, FieldValue] = {}
        for key, value in fields.items():
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise LockfileError(f"{where}.fields.{key}: must be a string or an integer")
            clean[str(key)] = value
        entries[str(name)] = LockEntry(fields=dict(sorted(clean.items())), **strings)
    return Lockfile(entries)


def read_lockfile(path: str | os.PathLike[str]) -> Lockfile:
    """Read a lockfile; a missing file is an empty lockfile. Raises :class:`LockfileError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lockfile()
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_lockfile(text, str(path))


def write_lockfile(path: str | os.PathLike[str], lockfile: Lockfile) -> None:
    """Write atomically: a temp file in the same directory, fsync, then rename over."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(dump_lockfile(lockfile))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def diff_lockfiles(old: Lockfile, new: Lockfile) -> list[str]:
    """What changed, one line each: ``+ variant``, ``- variant``,
    ``~ variant.field: old -> new`` (``(none)`` for a field that appeared or vanished)."""
    lines: list[str] = []
    for name in sorted(set(old.entries) | set(new.entries)):
        before, after = old.entries.get(name), new.entries.get(name)
        if before is None:
            lines.append(f"+ {name}")
            continue
        if after is None:
            lines.append(f"- {name}")
            continue
        for key in ("backend", "kind", "model"):
            a, b = getattr(before, key), getattr(after, key)
            if a != b:
                lines.append(f"~ {name}.{key}: {a} -> {b}")
        for key in sorted(set(before.fields) | set(after.fields)):
            a2, b2 = before.fields.get(key), after.fields.get(key)
            if a2 != b2:
                lines.append(
                    f"~ {name}.{key}: {'(none)' if a2 is None else a2} -> "
                    f"{'(none)' if b2 is None else b2}"
                )
    return lines


# -- expectations ------------------------------------------------------------------------------


def expected_for(
    variant_name: str, variant_pin: Pin | None, lock_entry: LockEntry | None
) -> dict[str, FieldValue]:
    """What ``variant_name`` must match: the lockfile's comparable fields, overridden by the
    config's ``pin`` (a hand-written pin always wins). Empty: the variant is unpinned."""
    expected: dict[str, FieldValue] = {}
    if lock_entry is not None:
        locked = lock_entry.fields
        for key, value in locked.items():
            if key in INFORMATIONAL_FIELDS:
                continue
            if key in _LOCATION_FIELDS and "sha256" in locked:
                continue
            expected[key] = value
    if variant_pin is not None:
        for key, value in variant_pin.model_dump(exclude_none=True).items():
            expected[key] = value
    return dict(sorted(expected.items()))


def expectations(cfg: RouterConfig, lockfile: Lockfile) -> dict[str, dict[str, FieldValue]]:
    """``expected_for`` every variant of the config."""
    return {
        name: expected_for(name, variant.pin, lockfile.entries.get(name))
        for name, variant in cfg.variants.items()
    }


class Target(NamedTuple):
    """Where to ask about one variant: ``(kind, base_url, headers, model)``, plus a weights
    path for servers that do not report one (LM Studio, from ``pin.model_path``)."""

    kind: str
    base_url: str
    headers: Mapping[str, str]
    model: str
    local_path: str | None = None


def _headers(cfg: RouterConfig, backend: str) -> dict[str, str]:
    spec = cfg.backends[backend]
    if spec.api_key_env:
        return {"authorization": f"Bearer {os.environ.get(spec.api_key_env, '')}"}
    return {}


def resolve_target(
    cfg: RouterConfig, variant: str, urls: Mapping[str, str] | None = None
) -> Target | None:
    """The variant's server, from ``backends.<b>.url``, an override in ``urls`` (backend →
    URL, for managed backends), or a managed backend's fixed ``port``; None if unknown."""
    spec = cfg.variants[variant]
    backend = cfg.backends[spec.backend]
    base = (urls or {}).get(spec.backend) or backend.url
    if base is None and backend.port is not None:
        base = f"http://127.0.0.1:{backend.port}"
    if base is None:
        return None
    local = spec.pin.model_path if spec.pin is not None and backend.kind == "lmstudio" else None
    return Target(backend.kind, base.rstrip("/"), _headers(cfg, spec.backend), spec.model, local)


async def _observe(
    client: httpx.AsyncClient, target: Target | None, hashes: FileHashCache | None, why: str
) -> Identity | IdentityUnavailable:
    if target is None:
        return IdentityUnavailable(why)
    try:
        return await fetch_identity(
            target.kind,
            client,
            target.base_url,
            target.headers,
            target.model,
            local_path=target.local_path,
            hashes=hashes,
        )
    except IdentityUnavailable as exc:
        return exc


def _not_running(cfg: RouterConfig, variant: str) -> str:
    backend = cfg.variants[variant].backend
    return (
        f"backend {backend!r} is managed and not running here; pass --url {backend}=URL, "
        "--start, or give it a fixed port"
    )


# -- lock and verify (what the CLI calls) ------------------------------------------------------


async def lock(
    cfg: RouterConfig,
    client: httpx.AsyncClient,
    variants: list[str] | None = None,
    *,
    previous: Lockfile | None = None,
    urls: Mapping[str, str] | None = None,
    hashes: FileHashCache | None = DEFAULT_HASH_CACHE,
) -> tuple[Lockfile, list[str]]:
    """Resolve live identities into a new lockfile; return it with the change lines.

    ``variants=None`` locks every variant and drops entries of variants no longer in the
    config; a list re-locks only those. An entry whose identity did not change keeps its
    old ``resolved_at``/``source`` so that re-locking is a no-op in git. A variant that
    cannot be read keeps its previous entry and adds a ``! variant: not locked: why`` line.
    """
    previous = previous or Lockfile()
    unknown = [v for v in variants or [] if v not in cfg.variants]
    if unknown:
        known = ", ".join(sorted(cfg.variants))
        raise ValueError(f"unknown variant {unknown[0]!r} (known: {known})")
    names = sorted(cfg.variants) if variants is None else sorted(set(variants))
    if variants is None:
        entries = {k: v for k, v in previous.entries.items() if k in cfg.variants}
    else:
        entries = dict(previous.entries)
    targets = {n: resolve_target(cfg, n, urls) for n in names}
    observed = await asyncio.gather(
        *(_observe(client, targets[n], hashes, _not_running(cfg, n)) for n in names)
    )
    problems: list[str] = []
    for name, seen in zip(names, observed, strict=True):
        if isinstance(seen, IdentityUnavailable):
            kept = "; kept the previous entry" if name in entries else ""
            problems.append(f"! {name}: not locked: {seen.reason}{kept}")
            continue
        entry = LockEntry.from_identity(cfg.variants[name].backend, seen)
        old = previous.entries.get(name)
        entries[name] = old if old is not None and old.same_identity(entry) else entry
    new = Lockfile(dict(sorted(entries.items())))
    return new, diff_lockfiles(previous, new) + problems


async def verify(
    cfg: RouterConfig,
    client: httpx.AsyncClient,
    lockfile: Lockfile,
    *,
    urls: Mapping[str, str] | None = None,
    hashes: FileHashCache | None = DEFAULT_HASH_CACHE,
) -> dict[str, PinState]:
    """The state of every variant of the config (sorted by name). Unpinned variants (no
    config pin, no lockfile entry) are not queried."""
    expected = expectations(cfg, lockfile)
    names = sorted(cfg.variants)

    async def one(name: str) -> PinState:
        if not expected[name]:
            return PinState.judge(name, {}, IdentityUnavailable("not pinned"))
        seen = await _observe(
            client, resolve_target(cfg, name, urls), hashes, _not_running(cfg, name)
        )
        return PinState.judge(name, expected[name], seen)

    states = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, states, strict=True))


def render_verify(states: Mapping[str, PinState], as_json: bool) -> str:
    """``verify``'s report: one line per variant, drifted fields listed under it."""
    if as_json:
        return json.dumps(
            {
                "ok": all(s.serving_ok for s in states.values()),
                "variants": {name: states[name].as_dict() for name in sorted(states)},
            },
            indent=2,
        )
    width = max((len(n) for n in states), default=0)
    lines: list[str] = []
    for name in sorted(states):
        state = states[name]
        head = f"{name:<{width}}  {state.status}"
        match state.status:
            case "ok":
                lines.append(f"{head}  ({len(state.expected)} fields match)")
            case "unpinned":
                lines.append(head)
            case "unreachable":
                lines.append(f"{head}  {state.detail}")
            case _:
                lines.append(head)
                for drift in state.drift:
                    observed = "(not reported)" if drift.observed is None else drift.observed
                    lines.append(f"    {drift.field}: expected {drift.expected}")
                    lines.append(f"    {' ' * len(drift.field)}  observed {observed}")
    return "\n".join(lines)


# -- the checker the proxy runs ----------------------------------------------------------------


class PinChecker:
    """The latest :class:`PinState` per variant, refreshed in the background, and the policy
    that turns it into routing eligibility.

    ``targets(variant)`` says where to ask (None: not reachable now, e.g. a stopped managed
    backend). ``verified_on_start(variant)`` names variants whose backend is managed and
    re-verified in its ``on_ready`` hook before it takes traffic: under ``enforce`` they stay
    eligible while not yet checked or unreachable, so a lazy backend can still be started by
    a request (the hook then refuses a drifted model). ``on_state`` is called after every
    check (metrics).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        targets: Callable[[str], Target | None],
        *,
        expected: Mapping[str, Mapping[str, FieldValue]] | None = None,
        policy: Policy = "enforce",
        hashes: FileHashCache | None = DEFAULT_HASH_CACHE,
        verified_on_start: Callable[[str], bool] | None = None,
        on_state: Callable[[PinState], None] | None = None,
    ) -> None:
        self.client = client
        self.targets = targets
        self.policy: Policy = policy
        self.hashes = hashes
        self.verified_on_start = verified_on_start
        self.on_state = on_state
        self.expected: dict[str, dict[str, FieldValue]] = {}
        self.states: dict[str, PinState] = {}
        #: Requests let through under `warn` although the variant was not ok.
        self.warned: collections.Counter[str] = collections.Counter()
        #: Eligibility refusals under `enforce`.
        self.blocked: collections.Counter[str] = collections.Counter()
        self.set_expected(expected or {})

    def set_expected(
        self, expected: Mapping[str, Mapping[str, FieldValue]], policy: Policy | None = None
    ) -> None:
        """New expectations (after a config reload or a new lockfile). States of variants
        that are gone are dropped; the others are re-judged at the next check."""
        self.expected = {k: dict(v) for k, v in expected.items()}
        if policy is not None:
            self.policy = policy
        self.states = {k: v for k, v in self.states.items() if k in self.expected}

    def _record(self, state: PinState) -> PinState:
        old = self.states.get(state.variant)
        self.states[state.variant] = state
        if old is None or old.status != state.status:
            level = logging.INFO if state.serving_ok else logging.WARNING
            log.log(level, "pin %s: %s", state.variant, state.reason() or state.status)
        if self.on_state is not None:
            self.on_state(state)
        return state

    async def check_variant(self, name: str) -> PinState:
        """Read the variant's identity now and record its state."""
        seen = await _observe(self.client, self.targets(name), self.hashes, "backend not running")
        return self._record(PinState.judge(name, self.expected.get(name, {}), seen))

    async def check_all(self, names: Iterable[str] | None = None) -> dict[str, PinState]:
        """Check every variant (or ``names``); variants on the same server and model share
        one identity read."""
        wanted = sorted(self.expected if names is None else set(names))
        groups: dict[tuple[Any, ...], tuple[Target | None, list[str]]] = {}
        for name in wanted:
            target = self.targets(name)
            key: tuple[Any, ...] = (
                (name,)
                if target is None
                else (
                    target.kind,
                    target.base_url,
                    target.model,
                    target.local_path,
                    tuple(sorted(target.headers.items())),
                )
            )
            groups.setdefault(key, (target, []))[1].append(name)

        async def one(target: Target | None, members: list[str]) -> None:
            seen = await _observe(self.client, target, self.hashes, "backend not running")
            for name in members:
                self._record(PinState.judge(name, self.expected.get(name, {}), seen))

        await asyncio.gather(*(one(t, m) for t, m in groups.values()))
        return {n: self.states[n] for n in wanted if n in self.states}

    async def run(self, interval: float) -> None:
        """Re-check everything every ``interval`` seconds, forever (spawn it as a task)."""
        while True:
            try:
                await self.check_all()
            except Exception:  # never let one bad answer end the loop
                log.exception("pin check failed")
            await asyncio.sleep(interval)

    def eligible(self, name: str) -> str | None:
        """A :data:`proxy.routing.Eligibility`: None if ``name`` may serve, else why not."""
        if self.policy == "off" or not self.expected.get(name):
            return None
        state = self.states.get(name)
        deferred = self.verified_on_start is not None and self.verified_on_start(name)
        if state is None:
            reason: str | None = None if deferred else "pin not verified yet"
        elif state.status == "unreachable" and deferred:
            reason = None
        else:
            reason = state.reason()
        if reason is None:
            return None
        if self.policy == "warn":
            self.warned[name] += 1
            return None
        self.blocked[name] += 1
        return reason

    def mismatch(self, name: str) -> PinState | None:
        """The state to report as 409 ``model_version_mismatch`` when a client names this
        variant directly: set only under ``enforce`` for a drifted or unverifiable one."""
        state = self.states.get(name)
        if self.policy != "enforce" or state is None:
            return None
        return state if state.status in ("drifted", "unverifiable") else None

    def snapshot(self) -> dict[str, Any]:
        """The JSON for ``GET /pins``."""
        return {
            "policy": self.policy,
            "variants": {
                name: (
                    self.states[name].as_dict()
                    if name in self.states
                    else {"variant": name, "status": "pending", "expected": self.expected[name]}
                )
                for name in sorted(self.expected)
            },
        }


# -- CLI -----------------------------------------------------------------------------------------


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lock`` and ``verify`` to the ``variant-proxy`` sub-commands."""
    for name, help_text in (
        ("lock", "record the identity every server reports into the lockfile"),
        ("verify", "compare what the servers serve with the pins and the lockfile"),
    ):
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument(
            "--config",
            type=Path,
            default=None,
            help="routing config YAML (default: $VARIANT_PROXY_CONFIG or config/router.yaml)",
        )
        parser.add_argument(
            "--lockfile",
            type=Path,
            default=None,
            help="lockfile (default: pinning.lockfile, else models.lock beside the config)",
        )
        parser.add_argument(
            "--url",
            action="append",
            default=[],
            metavar="BACKEND=URL",
            help="where a managed backend runs now (repeatable)",
        )
        parser.add_argument(
            "--start",
            action="store_true",
            help="start managed backends without a URL for the duration of the command",
        )
        if name == "lock":
            parser.add_argument(
                "--variant",
                action="append",
                default=None,
                metavar="NAME",
                help="lock only this variant (repeatable); the others keep their entries",
            )
            parser.add_argument(
                "--dry-run", action="store_true", help="print the changes, write nothing"
            )
        else:
            parser.add_argument("--json", action="store_true", help="machine-readable output")


def _parse_urls(items: list[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for item in items:
        backend, sep, url = item.partition("=")
        if not sep or not backend or not url.startswith(("http://", "https://")):
            raise ValueError(f"--url {item!r}: expected BACKEND=http://host:port")
        urls[backend] = url.rstrip("/").removesuffix("/v1")
    return urls


@contextlib.asynccontextmanager
async def _started(
    cfg: RouterConfig, backends: Iterable[str], err: TextIO
) -> AsyncIterator[dict[str, str]]:
    """Start the named managed backends; yield backend → URL for those that came up."""
    procs: list[ManagedProcess] = []
    urls: dict[str, str] = {}
    try:
        for name in sorted(set(backends)):
            backend = cfg.backends[name]
            if backend.command is None or backend.url is not None:
                continue
            port = backend.port or find_free_port()
            url = f"http://127.0.0.1:{port}"
            log_path = backend.log_file or Path(cfg.server.state_dir) / "logs" / f"{name}.log"
            proc = ManagedProcess(
                render_command(backend.command, port, backend.model_file or ""),
                name=name,
                health_url=url + adapter_for(backend.kind).health_path,
                log_path=log_path,
                env=backend.env,
                start_timeout=backend.start_timeout,
                max_restarts=0,
            )
            procs.append(proc)
            print(f"starting {name} ...", file=err)
            try:
                await proc.start()
            except BackendStartError as exc:
                print(f"error: {exc}", file=err)
                continue
            urls[name] = url
        yield urls
    finally:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)


def run_cli(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> int:
    """Run ``lock`` or ``verify``. Exit codes: 0 fine; 1 drift, unreachable or a variant
    that could not be locked; 2 bad config, lockfile or arguments."""
    out = out or sys.stdout
    err = err or sys.stderr
    config_path = Path(args.config) if args.config is not None else Settings().config
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"error: invalid config {exc.source}", file=err)
        for issue in exc.issues:
            print(f"{issue}", file=err)
        return 2
    path = args.lockfile or lockfile_path(config_path, _pinning_of(cfg))
    try:
        urls = _parse_urls(list(args.url or []))
        previous = read_lockfile(path)
    except (ValueError, LockfileError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    hashes = FileHashCache() if _pinning_of(cfg).hash_files else None

    def make_client() -> httpx.AsyncClient:
        if client_factory is not None:
            return client_factory()
        return httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(30.0))

    async def with_servers(work: Callable[[dict[str, str]], Awaitable[int]]) -> int:
        if not args.start:
            return await work(urls)
        chosen = getattr(args, "variant", None) or list(cfg.variants)
        needed = [cfg.variants[v].backend for v in chosen if v in cfg.variants]
        needed = [b for b in needed if b not in urls]
        async with _started(cfg, needed, err) as started:
            return await work({**started, **urls})

    if args.command == "lock":
        variants: list[str] | None = args.variant

        async def do_lock(found: dict[str, str]) -> int:
            async with make_client() as client:
                new, lines = await lock(
                    cfg, client, variants, previous=previous, urls=found, hashes=hashes
                )
            changes = [line for line in lines if not line.startswith("!")]
            for line in lines:
                print(line, file=err if line.startswith("!") else out)
            if not changes:
                print(f"{path}: up to date", file=out)
            elif args.dry_run:
                print(f"{path}: not written (--dry-run)", file=out)
            else:
                write_lockfile(path, new)
                print(f"{path}: written ({len(changes)} changes)", file=out)
            return 1 if len(changes) != len(lines) else 0

        try:
            return asyncio.run(with_servers(do_lock))
        except ValueError as exc:
            print(f"error: {exc}", file=err)
            return 2

    async def do_verify(found: dict[str, str]) -> int:
        async with make_client() as client:
            states = await verify(cfg, client, previous, urls=found, hashes=hashes)
        print(render_verify(states, bool(args.json)), file=out)
        return 0 if all(s.serving_ok for s in states.values()) else 1

    return asyncio.run(with_servers(do_verify))
