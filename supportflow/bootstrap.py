"""The composition root: wires adapters to the use cases, for the web app, workers, CLI and tests.

Every dependency is a parameter: tests pass fakes (queue, assistants, flows, clock) or the
sandbox through this same wiring; what is not passed is built from the settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis

from supportflow.adapters.assistant_directory import AssistantClients
from supportflow.adapters.celery_queue import CeleryTaskQueue
from supportflow.adapters.delivery_store import RedisDeliveryStore
from supportflow.adapters.flow_files import FlowDirectory
from supportflow.adapters.http_delivery import HttpTransport, make_client
from supportflow.adapters.inbox_store import InboxStore, RedisConversationMap
from supportflow.adapters.oauth_store import OAuthStore
from supportflow.adapters.openai_files import OpenAIKnowledgeFiles
from supportflow.adapters.passwords import Argon2Passwords
from supportflow.adapters.redis_accounts import RedisAccounts, RedisSignInThrottle, RedisWebSessions
from supportflow.adapters.redis_agents import RedisAgentBoard
from supportflow.adapters.redis_connection import connect, replicas_to_wait
from supportflow.adapters.redis_knowledge import RedisArticles
from supportflow.adapters.redis_responses import RedisResponseWakeups
from supportflow.adapters.redis_retention import RedisEraser
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.redis_uow import RedisUnitOfWork
from supportflow.adapters.step_threads import StepThreads
from supportflow.adapters.tokens import TokenStore
from supportflow.adapters.vault import Vault
from supportflow.adapters.visitor_tokens import (
    ContactTokens,
    VisitorTokens,
    configured_secrets,
    redis_secret,
)
from supportflow.domain.connector import DEFAULT_CONNECTOR
from supportflow.observability.ops import OpsStore
from supportflow.observability.overview import OpsView
from supportflow.observability.redis_metrics import RedisMetrics
from supportflow.services.accounts import AccountDesk
from supportflow.services.agents import AgentDesk
from supportflow.services.deliveries import AgentsWebhook, Deliveries
from supportflow.services.engine import EngineConfig, TurnEngine
from supportflow.services.helpdesk import HelpdeskInbound
from supportflow.services.identity import ContactIdentities
from supportflow.services.intake import Intake
from supportflow.services.knowledge import KnowledgeBase, KnowledgeSync
from supportflow.services.openai_events import ResponseEvents
from supportflow.services.ports import AssistantDirectory, FlowCatalog, TaskQueue
from supportflow.services.retention import Retention, RetentionPolicy
from supportflow.services.scheduler import Scheduler, SchedulerConfig
from supportflow.settings import Settings, load_settings


@dataclass
class Stores:
    """The Redis-backed parts that need neither flows nor a queue (what most CLI commands use)."""

    settings: Settings
    redis: redis.Redis
    vault: Vault
    tokens: TokenStore
    inboxes: InboxStore
    metrics: RedisMetrics
    ops: OpsStore
    accounts: AccountDesk
    web_sessions: RedisWebSessions
    oauth: OAuthStore


@dataclass
class Services:
    """Everything a process needs, built once."""

    settings: Settings
    store: RedisConversationStore
    uow: RedisUnitOfWork
    flows: FlowCatalog
    intake: Intake
    engine: TurnEngine
    scheduler: Scheduler
    vault: Vault
    tokens: TokenStore
    agents: AgentDesk
    inboxes: InboxStore
    inbound: HelpdeskInbound
    deliveries: Deliveries
    metrics: RedisMetrics
    ops: OpsStore
    ops_view: OpsView
    accounts: AccountDesk
    web_sessions: RedisWebSessions
    oauth: OAuthStore
    knowledge: KnowledgeBase
    knowledge_sync: KnowledgeSync
    visitors: VisitorTokens
    contact_tokens: ContactTokens
    identities: ContactIdentities
    # The process's one Redis client (its connection pool is shared, e.g. by rate limits).
    redis: redis.Redis
    openai_events: ResponseEvents
    retention: Retention
    clock: Callable[[], float] = time.time
    # True when tasks go to workers (readiness then needs a worker seen recently).
    uses_workers: bool = False


def stores(settings: Settings | None = None, *, redis_client: redis.Redis | None = None,
           clock: Callable[[], float] = time.time) -> Stores:
    """The Redis-backed stores on one client."""
    settings = settings or load_settings()
    client = redis_client or connect(settings)
    prefix = settings.key_prefix
    vault = Vault(client, prefix=prefix, key=settings.vault_key)
    metrics = RedisMetrics(client, prefix=prefix)
    accounts = AccountDesk(
        store=RedisAccounts(client, prefix=prefix), hasher=Argon2Passwords(), clock=clock,
        throttle=RedisSignInThrottle(
            client, prefix=prefix, max_failures=settings.signin_max_failures,
            max_per_address=settings.signin_max_failures_per_address,
            window_s=settings.signin_window_s))
    return Stores(settings=settings, redis=client, vault=vault,
                  tokens=TokenStore(client, prefix=prefix),
                  inboxes=InboxStore(client, prefix=prefix, vault=vault),
                  metrics=metrics, ops=OpsStore(client, prefix=prefix, metrics=metrics),
                  accounts=accounts,
                  web_sessions=RedisWebSessions(client, prefix=prefix,
                                                ttl_s=settings.session_ttl_s),
                  oauth=OAuthStore(client, prefix=prefix, clock=clock))


def webhook_secrets(vault: Vault, settings: Settings) -> Callable[[str, float], list[str]]:
    """A connector's webhook secrets: the vault's, and OPENAI_WEBHOOK_SECRET for `default`."""

    def secrets(connector: str, now: float) -> list[str]:
        found = vault.webhook_secrets(connector, now)
        if connector == DEFAULT_CONNECTOR and settings.openai_webhook_secret:
            found.append(settings.openai_webhook_secret)
        return found

    return secrets


def celery_queue(settings: Settings) -> TaskQueue:
    """Tasks sent to Celery workers through the broker the settings name."""
    from workers.app import create_celery

    return CeleryTaskQueue(create_celery(settings))


def scheduler_config(settings: Settings) -> SchedulerConfig:
    """The scheduler's knobs from the settings."""
    return SchedulerConfig(grace_s=settings.watchdog_grace_s, batch=settings.dispatch_batch,
                           queue_limit=settings.dispatch_queue_limit,
                           interval_s=settings.dispatch_interval_s,
                           per_task=settings.dispatch_per_task)


def retention(settings: Settings, client: redis.Redis,
              clock: Callable[[], float] = time.time) -> Retention:
    """The retention sweep and contact erasure on the conversations' keys."""
    policy = RetentionPolicy(idle_s=settings.retention_days * 86400,
                             closed_s=settings.closed_retention_hours * 3600,
                             lease_ttl_s=settings.lease_ttl_s)
    return Retention(eraser=RedisEraser(client, prefix=settings.key_prefix), clock=clock,
                     policy=policy)


def bootstrap(
    settings: Settings | None = None,
    *,
    queue: TaskQueue | None = None,
    assistants: AssistantDirectory | None = None,
    flows: FlowCatalog | None = None,
    redis_client: redis.Redis | None = None,
    delivery_http: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
) -> Services:
    """Build the services; what is not passed is built from the settings (Celery, OpenAI...)."""
    settings = settings or load_settings()
    base = stores(settings, redis_client=redis_client, clock=clock)
    client, prefix = base.redis, settings.key_prefix
    flows = flows or FlowDirectory.load(settings.flows_dir, settings.default_flow)
    queue = queue or celery_queue(settings)
    # Knowledge files go to the API of the flows' connectors, whatever answers the turns.
    http_clients = AssistantClients(settings, connectors=base.vault.get)
    assistants = assistants or http_clients
    store = RedisConversationStore(client, prefix=prefix,
                                   replicas_to_wait=replicas_to_wait(settings),
                                   wait_timeout_ms=settings.redis_wait_timeout_ms)
    metrics = base.metrics
    uow = RedisUnitOfWork(client, prefix=prefix, lease_ttl_s=settings.lease_ttl_s,
                          metrics=metrics)
    intake = Intake(store=store, flows=flows, clock=clock, metrics=metrics)
    deliveries = Deliveries(
        store=RedisDeliveryStore(client, prefix=prefix), queue=queue, inboxes=base.inboxes,
        transport=HttpTransport(delivery_http or make_client(
            settings.http_connect_timeout_s, settings.delivery_timeout_s), clock),
        schedule=settings.delivery_schedule,
        agents=AgentsWebhook(settings.agents_webhook_url, settings.agents_webhook_secret),
        clock=clock, metrics=metrics,
    )
    engine = TurnEngine(
        uow=uow, flows=flows, assistants=assistants, schedule=store, clock=clock,
        config=EngineConfig(retry_base_s=settings.step_retry_base_s,
                            retry_max_s=settings.step_retry_max_s,
                            transient=(redis.ConnectionError, redis.TimeoutError)),
        publisher=deliveries, metrics=metrics, failures=base.ops,
        runner=StepThreads(settings.step_threads))
    articles = RedisArticles(client, prefix=prefix)
    signing = widget_secrets(settings, client)
    contact_tokens = ContactTokens(signing, ttl_s=settings.contact_token_ttl_s, clock=clock)
    return Services(
        settings=settings, store=store, uow=uow, flows=flows, intake=intake, engine=engine,
        scheduler=Scheduler(schedule=store, queue=queue, clock=clock,
                            config=scheduler_config(settings)),
        vault=base.vault, tokens=base.tokens,
        agents=AgentDesk(store=store, index=store, uow=uow,
                         board=RedisAgentBoard(client, prefix=prefix), flows=flows,
                         publisher=deliveries, clock=clock, metrics=metrics),
        inboxes=base.inboxes,
        inbound=HelpdeskInbound(intake=intake,
                                conversations=RedisConversationMap(
                                    client, prefix=prefix,
                                    replicas_to_wait=replicas_to_wait(settings),
                                    wait_timeout_ms=settings.redis_wait_timeout_ms)),
        deliveries=deliveries, metrics=metrics, ops=base.ops,
        ops_view=OpsView(store=store, ops=base.ops, metrics=metrics, clock=clock,
                         grace_s=settings.watchdog_grace_s, worker_online_s=settings.worker_online_s),
        accounts=base.accounts, web_sessions=base.web_sessions, oauth=base.oauth,
        knowledge=KnowledgeBase(store=articles, queue=queue, clock=clock,
                                sync_grace_s=settings.knowledge_sweep_interval_s),
        knowledge_sync=KnowledgeSync(
            store=articles, flows=flows, queue=queue, clock=clock,
            files=lambda connector: OpenAIKnowledgeFiles(http=http_clients.http(connector)),
            sweep_interval_s=settings.knowledge_sweep_interval_s),
        retention=retention(settings, client, clock),
        clock=clock,
        visitors=VisitorTokens(signing, ttl_s=settings.visitor_token_ttl_s, clock=clock),
        contact_tokens=contact_tokens,
        identities=ContactIdentities(secrets=base.vault.identity_secrets, tokens=contact_tokens,
                                     clock=clock),
        redis=client,
        openai_events=ResponseEvents(
            secrets=webhook_secrets(base.vault, settings), clock=clock, metrics=metrics,
            wakeups=RedisResponseWakeups(client, prefix=prefix)),
        uses_workers=queue.needs_workers,
    )


def widget_secrets(settings: Settings, client: redis.Redis) -> Callable[[], list[str]]:
    """What signs visitor and contact tokens: the configured widget secret, or one kept in Redis."""
    configured = configured_secrets(settings.widget_secret)
    return (lambda: configured) if configured else redis_secret(client, prefix=settings.key_prefix)
