"""Drift: what a variant should serve against what its server says it serves. Pure.

``expected_for`` merges the two sources of expectations (a hand-written
``variants.<name>.pin`` in the config wins over the lockfile entry; location fields such as
``model_path`` are dropped when a sha256 says what the weights are, informational fields
like ``build_info`` are never compared). ``compare`` lists the differences field by field,
after normalising each side (one spelling per quantization, hashes without their
``sha256:`` prefix, a 12-digit digest prefix accepted as ``ollama list`` shows it), and
:class:`PinState` turns the differences into one verdict: ``ok``, ``drifted``,
``unverifiable`` (a pinned field the server does not report), ``unreachable`` or
``unpinned``, plus the one-line reason routing shows and the 409 ``version_mismatch`` a
direct request gets.

Everything here takes plain data (an :class:`~proxy.backends.identity.Identity`, a config,
a lockfile already read) and returns plain data: no httpx, no files, so the rules are
tested as tables. Reading identities and keeping states up to date is
:mod:`proxy.pinning.checker`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..backends.identity import Identity, IdentityUnavailable, now_iso
from ..config import Pin, RouterConfig
from ..errors import VersionMismatch
from .lockfile import FieldValue, LockEntry, Lockfile

__all__ = [
    "INFORMATIONAL_FIELDS",
    "FieldDrift",
    "PinState",
    "Status",
    "canonical_quantization",
    "compare",
    "expectations",
    "expected_for",
    "version_mismatch",
]

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
