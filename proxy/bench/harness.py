"""Check programs in which the harness, not the answer, decides a pass. Pure.

An exit status says nothing about correctness: `import sys; sys.exit(0)` exits 0 before
any test runs. So a pass needs the harness's *success token*: a random value made per
run (`new_token`), handed to the sandbox's last step on file descriptor 3
(`sandbox.SECRET_FD`, never in a file or the environment) and printed by the harness
only after the task's last check ran. `verdict` then looks for that exact line.

Per language (`build`):

* **python** — `harness.py` reads the token from fd 3 and closes it, reads and compiles
  the test code, installs an audit hook (PEP 578; it cannot be removed), then loads the
  answer as a module named `solution` (never `__main__`, so `if __name__ ==
  "__main__": unittest.main()` blocks do not run) in a *worker thread* and runs the
  tests there against the module's names. The token only ever lives in the main
  thread's frame: the hook refuses every audited action in the main thread once armed
  and, in other threads, the routes to another thread's memory (`sys._current_frames`,
  `gc.get_objects`/`get_referrers`/`get_referents`, `ctypes`, `/proc`, native modules
  from outside `/usr`), tracing (`sys.settrace`/`setprofile`, which could jump over an
  assertion) and new processes. The main thread uses only references it took before
  the answer ran, so patching `builtins`, `threading` or the harness module changes
  nothing it calls. `sys.exit`, `os._exit`, an exception or a stray thread: no token.
* **javascript** — `harness.js` runs the answer and the tests in one function scope
  with their own `module`/`require.main` (so `require.main === module` blocks don't run),
  then reads fd 3 and prints the token.
* **c** — the answer's own `main` is renamed away (`#define main ...`), the test's
  `main` becomes `vp_test_main`, and the harness's `main` calls it and prints the token
  from fd 3 when it returns 0.
* **shell** — `harness.sh` sources the answer (so `[[ $0 == "${BASH_SOURCE[0]}" ]]`
  guards don't fire) and the test, then prints the token from fd 3.

For JavaScript, C and shell the tests print values compared with the task's
`expected_output`; an answer that read fd 3 itself would still have to print exactly
what correct code prints. The Python defences are against answers that exit early,
carry test-runner blocks or patch the harness; an answer written deliberately against
this harness's internals (walking its frames to rewrite its result) is beyond what an
in-process check can stop, which is why the sandbox, not the harness, keeps the machine
safe.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # only the type: the harness runs without pydantic (see the sandbox tests)
    from .suite import Task

__all__ = ["Check", "FailureKind", "build", "new_token", "verdict"]

#: why an answer failed, as shown per task in reports
FailureKind = Literal[
    "no-code",
    "compile-error",
    "assertion",
    "exception",
    "exit",
    "no-token",
    "wrong-output",
    "timeout",
]


@dataclass(frozen=True, slots=True)
class Check:
    """What the sandbox runs for one answer: files, commands, build steps."""

    files: dict[str, str]
    commands: list[list[str]]
    build_steps: int = 0


def new_token() -> str:
    """A fresh success token: 128 random bits, impossible to guess."""
    return "VP-PASS-" + secrets.token_hex(16)


def _answer_source(task: Task, code: str) -> str:
    """The answer as the file it is loaded from: setup, then the answer (a fill-in-the-middle
    answer between its prompt and suffix)."""
    if task.chat:
        body = code
    else:
        assert task.prompt is not None
        body = task.prompt + code + task.suffix
    return "\n\n".join(p for p in (task.setup, body) if p) + "\n"


def build(task: Task, code: str, tool: str) -> Check:
    """The check program for `code` (extracted from an answer) in the task's language."""
    source = _answer_source(task, code)
    match task.language:
        case "python":
            return Check(
                {"harness.py": PYTHON_HARNESS, "solution.py": source, "test_code.py": task.test},
                [[tool, "-I", "-B", "harness.py"]],
            )
        case "javascript":
            files = {"harness.js": JS_HARNESS, "solution.js": source, "test_code.js": task.test}
            return Check(files, [[tool, "harness.js"]])
        case "c":
            program = "\n".join(
                (
                    "#define main vp_candidate_main",
                    source,
                    "#undef main",
                    "#define main vp_test_main",
                    task.test,
                    "#undef main",
                    C_HARNESS,
                )
            )
            return Check(
                {"main.c": program},
                [[tool, "-std=c11", "-O1", "-o", "prog", "main.c", "-lm"], ["./prog"]],
                build_steps=1,
            )
        case "shell":
            files = {"harness.sh": SHELL_HARNESS, "solution.sh": source, "test_code.sh": task.test}
            return Check(files, [[tool, "harness.sh"]])
    raise ValueError(f"no harness for {task.language}")


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def verdict(
    task: Task, token: str, returncode: int | None, stdout: str, stderr: str
) -> tuple[bool, FailureKind | None, str]:
    """Passed?, why not, and a detail line. Needs exit 0 *and* the token as the last line
    (and, where the task has one, the expected output before it)."""
    lines = stdout.rstrip("\n").split("\n")
    tagged = [line for line in stderr.splitlines() if line.startswith("VP-HARNESS ")]
    if returncode != 0 or not lines or lines[-1].strip() != token:
        if tagged:
            kind, _, detail = tagged[-1][len("VP-HARNESS ") :].partition(" ")
            return False, _kind(kind), detail[:300]
        if returncode == 0:
            return False, "no-token", "exited 0 without the harness's success token"
        return False, "exit", f"exited {returncode} before the harness finished"
    if task.expected_output is not None:
        got = _normalize("\n".join(lines[:-1]))
        if got != _normalize(task.expected_output):
            return False, "wrong-output", f"wrong output: {got[:120]!r}"
    return True, None, "tests passed (harness token seen)"


def _kind(word: str) -> FailureKind:
    known: dict[str, FailureKind] = {
        "compile-error": "compile-error",
        "assertion": "assertion",
        "exception": "exception",
        "exit": "exit",
    }
    return known.get(word, "exception")


# -- the harness programs ------------------------------------------------------------------------

PYTHON_HARNESS = r"""
import _thread, gc, os, sys, threading, traceback, types


def _main():
    secret = os.read(3, 256)
    os.close(3)
    write, exit_, count = os.write, os._exit, _thread._count
    out, err = sys.stdout, sys.stderr
    with open("test_code.py", encoding="utf-8") as fh:
        test_src = fh.read()
    with open("solution.py", encoding="utf-8") as fh:
        answer_src = fh.read()
    test = compile(test_src, "test_code.py", "exec")
    main_ident = threading.get_ident()
    armed = []
    deny = frozenset((
        "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects",
        "gc.get_referrers", "gc.get_referents", "os.fork", "os.forkpty", "os.exec",
        "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "os.kill",
        "os.killpg", "signal.pthread_kill", "sys.setrecursionlimit",
    ))
    realpath = os.path.realpath

    def hook(event, args):
        if not armed:
            return
        if _thread.get_ident() == main_ident:
            raise RuntimeError("harness: %s refused in the harness thread" % event)
        if event in deny or event.startswith("ctypes."):
            raise RuntimeError("harness: %s is not allowed in a benchmark answer" % event)
        if event == "open" and isinstance(args[0], (str, bytes)):
            path = realpath(os.fsdecode(args[0]))
            if path == "/proc" or path.startswith(("/proc/", "/dev/fd")):
                raise RuntimeError("harness: reading %s is not allowed" % path)
        if event == "import" and args[1] and str(args[1]).endswith(".so"):
            if not str(args[1]).startswith("/usr/"):
                raise RuntimeError("harness: native module %s refused" % args[1])

    sys.addaudithook(hook)
    box = []
    done = _thread.allocate_lock()
    done.acquire()

    def tell(kind, exc):
        lines = traceback.format_exception(exc)
        err.write("".join(lines[-12:]))
        err.write("VP-HARNESS %s %s\n" % (kind, lines[-1].strip()[:300] if lines else ""))

    def work():
        try:
            module = types.ModuleType("solution")
            module.__file__ = "/sandbox/solution.py"
            sys.modules["solution"] = module
            try:
                code = compile(answer_src, "solution.py", "exec")
            except (SyntaxError, ValueError) as exc:
                tell("compile-error", exc)
                box.append("failed")
                return
            try:
                exec(code, module.__dict__)
                names = dict(module.__dict__)
                names["__name__"] = "vp_test"
                exec(test, names)
                gc.collect()
            except AssertionError as exc:
                tell("assertion", exc)
                box.append("failed")
                return
            except SystemExit as exc:
                tell("exit", exc)
                box.append("failed")
                return
            except BaseException as exc:
                tell("exception", exc)
                box.append("failed")
                return
            box.append("passed")
        finally:
            done.release()

    armed.append(True)
    _thread.start_new_thread(work, ())
    done.acquire()
    for _ in range(200):
        if count() == 0:
            break
        _thread.allocate_lock().acquire(True, 0.01)
    result = tuple(box)
    try:
        out.flush()
    except BaseException:
        exit_(1)
    if count() != 0:
        err.write("VP-HARNESS exception threads left running after the tests\n")
        exit_(1)
    if result != ("passed",):
        exit_(1)
    write(1, b"\n" + secret + b"\n")
    exit_(0)


_main()
"""

JS_HARNESS = r"""
"use strict";
const fs = require("fs");
const answer = fs.readFileSync("solution.js", "utf8");
const test = fs.readFileSync("test_code.js", "utf8");
const sandboxModule = { exports: {}, id: "solution", filename: "/sandbox/solution.js" };
function sandboxRequire(name) { return require(name); }
sandboxRequire.main = require.main;
let ok = false;
try {
  new Function("require", "module", "exports", "__filename", "__dirname",
    answer + "\n;\n" + test)(sandboxRequire, sandboxModule, sandboxModule.exports,
    "/sandbox/solution.js", "/sandbox");
  ok = true;
} catch (e) {
  const kind = e instanceof SyntaxError ? "compile-error"
    : (e && e.name === "AssertionError") ? "assertion" : "exception";
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.stderr.write("VP-HARNESS " + kind + " " + String(e).slice(0, 300) + "\n");
}
if (ok) {
  const secret = fs.readFileSync(3);
  process.stdout.write("\n" + secret.toString() + "\n", () => process.exit(0));
} else {
  process.exitCode = 1;
}
"""

C_HARNESS = r"""
#include <unistd.h>
#include <stdio.h>
int vp_test_main(void);
int main(void) {
    int rc = vp_test_main();
    if (rc != 0) return rc;
    char secret[256];
    ssize_t n = read(3, secret, sizeof secret);
    if (n <= 0) return 1;
    fflush(stdout);
    if (write(1, "\n", 1) != 1 || write(1, secret, (size_t)n) != n || write(1, "\n", 1) != 1)
        return 1;
    return 0;
}
"""

SHELL_HARNESS = r"""
source ./solution.sh || { echo "VP-HARNESS exception sourcing the answer failed" >&2; exit 1; }
source ./test_code.sh
printf '\n'
cat <&3
printf '\n'
"""
