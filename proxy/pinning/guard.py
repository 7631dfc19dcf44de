"""Pins at serve time: what the running proxy does with a `PinChecker`.

The guard is the one place the service and the request path meet pinning:

* per request, `eligible` (routing skips a drifted variant under `enforce`),
  `check_direct` (409 when a client names a drifted variant) and `header`
  (the `x-route-pin` value);
* in the background, `run` re-checks every pinned variant every
  `pinning.interval` seconds, and `backend_up` re-checks the variants of a
  backend that (re)started, since what it serves now may not be what it
  served before;
* on reload, `reconfigure` reads the new expectations (config pins and the
  lockfile) and re-checks.

It reads the running config through `config()` so a reload is seen at once,
and reports each check to the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ..backends.identity import FileHashCache
from ..config import RouterConfig
from ..metrics import Metrics
from .checker import IdentityTarget, PinChecker, resolve_target
from .drift import PinState, expectations, version_mismatch
from .lockfile import Lockfile, LockfileError, lockfile_path, read_lockfile

__all__ = ["PinGuard"]

log = logging.getLogger("variant_proxy.pinning")


def _identity_label(fields: Mapping[str, Any]) -> str:
    """A short, stable rendering of identity fields for a metric label."""
    keys = ("sha256", "digest", "quantization", "id")
    parts = [f"{k}={str(fields[k])[:12]}" for k in keys if fields.get(k) not in (None, "")]
    return ",".join(parts) or "-"


class PinGuard:
    """Pin enforcement for a running proxy.

    `config()` is the running config, `source` its path (the lockfile sits beside
    it), `urls()` the backends' base URLs.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        metrics: Metrics,
        *,
        config: Callable[[], RouterConfig],
        source: Callable[[], str],
        urls: Callable[[], Mapping[str, str]],
    ) -> None:
        self.metrics = metrics
        self.config = config
        self.source = source
        cfg = config()

        def target(variant: str) -> IdentityTarget | None:
            return resolve_target(self.config(), variant, urls())

        def verified_on_start(variant: str) -> bool:
            current = self.config()
            return current.backends[current.variants[variant].backend].managed

        self.checker = PinChecker(
            client,
            target,
            expected=self._expectations(cfg, source()),
            policy=cfg.pinning.policy,
            hashes=FileHashCache() if cfg.pinning.hash_files else None,
            verified_on_start=verified_on_start,
            on_state=self._state_metrics,
        )

    @property
    def active(self) -> bool:
        return self.config().pinning.policy != "off"

    # -- per request ----------------------------------------------------------------------------

    def eligible(self, variant: str) -> str | None:
        """None if `variant` may serve, else why not (routing's eligibility)."""
        return self.checker.eligible(variant)

    def check_direct(self, variant: str) -> None:
        """Raise 409 `model_version_mismatch` for a drifted variant a client named."""
        state = self.checker.mismatch(variant)
        if state is not None:
            raise version_mismatch(state)

    def header(self, variant: str) -> bytes | None:
        """The `x-route-pin` value: the variant's pin status, if it has one."""
        state = self.state(variant)
        return state.status.encode() if state is not None else None

    def state(self, variant: str) -> PinState | None:
        """The variant's latest pin state, if it has been checked."""
        return self.checker.states.get(variant)

    def snapshot(self) -> dict[str, Any]:
        """The JSON for `GET /pins`."""
        return self.checker.snapshot()

    # -- checks ---------------------------------------------------------------------------------

    def pinned(self, backend: str | None = None) -> list[str]:
        """Variants with something to verify (a pin or a lockfile entry), optionally on one
        backend. Unpinned variants are never probed for identity."""
        variants = self.config().variants
        return [
            v
            for v, fields in self.checker.expected.items()
            if fields and v in variants and (backend is None or backend in variants[v].backends)
        ]

    async def check(self, backend: str | None = None) -> None:
        """Check the pinned variants (of one backend) now."""
        await self.checker.check_all(self.pinned(backend))

    async def run(self) -> None:
        """Forever: re-check every `pinning.interval` seconds. Spawn as a task."""
        while True:
            await asyncio.sleep(self.config().pinning.interval)
            if self.active:
                try:
                    await self.check()
                except Exception:  # never let one bad answer end the loop
                    log.exception("pin check failed")

    async def backend_up(self, backend: str) -> None:
        """A backend came (back) up: what it serves now may not be what it served before."""
        if not self.active:
            return
        with contextlib.suppress(Exception):
            await self.check(backend)

    def reconfigure(self, cfg: RouterConfig, source: str) -> None:
        """A new config: new expectations and policy (the caller re-checks)."""
        self.checker.set_expected(self._expectations(cfg, source), cfg.pinning.policy)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _expectations(cfg: RouterConfig, source: str) -> dict[str, dict[str, Any]]:
        path = lockfile_path(source, cfg.pinning)
        try:
            lockfile = read_lockfile(path)
        except LockfileError as exc:
            log.error("ignoring unreadable lockfile %s: %s", path, exc)
            lockfile = Lockfile()
        return expectations(cfg, lockfile)

    def _state_metrics(self, state: PinState) -> None:
        observed = state.observed.fields if state.observed is not None else {}
        self.metrics.set_pin(
            state.variant,
            expected=_identity_label(state.expected),
            observed=_identity_label(observed) if observed else state.status,
            ok=state.serving_ok,
        )
