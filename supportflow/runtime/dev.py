"""`supportflow dev`: Redis, the sandbox, a Celery worker and beat, and the web app on one machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from supportflow.adapters.flow_files import FlowDirectory, FlowError
from supportflow.adapters.redis_connection import connect, redis_target
from supportflow.domain.connector import DEFAULT_CONNECTOR
from supportflow.runtime.processes import ProcessSpec, Supervisor
from supportflow.runtime.redis_server import EmbeddedRedis, RedisServerError, check_redis_durability
from supportflow.settings import PROJECT_ROOT, Settings
from supportflow.web.serve import granian_argv
from supportflow.webhooks.signing import is_secret, new_secret

READY_TIMEOUT_S = 90.0
WEB_PAGES = (("web app", "/"), ("widget API", "/v1"), ("demo widget", "/demo"),
             ("agent console", "/agent"), ("ops dashboard", "/ops"))


@dataclass(frozen=True)
class DevOptions:
    """What `supportflow dev` was asked for."""

    web_port: int = 5000
    data_dir: Path = Path("var")
    redis_url: str | None = None
    sandbox_port: int = 8765
    concurrency: int = 2
    # Worker processes: a threads worker is held to one core by the GIL, so one per core.
    workers: int = 1
    # The sandbox sends its signed response events to the web app (replies the moment a run ends).
    webhooks: bool = True


def dev_secret_key(data_dir: Path) -> str:
    """This machine's own secret key for `supportflow dev`: made once, kept in DATA/secret_key
    (readable by its owner only), so sessions survive a restart. Production sets
    SUPPORTFLOW_SECRET_KEY instead."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def webhook_url(options: DevOptions) -> str:
    """Where the sandbox sends its events: the web app's endpoint for the default connector."""
    return f"http://127.0.0.1:{options.web_port}/v1/integrations/openai/{DEFAULT_CONNECTOR}"


def sandbox_webhooks(options: DevOptions, settings: Settings) -> bool:
    """True when the sandbox runs and sends its webhooks to the web app."""
    return settings.uses_sandbox and options.webhooks


def child_env(settings: Settings, redis_url: str, sandbox_url: str | None,
              options: DevOptions | None = None) -> dict[str, str]:
    """The environment every child gets: this one, plus where Redis and the sandbox are, the
    secret key and the public URL.

    With sandbox webhooks, the sandbox and the web app share OPENAI_WEBHOOK_SECRET (a new
    one for this run unless the environment has one): the sandbox signs, the web app verifies.
    """
    env = dict(os.environ)
    if options is not None:
        if not settings.secret_key:
            env["SUPPORTFLOW_SECRET_KEY"] = dev_secret_key(options.data_dir)
        env.setdefault("SUPPORTFLOW_PUBLIC_URL", f"http://127.0.0.1:{options.web_port}")
    env["SUPPORTFLOW_REDIS_URL"] = redis_url
    if sandbox_url:
        env["SUPPORTFLOW_SANDBOX_URL"] = sandbox_url
    if options is not None and sandbox_webhooks(options, settings) \
            and not is_secret(settings.openai_webhook_secret):
        env["OPENAI_WEBHOOK_SECRET"] = new_secret()
    env["PYTHONUNBUFFERED"] = "1"
    if (PROJECT_ROOT / "workers").is_dir():  # a source checkout: importable from any cwd
        paths = [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def process_specs(options: DevOptions, settings: Settings, env: dict[str, str]) -> list[ProcessSpec]:
    """The sandbox (without an API key), the Celery workers, beat and the web app (granian)."""
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "workers.app"]
    specs: list[ProcessSpec] = []
    if settings.uses_sandbox:
        events = ["--webhook-url", webhook_url(options)] if options.webhooks else []
        specs.append(ProcessSpec("sandbox", [
            python, "-m", "supportflow.cli", "sandbox", "--host", "127.0.0.1",
            "--port", str(options.sandbox_port), "--knowledge", str(settings.sandbox_knowledge),
            *events,
        ], env))
    for number in range(1, options.workers + 1):
        name = "worker" if number == 1 else f"worker{number}"
        specs.append(ProcessSpec(name, [
            *celery, "worker", "--loglevel", "INFO", "--pool", "threads",
            "--concurrency", str(options.concurrency), "--without-gossip", "--without-mingle",
            "--hostname", f"dev{'' if number == 1 else number}@%h",
        ], env))
    # The schedule and the active beat's lock live in Redis (workers/beat.py).
    specs.append(ProcessSpec("beat", [*celery, "beat", "--loglevel", "INFO"], env))
    # The Procfile's web process, with its access log on (here nobody counts its CPU).
    specs.append(ProcessSpec("web", [
        python, "-m", "granian", *granian_argv("127.0.0.1", options.web_port, 2, 32, access_log=True),
    ], env))
    return specs


@contextlib.contextmanager
def redis_for(options: DevOptions, settings: Settings, supervisor: Supervisor) -> Iterator[str]:
    """The given Redis URL (or the Sentinel group the environment names), else an embedded
    redis-server under DATA/redis for the duration."""
    if options.redis_url:
        yield options.redis_url
        return
    if settings.redis_sentinels.strip():
        supervisor.say(f"Redis: {redis_target(settings).describe()}", "redis")
        yield settings.redis_url
        return
    server = EmbeddedRedis(options.data_dir / "redis")
    with server:
        supervisor.say(f"embedded Redis on {server.url} (AOF on, data in {server.data_dir})",
                       "redis")
        yield server.url
    supervisor.say("embedded Redis stopped (data kept)", "redis")


def warn_durability(settings: Settings, supervisor: Supervisor) -> None:
    """Say so when Redis would lose or evict data (DESIGN section 6)."""
    import redis

    try:
        with connect(settings) as client:
            for warning in check_redis_durability(client):
                supervisor.say(f"WARNING: {warning}", "redis")
    except redis.exceptions.RedisError as error:
        supervisor.say(f"WARNING: cannot check Redis settings: {error}", "redis")


def healthy(url: str) -> bool:
    """True once GET url answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def banner(options: DevOptions, settings: Settings, redis_url: str, sandbox_url: str | None) -> str:
    """What runs where, and a first command to try."""
    base = f"http://127.0.0.1:{options.web_port}"
    lines = ["", "SupportFlow is running:"]
    lines += [f"  {label:<14} {base}{path}" for label, path in WEB_PAGES]
    where = redis_target(replace(settings, redis_url=redis_url)).describe()
    lines.append(f"  {'redis':<14} {where}")
    assistant = f"sandbox at {sandbox_url}" if sandbox_url else f"OpenAI at {settings.openai_base_url}"
    lines.append(f"  {'assistant':<14} {assistant}")
    if sandbox_webhooks(options, settings):
        lines.append(f"  {'webhooks':<14} the sandbox's response events -> {webhook_url(options)}")
    lines.append(f"Try: curl -s -X POST {base}/v1/conversations -H 'content-type: application/json' "
                 "-d '{\"contact\": {\"id\": \"demo\"}}'")
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)


def run(options: DevOptions, settings: Settings) -> int:
    """Start everything, wait for /healthz, print the URLs, and stop it all on Ctrl-C."""
    try:
        FlowDirectory.load(settings.flows_dir, settings.default_flow)
    except FlowError as error:
        print(f"supportflow: the flows do not load; fix them first:\n{error}", file=sys.stderr)
        return 1
    options = replace(options, data_dir=options.data_dir.resolve())
    options.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox_url = f"http://127.0.0.1:{options.sandbox_port}/v1" if settings.uses_sandbox else None
    with Supervisor() as supervisor:
        try:
            with redis_for(options, settings, supervisor) as redis_url:
                return _run_children(options, settings, supervisor, redis_url, sandbox_url)
        except RedisServerError as error:
            print(f"supportflow: cannot start Redis: {error}", file=sys.stderr)
            return 1


def _run_children(options: DevOptions, settings: Settings, supervisor: Supervisor,
                  redis_url: str, sandbox_url: str | None) -> int:
    warn_durability(replace(settings, redis_url=redis_url), supervisor)
    if supervisor.stop_requested.is_set():
        return 0
    env = child_env(settings, redis_url, sandbox_url, options)
    for spec in process_specs(options, settings, env):
        supervisor.start(spec)
    health = f"http://127.0.0.1:{options.web_port}/healthz"
    if not supervisor.wait_for(lambda: healthy(health), READY_TIMEOUT_S):
        supervisor.stop()
        if supervisor.stop_requested.is_set() and supervisor.failure is None:
            return 0
        if supervisor.failure is None:
            supervisor.say(f"{health} did not answer within {READY_TIMEOUT_S:.0f} s; stopped")
        return 1
    if sandbox_url:
        resync_knowledge(settings, redis_url, supervisor)
    supervisor.write_block(banner(options, settings, redis_url, sandbox_url))
    return supervisor.run()


def resync_knowledge(settings: Settings, redis_url: str, supervisor: Supervisor) -> None:
    """The sandbox starts empty: send every knowledge article to its vector store again."""
    from supportflow.bootstrap import bootstrap

    services = bootstrap(replace(settings, redis_url=redis_url))
    count = services.knowledge_sync.resync_all()
    if count:
        supervisor.say(f"{count} knowledge article(s) sent to the sandbox's vector store")
