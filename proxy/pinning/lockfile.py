"""The lockfile: every variant's identity as its server reported it, kept in git.

YAML, stable and diff-friendly: variants sorted by name, fields sorted, one value
per line, each entry with where and when it was read. Written atomically (temp
file, fsync, rename); re-locking an unchanged identity keeps the entry as it was,
so `git diff` shows only real changes. :mod:`proxy.pinning.drift` compares against it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..backends.identity import Identity
from ..config import PinningConfig
from ..errors import LockfileError

__all__ = [
    "DEFAULT_LOCKFILE_NAME",
    "LOCKFILE_VERSION",
    "FieldValue",
    "LockEntry",
    "Lockfile",
    "LockfileError",
    "diff_lockfiles",
    "dump_lockfile",
    "lockfile_path",
    "parse_lockfile",
    "read_lockfile",
    "write_lockfile",
]

FieldValue = str | int

LOCKFILE_VERSION = 1
DEFAULT_LOCKFILE_NAME = "models.lock"


def lockfile_path(config_path: str | os.PathLike[str], pinning: PinningConfig | None) -> Path:
    """Where the lockfile of the config at ``config_path`` lives."""
    if pinning is not None and pinning.lockfile is not None:
        return Path(pinning.lockfile)
    return Path(config_path).parent / DEFAULT_LOCKFILE_NAME


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
