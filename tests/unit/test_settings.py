"""Settings: defaults, then the environment, then overrides; secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow import defaults
from supportflow.settings import DEFAULT_SANDBOX_URL, env_name, load_settings


def test_defaults_apply_when_the_environment_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.flows_dir == defaults.FLOWS
    assert settings.sandbox_knowledge == defaults.KNOWLEDGE
    assert settings.uses_sandbox
    assert settings.assistant_base_url == DEFAULT_SANDBOX_URL


def test_a_config_folder_in_the_working_folder_replaces_the_packaged_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    defaults.write_config(tmp_path / "config")
    settings = load_settings(environ={})
    assert settings.flows_dir == tmp_path / "config" / "flows"
    assert settings.sandbox_knowledge == tmp_path / "config" / "sandbox" / "knowledge.yaml"


def test_the_environment_overrides_defaults_with_typed_values() -> None:
    settings = load_settings(environ={
        "SUPPORTFLOW_REDIS_URL": "redis://redis:6379/2",
        "SUPPORTFLOW_LEASE_TTL_S": "3.5",
        "SUPPORTFLOW_MAX_MESSAGE_CHARS": "100",
        "SUPPORTFLOW_FLOWS_DIR": "/etc/flows",
    })
    assert settings.redis_url == "redis://redis:6379/2"
    assert settings.lease_ttl_s == 3.5
    assert settings.max_message_chars == 100
    assert settings.flows_dir == Path("/etc/flows")


def test_an_empty_environment_variable_keeps_the_default() -> None:
    assert load_settings(environ={"SUPPORTFLOW_KEY_PREFIX": ""}).key_prefix == "sf"


def test_openai_settings_use_openais_own_variable_names() -> None:
    assert env_name("openai_api_key") == "OPENAI_API_KEY"
    assert env_name("redis_url") == "SUPPORTFLOW_REDIS_URL"
    settings = load_settings(environ={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://x/v1"})
    assert settings.openai_api_key == "sk-test"
    assert not settings.uses_sandbox
    assert settings.assistant_base_url == "http://x/v1"


def test_overrides_win_over_the_environment() -> None:
    settings = load_settings(
        {"redis_url": "redis://override/0", "flows_dir": "/tmp/flows"},
        environ={"SUPPORTFLOW_REDIS_URL": "redis://env/0"},
    )
    assert settings.redis_url == "redis://override/0"
    assert settings.flows_dir == Path("/tmp/flows")


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(KeyError, match="redis_uri"):
        load_settings({"redis_uri": "redis://typo/0"}, environ={})


def test_a_number_setting_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError):
        load_settings(environ={"SUPPORTFLOW_LEASE_TTL_S": "soon"})


def test_redacted_masks_the_api_key_and_keeps_the_rest() -> None:
    values = load_settings(environ={"OPENAI_API_KEY": "sk-very-secret"}).redacted()
    assert values["openai_api_key"] == "***"
    assert "sk-very-secret" not in repr(values)
    assert values["redis_url"] == "redis://127.0.0.1:6379/0"
    assert isinstance(values["flows_dir"], str)


def test_redacted_shows_an_unset_key_as_unset() -> None:
    assert load_settings(environ={}).redacted()["openai_api_key"] is None
