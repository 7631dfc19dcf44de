"""The I/O side of pinning: ask the servers who they are, lock it, verify it, keep watching.

:func:`resolve_target` says where to ask about one variant (an :class:`IdentityTarget`:
the backend kind, its URL and headers, the model name, and a weights path for servers
that do not report one); :func:`_observe` reads the identity through
:mod:`proxy.backends.identity`, turning every failure into an ``IdentityUnavailable`` so
that one unreachable server never fails a whole run.

* :func:`lock` and :func:`verify` are what ``variant-proxy lock`` / ``verify`` run: read
  every variant concurrently, then build a new lockfile (:mod:`proxy.pinning.lockfile`) or
  judge each one (:mod:`proxy.pinning.drift`); :func:`render_verify` prints the report.
* :class:`PinChecker` is what ``serve`` runs: the latest :class:`PinState` per variant,
  refreshed in the background (variants on the same server and model share one read), and
  the policy that turns it into routing eligibility::

      enforce   a variant serves only when ok or unpinned (drift -> skipped / 409)
      warn      always serves; drift is logged and counted
      off       no checks

The checker never calls back into the proxy: it is given a ``targets`` function and an
``on_state`` callback, and answers ``eligible``/``mismatch`` questions.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import httpx

from ..backends.identity import (
    DEFAULT_HASH_CACHE,
    FileHashCache,
    Identity,
    IdentityUnavailable,
    fetch_identity,
)
from ..config import Policy, RouterConfig
from .drift import PinState, expectations
from .lockfile import FieldValue, LockEntry, Lockfile, diff_lockfiles

__all__ = [
    "IdentityTarget",
    "PinChecker",
    "lock",
    "render_verify",
    "resolve_target",
    "verify",
]

log = logging.getLogger("variant_proxy.pinning")


class IdentityTarget(NamedTuple):
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
) -> IdentityTarget | None:
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
    return IdentityTarget(
        backend.kind, base.rstrip("/"), _headers(cfg, spec.backend), spec.model, local
    )


async def read_identity(
    client: httpx.AsyncClient,
    target: IdentityTarget,
    hashes: FileHashCache | None = DEFAULT_HASH_CACHE,
) -> Identity | IdentityUnavailable:
    """What the server at `target` really serves, or why that can't be read."""
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


async def _observe(
    client: httpx.AsyncClient, target: IdentityTarget | None, hashes: FileHashCache | None, why: str
) -> Identity | IdentityUnavailable:
    if target is None:
        return IdentityUnavailable(why)
    return await read_identity(client, target, hashes)


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
        targets: Callable[[str], IdentityTarget | None],
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
        groups: dict[tuple[Any, ...], tuple[IdentityTarget | None, list[str]]] = {}
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

        async def one(target: IdentityTarget | None, members: list[str]) -> None:
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
