"""What the bench reads from the proxy it measures, named as structural types.

The bench sits below the web layer. The daemon's lifespan hands the scheduler its
running `Proxy`, and the CLI starts one in-process, but the bench names only the few
attributes it reads, here, so it never imports `proxy.app` or `proxy.service`
(dependency inversion: the lower layer owns the interface, the upper one satisfies
it). `proxy.service.Proxy` matches `RunningProxy` as it is; mypy checks that where the
app builds the scheduler. Everything is read when needed, not copied at construction,
because a reload swaps the config and a managed backend gets its process on start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ..config import RouterConfig
from ..metrics import Metrics

__all__ = ["HasPid", "KeySet", "LiveConfig", "ManagedBackends", "RunningProxy"]


class HasPid(Protocol):
    @property
    def pid(self) -> int | None:
        """The live process's pid, else None."""
        ...


class ManagedBackends(Protocol):
    @property
    def managed(self) -> Mapping[str, HasPid]:
        """The processes of managed backends by backend name (empty before start)."""
        ...


class LiveConfig(Protocol):
    @property
    def cfg(self) -> RouterConfig:
        """The config in force now (a reload replaces it)."""
        ...

    @property
    def urls(self) -> Mapping[str, str]:
        """Where each backend answers now, managed ones included."""
        ...


class KeySet(Protocol):
    @property
    def keys(self) -> Sequence[bytes]:
        """The client API keys; empty when the proxy is open."""
        ...


class RunningProxy(ManagedBackends, Protocol):
    """A started proxy, as the scheduler and the in-process CLI run see it."""

    @property
    def runtime(self) -> LiveConfig: ...

    @property
    def keys(self) -> KeySet: ...

    @property
    def metrics(self) -> Metrics: ...
