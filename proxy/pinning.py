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

import asyncio
import collections
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import httpx

from .backends.identity import (
    DEFAULT_HASH_CACHE,
    FileHashCache,
    Identity,
    IdentityUnavailable,
    fetch_identity,
    now_iso,
)
from .config import Pin, PinningConfig, Policy, RouterConfig
from .errors import VersionMismatch
from .lockfile import (
    FieldValue,
    LockEntry,
    Lockfile,
    LockfileError,
    diff_lockfiles,
    dump_lockfile,
    lockfile_path,
    read_lockfile,
    write_lockfile,
)

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
    "render_verify",
    "resolve_target",
    "verify",
    "version_mismatch",
    "write_lockfile",
]

log = logging.getLogger(__name__)

Status = Literal["ok", "drifted", "unverifiable", "unreachable", "unpinned"]


#: Recorded in the lockfile but never compared: they change without the model changing
#: (a llama-server upgrade, LM Studio loading/unloading, vLLM's --max-model-len).
INFORMATIONAL_FIELDS = frozenset({"build_info", "state", "owned_by", "max_model_len"})
#: Where the weights are, not what they are: ignored from the lockfile when it has a sha256,
#: so moving a file (or llama-server's id, which is the -m path) is not drift.
_LOCATION_FIELDS = frozenset({"model_path", "id"})
_HASH_FIELDS = frozenset({"digest", "sha256"})


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
