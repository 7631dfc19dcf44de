"""The sandbox contains hostile candidates: each is reported as that candidate's failure and
nothing else (this process, the next candidate, the machine) is affected."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from proxy.bench import sandbox
from proxy.bench.sandbox import Limits, Outcome

FAST = Limits(cpu_seconds=2, wall_seconds=4)


@pytest.fixture(scope="module")
def python() -> str:
    return sandbox.python_for_sandbox()


def run_py(python: str, code: str, limits: Limits = FAST) -> Outcome:
    return sandbox.run([[python, "-I", "main.py"]], {"main.py": code}, limits)


def assert_healthy(python: str) -> None:
    """A well-behaved candidate still runs normally afterwards."""
    outcome = run_py(python, "print(sum(range(10)))")
    assert outcome.status == "passed" and outcome.stdout == "45\n"


def leftover_processes(uid: int | None) -> list[psutil.Process]:
    if uid is None:
        return []
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["uids"].real == uid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, AttributeError):
            pass
    return found


def test_a_passing_and_a_failing_candidate(python: str) -> None:
    ok = run_py(python, "print('hello')")
    assert (ok.status, ok.returncode, ok.stdout) == ("passed", 0, "hello\n")
    bad = run_py(python, "assert 1 == 2, 'math is broken'")
    assert bad.status == "failed" and "AssertionError: math is broken" in bad.reason
    assert bad.returncode == 1


def test_infinite_loop_is_stopped(python: str) -> None:
    started = time.monotonic()
    outcome = run_py(python, "while True:\n    pass\n")
    assert outcome.status == "timeout"
    assert time.monotonic() - started < FAST.wall_seconds + 3
    assert not leftover_processes(outcome.isolation.uid)
    assert_healthy(python)


def test_sleeping_forever_hits_the_wall_clock(python: str) -> None:
    started = time.monotonic()
    outcome = run_py(python, "import time\ntime.sleep(60)\n", Limits(wall_seconds=1))
    assert outcome.status == "timeout" and "wall-clock" in outcome.reason
    assert time.monotonic() - started < 4


def test_huge_allocation_fails(python: str) -> None:
    before = psutil.Process().memory_info().rss
    outcome = run_py(python, "x = bytearray(16 * 1024 ** 3)\nprint(len(x))\n")
    assert outcome.status in {"failed", "crashed"}
    assert "MemoryError" in outcome.reason or "SIGKILL" in outcome.reason
    assert psutil.Process().memory_info().rss < before + (256 << 20)
    assert_healthy(python)


def test_fork_bomb_is_contained(python: str) -> None:
    code = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    outcome = run_py(python, code, Limits(cpu_seconds=2, wall_seconds=3, processes=16))
    assert outcome.status in {"timeout", "failed", "crashed"}
    assert not leftover_processes(outcome.isolation.uid)
    assert_healthy(python)
    # this process can still start processes
    assert os.waitpid(os.spawnv(os.P_NOWAIT, "/bin/true", ["true"]), 0)[1] == 0


def test_writing_outside_its_directory_fails(python: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    outcome = run_py(python, f"open({str(target)!r}, 'w').write('x')\n")
    # the host's directories are simply not mounted in the sandbox
    assert outcome.status == "failed" and "FileNotFoundError" in outcome.reason
    assert not target.exists()
    inside = run_py(python, "open('ok.txt', 'w').write('x')\nprint(open('ok.txt').read())")
    assert inside.status == "passed" and inside.stdout == "x\n"


def test_output_and_file_size_are_bounded(python: str) -> None:
    limits = Limits(file_bytes=1 << 20, output_bytes=1000)
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing it
    chatty = run_py(python, "print('x' * 10_000_000)\n", limits)
    assert chatty.status in {"failed", "crashed"}
    assert "File too large" in chatty.reason or "file size" in chatty.reason
    assert len(chatty.stdout) < 1100 and chatty.stdout.endswith("[truncated]")
    big_file = run_py(python, "open('big', 'wb').write(b'0' * (8 << 20))\n", limits)
    assert big_file.status in {"failed", "crashed"}
    shell = sandbox.run([["bash", "main.sh"]], {"main.sh": "head -c 5000000 /dev/zero > f"}, limits)
    assert shell.status == "failed" or "file size" in shell.reason


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "s3cr3t-" + os.urandom(4).hex()
    monkeypatch.setenv("VARIANT_PROXY_TEST_SECRET", value)
    yield value


def test_the_proxys_environment_is_invisible(python: str, secret: str) -> None:
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(os.environ.get('VARIANT_PROXY_TEST_SECRET'))\n"
        "try:\n"
        "    print(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n"
        "except OSError as exc:\n"
        "    print('denied', type(exc).__name__)\n"
    )
    outcome = run_py(python, code)
    assert outcome.status == "passed"
    assert secret not in outcome.stdout + outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0] == "['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"
    assert lines[1] == "None"
    assert "VARIANT_PROXY" not in lines[2]  # its parent is the sandbox's own init


def test_no_network(python: str) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'stolen')\n"
        )
        outcome = run_py(python, code)
        iso = outcome.isolation
        if not iso.network:
            # no namespaces here: the status must say so, honestly
            assert outcome.status == "passed"
            assert iso.network_detail and "namespace" not in iso.network_detail
            return
        assert outcome.status == "failed"
        assert "Connection refused" in outcome.reason or "unreachable" in outcome.reason
        with pytest.raises(BlockingIOError):
            server.accept()


def test_isolation_is_reported() -> None:
    iso = sandbox.isolation()
    assert isinstance(iso.network, bool) and iso.network_detail
    assert iso.as_dict()["network"] == iso.network
    assert iso.sandbox == "bubblewrap" and iso.network
    if os.geteuid() == 0:
        assert iso.uid is not None


def test_other_toolchains_and_missing_ones() -> None:
    missing = sandbox.run([["no-such-compiler-xyz", "x.c"]], {"x.c": ""})
    assert missing.status == "crashed" and "not installed" in missing.reason
    bash = sandbox.run([["bash", "main.sh"]], {"main.sh": "echo $HOME; exit 3\n"})
    assert bash.status == "failed" and bash.returncode == 3
    assert bash.stdout.strip() == "/sandbox"
    with pytest.raises(ValueError):
        sandbox.run([["bash", "x"]], {"../escape.sh": ""})
