"""Run untrusted candidate code in a separate, contained process.

Model answers are executed to score them, so each candidate runs in its own
process tree, never in the proxy's, inside Debian's `bubblewrap` (`bwrap`), a
small, well-kept namespace tool, rather than hand-rolled isolation:

* new user, PID, network, mount, IPC, UTS and cgroup namespaces
  (`--unshare-all`), no capabilities, no further user namespaces
  (`--disable-userns`), a new terminal session, and `--die-with-parent`;
* a filesystem of read-only system binds (`/usr`, the merged-/usr links, the
  loader cache and `/etc/alternatives`), a private `/proc` that shows only the
  sandbox's own processes, a minimal `/dev`, and size-limited private tmpfs
  mounts for `/tmp`, `/var/tmp`, `/dev/shm` and the working directory
  `/sandbox`, the only writable places, gone when the run ends. `/home`,
  `/root`, `/work`, `/etc` and the rest of the host are simply not there;
* when the PID namespace's first process exits or is killed, the kernel
  kills everything left in it, so a detached daemon cannot outlive its run.

A tiny launcher (the stdlib interpreter with `-I -S`, so no preexec_fn and no
thread-safety caveats) sets the resource limits (RLIMIT_CPU, RLIMIT_AS,
RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_NOFILE, no core files) and, when the proxy
runs as root, drops to a uid/gid of its own per concurrent slot (so
RLIMIT_NPROC holds and leftovers can be swept by uid) before it `exec`s
`bwrap`. Unprivileged proxies work the same way: `bwrap` then needs
unprivileged user namespaces (`unshare -U true` as that user).

Where `bwrap` is missing or the kernel refuses its namespaces, `run` raises
`SandboxUnavailable` instead of running anything; only an explicit
`unsafe=True` (the CLI's `--unsafe-no-sandbox`) runs candidates with just the
launcher's limits and a best-effort network namespace, and `Isolation` says
so. Build steps (a compiler) see the working directory read-write; the step
that runs the candidate sees its files read-only on a fresh tmpfs. A secret
for the harness (`run(..., secret=...)`) reaches the last step only, on file
descriptor 3, never in the environment or a file.

What was actually achieved is reported in `Isolation` with every outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from .bwrap import ENV as _ENV
from .bwrap import WORKDIR, bwrap_argv

__all__ = [
    "SECRET_FD",
    "WORKDIR",
    "Isolation",
    "Limits",
    "Outcome",
    "SandboxUnavailable",
    "Status",
    "bubblewrap",
    "isolation",
    "python_for_sandbox",
    "run",
]

Status = Literal["passed", "failed", "timeout", "crashed"]

#: uids handed to sandbox slots when running as root; far above any real account.
_UID_BASE = 1_879_000_000
_MAX_SLOTS = 64
#: the file descriptor the last step finds the harness's secret on
SECRET_FD = 3


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create its namespaces here; nothing was run."""


_LAUNCHER = r"""
import ctypes, json, os, resource, sys
spec = json.loads(sys.argv[1])
fd = spec["status_fd"]
status = {"network": False, "network_detail": "", "uid": None}
if spec["unshare_net"]:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flags = 0x40000000  # CLONE_NEWNET
        if os.geteuid() != 0:
            flags |= 0x10000000  # CLONE_NEWUSER: lets an unprivileged user own a net namespace
        if libc.unshare(flags) == 0:
            status["network"] = True
            status["network_detail"] = "private network namespace (no interfaces up)"
        else:
            status["network_detail"] = "unshare failed: " + os.strerror(ctypes.get_errno())
    except Exception as exc:
        status["network_detail"] = "unshare unavailable: %r" % (exc,)
try:
    if spec["uid"] is not None:
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
        status["uid"] = spec["uid"]
    lim = spec["limits"]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory"], lim["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["fsize"], lim["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["nofile"], lim["nofile"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
except Exception as exc:
    os.write(fd, json.dumps({"fatal": "sandbox setup failed: %r" % (exc,)}).encode())
    os._exit(125)
os.write(fd, json.dumps(status).encode())
os.close(fd)
secret = spec["secret_fd"]
if secret is not None and secret != 3:
    os.dup2(secret, 3)
    os.close(secret)
argv = spec["argv"]
try:
    os.execv(argv[0], argv)
except OSError as exc:
    sys.stderr.write("cannot run %s: %s\n" % (argv[0], exc.strerror))
    os._exit(127)
"""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-candidate limits. `memory_bytes` is address space (RLIMIT_AS) per process;
    `tmpfs_bytes` bounds each private tmpfs (/tmp, /var/tmp, /dev/shm, the workdir)."""

    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    processes: int = 32
    open_files: int = 64
    output_bytes: int = 16 << 10
    tmpfs_bytes: int = 32 << 20


@dataclass(frozen=True, slots=True)
class Isolation:
    """What the sandbox achieved for one run (or can achieve, from `isolation()`)."""

    network: bool
    network_detail: str
    uid: int | None
    limits: bool = True
    #: "bubblewrap" or "none" (only with an explicit unsafe opt-out)
    sandbox: str = "none"
    sandbox_detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Outcome:
    status: Status
    reason: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    isolation: Isolation
    steps: list[int | None] = field(default_factory=list)
    #: the last bytes of stdout (where a harness prints its token), even past `output_bytes`
    stdout_tail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _Slots:
    """Hands out small integers so concurrent runs as root get distinct uids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free = list(range(_MAX_SLOTS))
        self._cond = threading.Condition(self._lock)

    @contextlib.contextmanager
    def take(self) -> Iterator[int]:
        with self._cond:
            while not self._free:
                self._cond.wait()
            slot = self._free.pop(0)
        try:
            yield slot
        finally:
            with self._cond:
                self._free.append(slot)
                self._cond.notify()


_slots = _Slots()


def _is_root() -> bool:
    return os.geteuid() == 0


def _own_processes(uid: int) -> int:
    count = 0
    for proc in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if proc.info["uids"] is not None and proc.info["uids"].real == uid:
                count += 1 + max(0, proc.num_threads() - 1)
    return count


def _sweep_uid(uid: int) -> None:
    """Kill every process left running under a sandbox uid (e.g. a fork bomb's children)."""
    for _ in range(20):
        found = False
        for proc in psutil.process_iter(["uids", "status"]):
            with contextlib.suppress(psutil.Error, TypeError):
                info = proc.info
                if info["status"] == psutil.STATUS_ZOMBIE or info["uids"] is None:
                    continue
                if info["uids"].real == uid:
                    found = True
                    proc.kill()
        if not found:
            return
        time.sleep(0.05)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_head(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    if len(data) > limit:
        text += "\n…[truncated]"
    return text


def _read_tail(path: Path, limit: int = 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - limit))
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


_PROBE_LOCK = threading.Lock()
_probed: dict[str, Any] = {}


def bubblewrap() -> tuple[str | None, str]:
    """bwrap's path when it can create its namespaces here (as the sandbox user), and why not."""
    with _PROBE_LOCK:
        if "bwrap" in _probed:
            found: tuple[str | None, str] = _probed["bwrap"]
            return found
    path = shutil.which("bwrap")
    result: tuple[str | None, str] = (None, "bubblewrap (bwrap) is not installed")
    if path is not None:
        why = _probe(path)
        result = (path, "bubblewrap") if why is None else (None, why)
    with _PROBE_LOCK:
        _probed["bwrap"] = result
    return result


def _probe(bwrap: str) -> str | None:
    """None when bwrap runs a trivial program as the sandbox user, else why not."""
    with _slots.take() as slot, tempfile.TemporaryDirectory(prefix="vp-probe-") as root:
        base = Path(root)
        work = base / "work"
        work.mkdir()
        base.chmod(0o711)
        uid, nproc = _prepare(work, {}, slot, Limits())
        try:
            outcome, _ = _run_one(
                ["true"],
                **_step_kwargs(work, base, uid, nproc, Limits(wall_seconds=10)),
                bwrap=bwrap,
                build=False,
                secret=None,
            )
            if outcome[0] == "passed":
                return None
            detail = _last_line(_read_head(base / "stderr", 500)) or outcome[2]
        finally:
            if uid is not None:
                _sweep_uid(uid)
    return (
        f"bubblewrap cannot create its namespaces here ({detail}); unprivileged user "
        "namespaces may be disabled (check `unshare -U true` as the proxy's user)"
    )


def _step_kwargs(
    work: Path, base: Path, uid: int | None, nproc: int, limits: Limits
) -> dict[str, Any]:
    return {
        "work": work,
        "limits": limits,
        "nproc": nproc,
        "uid": uid,
        "stdin": None,
        "stdout_path": base / "stdout",
        "stderr_path": base / "stderr",
        "deadline": time.monotonic() + limits.wall_seconds,
    }


def run(
    commands: Sequence[Sequence[str]],
    files: Mapping[str, str],
    limits: Limits = Limits(),
    *,
    stdin: str | None = None,
    build_steps: int = 0,
    secret: bytes | None = None,
    unsafe: bool = False,
) -> Outcome:
    """Write `files` into a fresh private directory and run `commands` there, in order.

    Each command runs in its own sandboxed process; the first that fails ends
    the run. The first `build_steps` commands (a compiler) may write the
    working directory; the rest see it read-only under a private tmpfs.
    `secret` is readable by the last command on `SECRET_FD`. The wall timeout
    covers all of them. Raises `SandboxUnavailable` unless bubblewrap works
    here or `unsafe` is set. Blocking: call it from a worker thread.
    """
    if not commands:
        raise ValueError("nothing to run")
    bwrap: str | None = None
    if not unsafe:
        bwrap, why = bubblewrap()
        if bwrap is None:
            raise SandboxUnavailable(why)
    with _slots.take() as slot, tempfile.TemporaryDirectory(prefix="vp-bench-") as root:
        base = Path(root)
        work = base / "work"
        work.mkdir()
        base.chmod(0o711)  # the sandbox uid may enter its directory, not list ours
        uid, nproc = _prepare(work, files, slot, limits)
        kwargs = _step_kwargs(work, base, uid, nproc, limits)
        kwargs["stdin"] = stdin
        started = time.monotonic()
        iso = Isolation(False, "not started", None)
        codes: list[int | None] = []
        try:
            for step, argv in enumerate(commands):
                last = step == len(commands) - 1
                outcome, iso = _run_one(
                    list(argv),
                    **kwargs,
                    bwrap=bwrap,
                    build=step < build_steps,
                    secret=secret if last else None,
                )
                codes.append(outcome[1])
                status, returncode, reason = outcome
                if status != "passed":
                    out = _read_head(kwargs["stdout_path"], limits.output_bytes)
                    err = _read_head(kwargs["stderr_path"], limits.output_bytes)
                    if len(commands) > 1:
                        reason = f"step {step + 1} ({Path(argv[0]).name}): {reason}"
                    if status == "failed":
                        detail = _last_line(err) or _last_line(out)
                        if detail:
                            reason = f"{reason}: {detail}"
                    elapsed = time.monotonic() - started
                    tail = _read_tail(kwargs["stdout_path"])
                    return Outcome(status, reason, returncode, out, err, elapsed, iso, codes, tail)
            return Outcome(
                "passed",
                "exited 0",
                0,
                _read_head(kwargs["stdout_path"], limits.output_bytes),
                _read_head(kwargs["stderr_path"], limits.output_bytes),
                time.monotonic() - started,
                iso,
                codes,
                _read_tail(kwargs["stdout_path"]),
            )
        finally:
            if uid is not None:
                _sweep_uid(uid)


def _prepare(
    work: Path, files: Mapping[str, str], slot: int, limits: Limits
) -> tuple[int | None, int]:
    """Write the files; as root, hand them to the slot's sandbox uid. Returns that uid
    (None when not root) and the process limit (counting our own when sharing a uid)."""
    for name, content in files.items():
        target = work / name
        if target.resolve().parent != work.resolve():
            raise ValueError(f"file name {name!r} must be a plain name")
        target.write_text(content, encoding="utf-8")
    if not _is_root():
        return None, _own_processes(os.getuid()) + limits.processes
    uid = _UID_BASE + slot
    _sweep_uid(uid)
    for path in (work, *work.iterdir()):
        os.chown(path, uid, uid)
    return uid, limits.processes


def _launcher(
    argv: list[str],
    status_fd: int,
    uid: int | None,
    limits: Limits,
    nproc: int,
    *,
    unshare_net: bool,
    secret_fd: int | None,
) -> list[str]:
    """The command that sets the limits and the uid, reports on `status_fd`, then execs `argv`."""
    spec = {
        "status_fd": status_fd,
        "secret_fd": secret_fd,
        "unshare_net": unshare_net,
        "uid": uid,
        "gid": uid,
        "argv": argv,
        "limits": {
            "cpu": limits.cpu_seconds,
            "memory": limits.memory_bytes,
            "fsize": limits.file_bytes,
            "nofile": limits.open_files,
            "nproc": nproc,
        },
    }
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(spec)]


def _resolve(argv: list[str], work: Path, bwrap: str | None) -> list[str] | None:
    """argv with its program made absolute (inside the sandbox when there is one)."""
    if os.sep not in argv[0]:
        program = shutil.which(argv[0], path=_ENV["PATH"])
        if program is None:
            return None
    else:
        program = argv[0]
        if not os.path.isabs(program):
            program = (WORKDIR if bwrap else str(work)) + "/" + os.path.normpath(program)
    return [program, *argv[1:]]


def _secret_pipe(secret: bytes | None) -> int | None:
    if secret is None:
        return None
    read_fd, write_fd = os.pipe()
    os.write(write_fd, secret)  # far below the pipe buffer
    os.close(write_fd)
    return read_fd


def _run_one(
    argv: list[str],
    *,
    work: Path,
    limits: Limits,
    nproc: int,
    uid: int | None,
    stdin: str | None,
    stdout_path: Path,
    stderr_path: Path,
    deadline: float,
    bwrap: str | None,
    build: bool,
    secret: bytes | None,
) -> tuple[tuple[Status, int | None, str], Isolation]:
    resolved = _resolve(argv, work, bwrap)
    if resolved is None:
        return ("crashed", None, f"{argv[0]} is not installed"), Isolation(
            False, "not started", None
        )
    if bwrap is not None:
        resolved = bwrap_argv(bwrap, resolved, work, build=build, tmpfs_bytes=limits.tmpfs_bytes)
    read_fd, write_fd = os.pipe()
    secret_fd = _secret_pipe(secret)
    launcher = _launcher(
        resolved,
        write_fd,
        uid,
        limits,
        nproc,
        unshare_net=bwrap is None,
        secret_fd=secret_fd,
    )
    passed = (write_fd,) if secret_fd is None else (write_fd, secret_fd)
    env = {**_ENV, "HOME": str(work), "TMPDIR": str(work)} if bwrap is None else dict(_ENV)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            proc = subprocess.Popen(
                launcher,
                cwd=work,
                env=env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=passed,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
            if secret_fd is not None:
                os.close(secret_fd)
        with os.fdopen(read_fd, "rb") as status_pipe:
            raw = status_pipe.read(4096)
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
        timed_out = False
        try:
            proc.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid)
            proc.wait()
            if uid is not None:
                _sweep_uid(uid)
    return _finish(raw, proc.returncode, timed_out, limits, bwrap)


def _finish(
    raw: bytes, code: int, timed_out: bool, limits: Limits, bwrap: str | None
) -> tuple[tuple[Status, int | None, str], Isolation]:
    try:
        status = json.loads(raw) if raw else {}
    except ValueError:
        status = {}
    if bwrap is not None:
        iso = Isolation(
            network=True,
            network_detail="bubblewrap network namespace (loopback only)",
            uid=status.get("uid"),
            limits="fatal" not in status,
            sandbox="bubblewrap",
            sandbox_detail="user, pid, net, mount, ipc, uts namespaces; read-only system; "
            f"private tmpfs of {limits.tmpfs_bytes >> 20} MiB each",
        )
    else:
        iso = Isolation(
            network=bool(status.get("network", False)),
            network_detail=str(status.get("network_detail", "launcher gave no status")),
            uid=status.get("uid"),
            limits="fatal" not in status,
            sandbox="none",
            sandbox_detail="UNSAFE: --unsafe-no-sandbox, only resource limits",
        )
    if "fatal" in status:
        return ("crashed", code, str(status["fatal"])), iso
    if bwrap is not None and 128 < code < 128 + 65:
        code = 128 - code  # bwrap exits 128+N when its child died of signal N
    return _verdict(code, timed_out, limits), iso


def _verdict(code: int, timed_out: bool, limits: Limits) -> tuple[Status, int | None, str]:
    """A finished process's status, exit code and reason; a signal names the limit hit."""
    if timed_out:
        return "timeout", None, f"wall-clock timeout after {limits.wall_seconds:g}s"
    if code == 0:
        return "passed", 0, "exited 0"
    if code < 0:
        sig = -code
        if sig == signal.SIGXCPU:
            return "timeout", code, f"CPU time limit of {limits.cpu_seconds}s exceeded"
        if sig == signal.SIGXFSZ:
            return "crashed", code, f"file size limit of {limits.file_bytes} bytes exceeded"
        if sig == signal.SIGKILL:
            return "crashed", code, "killed by SIGKILL (CPU or memory limit)"
        return "crashed", code, f"killed by {_signal_name(sig)}"
    return "failed", code, f"exited {code}"


def python_for_sandbox(*, unsafe: bool = False) -> str:
    """An interpreter the sandbox can execute (a venv under /root or /work is not inside)."""
    key = "python-unsafe" if unsafe else "python"
    with _PROBE_LOCK:
        if key in _probed:
            return str(_probed[key])
    seen: list[str] = []
    for candidate in (
        os.path.realpath(sys.executable),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
        shutil.which("python3") or "",
    ):
        if not candidate or candidate in seen or not os.path.exists(candidate):
            continue
        seen.append(candidate)
        outcome = run(
            [[candidate, "-I", "-c", "print('ok')"]], {}, Limits(wall_seconds=10), unsafe=unsafe
        )
        if outcome.passed and outcome.stdout.strip() == "ok":
            with _PROBE_LOCK:
                _probed[key] = candidate
                _probed["isolation-unsafe" if unsafe else "isolation"] = outcome.isolation
            return candidate
    raise RuntimeError(
        "no Python interpreter is executable inside the sandbox; tried: " + ", ".join(seen)
    )


def isolation(*, unsafe: bool = False) -> Isolation:
    """What isolation candidates get on this machine (probed once)."""
    python_for_sandbox(unsafe=unsafe)
    with _PROBE_LOCK:
        iso = _probed["isolation-unsafe" if unsafe else "isolation"]
    assert isinstance(iso, Isolation)
    return iso
