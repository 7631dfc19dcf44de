"""The bubblewrap command line for one sandboxed step. Pure apart from reading which of
the merged-/usr links exist on this machine.

Everything the candidate sees is listed here: read-only `/usr` and its links, the
loader cache and `/etc/alternatives` (for `cc`, `node`), a private `/proc` and
`/dev`, size-limited tmpfs mounts for `/tmp`, `/var/tmp`, `/dev/shm` and the working
directory, and an environment of four variables. `sandbox` runs it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "WORKDIR", "bwrap_argv"]

#: the candidate's working directory inside the sandbox
WORKDIR = "/sandbox"


#: merged-/usr links and loader files a program needs; /etc itself stays out of reach
_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def bwrap_argv(
    bwrap: str, argv: list[str], work: Path, *, build: bool, tmpfs_bytes: int
) -> list[str]:
    """The bubblewrap command line around `argv` (a build step sees `work` read-write)."""
    size = str(tmpfs_bytes)
    args = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        *_system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    for tmp in ("/tmp", "/var/tmp", "/dev/shm"):
        args += ["--size", size, "--tmpfs", tmp]
    if build:
        args += ["--bind", str(work), WORKDIR]
    else:
        args += ["--size", size, "--tmpfs", WORKDIR]
        for entry in sorted(work.iterdir()):
            args += ["--ro-bind", str(entry), f"{WORKDIR}/{entry.name}"]
    args += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in ENV.items():
        args += ["--setenv", key, value]
    return [*args, "--", *argv]


ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": WORKDIR,
    "TMPDIR": "/tmp",
}
