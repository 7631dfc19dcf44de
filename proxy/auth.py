"""Client API keys: loaded from an environment variable or a file, compared in constant time.

Keys never come from the config file itself (it is committed to git) and are
never logged. With no keys configured the proxy is open, which is why `serve`
refuses a non-loopback address without keys unless explicitly overridden.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import Auth
from .errors import Unauthorized

__all__ = ["KeyRing", "load_keys"]


def load_keys(auth: Auth) -> tuple[bytes, ...]:
    keys: list[str] = []
    if auth.api_keys_env:
        keys += os.environ.get(auth.api_keys_env, "").replace(",", " ").split()
    if auth.api_keys_file:
        for line in Path(auth.api_keys_file).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(line)
    return tuple(k.encode() for k in keys)


class KeyRing:
    def __init__(self, keys: Iterable[bytes], *, protect_admin: bool, protect_metrics: bool):
        self.keys = tuple(keys)
        self.protect_admin = protect_admin
        self.protect_metrics = protect_metrics

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def valid(self, presented: bytes) -> bool:
        ok = False
        for key in self.keys:  # no early exit: every key is compared
            ok |= hmac.compare_digest(presented, key)
        return ok

    def check(self, headers: Iterable[tuple[bytes, bytes]] | Mapping[Any, Any]) -> None:
        """Raise `Unauthorized` unless a valid `Authorization: Bearer` key is present."""
        if not self.keys:
            return
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            name_b = name if isinstance(name, bytes) else str(name).encode("latin-1")
            if name_b.lower() == b"authorization":
                value_b = value if isinstance(value, bytes) else str(value).encode("latin-1")
                scheme, _, token = value_b.partition(b" ")
                if scheme.lower() == b"bearer" and self.valid(token.strip()):
                    return
                raise Unauthorized("invalid API key")
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' (server.auth is enabled)"
        )
