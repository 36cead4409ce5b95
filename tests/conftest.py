"""Fixtures: a real Redis, the sandbox over HTTP, real Celery workers, and the web app."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from supportflow import defaults
from supportflow.settings import PROJECT_ROOT
from tests.fakes import Clock, FakeAssistant, RecordingQueue
from tests.helpers import free_port, wait_until

# A vault key made for the test session only.
VAULT_KEY = "pGkUy1m8vI3yQk3Uu0k2T1oXkz6a5oKc3mWkz0c7c2E="
# The flow `identified`'s identity secret in the shared stack (see `identity_secret`).
IDENTITY_SECRET = secrets.token_hex(32)
# The web app's secret key: made anew for each test session, never written down.
SECRET_KEY = secrets.token_urlsafe(48)
# Handoffs are announced here (tests/integration/test_webhooks.py listens on it); short retries.
AGENTS_WEBHOOK_PORT = free_port()
AGENTS_WEBHOOK_SECRET = "whsec_" + "c3VwcG9ydGZsb3ctYWdlbnRzLXRlc3Qtc2VjcmV0IQ=="
DELIVERY_SCHEDULE = "0,0.3,0.3,0.5,0.5"
KNOWLEDGE = defaults.KNOWLEDGE
# A customer's site on another origin may embed the default flow's widget (tests/e2e/test_embed.py
# serves a page there); any other site may not.
WIDGET_SITE_PORT = free_port()
WIDGET_SITE = f"http://localhost:{WIDGET_SITE_PORT}"
FAST_POLL = {"delays": [0.2, 0.4, 0.8, 1.0], "deadline": 8}
# The flow responses_webhooks: replies come by OpenAI's webhooks, a check only this late.
WEBHOOK_POLL_S = 2.5
BACKENDS = {
    "responses": {"kind": "responses", "model": "sandbox-model", "instructions": "Be helpful."},
    "assistants": {"kind": "assistants", "assistant_id": "asst_sandbox"},
}


def write_flows(folder: Path, static_threads: dict[str, str], vector_store: str | None = None
                ) -> Path:
    """Test flows: every backend x thread scope, plus deadline and reply-fallback variants,
    and `knowledge`, whose responses search the agents' articles in `vector_store`."""
    folder.mkdir(parents=True, exist_ok=True)
    flows: dict[str, dict[str, Any]] = {}
    for backend, spec in BACKENDS.items():
        base = {"welcome": "Hello! How can I help?", "backend": spec, "poll": FAST_POLL,
                "tools": ["handoff_to_human", "set_contact_attribute", "save_note"]}
        flows[f"{backend}"] = base
        flows[f"{backend}_contact"] = {**base, "thread": {"scope": "contact"}}
        flows[f"{backend}_static"] = {**base, "thread": {"scope": "static",
                                                         "id": static_threads[backend]}}
        flows[f"{backend}_deadline"] = {**base, "poll": {"delays": [0.3], "deadline": 1.5}}
        flows[f"{backend}_vault"] = {**base, "backend": {**spec, "connector": "acme"}}
        flows[f"{backend}_reply_fallback"] = {
            **base, "poll": {"delays": [0.3], "deadline": 1.5},
            "fallback": {"action": "reply", "message": "Sorry, please try again."},
        }
    flows["default"] = {**flows["responses"], "widget": {"allowed_origins": [WIDGET_SITE]}}
    # Only users the site identifies (contact.id_hash) may start (tests/e2e/test_embed.py).
    flows["identified"] = {**flows["responses_contact"], "widget": {
        "allowed_origins": [WIDGET_SITE], "identity": "required"}}
    flows["responses_webhooks"] = {**flows["responses"], "poll": {
        "webhooks": True, "delays": [WEBHOOK_POLL_S], "deadline": 20}}
    for action in ("tell", "return"):  # unclaimed handoffs time out quickly (test_agents.py)
        flows[f"handoff_{action}"] = {**flows["responses"], "handoff": {
            "timeout": 1.5, "on_timeout": action, "timeout_message": f"timeout-{action}"}}
    if vector_store:
        flows["knowledge"] = {**flows["responses"], "backend": {
            **BACKENDS["responses"], "vector_store_id": vector_store}}
    for name, data in flows.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


# Tests that share one xdist worker (scripts/test.sh runs `--dist loadgroup`): the Chromium
# pages share a browser, a module's module-scoped stack is built once, and the tests that kill
# or restart processes against a time budget never run two at a time.
XDIST_GROUPS = {
    "tests/e2e/test_pages.py": "chromium",
    "tests/e2e/test_embed.py": "chromium",
    "tests/integration/test_failover.py": "restarts",
    "tests/integration/test_rolling_restart.py": "restarts",
    "tests/integration/test_worker_crash.py": "restarts",
    "tests/integration/test_beat_standby.py": "restarts",
}
MODULE_SCOPED = ("test_accounts", "test_actions", "test_gpt", "test_knowledge", "test_ops",
                 "test_replica_wait", "test_sandbox_contract", "test_sandbox_webhooks")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::")[0]
        group = XDIST_GROUPS.get(module)
        if group is None and Path(module).stem in MODULE_SCOPED:
            group = Path(module).stem
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from supportflow.runtime.redis_server import EmbeddedRedis

    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    from supportflow.sandbox.server import start_in_thread

    handle = start_in_thread("127.0.0.1", free_port(), KNOWLEDGE, 0.3)
    yield Sandbox(handle.url)
    handle.stop()


class Sandbox:
    """Test-side handle on the sandbox's control endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = url.removesuffix("/v1")

    def configure(self, **settings: Any) -> None:
        httpx.put(f"{self.root}/_sandbox/settings", json=settings, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.root}/_sandbox/settings", timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.root}/_sandbox/stats", timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="session")
def flows_dir(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Path:
    """Flows for the tests; the static-scope ones name threads made in the sandbox first."""
    static_threads = {
        "responses": httpx.post(f"{sandbox.url}/conversations", json={}).json()["id"],
        "assistants": httpx.post(f"{sandbox.url}/threads", json={}).json()["id"],
    }
    store = httpx.post(f"{sandbox.url}/vector_stores", json={"name": "knowledge"}).json()["id"]
    return write_flows(tmp_path_factory.mktemp("flows"), static_threads, store)


def stack_env(redis_url: str, sandbox_url: str, flows_dir: Path) -> dict[str, str]:
    """The environment of every process of a test stack: short leases and a quick watchdog."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SUPPORTFLOW_"))}
    env.update({
        "SUPPORTFLOW_REDIS_URL": redis_url,
        "SUPPORTFLOW_SANDBOX_URL": sandbox_url,
        "SUPPORTFLOW_FLOWS_DIR": str(flows_dir),
        "SUPPORTFLOW_LEASE_TTL_S": "3",
        "SUPPORTFLOW_WATCHDOG_GRACE_S": "2",
        "SUPPORTFLOW_HANDOFF_CHECK_INTERVAL_S": "0.5",
        "SUPPORTFLOW_OPS_SAMPLE_INTERVAL_S": "0.5",
        "SUPPORTFLOW_STEP_RETRY_BASE_S": "0.2",
        "SUPPORTFLOW_STEP_RETRY_MAX_S": "2",
        "SUPPORTFLOW_HTTP_READ_TIMEOUT_S": "1.5",
        "SUPPORTFLOW_VAULT_KEY": VAULT_KEY,
        "SUPPORTFLOW_SECRET_KEY": SECRET_KEY,
        "SUPPORTFLOW_KNOWLEDGE_SWEEP_INTERVAL_S": "2",
        "SUPPORTFLOW_DELIVERY_SCHEDULE": DELIVERY_SCHEDULE,
        "SUPPORTFLOW_AGENTS_WEBHOOK_URL": f"http://127.0.0.1:{AGENTS_WEBHOOK_PORT}/agents",
        "SUPPORTFLOW_AGENTS_WEBHOOK_SECRET": AGENTS_WEBHOOK_SECRET,
        "PYTHONUNBUFFERED": "1",
    })
    return env


@contextmanager
def private_stack(tmp_path: Path, sandbox: Sandbox, flows_dir: Path, *,
                  unset: Iterable[str] = (), settings: dict[str, str] | None = None
                  ) -> Iterator[tuple[Any, Processes, str]]:
    """A Redis of its own, so no other test's worker picks up this test's tasks: the app's test
    client, the Processes to start workers and beat with (stopped at the end), the Redis URL.
    `unset` drops settings of the shared stack's environment, `settings` adds some."""
    from supportflow.runtime.redis_server import EmbeddedRedis

    with EmbeddedRedis(tmp_path / "redis") as server:
        env = stack_env(server.url, sandbox.url, flows_dir)
        for name in unset:
            env.pop(name)
        env.update(settings or {})
        processes = Processes(env, tmp_path)
        sandbox.reset()
        try:
            yield make_app(server.url, sandbox.url, flows_dir).test_client(), processes, server.url
        finally:
            processes.stop_all()
            sandbox.reset()


class Processes:
    """Starts Celery workers and beat for a test, and stops whatever is left at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []  # type: list[subprocess.Popen[bytes]]

    def start(self, *args: str, ready: str | None = None) -> subprocess.Popen[bytes]:
        """A Celery process (`worker ...` or `beat ...`); waits for `ready` in its log."""
        log_path = self.logs / f"{args[0]}-{uuid.uuid4().hex[:6]}.log"
        process = self.spawn(log_path, [sys.executable, "-m", "celery", "-A", "workers.app", *args])
        if ready:
            wait_until(lambda: ready in log_path.read_text(errors="replace")
                       or process.poll() is not None, timeout=60)
            assert process.poll() is None, log_path.read_text(errors="replace")
        return process

    def spawn(self, log_path: Path, argv: list[str]) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, env=self.env, cwd=PROJECT_ROOT, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        return process

    def web(self, port: int) -> subprocess.Popen[bytes]:
        """The web app under granian with the Procfile's options, once /healthz answers."""
        from supportflow.web.serve import granian_argv

        process = self.spawn(self.logs / f"web-{port}.log", [
            sys.executable, "-m", "granian", *granian_argv("127.0.0.1", port, 1, 4)])

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None
        wait_until(up, timeout=60, interval=0.1)
        assert process.poll() is None, (self.logs / f"web-{port}.log").read_text(errors="replace")
        return process

    def worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        return self.start("worker", "--loglevel", "INFO", "--pool", "threads",
                          "--concurrency", str(concurrency),
                          "-O", "fair", "--without-gossip", "--without-mingle",
                          "--hostname", f"w{uuid.uuid4().hex[:6]}@%h", ready="ready.")

    def beat(self) -> subprocess.Popen[bytes]:
        """A beat; it sends periodic tasks once it holds the lock in Redis (else it stands by)."""
        return self.start("beat", "--loglevel", "INFO", ready="beat: Starting")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


@pytest.fixture(scope="session")
def stack(redis_url: str, sandbox: Sandbox, flows_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A shared real stack: Redis, sandbox, one Celery worker (2 processes) and beat."""
    env = stack_env(redis_url, sandbox.url, flows_dir)
    processes = Processes(env, tmp_path_factory.mktemp("logs"))
    processes.worker()
    processes.beat()
    yield {"env": env, "processes": processes}
    processes.stop_all()


def wire_fakes(redis_url: str, flows_dir: Path, redis_client: Any = None, **settings: Any
               ) -> tuple[Any, FakeAssistant, RecordingQueue, Clock]:
    """The real wiring (bootstrap) on a real Redis, with a fake assistant, queue and clock,
    under a key prefix of its own; `settings` override Settings fields."""
    from supportflow.bootstrap import bootstrap
    from supportflow.settings import load_settings

    assistant, queue, clock = FakeAssistant(), RecordingQueue(), Clock()
    loaded = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                            "key_prefix": f"fakes{uuid.uuid4().hex[:8]}", **settings})
    services = bootstrap(loaded, queue=queue, assistants=assistant, clock=clock,
                         redis_client=redis_client)
    return services, assistant, queue, clock


def make_app(redis_url: str, sandbox_url: str, flows_dir: Path, clock: Any = None,
             **settings: Any) -> Any:
    """The web app wired to a test stack; `settings` override Settings fields; `clock` (a
    callable giving epoch seconds) replaces the real time in every use case."""
    from supportflow.web import create_app

    overrides = {
        "redis_url": redis_url, "sandbox_url": sandbox_url, "flows_dir": flows_dir,
        "lease_ttl_s": 3.0, "openai_api_key": None, "vault_key": VAULT_KEY,
        "secret_key": SECRET_KEY,
        # Tests poll the widget API far faster than a person: limits are tested on their own.
        "rate_limits_enabled": False, **settings,
    }
    if clock is None:
        return create_app({"TESTING": True, "SUPPORTFLOW_SETTINGS": overrides})
    from supportflow.bootstrap import bootstrap
    from supportflow.settings import load_settings

    services = bootstrap(load_settings(overrides), clock=clock)
    return create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services})


@pytest.fixture(scope="session")
def identity_secret(redis_url: str) -> str:
    """The identity secret the flow `identified` verifies contact.id_hash with (shared stack)."""
    import time

    import redis

    from supportflow.adapters.vault import Vault

    vault = Vault(redis.Redis.from_url(redis_url), prefix="sf", key=VAULT_KEY)
    vault.set_identity_secret("identified", IDENTITY_SECRET, now=time.time(), keep_previous_s=0)
    return IDENTITY_SECRET


@pytest.fixture
def isolated(redis_url: str, flows_dir: Path) -> Any:
    """A web app on the real Redis under a fresh key prefix, with a recording task queue."""
    from tests.isolated import Isolated

    return Isolated(redis_url, flows_dir)


@pytest.fixture
def client(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path) -> Any:
    sandbox.reset()
    return make_app(redis_url, sandbox.url, flows_dir).test_client()
