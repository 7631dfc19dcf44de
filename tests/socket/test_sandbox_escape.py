"""Adversarial answers score 0 and leave nothing behind — as root and as an unprivileged user.

Each case is a real answer run through the real harness (`harness.build`/`verdict`) in the
real bubblewrap sandbox. The unprivileged run copies `sandbox`, `bwrap`, `harness` and
psutil to a directory `nobody` can read and drives them with the system interpreter under
`runuser -u nobody`, so the proxy-as-an-ordinary-user path is exercised for real.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from proxy.bench import bwrap, harness, sandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

GOOD = "def double(x):\n    return 2 * x\n"
WRONG = "def double(x):\n    return 0\n"
TEST = "assert double(2) == 4\nassert double(-3) == -6\n"


def escapes(marker: str, port: int) -> dict[str, str]:
    """Answers that try to pass without being right, or to reach outside."""
    return {
        "early-exit": WRONG + "import sys\nsys.exit(0)\n",
        "os-exit": WRONG + "import os\nos._exit(0)\n",
        "unittest-main": WRONG + "import unittest\nunittest.main(argv=['x'])\n",
        "unittest-guarded": WRONG + "if __name__ == '__main__':\n    import unittest\n"
        "    unittest.main()\n",
        "patched-assert": WRONG + "import builtins\nbuiltins.AssertionError = type('E', "
        "(Exception,), {})\nimport _thread\n_thread._count = lambda: 0\n",
        "guessed-token": WRONG + "print('VP-PASS-' + '0' * 32)\n",
        "stolen-fd": WRONG + "import os\ntry:\n    print(os.read(3, 99).decode())\n"
        "except OSError:\n    pass\n",
        "frames": WRONG + "import sys\nprint(sys._current_frames())\n",
        "write-outside": WRONG
        + textwrap.dedent(f"""
            for p in ('/tmp/{marker}', '/var/tmp/{marker}', '/dev/shm/{marker}',
                      '/work/{marker}', '/root/{marker}', '/home/{marker}'):
                try:
                    open(p, 'w').write('x')
                except OSError:
                    pass
            """),
        "daemon": WRONG
        + textwrap.dedent(f"""
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(3)
                    open('/tmp/{marker}-daemon', 'w').write('alive')
                    os._exit(0)
                os._exit(0)
            """),
        "network": WRONG
        + textwrap.dedent(f"""
            import socket
            try:
                socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen')
            except OSError:
                pass
            """),
        "spy": WRONG
        + textwrap.dedent("""
            import os
            seen = []
            for pid in os.listdir('/proc'):
                if pid.isdigit():
                    try:
                        seen.append(open('/proc/%s/cmdline' % pid, 'rb').read())
                    except OSError:
                        pass
            for path in ('/work', '/root', '/home', '/etc/shadow', '/etc/passwd'):
                seen.append(str(os.path.exists(path)).encode())
            print(seen)
            """),
    }


def _score_here(code: str) -> dict[str, Any]:
    task = _Task()
    check = harness.build(task, code, sandbox.python_for_sandbox())  # type: ignore[arg-type]
    token = harness.new_token()
    out = sandbox.run(
        check.commands, check.files, sandbox.Limits(wall_seconds=15), secret=token.encode()
    )
    ok, kind, detail = harness.verdict(task, token, out.returncode, out.stdout, out.stderr)  # type: ignore[arg-type]
    return {"passed": ok, "kind": kind, "stdout": out.stdout, "stderr": out.stderr}


class _Task:
    chat = True
    language = "python"
    setup = ""
    test = TEST
    expected_output = None
    prompt = None
    suffix = ""


_NOBODY_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from vpb import harness, sandbox

class Task:
    chat = True
    language = "python"
    setup = ""
    test = {test!r}
    expected_output = None
    prompt = None
    suffix = ""

results = {{}}
iso = None
for name, code in json.loads(sys.stdin.read()).items():
    task = Task()
    check = harness.build(task, code, "/usr/bin/python3")
    token = harness.new_token()
    out = sandbox.run(check.commands, check.files, sandbox.Limits(wall_seconds=15),
                      secret=token.encode())
    ok, kind, _ = harness.verdict(task, token, out.returncode, out.stdout, out.stderr)
    results[name] = {{"passed": ok, "kind": kind, "stdout": out.stdout, "stderr": out.stderr}}
    iso = out.isolation
results["__isolation__"] = {{"sandbox": iso.sandbox, "uid": iso.uid}}
print(json.dumps(results))
"""


def _nobody_tree(tmp: Path) -> Path:
    pkg = tmp / "vpb"
    pkg.mkdir(parents=True)
    for mod in (sandbox, bwrap, harness):
        assert mod.__file__ is not None
        shutil.copy(mod.__file__, pkg / Path(mod.__file__).name)
    (pkg / "__init__.py").write_text("")
    shutil.copytree(Path(psutil.__file__).parent, tmp / "psutil")
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp


def _score_as_nobody(cases: dict[str, str], tmp: Path) -> dict[str, Any]:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root to switch to the unprivileged user")
    probe = subprocess.run(["runuser", "-u", "nobody", "--", "unshare", "-U", "true"])
    if probe.returncode != 0:
        pytest.skip("unprivileged user namespaces are off: the bench refuses to score here")
    tmp.parent.chmod(0o755)
    tree = _nobody_tree(tmp)
    proc = subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "/usr/bin/python3",
            "-I",
            "-c",
            _NOBODY_DRIVER.format(test=TEST),
            str(tree),
        ],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=600,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout))


@pytest.fixture
def listener() -> Any:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server


def _no_leftovers(marker: str) -> None:
    for base in ("/tmp", "/var/tmp", "/dev/shm", "/work", "/root", "/home"):
        for suffix in ("", "-daemon"):
            assert not Path(base, marker + suffix).exists(), f"{base}/{marker}{suffix} left"


@pytest.mark.parametrize("who", ["proxy-user", "nobody"])
def test_adversarial_answers_score_zero_and_leave_nothing(
    who: str, listener: socket.socket, tmp_path: Path
) -> None:
    marker = "vp-escape-" + os.urandom(4).hex()
    port = listener.getsockname()[1]
    cases = escapes(marker, port)
    cases["control-good"] = GOOD
    if who == "nobody":
        shared = Path(tempfile.mkdtemp(prefix="vp-nobody-"))  # pytest's tmp is root-only
        try:
            results = _score_as_nobody(cases, shared / "tree")
        finally:
            shutil.rmtree(shared)
        iso = results.pop("__isolation__")
        assert iso["sandbox"] == "bubblewrap" and iso["uid"] is None
    else:
        results = {name: _score_here(code) for name, code in cases.items()}
    assert results.pop("control-good")["passed"] is True  # the harness itself works
    passed = sorted(name for name, r in results.items() if r["passed"])
    assert passed == [], f"adversarial answers passed as {who}: {passed}"
    assert "stolen" not in results["network"]["stdout"]
    with pytest.raises(BlockingIOError):
        listener.accept()
    spy = results["spy"]["stdout"]
    assert "pytest" not in spy and sys.executable not in spy  # no other process's cmdline
    assert "True" not in spy  # /work, /root, /home, /etc/shadow and /etc/passwd: absent
    time.sleep(4)  # the daemon would have written its file by now
    _no_leftovers(marker)
    strays = [
        p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
    ]
    assert strays == []


def test_the_bench_refuses_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sandbox._probed, "bwrap", (None, "bubblewrap (bwrap) is not installed"))
    with pytest.raises(sandbox.SandboxUnavailable, match="not installed"):
        sandbox.run([["true"]], {})
    unsafe = sandbox.run([["true"]], {}, unsafe=True)
    assert unsafe.passed and unsafe.isolation.sandbox == "none"
