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

The package is split by what each part touches, so the rules can be read and tested
without a server or a file:

* :mod:`~proxy.pinning.drift`: pure. Expectations, normalisation, ``compare``,
  :class:`PinState` and the 409 ``version_mismatch``; plain data in, plain data out.
* :mod:`~proxy.pinning.lockfile`: the lockfile format (YAML, sorted, diff-friendly) and
  its file I/O (atomic writes, a missing file is an empty lockfile).
* :mod:`~proxy.pinning.checker`: the network side. ``resolve_target`` (where to ask),
  ``lock``/``verify`` (what the CLI runs) and :class:`PinChecker` (what ``serve`` runs).

Dependencies point one way: ``checker`` → ``drift`` → ``lockfile``. Import from the
package; the names below are its public surface.
"""

from .checker import (
    IdentityTarget,
    PinChecker,
    lock,
    read_identity,
    render_verify,
    resolve_target,
    verify,
)
from .drift import (
    INFORMATIONAL_FIELDS,
    FieldDrift,
    PinState,
    Status,
    canonical_quantization,
    compare,
    expectations,
    expected_for,
    version_mismatch,
)
from .lockfile import (
    FieldValue,
    LockEntry,
    Lockfile,
    LockfileError,
    diff_lockfiles,
    dump_lockfile,
    lockfile_path,
    parse_lockfile,
    read_lockfile,
    write_lockfile,
)

__all__ = [
    "INFORMATIONAL_FIELDS",
    "FieldDrift",
    "FieldValue",
    "IdentityTarget",
    "LockEntry",
    "Lockfile",
    "LockfileError",
    "PinChecker",
    "PinState",
    "Status",
    "canonical_quantization",
    "compare",
    "diff_lockfiles",
    "dump_lockfile",
    "expectations",
    "expected_for",
    "lock",
    "lockfile_path",
    "parse_lockfile",
    "read_lockfile",
    "render_verify",
    "read_identity",
    "resolve_target",
    "verify",
    "version_mismatch",
    "write_lockfile",
]
