"""Run untrusted candidate code in a separate, limited process.

Model answers are executed to score them, so each candidate runs in its own
process, never in the proxy's. A tiny launcher (the stdlib interpreter with
`-I -S`, so no preexec_fn and no thread-safety caveats) prepares the process
and then `exec`s the real command:

1. a new network namespace (`unshare(CLONE_NEWNET)`; with `CLONE_NEWUSER` too
   when not root): no interface but a down loopback, so nothing can connect
   anywhere, 127.0.0.1 included;
2. when running as root, a uid/gid of its own per concurrent slot (no
   supplementary groups): files the proxy's user owns are out of reach,
   RLIMIT_NPROC is enforced (it is not for root) and leftovers can be swept
   by uid;
3. resource limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC,
   RLIMIT_NOFILE, no core files.

The process starts in a new session (its own process group) with a private
temporary directory as cwd, HOME and TMPDIR, and an environment of only PATH,
LANG, HOME and TMPDIR. A wall-clock timeout kills the whole process group
(and, when a uid was dropped, every process of that uid). stdout and stderr
go to files outside the candidate's directory, so RLIMIT_FSIZE bounds them,
and only the first `output_bytes` are read back.

What was actually achieved is reported in `Isolation` with every outcome:
isolation is best effort where the OS refuses it, never silently assumed.
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

__all__ = ["Isolation", "Limits", "Outcome", "Status", "isolation", "python_for_sandbox", "run"]

Status = Literal["passed", "failed", "timeout", "crashed"]

#: uids handed to sandbox slots when running as root; far above any real account.
_UID_BASE = 1_879_000_000
_MAX_SLOTS = 64

_LAUNCHER = r"""
import ctypes, json, os, resource, sys
spec = json.loads(sys.argv[1])
fd = spec["status_fd"]
status = {"network": False, "network_detail": "", "uid": None}
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
argv = spec["argv"]
try:
    os.execv(argv[0], argv)
except OSError as exc:
    sys.stderr.write("cannot run %s: %s\n" % (argv[0], exc.strerror))
    os._exit(127)
"""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-candidate limits. `memory_bytes` is address space (RLIMIT_AS) per process."""

    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    processes: int = 32
    open_files: int = 64
    output_bytes: int = 16 << 10


@dataclass(frozen=True, slots=True)
class Isolation:
    """What the sandbox achieved for one run (or can achieve, from `isolation()`)."""

    network: bool
    network_detail: str
    uid: int | None
    limits: bool = True

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


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run(
    commands: Sequence[Sequence[str]],
    files: Mapping[str, str],
    limits: Limits = Limits(),
    *,
    stdin: str | None = None,
) -> Outcome:
    """Write `files` into a fresh private directory and run `commands` there, in order.

    Each command runs in its own sandboxed process; the first that fails ends
    the run. The wall timeout covers all of them. Blocking: call it from a
    worker thread (`asyncio.to_thread`) in async code.
    """
    if not commands:
        raise ValueError("nothing to run")
    with _slots.take() as slot, tempfile.TemporaryDirectory(prefix="vp-bench-") as root:
        base = Path(root)
        work = base / "work"
        work.mkdir()
        base.chmod(0o711)  # the sandbox uid may enter its directory, not list ours
        uid, nproc = _prepare(work, files, slot, limits)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(work),
            "TMPDIR": str(work),
        }
        deadline = time.monotonic() + limits.wall_seconds
        started = time.monotonic()
        stdout_path, stderr_path = base / "stdout", base / "stderr"
        iso = Isolation(False, "not started", None)
        codes: list[int | None] = []
        try:
            for step, argv in enumerate(commands):
                outcome, iso = _run_one(
                    list(argv),
                    work=work,
                    env=env,
                    limits=limits,
                    nproc=nproc,
                    uid=uid,
                    stdin=stdin,
                    stdout_path=stdout_path,
                    stderr_path=stderr_path,
                    deadline=deadline,
                )
                codes.append(outcome[1])
                status, returncode, reason = outcome
                if status != "passed":
                    out = _read_head(stdout_path, limits.output_bytes)
                    err = _read_head(stderr_path, limits.output_bytes)
                    if len(commands) > 1:
                        reason = f"step {step + 1} ({Path(argv[0]).name}): {reason}"
                    if status == "failed":
                        detail = _last_line(err) or _last_line(out)
                        if detail:
                            reason = f"{reason}: {detail}"
                    elapsed = time.monotonic() - started
                    return Outcome(status, reason, returncode, out, err, elapsed, iso, codes)
            return Outcome(
                "passed",
                "exited 0",
                0,
                _read_head(stdout_path, limits.output_bytes),
                _read_head(stderr_path, limits.output_bytes),
                time.monotonic() - started,
                iso,
                codes,
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
    argv: list[str], status_fd: int, uid: int | None, limits: Limits, nproc: int
) -> list[str]:
    """The command that sets the limits and the uid, reports on `status_fd`, then execs `argv`."""
    spec = {
        "status_fd": status_fd,
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


def _run_one(
    argv: list[str],
    *,
    work: Path,
    env: dict[str, str],
    limits: Limits,
    nproc: int,
    uid: int | None,
    stdin: str | None,
    stdout_path: Path,
    stderr_path: Path,
    deadline: float,
) -> tuple[tuple[Status, int | None, str], Isolation]:
    program = shutil.which(argv[0], path=env["PATH"]) if os.sep not in argv[0] else argv[0]
    if program is None:
        iso = Isolation(False, "not started", None)
        return ("crashed", None, f"{argv[0]} is not installed"), iso
    if not os.path.isabs(program):
        program = str(work / program)
    argv = [program, *argv[1:]]
    read_fd, write_fd = os.pipe()
    launcher = _launcher(argv, write_fd, uid, limits, nproc)
    with (
        stdout_path.open("wb") as out,
        stderr_path.open("wb") as err,
    ):
        try:
            proc = subprocess.Popen(
                launcher,
                cwd=work,
                env=env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
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
    try:
        status = json.loads(raw) if raw else {}
    except ValueError:
        status = {}
    iso = Isolation(
        network=bool(status.get("network", False)),
        network_detail=str(status.get("network_detail", "launcher gave no status")),
        uid=status.get("uid"),
        limits="fatal" not in status,
    )
    if "fatal" in status:
        return ("crashed", proc.returncode, str(status["fatal"])), iso
    return _verdict(proc.returncode, timed_out, limits), iso


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


_PROBE_LOCK = threading.Lock()
_probed: dict[str, Any] = {}


def python_for_sandbox() -> str:
    """An interpreter the sandbox user can execute (a venv under /root may be unreadable)."""
    with _PROBE_LOCK:
        if "python" in _probed:
            return str(_probed["python"])
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
        outcome = run([[candidate, "-I", "-c", "print('ok')"]], {}, Limits(wall_seconds=10))
        if outcome.passed and outcome.stdout.strip() == "ok":
            with _PROBE_LOCK:
                _probed["python"] = candidate
                _probed["isolation"] = outcome.isolation
            return candidate
    raise RuntimeError(
        "no Python interpreter is executable inside the sandbox; tried: " + ", ".join(seen)
    )


def isolation() -> Isolation:
    """What isolation candidates get on this machine (probed once)."""
    python_for_sandbox()
    with _PROBE_LOCK:
        iso = _probed["isolation"]
    assert isinstance(iso, Isolation)
    return iso
