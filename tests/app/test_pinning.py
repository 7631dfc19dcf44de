"""Pins, the lockfile and the policies: pure units, then lock/verify/PinChecker over respx."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
import yaml

from proxy.backends.identity import Identity, IdentityUnavailable
from proxy.cli.pin import register_cli, run_cli
from proxy.config import Pin, PinningConfig, parse_config
from proxy.errors import status_of
from proxy.pinning import (
    FieldDrift,
    IdentityTarget,
    LockEntry,
    Lockfile,
    LockfileError,
    PinChecker,
    PinState,
    canonical_quantization,
    compare,
    diff_lockfiles,
    dump_lockfile,
    expectations,
    expected_for,
    lock,
    lockfile_path,
    read_lockfile,
    render_verify,
    resolve_target,
    verify,
    version_mismatch,
    write_lockfile,
)

T = TypeVar("T")
SHA_A = "a" * 64
SHA_B = "b" * 64


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


def ident(**fields: Any) -> Identity:
    return Identity("llamacpp", "m", dict(fields), "http://h/props", "2025-01-01T00:00:00Z")


# -- compare -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("Q4_K - Medium", "Q4_K_M"),
        ("Q4_K_M", "Q4_K_M"),
        ("q4_k_m", "Q4_K_M"),
        ("Q5_K - Small", "Q5_K_S"),
        ("Q3_K - Large", "Q3_K_L"),
        ("Q2_K - Medium", "Q2_K"),
        ("Q8_0", "Q8_0"),
        ("all F32", "F32"),
        ("IQ2_XXS - 2.0625 bpw", "IQ2_XXS"),
        ("TQ1_0 - 1.69 bpw ternary", "TQ1_0"),
        ("4bit", "4BIT"),
    ],
)
def test_canonical_quantization(value: str, canonical: str) -> None:
    assert canonical_quantization(value) == canonical


@pytest.mark.parametrize(
    ("expected", "observed", "drift"),
    [
        ({}, {"quantization": "Q8_0"}, []),
        ({"quantization": "Q4_K_M"}, {"quantization": "Q4_K - Medium"}, []),
        (
            {"quantization": "Q4_K_M"},
            {"quantization": "Q8_0"},
            [FieldDrift("quantization", "Q4_K_M", "Q8_0")],
        ),
        ({"sha256": SHA_A}, {"sha256": SHA_A}, []),
        ({"sha256": "sha256:" + SHA_A.upper()}, {"sha256": SHA_A}, []),
        ({"digest": SHA_A[:12]}, {"digest": SHA_A}, []),  # `ollama list` ID
        ({"digest": SHA_A[:8]}, {"digest": SHA_A}, [FieldDrift("digest", SHA_A[:8], SHA_A)]),
        ({"sha256": SHA_A}, {}, [FieldDrift("sha256", SHA_A, None)]),
        ({"n_params": 268098176}, {"n_params": 268098176}, []),
        ({"n_params": "268098176"}, {"n_params": 268098176}, []),
        ({"size": 1}, {"size": 2}, [FieldDrift("size", 1, 2)]),
        ({"parameter_size": "7b"}, {"parameter_size": "7B"}, []),
        ({"family": "llama", "id": None}, {"family": "llama"}, []),
    ],
)
def test_compare(
    expected: dict[str, Any], observed: dict[str, Any], drift: list[FieldDrift]
) -> None:
    assert compare(expected, ident(**observed)) == drift


def test_compare_is_sorted_and_describes() -> None:
    drift = compare({"sha256": SHA_A, "quantization": "Q4_K_M"}, ident(quantization="Q8_0"))
    assert [d.field for d in drift] == ["quantization", "sha256"]
    assert drift[0].describe() == "quantization Q4_K_M != Q8_0"
    assert drift[1].describe() == "sha256 not reported" and drift[1].unverifiable


# -- PinState ----------------------------------------------------------------------------------


def test_pin_state_statuses() -> None:
    ok = PinState.judge("v", {"quantization": "Q4_K_M"}, ident(quantization="Q4_K - Medium"))
    assert ok.status == "ok" and ok.reason() is None and ok.serving_ok
    drifted = PinState.judge(
        "v", {"quantization": "Q4_K_M", "sha256": SHA_A}, ident(quantization="Q8_0")
    )
    assert drifted.status == "drifted"
    assert drifted.reason() == "pin drifted: quantization Q4_K_M != Q8_0"
    unverifiable = PinState.judge("v", {"sha256": SHA_A}, ident(quantization="Q8_0"))
    assert unverifiable.status == "unverifiable"
    assert unverifiable.reason() == "pin unverifiable: sha256 not reported"
    down = PinState.judge("v", {"sha256": SHA_A}, IdentityUnavailable("connection failed"))
    assert down.status == "unreachable" and down.reason() == "pin unverified: connection failed"
    assert PinState.judge("v", {}, ident()).status == "unpinned"
    assert PinState.judge("v", {}, IdentityUnavailable("x")).status == "unpinned"


def test_drift_reason_shortens_hashes() -> None:
    state = PinState.judge("v", {"sha256": SHA_A}, ident(sha256=SHA_B))
    assert state.reason() == f"pin drifted: sha256 {SHA_A[:12]} != {SHA_B[:12]}"
    body = state.as_dict()
    assert body["drift"] == [{"field": "sha256", "expected": SHA_A, "observed": SHA_B}]
    assert body["observed"]["fields"] == {"sha256": SHA_B}
    json.dumps(body)


def test_version_mismatch_error_and_info_labels() -> None:
    state = PinState.judge(
        "v", {"quantization": "Q4_K_M", "sha256": SHA_A}, ident(quantization="Q8_0", id="m")
    )
    exc = version_mismatch(state)
    assert status_of(exc) == 409
    error = exc.body()["error"]
    assert error["code"] == "model_version_mismatch" and error["param"] == "model"
    assert "pin drifted: quantization Q4_K_M != Q8_0" in error["message"]
    assert "variant-proxy lock --variant v" in error["message"]
    assert error["expected"] == {"quantization": "Q4_K_M", "sha256": SHA_A}
    assert error["observed"] == {"quantization": "Q8_0", "sha256": None}
    assert state.info_labels() == {
        "status": "drifted",
        "sha256": "",
        "digest": "",
        "quantization": "Q8_0",
        "id": "m",
    }


# -- expected_for ------------------------------------------------------------------------------


def entry(**fields: Any) -> LockEntry:
    return LockEntry("b", "llamacpp", "m", "2025-01-01T00:00:00Z", "http://h/props", fields)


def test_expected_for_merges_pin_over_lockfile() -> None:
    locked = entry(
        quantization="Q4_K - Medium",
        sha256=SHA_A,
        model_path="/m.gguf",
        id="/m.gguf",
        build_info="b1",
        n_params=5,
    )
    pin = Pin(quantization="Q8_0")
    assert expected_for("v", pin, locked) == {
        "n_params": 5,
        "quantization": "Q8_0",
        "sha256": SHA_A,
    }
    assert expected_for("v", None, None) == {}
    assert expected_for("v", Pin(digest="abc"), None) == {"digest": "abc"}
    # without a sha256 the path is the best fingerprint there is
    assert expected_for("v", None, entry(model_path="/m.gguf", state="loaded")) == {
        "model_path": "/m.gguf"
    }


# -- the lockfile ------------------------------------------------------------------------------


def sample_lockfile() -> Lockfile:
    return Lockfile(
        {
            "zeta": entry(quantization="Q8_0", n_params=7),
            "alpha": LockEntry(
                "ollama",
                "ollama",
                "codellama:7b-instruct",
                "2025-01-01T00:00:00Z",
                "http://127.0.0.1:11434/api/tags",
                {"sha256": "0123456789", "digest": SHA_A, "size": 3825910662},
            ),
        }
    )


def test_lockfile_round_trip_and_stable_order(tmp_path: Path) -> None:
    path = tmp_path / "config" / "models.lock"
    write_lockfile(path, sample_lockfile())
    text = path.read_text()
    assert text.startswith("# variant-proxy lockfile")
    data = yaml.safe_load(text)
    assert list(data) == ["version", "variants"]
    assert list(data["variants"]) == ["alpha", "zeta"]
    assert list(data["variants"]["alpha"]) == [
        "backend",
        "kind",
        "model",
        "resolved_at",
        "source",
        "fields",
    ]
    assert list(data["variants"]["alpha"]["fields"]) == ["digest", "sha256", "size"]
    assert data["variants"]["alpha"]["fields"]["sha256"] == "0123456789"  # stays a string
    back = read_lockfile(path)
    assert back == Lockfile({k: sample_lockfile().entries[k] for k in ("alpha", "zeta")})
    assert dump_lockfile(back) == text  # byte-stable


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.lock"
    write_lockfile(path, sample_lockfile())
    before = path.read_text()

    def boom(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_lockfile(path, Lockfile())
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["models.lock"]  # no temp file left behind


def test_read_missing_lockfile_is_empty(tmp_path: Path) -> None:
    assert read_lockfile(tmp_path / "nope.lock") == Lockfile()
    (tmp_path / "empty.lock").write_text("")
    assert read_lockfile(tmp_path / "empty.lock") == Lockfile()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nvariants: {}\n", "version: unsupported 2"),
        ("[1, 2]\n", "must be a mapping"),
        ("variants: {v: {kind: x}}\n", "variants.v.backend: required"),
        ("extra: 1\n", "extra: unknown key"),
        (": :\n", "not valid YAML"),
        (
            "variants: {v: {backend: b, kind: k, model: m, resolved_at: t, source: s,"
            " fields: {x: [1]}}}\n",
            "variants.v.fields.x: must be a string or an integer",
        ),
    ],
)
def test_bad_lockfiles(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "models.lock"
    path.write_text(text)
    with pytest.raises(LockfileError, match=message):
        read_lockfile(path)


def test_diff_lockfiles() -> None:
    old = sample_lockfile()
    changed = dict(old.entries)
    changed["zeta"] = entry(quantization="Q4_K - Medium", n_params=7, sha256=SHA_B)
    del changed["alpha"]
    changed["beta"] = entry()
    assert diff_lockfiles(old, Lockfile(changed)) == [
        "- alpha",
        "+ beta",
        "~ zeta.quantization: Q8_0 -> Q4_K - Medium",
        f"~ zeta.sha256: (none) -> {SHA_B}",
    ]
    assert diff_lockfiles(old, old) == []


def test_lockfile_path(tmp_path: Path) -> None:
    assert lockfile_path("config/router.yaml", None) == Path("config/models.lock")
    assert lockfile_path("x/router.yaml", PinningConfig(lockfile="l.lock")) == Path("l.lock")


def test_pinning_config_is_strict() -> None:
    with pytest.raises(ValueError, match="policy"):
        PinningConfig.model_validate({"policy": "sometimes"})
    with pytest.raises(ValueError, match="Extra inputs"):
        PinningConfig.model_validate({"polcy": "warn"})
    assert PinningConfig().policy == "enforce"


# -- lock / verify against respx servers -------------------------------------------------------

OLLAMA = "http://127.0.0.1:11434"
LLAMA = "http://127.0.0.1:18081"
TAGS = {
    "models": [
        {
            "name": "codellama:7b-instruct",
            "model": "codellama:7b-instruct",
            "modified_at": "2025-10-03T23:34:03.409490317-07:00",
            "size": 3825910662,
            "digest": SHA_A,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": None,
                "parameter_size": "7B",
                "quantization_level": "Q4_0",
            },
        }
    ]
}
LLAMA_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "gemma",
            "object": "model",
            "owned_by": "llamacpp",
            "meta": {"n_params": 268098176, "size": 246587904, "ftype": "Q4_K - Medium"},
        }
    ],
}
LLAMA_PROPS = {"model_path": "/nonexistent/gemma.gguf", "model_ftype": "Q4_K - Medium"}


def config(pin: dict[str, Any] | None = None, **extra: Any) -> Any:
    data: dict[str, Any] = {
        "backends": {
            "ollama": {"kind": "ollama", "url": OLLAMA},
            "llama": {"kind": "llamacpp", "url": LLAMA},
            "managed": {"kind": "llamacpp", "command": ["llama-server", "--port", "{port}"]},
        },
        "variants": {
            "instruct": {"backend": "ollama", "model": "codellama:7b-instruct"},
            "gemma": {"backend": "llama", "model": "gemma", **({"pin": pin} if pin else {})},
            "lazy": {"backend": "managed", "model": "x"},
        },
        "routes": {"default": "instruct"},
        **extra,
    }
    return parse_config(data)


def mock_servers(quant: str = "Q4_K - Medium", digest: str = SHA_A) -> None:
    tags = json.loads(json.dumps(TAGS))
    tags["models"][0]["digest"] = digest
    respx.get(f"{OLLAMA}/api/tags").respond(json=tags)
    respx.post(f"{OLLAMA}/api/show").respond(404, json={"error": "not found"})
    respx.get(f"{LLAMA}/v1/models").respond(json=LLAMA_MODELS)
    respx.get(f"{LLAMA}/props").respond(json={**LLAMA_PROPS, "model_ftype": quant})


async def do_lock(cfg: Any, **kw: Any) -> tuple[Lockfile, list[str]]:
    async with httpx.AsyncClient() as client:
        return await lock(cfg, client, hashes=None, **kw)


async def do_verify(cfg: Any, lockfile: Lockfile, **kw: Any) -> dict[str, PinState]:
    async with httpx.AsyncClient() as client:
        return await verify(cfg, client, lockfile, hashes=None, **kw)


@respx.mock
def test_lock_then_verify_then_drift() -> None:
    cfg = config()
    mock_servers()
    locked, lines = run(do_lock(cfg))
    assert lines[:2] == ["+ gemma", "+ instruct"]
    assert lines[2].startswith("! lazy: not locked: backend 'managed' is managed")
    assert set(locked.entries) == {"gemma", "instruct"}
    assert locked.entries["instruct"].fields["digest"] == SHA_A
    assert locked.entries["gemma"].source == f"{LLAMA}/props"

    states = run(do_verify(cfg, locked))
    assert {n: s.status for n, s in states.items()} == {
        "gemma": "ok",
        "instruct": "ok",
        "lazy": "unpinned",
    }
    # re-locking an unchanged world changes nothing, not even resolved_at
    again, lines = run(do_lock(cfg, previous=locked))
    assert again == locked and [x for x in lines if not x.startswith("!")] == []

    respx.reset()
    mock_servers(quant="Q8_0", digest=SHA_B)
    states = run(do_verify(cfg, locked))
    assert states["gemma"].status == "drifted"
    assert states["gemma"].reason() == "pin drifted: quantization Q4_K - Medium != Q8_0"
    assert states["instruct"].drift == [FieldDrift("digest", SHA_A, SHA_B)]
    text = render_verify(states, as_json=False)
    assert "gemma     drifted" in text
    assert "    quantization: expected Q4_K - Medium" in text
    assert "                  observed Q8_0" in text
    assert "lazy      unpinned" in text
    body = json.loads(render_verify(states, as_json=True))
    assert body["ok"] is False and body["variants"]["gemma"]["status"] == "drifted"

    relocked, lines = run(do_lock(cfg, previous=locked, variants=["gemma"]))
    assert lines[0] == "~ gemma.quantization: Q4_K - Medium -> Q8_0"
    assert relocked.entries["instruct"] == locked.entries["instruct"]  # not re-locked


@respx.mock
def test_verify_config_pin_and_unreachable() -> None:
    cfg = config(pin={"quantization": "Q4_K_M"})
    respx.get(f"{LLAMA}/v1/models").mock(side_effect=httpx.ConnectError("refused"))
    states = run(do_verify(cfg, Lockfile()))
    assert states["gemma"].status == "unreachable"
    assert "connection failed" in (states["gemma"].detail or "")
    assert states["instruct"].status == "unpinned"  # never queried
    assert "gemma     unreachable  GET" in render_verify(states, as_json=False)


def test_lock_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        run(do_lock(config(), variants=["nope"]))


def test_resolve_target() -> None:
    cfg = config()
    assert resolve_target(cfg, "gemma") == IdentityTarget("llamacpp", LLAMA, {}, "gemma")
    assert resolve_target(cfg, "lazy") is None
    assert resolve_target(cfg, "lazy", {"managed": "http://127.0.0.1:9999"}) == IdentityTarget(
        "llamacpp", "http://127.0.0.1:9999", {}, "x"
    )


# -- PinChecker --------------------------------------------------------------------------------


def checker(policy: Any, **kw: Any) -> PinChecker:
    cfg = config(pin={"quantization": "Q4_K_M"})
    client = httpx.AsyncClient()
    return PinChecker(
        client,
        lambda name: resolve_target(cfg, name),
        expected=expectations(cfg, Lockfile()),
        policy=policy,
        hashes=None,
        **kw,
    )


@respx.mock
def test_checker_enforce() -> None:
    seen: list[PinState] = []
    pins = checker("enforce", on_state=seen.append)
    assert pins.eligible("gemma") == "pin not verified yet"
    assert pins.eligible("instruct") is None  # unpinned
    mock_servers()
    run(pins.check_all())
    assert pins.eligible("gemma") is None and pins.mismatch("gemma") is None
    assert {s.variant for s in seen} == {"gemma", "instruct", "lazy"}

    respx.reset()
    mock_servers(quant="Q8_0")
    state = run(pins.check_variant("gemma"))
    assert state.status == "drifted"
    assert pins.eligible("gemma") == "pin drifted: quantization Q4_K_M != Q8_0"
    assert pins.mismatch("gemma") is state and pins.blocked["gemma"] == 2
    snap = pins.snapshot()
    assert snap["policy"] == "enforce"
    assert snap["variants"]["gemma"]["status"] == "drifted"
    json.dumps(snap)


@respx.mock
def test_checker_unreachable_and_deferred() -> None:
    respx.get(f"{LLAMA}/v1/models").mock(side_effect=httpx.ConnectError("refused"))
    respx.get(f"{OLLAMA}/api/tags").mock(side_effect=httpx.ConnectError("refused"))
    pins = checker("enforce")
    run(pins.check_all())
    assert (pins.eligible("gemma") or "").startswith("pin unverified: GET")
    deferred = checker("enforce", verified_on_start=lambda name: name == "gemma")
    assert deferred.eligible("gemma") is None  # not checked yet: on_ready will verify
    run(deferred.check_all())
    assert deferred.eligible("gemma") is None


@respx.mock
@pytest.mark.parametrize("policy", ["warn", "off"])
def test_checker_warn_and_off_never_block(policy: Any) -> None:
    mock_servers(quant="Q8_0")
    pins = checker(policy)
    run(pins.check_all())
    assert pins.states["gemma"].status == "drifted"
    assert pins.eligible("gemma") is None and pins.mismatch("gemma") is None
    assert pins.warned["gemma"] == (1 if policy == "warn" else 0)


@respx.mock
def test_checker_shares_one_read_per_server_and_model() -> None:
    cfg = parse_config(
        {
            "backends": {"llama": {"kind": "llamacpp", "url": LLAMA}},
            "variants": {
                "a": {"backend": "llama", "model": "gemma", "pin": {"n_params": 268098176}},
                "b": {"backend": "llama", "model": "gemma", "pin": {"n_params": 1}},
            },
            "routes": {"default": "a"},
        }
    )
    mock_servers()
    pins = PinChecker(
        httpx.AsyncClient(),
        lambda n: resolve_target(cfg, n),
        expected=expectations(cfg, Lockfile()),
        hashes=None,
    )
    states = run(pins.check_all())
    assert respx.calls.call_count == 2  # one /v1/models + one /props for both variants
    assert states["a"].status == "ok" and states["b"].status == "drifted"
    pins.set_expected({"a": {"n_params": 268098176}}, policy="warn")
    assert set(pins.states) == {"a"} and pins.policy == "warn"


# -- CLI ---------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="variant-proxy")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def write_cfg(tmp_path: Path, **extra: Any) -> Path:
    data = {
        "backends": {"llama": {"kind": "llamacpp", "url": LLAMA}},
        "variants": {"gemma": {"backend": "llama", "model": "gemma"}},
        "routes": {"default": "gemma"},
        **extra,
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_cli(parse(argv), out, err, client_factory=httpx.AsyncClient)
    return code, out.getvalue(), err.getvalue()


@respx.mock
def test_cli_lock_and_verify(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path)
    mock_servers()
    code, out, err = cli(["lock", "--config", str(cfg), "--dry-run"])
    assert code == 0 and "+ gemma" in out and "not written" in out
    assert not (tmp_path / "models.lock").exists()

    code, out, _ = cli(["lock", "--config", str(cfg)])
    assert code == 0 and f"{tmp_path / 'models.lock'}: written (1 changes)" in out
    code, out, _ = cli(["lock", "--config", str(cfg)])
    assert code == 0 and "up to date" in out

    code, out, _ = cli(["verify", "--config", str(cfg)])
    assert code == 0 and out.startswith("gemma  ok")

    respx.reset()
    mock_servers(quant="Q8_0")
    code, out, _ = cli(["verify", "--config", str(cfg), "--json"])
    assert code == 1
    assert json.loads(out)["variants"]["gemma"]["drift"] == [
        {"field": "quantization", "expected": "Q4_K - Medium", "observed": "Q8_0"}
    ]


@respx.mock
def test_cli_unreachable_and_errors(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path)
    respx.get(f"{LLAMA}/v1/models").mock(side_effect=httpx.ConnectError("refused"))
    code, out, err = cli(["lock", "--config", str(cfg)])
    assert code == 1 and "! gemma: not locked" in err
    lockfile = tmp_path / "other.lock"
    lockfile.write_text("version: 9\n")
    code, _, err = cli(["verify", "--config", str(cfg), "--lockfile", str(lockfile)])
    assert code == 2 and "unsupported 9" in err
    code, _, err = cli(["verify", "--config", str(tmp_path / "missing.yaml")])
    assert code == 2 and "invalid config" in err
    code, _, err = cli(["lock", "--config", str(cfg), "--url", "nonsense"])
    assert code == 2 and "BACKEND=http" in err
    code, _, err = cli(["lock", "--config", str(cfg), "--variant", "nope"])
    assert code == 2 and "unknown variant 'nope'" in err


def test_cli_uses_settings_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_cfg(tmp_path)
    monkeypatch.setenv("VARIANT_PROXY_CONFIG", str(cfg))
    args = parse(["verify"])
    assert args.config is None
    code, out, _ = cli(["verify"])
    assert code == 0 and "gemma  unpinned" in out
