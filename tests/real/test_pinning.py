"""Pinning against a real llama-server: lock the gemma GGUF, swap the file, see the drift.

The served file is a copy in tmp_path. The "new version" is the same GGUF with one byte of
its ``general.name`` metadata string changed, so it still loads and reports the same
quantization and parameter count: only the weights file's sha256 tells them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.backends.identity import FileHashCache, sha256_file
from proxy.cli.pin import register_cli, run_cli
from proxy.config import load_config
from proxy.pinning import (
    PinChecker,
    expectations,
    lock,
    read_lockfile,
    resolve_target,
    verify,
    write_lockfile,
)
from proxy.supervisor import ManagedProcess, find_free_port, render_command
from tests.helpers.config import llama_argv, require_real_server

pytestmark = pytest.mark.real_server

LLAMA_ARGV = llama_argv("{binary}", extra=("-t", "2"))


def rename_model(path: Path) -> None:
    """Change the first byte of the GGUF ``general.name`` string value in place."""
    with path.open("r+b") as file:
        head = file.read(1 << 20)
        key = head.find(b"general.name")
        assert key > 0, "general.name not found in the GGUF header"
        value_type, length = struct.unpack_from("<IQ", head, key + len(b"general.name"))
        assert value_type == 8 and length > 0  # GGUF_TYPE_STRING
        offset = key + len(b"general.name") + 12
        file.seek(offset)
        file.write(b"X" if head[offset : offset + 1] != b"X" else b"Y")


def config_file(tmp_path: Path, port: int, **backend: Any) -> Path:
    data = {
        "server": {"state_dir": str(tmp_path / "state")},
        "backends": {"gemma": {"kind": "llamacpp", "url": f"http://127.0.0.1:{port}", **backend}},
        "variants": {"gemma-instruct": {"backend": "gemma", "model": "gemma3-270m"}},
        "routes": {"default": "gemma-instruct"},
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_lock_swap_verify_enforce(tmp_path: Path) -> None:
    binary, model = require_real_server()
    served = tmp_path / "gemma.gguf"
    shutil.copyfile(model, served)
    port = find_free_port()
    argv = render_command(
        [a.replace("{binary}", binary) for a in LLAMA_ARGV], port=port, model=str(served)
    )
    proc = ManagedProcess(
        argv,
        name="llama-pinning",
        health_url=f"http://127.0.0.1:{port}/health",
        log_path=tmp_path / "llama-server.log",
        start_timeout=120,
        stop_grace=10,
        max_restarts=0,
    )
    cfg_path = config_file(tmp_path, port)
    cfg = load_config(cfg_path)
    lock_path = tmp_path / "models.lock"
    original_sha = sha256_file(served)

    async def main() -> None:
        hashes = FileHashCache()
        try:
            await proc.start()
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                locked, lines = await lock(cfg, client, hashes=hashes)
                assert lines == ["+ gemma-instruct"]
                write_lockfile(lock_path, locked)
                fields = read_lockfile(lock_path).entries["gemma-instruct"].fields
                assert fields["sha256"] == original_sha
                assert fields["quantization"] == "Q4_K - Medium"
                assert fields["model_path"] == str(served)
                assert fields["id"] == "gemma3-270m"
                assert isinstance(fields["n_params"], int) and fields["n_params"] > 0

                states = await verify(cfg, client, read_lockfile(lock_path), hashes=hashes)
                assert states["gemma-instruct"].status == "ok", states

                # A new "version" of the model under the same path, then a restart.
                await proc.stop()
                rename_model(served)
                await proc.start()
                new_sha = sha256_file(served)
                assert new_sha != original_sha

                states = await verify(cfg, client, read_lockfile(lock_path), hashes=hashes)
                state = states["gemma-instruct"]
                assert state.status == "drifted"
                assert [(d.field, d.expected, d.observed) for d in state.drift] == [
                    ("sha256", original_sha, new_sha)
                ]
                assert state.observed is not None
                assert state.observed.fields["quantization"] == "Q4_K - Medium"

                pins = PinChecker(
                    client,
                    lambda name: resolve_target(cfg, name),
                    expected=expectations(cfg, read_lockfile(lock_path)),
                    policy="enforce",
                    hashes=hashes,
                )
                assert pins.eligible("gemma-instruct") == "pin not verified yet"
                await pins.check_all()
                assert pins.eligible("gemma-instruct") == (
                    f"pin drifted: sha256 {original_sha[:12]} != {new_sha[:12]}"
                )
                assert pins.mismatch("gemma-instruct") is not None

                # Re-locking accepts the new version; the change is one field.
                relocked, lines = await lock(
                    cfg, client, previous=read_lockfile(lock_path), hashes=hashes
                )
                assert lines == [f"~ gemma-instruct.sha256: {original_sha} -> {new_sha}"]
                pins.set_expected(expectations(cfg, relocked))
                await pins.check_all()
                assert pins.eligible("gemma-instruct") is None
        finally:
            await proc.stop()

    asyncio.run(asyncio.wait_for(main(), 300))


def test_cli_lock_and_verify_start_a_managed_backend(tmp_path: Path) -> None:
    binary, model = require_real_server()
    served = tmp_path / "gemma.gguf"
    shutil.copyfile(model, served)
    command = [a.replace("{binary}", binary) for a in LLAMA_ARGV]
    data = {
        "server": {"state_dir": str(tmp_path / "state")},
        "backends": {
            "gemma": {
                "kind": "llamacpp",
                "command": command,
                "model_file": str(served),
                "start_timeout": 120,
            }
        },
        "variants": {"gemma-instruct": {"backend": "gemma", "model": "gemma3-270m"}},
        "routes": {"default": "gemma-instruct"},
    }
    cfg_path = tmp_path / "router.yaml"
    cfg_path.write_text(yaml.safe_dump(data))

    parser = argparse.ArgumentParser(prog="variant-proxy")
    register_cli(parser.add_subparsers(dest="command", required=True))

    def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run_cli(parser.parse_args(list(argv)), out, err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = cli("lock", "--config", str(cfg_path))  # not running, no --start
    assert code == 1 and "! gemma-instruct: not locked: backend 'gemma' is managed" in err

    code, out, err = cli("lock", "--config", str(cfg_path), "--start")
    assert code == 0, err
    assert "+ gemma-instruct" in out
    entry = read_lockfile(tmp_path / "models.lock").entries["gemma-instruct"]
    assert entry.fields["sha256"] == sha256_file(served)

    rename_model(served)
    code, out, err = cli("verify", "--config", str(cfg_path), "--start", "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["variants"]["gemma-instruct"]["status"] == "drifted"
    assert [d["field"] for d in report["variants"]["gemma-instruct"]["drift"]] == ["sha256"]
