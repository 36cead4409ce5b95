"""The `supportflow` command, called in-process through `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from supportflow.cli import main

VALID = {"welcome": "Hi!", "backend": {"kind": "assistants", "assistant_id": "asst_1"}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "SUPPORTFLOW_FLOWS_DIR", "SUPPORTFLOW_DEFAULT_FLOW"):
        monkeypatch.delenv(name, raising=False)


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_flows_check_passes_on_the_shipped_flows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out
    assert "default.yaml" in out


def test_flows_check_lists_each_good_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "default", VALID)
    write(tmp_path, "sales", {**VALID, "thread": {"scope": "contact"},
                              "widget": {"identity": "required"}})
    assert main(["flows", "check", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "'default'" in out and "identity optional" in out
    assert "'sales'" in out and "contact threads, identity required" in out
    assert "2 flow(s) OK" in out


def test_flows_check_fails_naming_the_bad_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "default", VALID)
    bad = write(tmp_path, "broken", {**VALID, "poll": {"delays": [30]}})
    assert main(["flows", "check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {bad}" in out
    assert "poll.delays.0:" in out
    assert "OK" in out  # the good file is still reported


def test_flows_check_fails_without_the_default_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "other", VALID)
    assert main(["flows", "check", "--dir", str(tmp_path)]) == 1
    assert "no flow named 'default'" in capsys.readouterr().out


def test_flows_check_fails_on_a_missing_or_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flows", "check", "--dir", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["flows", "check", "--dir", str(tmp_path)]) == 1
    assert "no flow files" in capsys.readouterr().err


def test_flows_check_reads_the_folder_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "default", {"welcome": ""})
    monkeypatch.setenv("SUPPORTFLOW_FLOWS_DIR", str(tmp_path))
    assert main(["flows", "check"]) == 1
    assert "welcome:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["flows"], ["bogus"], ["dev", "--port", "abc"],
                                  ["flows", "check", "--nope"]])
def test_bad_usage_exits_with_2_and_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_help_exits_with_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "dev" in capsys.readouterr().out


def test_a_bad_setting_in_the_environment_exits_with_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPPORTFLOW_LEASE_TTL_S", "soon")
    assert main(["config"]) == 2
    assert "bad setting" in capsys.readouterr().err


def test_config_prints_settings_with_the_key_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", "redis://example:6379/3")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "sk-very-secret" not in out
    assert "openai_api_key" in out and "***" in out
    assert "redis://example:6379/3" in out
    assert "SUPPORTFLOW_REDIS_URL" in out


def test_config_as_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    assert main(["config", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["openai_api_key"] == "***"


def test_sandbox_refuses_a_missing_knowledge_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "--knowledge", str(tmp_path / "none.yaml")]) == 2
    assert "no knowledge file" in capsys.readouterr().err


def test_dev_refuses_a_web_port_already_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dev", "--port", str(port)]) == 1
    assert "already in use" in capsys.readouterr().err


def test_dev_runs_the_sandbox_only_without_an_api_key(tmp_path: Path) -> None:
    from supportflow.runtime.dev import DevOptions, child_env, process_specs
    from supportflow.settings import load_settings

    options = DevOptions(web_port=5050, data_dir=tmp_path, sandbox_port=8799)
    local = load_settings(environ={})
    env = child_env(local, "redis://127.0.0.1:7000/0", "http://127.0.0.1:8799/v1")
    specs = {spec.name: list(spec.argv) for spec in process_specs(options, local, env)}
    assert list(specs) == ["sandbox", "worker", "beat", "web"]
    assert env["SUPPORTFLOW_REDIS_URL"] == "redis://127.0.0.1:7000/0"
    assert env["SUPPORTFLOW_SANDBOX_URL"] == "http://127.0.0.1:8799/v1"
    web = specs["web"]
    assert web[web.index("--host") + 1:web.index("--host") + 4] == ["127.0.0.1", "--port", "5050"]
    assert specs["beat"][-3:] == ["beat", "--loglevel", "INFO"]  # schedule and lock in Redis
    with_key = load_settings(environ={"OPENAI_API_KEY": "sk-x"})
    assert "sandbox" not in {spec.name for spec in process_specs(options, with_key, env)}


def test_dev_runs_one_worker_process_per_core_each_its_own_node(tmp_path: Path) -> None:
    from supportflow.runtime.dev import DevOptions, child_env, process_specs
    from supportflow.settings import load_settings

    local = load_settings(environ={})
    options = DevOptions(web_port=5050, data_dir=tmp_path, workers=2)
    env = child_env(local, "redis://127.0.0.1:7000/0", "http://127.0.0.1:8799/v1")
    workers = {spec.name: list(spec.argv) for spec in process_specs(options, local, env)
               if spec.name.startswith("worker")}
    assert list(workers) == ["worker", "worker2"]
    hostnames = {argv[argv.index("--hostname") + 1] for argv in workers.values()}
    assert len(hostnames) == 2


def test_dev_refuses_fewer_than_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_dev_wires_the_sandboxs_webhooks_to_the_web_app_unless_told_not_to(tmp_path: Path) -> None:
    from supportflow.runtime.dev import DevOptions, child_env, process_specs
    from supportflow.settings import load_settings
    from supportflow.webhooks.signing import is_secret

    local = load_settings(environ={})
    for webhooks in (True, False):
        options = DevOptions(web_port=5050, data_dir=tmp_path, webhooks=webhooks)
        env = child_env(local, "redis://127.0.0.1:7000/0", "http://127.0.0.1:8799/v1", options)
        sandbox = next(s for s in process_specs(options, local, env) if s.name == "sandbox")
        wired = "http://127.0.0.1:5050/v1/integrations/openai/default" in sandbox.argv
        # One secret in the environment every child shares: the sandbox signs, the web verifies.
        assert wired is webhooks and is_secret(env.get("OPENAI_WEBHOOK_SECRET")) is webhooks
        assert not any(arg.startswith("whsec_") for arg in sandbox.argv)


def test_init_writes_a_config_folder_that_flows_check_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "config" / "flows" / "default.yaml").is_file()
    assert (tmp_path / "config" / "sandbox" / "knowledge.yaml").is_file()
    capsys.readouterr()
    assert main(["flows", "check"]) == 0
    assert str(tmp_path / "config" / "flows" / "default.yaml") in capsys.readouterr().out


def test_init_keeps_existing_files_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = tmp_path / "config" / "flows" / "default.yaml"
    flow.parent.mkdir(parents=True)
    flow.write_text("# mine\n", encoding="utf-8")
    assert main(["init"]) == 1
    assert "already there" in capsys.readouterr().err
    assert flow.read_text(encoding="utf-8") == "# mine\n"
    assert main(["init", "--force"]) == 0
    assert "welcome:" in flow.read_text(encoding="utf-8")


def test_widget_snippet_prints_the_versioned_tag_with_its_integrity(
    capsys: pytest.CaptureFixture[str]
) -> None:
    from supportflow.web.widget_assets import WidgetAssets

    assets = WidgetAssets.load()
    assert main(["widget", "snippet", "--url", "https://support.acme.example"]) == 0
    captured = capsys.readouterr()
    assert f'src="https://support.acme.example{assets.path("widget.js")}"' in captured.out
    assert f'integrity="{assets.integrity("widget.js")}"' in captured.out
    assert 'data-flow="default"' in captured.out and "allowed_origins" in captured.err
    assert main(["widget", "snippet", "--url", "support.acme.example/chat"]) == 2
    assert main(["widget", "snippet", "--url", "https://x.example", "--flow", "nope"]) == 1
