from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import load_config, parse_config
from proxy.errors import ConfigError
from tests.helpers.config import DATA, ROOT


def minimal() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DATA / "minimal.yaml").read_text())
    return data


def issues(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(i) for i in info.value.issues]


def test_minimal_config_loads_as_written() -> None:
    cfg = load_config(DATA / "minimal.yaml")
    assert cfg.backends["local"].kind == "openai"
    assert cfg.backends["local"].url == "http://127.0.0.1:11434"
    assert cfg.variants["instruct"].aliases == ["codellama-instruct"]
    assert [c.variant for c in cfg.routes.completion] == ["code"]
    assert cfg.routes.default == "instruct"


@pytest.mark.parametrize(
    "path",
    sorted([ROOT / "config" / "router.yaml", *(ROOT / "config" / "examples").glob("*.yaml")]),
)
def test_shipped_configs_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARIANT_PROXY_LLAMA_SERVER", "/bin/true")
    monkeypatch.setenv("VARIANT_PROXY_MODEL", "/tmp/model.gguf")
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", "k")
    load_config(path)


def test_unknown_key_is_rejected_with_its_path() -> None:
    data = minimal()
    data["backends"]["local"]["colour"] = "blue"
    assert issues(data) == ["backends.local.colour: unknown key"]


def test_bad_kind_names_the_key() -> None:
    data = minimal()
    data["backends"]["local"]["kind"] = "tgi"
    (issue,) = issues(data)
    assert issue.startswith("backends.local.kind: ")
    assert "ollama" in issue


def test_bad_url() -> None:
    data = minimal()
    data["backends"]["local"]["url"] = "localhost:11434"
    (issue,) = issues(data)
    assert issue.startswith("backends.local.url: ") and "http://" in issue


def test_url_with_v1_suffix_is_normalised() -> None:
    data = minimal()
    data["backends"]["local"]["url"] = "http://127.0.0.1:1234/v1/"
    assert parse_config(data).backends["local"].url == "http://127.0.0.1:1234"


def test_cross_references_are_checked_all_at_once() -> None:
    data = minimal()
    data["variants"]["code"]["backend"] = "nowhere"
    data["routes"]["instruction"] = ["instruct", "missing"]
    data["routes"]["default"] = "gone"
    found = issues(data)
    assert "variants.code.backend: unknown backend 'nowhere' (known: local)" in found
    assert any(
        i.startswith("routes.instruction.1.variant: unknown variant 'missing'") for i in found
    )
    assert any(i.startswith("routes.default: unknown variant 'gone'") for i in found)


def test_alias_collisions_and_reserved_names() -> None:
    data = minimal()
    data["variants"]["code"]["aliases"] = ["codellama-instruct", "auto"]
    found = issues(data)
    assert "variants.code.aliases: 'codellama-instruct' is already used by instruct" in found
    assert any("'auto' is reserved" in i for i in found)


def test_weights_all_or_nothing() -> None:
    data = minimal()
    data["routes"]["instruction"] = [{"variant": "instruct", "weight": 9}, "code"]
    assert issues(data) == ["routes.instruction: give every candidate a weight, or none of them"]


def test_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    data = minimal()
    data["backends"]["local"]["url"] = "http://127.0.0.1:${OLLAMA_PORT:-11434}"
    assert parse_config(data).backends["local"].url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_PORT", "9999")
    assert parse_config(data).backends["local"].url == "http://127.0.0.1:9999"
    data["variants"]["code"]["model"] = "${NOT_SET_ANYWHERE}"
    assert issues(data) == ["variants.code.model: environment variable NOT_SET_ANYWHERE is not set"]


def test_api_key_env_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    data = minimal()
    data["backends"]["local"]["api_key_env"] = "MY_KEY"
    assert issues(data) == ["backends.local.api_key_env: environment variable MY_KEY is not set"]
    monkeypatch.setenv("MY_KEY", "secret")
    parse_config(data)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "not valid YAML: line" in str(info.value)
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.yaml")
    assert issues([1, 2]) == ["the file must be a YAML mapping"]


def test_managed_backend_needs_model_file_when_command_uses_it() -> None:
    data = minimal()
    data["backends"]["local"] = {"kind": "llamacpp", "command": ["llama-server", "-m", "{model}"]}
    assert issues(data) == ["backends.local.model_file: required: command uses {model}"]


def test_router_yaml_ships_the_default_classifier_rules() -> None:
    from proxy.classify import ClassifierConfig

    assert load_config(ROOT / "config" / "router.yaml").classifier == ClassifierConfig()


def test_variant_timeouts_override_only_the_keys_they_set() -> None:
    from proxy.runtime import Runtime

    data = minimal()
    data["backends"]["local"]["timeouts"] = {"first_byte": 600, "idle": 30}
    data["variants"]["code"]["timeouts"] = {"idle": 5}
    rt = Runtime(parse_config(data), "<test>", {})
    code = rt.timeouts("code", "local")
    assert (code.first_byte, code.idle, code.connect) == (600, 5, 5.0)
    assert rt.timeouts("instruct", "local").idle == 30
