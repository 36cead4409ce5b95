"""Settings: defaults, then the environment, then explicit overrides (in that order)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from supportflow import defaults

# The source checkout (or site-packages, when installed from a wheel).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765/v1"


@dataclass(frozen=True)
class Settings:
    """Every knob of a SupportFlow process; env var names are SUPPORTFLOW_<FIELD> unless noted."""

    # A redis:// URL, or redis+sentinel://[:password@]host:port,host:port/<master>[/<db>].
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Or Sentinel by parts: "host:port,host:port" and the monitored master's name; the data
    # nodes' password; the sentinels' own password (both secrets).
    redis_sentinels: str = ""
    redis_master: str = "mymaster"
    redis_password: str | None = None
    redis_sentinel_password: str | None = None
    # Replicas that must confirm a customer message before it is answered 202 (WAIT):
    # "auto" = 1 with Sentinel, 0 without; and how long to wait before answering 503.
    redis_wait_replicas: str = "auto"
    redis_wait_timeout_ms: int = 1000
    key_prefix: str = "sf"
    # ./config/flows when the working folder has one (`supportflow init`), else the packaged flows.
    flows_dir: Path = field(default_factory=defaults.flows_dir)
    default_flow: str = "default"
    # OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_ORGANIZATION / OPENAI_PROJECT (OpenAI's own names).
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_organization: str | None = None
    openai_project: str | None = None
    # OPENAI_WEBHOOK_SECRET (the official SDK's name): verifies OpenAI's webhooks for the
    # `default` connector; the sandbox signs its webhooks with it too.
    openai_webhook_secret: str | None = None
    # Used instead of OpenAI when no API key is set.
    sandbox_url: str = DEFAULT_SANDBOX_URL
    sandbox_knowledge: Path = field(default_factory=defaults.knowledge_file)
    http_connect_timeout_s: float = 5.0
    http_read_timeout_s: float = 30.0
    # A worker renews the leases it holds every third of this while a step runs; a worker
    # that dies lets go this long after its last renewal (then the watchdog wakes its work).
    lease_ttl_s: float = 6.0
    # The scheduler (in every worker) publishes due wake-ups every dispatch_interval_s, at most
    # dispatch_batch a round, in tasks of dispatch_per_task conversations at most, while the
    # broker's queue has room (dispatch_queue_limit conversations, a task counted as full); a
    # conversation it claimed is claimed again after watchdog_grace_s if no worker took it.
    dispatch_interval_s: float = 0.05
    dispatch_batch: int = 200
    dispatch_queue_limit: int = 500
    dispatch_per_task: int = 20
    # A worker process runs the conversations of its tasks on this many threads at most.
    step_threads: int = 32
    # Workers give way to the web on a shared machine (runtime/priority.py): under contention
    # accepting a message comes first and turns catch up; 0 leaves their priority alone.
    worker_nice: int = 10
    watchdog_grace_s: float = 5.0
    step_retry_base_s: float = 1.0
    step_retry_max_s: float = 60.0
    max_message_chars: int = 4000
    # Encrypts the connectors in the vault (a Fernet key: `supportflow vault keygen`).
    vault_key: str | None = None
    # Outbound webhooks: seconds before each delivery attempt (comma-separated in the env).
    delivery_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000)
    delivery_timeout_s: float = 10.0
    # Handoffs of every conversation are announced to this webhook (signed with the secret).
    agents_webhook_url: str | None = None
    agents_webhook_secret: str | None = None
    # Server-sent event streams: longest life of one response, keep-alive and poll periods.
    stream_max_s: float = 60.0
    stream_keepalive_s: float = 15.0
    stream_poll_s: float = 0.3
    # Streams one web process holds open at once (each holds a server thread: keep this below
    # WEB_THREADS, so posts always find one), in all and per client.
    stream_max_open: int = 24
    stream_max_open_per_client: int = 4
    # Ordinary requests (not streams) one web process runs at once; others wait their turn
    # (4 against 8: a lower p99 at the same rate, bench/README.md "A narrower gate").
    web_requests_at_once: int = 4
    # How often beat looks for handoffs nobody claimed within their flow's timeout.
    handoff_check_interval_s: float = 5.0
    # Retention: conversations idle this long leave Redis, closed ones this long after closing;
    # beat sweeps this often (in batches; one sweep at a time across machines).
    retention_days: float = 30.0
    closed_retention_hours: float = 24.0
    retention_interval_s: float = 3600.0
    # Ops: how often beat samples the time series; how recently a worker must have been seen.
    ops_sample_interval_s: float = 60.0
    worker_online_s: float = 60.0
    # Level of the web app's JSON logs (workers take Celery's --loglevel).
    log_level: str = "INFO"
    # Signs the CSRF tokens of the pages' forms; required by the web app outside tests.
    secret_key: str | None = None
    # Where browsers and ChatGPT reach this service (the actions document's `servers`, OAuth URLs).
    public_url: str = "http://127.0.0.1:5000"
    # Agents' sign-in: session lifetime, and failed sign-ins (per account, per client address)
    # allowed within the window before further attempts are refused until it ends.
    session_ttl_s: float = 12 * 3600.0
    signin_max_failures: int = 5
    signin_max_failures_per_address: int = 20
    signin_window_s: float = 900.0
    # OAuth2 for the agents' custom GPT: code, access and refresh token lifetimes.
    oauth_code_ttl_s: float = 300.0
    oauth_access_token_ttl_s: float = 3600.0
    oauth_refresh_token_ttl_s: float = 30 * 86400.0
    # Knowledge articles: how often beat re-sends syncs to vector stores that did not finish.
    knowledge_sweep_interval_s: float = 60.0
    # Signs visitor tokens; comma-separated to rotate (the first signs, every one verifies).
    # Unset: a random secret made once and kept in Redis, shared by every web process.
    widget_secret: str | None = None
    visitor_token_ttl_s: float = 7200.0
    # An anonymous visitor's contact token lasts this long (renewed at each start): 90 days.
    contact_token_ttl_s: float = 7_776_000.0
    # Rate limits of the public widget routes (`limits` syntax, kept in Redis): every route
    # per client address; starting conversations per address; reading and posting per visitor.
    rate_limits_enabled: bool = True
    rate_limit_address: str = "600 per minute"
    rate_limit_start: str = "20 per minute"
    rate_limit_reads: str = "120 per minute"
    rate_limit_messages: str = "30 per minute"
    # Proxies in front of the web app whose X-Forwarded-For/-Proto/-Host headers are trusted.
    trusted_proxies: int = 0
    # Beat on several machines, one active: the lock's life, and the longest sleep between
    # ticks (also how often a standby tries the lock). A standby takes over within their sum.
    beat_lock_timeout_s: float = 5.0
    beat_max_loop_interval_s: float = 1.0

    def __post_init__(self) -> None:
        wait = str(self.redis_wait_replicas)
        object.__setattr__(self, "redis_wait_replicas", wait)  # overrides may pass a number
        if wait != "auto" and not (wait.isdigit() and int(wait) < 100):
            raise ValueError(f"redis_wait_replicas must be 'auto' or a number of replicas, not {wait!r}")
        for name in ("dispatch_per_task", "step_threads", "dispatch_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{env_name(name)} must be at least 1, not {getattr(self, name)}")
        if self.beat_lock_timeout_s <= self.beat_max_loop_interval_s:
            raise ValueError("beat_lock_timeout_s must exceed beat_max_loop_interval_s "
                             "(the active beat renews its lock once per loop)")

    @property
    def uses_sandbox(self) -> bool:
        """True when no API key is set: the embedded default talks to the sandbox."""
        return not self.openai_api_key

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry `Secure` when the service is reached over HTTPS."""
        return self.public_url.lower().startswith("https://")

    @property
    def assistant_base_url(self) -> str:
        return self.sandbox_url if self.uses_sandbox else self.openai_base_url

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets masked, for logs and `supportflow config`."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("openai_api_key", "openai_webhook_secret", "vault_key",
                       "agents_webhook_secret", "secret_key", "widget_secret", "redis_password",
                       "redis_sentinel_password"):
            if values[secret]:
                values[secret] = "***"
        values["redis_url"] = mask_url_password(self.redis_url)
        return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


OPENAI_ENV = {
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_organization": "OPENAI_ORGANIZATION",
    "openai_project": "OPENAI_PROJECT",
    "openai_webhook_secret": "OPENAI_WEBHOOK_SECRET",
}


def mask_url_password(url: str) -> str:
    """The URL with the password of its userinfo (if any) replaced by ***."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}"


def env_name(field_name: str) -> str:
    return OPENAI_ENV.get(field_name, f"SUPPORTFLOW_{field_name.upper()}")


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from defaults, the environment and overrides; unknown keys are an error."""
    environ = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            values[f.name] = _coerce(getattr(base, f.name), raw)
    for key, value in (overrides or {}).items():
        if key not in {f.name for f in fields(Settings)}:
            raise KeyError(f"unknown setting {key!r}")
        values[key] = Path(value) if isinstance(getattr(base, key), Path) else value
    return replace(base, **values)


def _coerce(default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        return raw.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, tuple):
        return tuple(float(part) for part in raw.split(",") if part.strip())
    return raw
