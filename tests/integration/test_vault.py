"""The credentials vault: encrypted at rest, keys never shown, used by flows through connectors."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.vault import Vault, VaultError, new_vault_key
from supportflow.cli import main
from supportflow.domain.connector import Connector
from supportflow.runtime.redis_server import EmbeddedRedis
from supportflow.sandbox.store import bearer_fingerprint
from supportflow.webhooks.signing import new_secret
from tests.conftest import VAULT_KEY, Processes, Sandbox, make_app, stack_env

from .chat import Chat

SECRET = "sk-proj-TESTKEY-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def vault(redis_url: str) -> Vault:
    client = redis.Redis.from_url(redis_url)
    client.delete("vaulttest:vault", "vaulttest:vault:webhooks")
    return Vault(client, prefix="vaulttest", key=VAULT_KEY)


def test_a_connector_is_encrypted_at_rest_and_read_back(vault: Vault) -> None:
    vault.set(Connector("acme", SECRET, "http://127.0.0.1:9/v1", "org-1", "proj-1"))
    raw = vault.redis.hget("vaulttest:vault", "acme")
    assert raw and SECRET.encode() not in raw and b"org-1" not in raw
    found = vault.get("acme")
    assert found.api_key == SECRET and found.organization == "org-1"
    assert SECRET not in repr(found)
    assert vault.listing() == [{"name": "acme", "base_url": "http://127.0.0.1:9/v1",
                                "organization": "org-1", "project": "proj-1"}]


def test_a_vault_without_its_key_or_with_another_key_refuses(vault: Vault) -> None:
    vault.set(Connector("acme", SECRET))
    with pytest.raises(VaultError, match="locked"):
        Vault(vault.redis, prefix="vaulttest", key=None).get("acme")
    with pytest.raises(VaultError, match="another vault key"):
        Vault(vault.redis, prefix="vaulttest", key=new_vault_key()).get("acme")
    with pytest.raises(VaultError, match="not a valid key"):
        Vault(vault.redis, prefix="vaulttest", key="short")


@pytest.mark.parametrize("connector", [Connector("Bad Name", SECRET), Connector("ok", "  ")])
def test_bad_connectors_are_refused_and_nothing_is_stored(vault: Vault, connector: Connector) -> None:
    with pytest.raises(VaultError):
        vault.set(connector)
    assert vault.names() == []


def test_cli_sets_lists_and_deletes_without_ever_printing_the_key(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", redis_url)
    monkeypatch.setenv("SUPPORTFLOW_KEY_PREFIX", "vaultcli")
    monkeypatch.setenv("SUPPORTFLOW_VAULT_KEY", VAULT_KEY)
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert main(["vault", "set", "acme", "--base-url", "http://127.0.0.1:9/v1"]) == 0
    assert main(["vault", "list"]) == 0
    assert main(["vault", "delete", "acme"]) == 0
    assert main(["vault", "delete", "acme"]) == 1
    monkeypatch.delenv("SUPPORTFLOW_VAULT_KEY")
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert main(["vault", "set", "other"]) == 1
    out = capsys.readouterr()
    assert "acme  http://127.0.0.1:9/v1  key: set" in out.out
    assert "locked" in out.err
    assert SECRET not in out.out + out.err


def test_webhook_secrets_are_sealed_and_rotation_keeps_the_previous_one_for_a_while(
        vault: Vault) -> None:
    first, second, third = new_secret(), new_secret(), new_secret()
    with pytest.raises(VaultError, match="no connector"):
        vault.set_webhook_secret("acme", first, now=1000.0)
    vault.set(Connector("acme", SECRET))
    with pytest.raises(VaultError, match="whsec_"):
        vault.set_webhook_secret("acme", "not-a-secret", now=1000.0)
    assert vault.set_webhook_secret("acme", first, now=1000.0) == 1
    raw = vault.redis.hget("vaulttest:vault:webhooks", "acme")
    assert raw and first.encode() not in raw and first[6:20].encode() not in raw
    assert vault.set_webhook_secret("acme", second, now=2000.0, keep_previous_s=60) == 2
    assert vault.webhook_secrets("acme", 2059.0) == [second, first]
    assert vault.webhook_secrets("acme", 2060.0) == [second]
    assert vault.set_webhook_secret("acme", third, now=2001.0, keep_previous_s=0) == 1
    assert vault.webhook_secrets("acme", 2001.0) == [third]
    # The default connector (OPENAI_API_KEY) needs no vault entry of its own.
    vault.set_webhook_secret("default", first, now=1000.0)
    assert vault.webhook_secrets("default", 1000.0) == [first]
    assert vault.delete("acme") and vault.webhook_secrets("acme", 2001.0) == []


def test_cli_sets_a_webhook_secret_from_stdin_and_never_prints_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", redis_url)
    monkeypatch.setenv("SUPPORTFLOW_KEY_PREFIX", "vaultcli")
    monkeypatch.setenv("SUPPORTFLOW_VAULT_KEY", VAULT_KEY)
    secret = new_secret()
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert main(["vault", "set", "acme"]) == 0
    for _ in range(2):
        monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
        assert main(["vault", "webhook-secret", "acme", "--keep-previous", "600"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("whsec_nope!\n"))
    assert main(["vault", "webhook-secret", "acme"]) == 1
    assert main(["vault", "list"]) == 0
    assert main(["vault", "webhook-secret", "acme", "--remove"]) == 0
    assert main(["vault", "delete", "acme"]) == 0
    out = capsys.readouterr()
    assert "/v1/integrations/openai/acme" in out.out
    assert "webhook secrets: 1" in out.out and "whsec_ followed by base64" in out.err
    assert secret not in out.out + out.err and secret[6:20] not in out.out + out.err


def test_cli_keeps_a_flows_identity_secret_sealed_rotates_it_and_never_prints_it(
    redis_url: str, flows_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (("REDIS_URL", redis_url), ("KEY_PREFIX", "vaultcli"),
                        ("VAULT_KEY", VAULT_KEY), ("FLOWS_DIR", str(flows_dir))):
        monkeypatch.setenv(f"SUPPORTFLOW_{name}", value)
    first, second = secrets.token_hex(32), secrets.token_hex(32)
    for secret in (first, second):
        monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
        assert main(["flows", "identity-secret", "identified", "--keep-previous", "600"]) == 0
    vault = Vault(redis.Redis.from_url(redis_url), prefix="vaultcli", key=VAULT_KEY)
    raw = vault.redis.hget("vaultcli:vault:identity", "identified")
    assert raw and first.encode() not in raw and second.encode() not in raw
    assert vault.identity_secrets("identified", time.time()) == [second, first]
    assert vault.identity_secrets("identified", time.time() + 601) == [second]
    monkeypatch.setattr(sys, "stdin", io.StringIO("too-short\n"))
    assert main(["flows", "identity-secret", "identified"]) == 1
    assert main(["flows", "identity-secret", "nope"]) == 1
    assert main(["flows", "identity-secret", "identified", "--remove"]) == 0
    assert vault.identity_secrets("identified", time.time()) == []
    out = capsys.readouterr()
    assert "the previous one still verifies for 600 s" in out.out
    assert "at least 32" in out.err and "no flow named 'nope'" in out.err
    assert first not in out.out + out.err and second not in out.out + out.err


@pytest.fixture
def debug_stack(tmp_path: Path, sandbox: Sandbox, flows_dir: Path) -> Iterator[tuple[Any, Path, str]]:
    """A stack of its own with the worker logging at DEBUG to a file we can read."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = {**stack_env(server.url, sandbox.url, flows_dir)}
        processes = Processes(env, tmp_path)
        processes.start("worker", "--loglevel", "DEBUG", "--pool", "threads", "--concurrency", "1",
                        "--without-gossip", "--without-mingle", ready="ready.")
        try:
            yield make_app(server.url, sandbox.url, flows_dir).test_client(), tmp_path, server.url
        finally:
            processes.stop_all()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["responses", "assistants"])
def test_a_whole_conversation_at_debug_logs_the_key_nowhere(
    debug_stack: tuple[Any, Path, str], sandbox: Sandbox, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], backend: str,
) -> None:
    client, logs, url = debug_stack
    Vault(redis.Redis.from_url(url), prefix="sf", key=VAULT_KEY).set(
        Connector("acme", SECRET, sandbox.url))
    caplog.set_level(logging.DEBUG)
    chat = Chat(client, f"{backend}_vault")
    chat.say("How long does shipping take?")
    assert "we ship within" in chat.wait_for_bot_messages(2)[-1].lower()
    assert bearer_fingerprint(SECRET) in sandbox.stats()["bearer_fingerprints"]
    worker_logs = "".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    # The HTTP stack logs its requests at DEBUG here, so a leaking header would show.
    assert "send_request_headers" in worker_logs and "HTTP Request: POST" in worker_logs
    captured = capfd.readouterr()
    everything = worker_logs + caplog.text + captured.out + captured.err
    everything += json.dumps([chat.state(), chat.messages()])
    assert SECRET not in everything
    assert SECRET[8:24] not in everything

