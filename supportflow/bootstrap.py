"""The composition root: wires adapters to the use cases, for the web app, workers and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from supportflow.adapters.assistant_directory import AssistantClients
from supportflow.adapters.redis_agents import RedisAgentBoard
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.tokens import TokenStore
from supportflow.adapters.vault import Vault
from supportflow.flowconfig import FlowDirectory
from supportflow.observability.ops import OpsStore
from supportflow.observability.overview import OpsView
from supportflow.observability.redis_metrics import RedisMetrics
from supportflow.services.agents import AgentDesk
from supportflow.services.intake import Intake
from supportflow.services.ports import (
    AssistantDirectory,
    EventPublisher,
    FlowCatalog,
    Metrics,
    NullPublisher,
    TaskQueue,
)
from supportflow.services.session import EngineConfig
from supportflow.services.turns import TurnEngine
from supportflow.services.watchdog import Watchdog
from supportflow.settings import Settings, load_settings
from supportflow.webhooks.wiring import Helpdesk, NoDeliveryQueue, build_helpdesk, delivery_queue_for


@dataclass
class Services:
    """Everything a process needs, built once."""

    settings: Settings
    store: RedisConversationStore
    flows: FlowCatalog
    intake: Intake
    engine: TurnEngine
    watchdog: Watchdog
    vault: Vault
    tokens: TokenStore
    agents: AgentDesk
    helpdesk: Helpdesk
    metrics: Metrics
    ops: OpsStore
    ops_view: OpsView
    # True when tasks go to Celery workers (readiness then needs a worker seen recently).
    uses_workers: bool = False


def bootstrap(
    settings: Settings | None = None,
    *,
    queue: TaskQueue,
    assistants: AssistantDirectory | None = None,
    flows: FlowCatalog | None = None,
    redis_client: redis.Redis | None = None,
    publisher: EventPublisher | None = None,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> Services:
    """Build the services; pass fakes (queue, assistants, flows, clock) to replace real parts."""
    settings = settings or load_settings()
    flows = flows or FlowDirectory.load(settings.flows_dir, settings.default_flow)
    client = redis_client or redis.Redis.from_url(settings.redis_url, health_check_interval=30)
    vault = Vault(client, prefix=settings.key_prefix, key=settings.vault_key)
    if assistants is None:
        assistants = AssistantClients(settings, connectors=vault.get)
    store = RedisConversationStore(client, prefix=settings.key_prefix,
                                   lease_ttl_s=settings.lease_ttl_s)
    config = EngineConfig(
        lease_ttl_s=settings.lease_ttl_s,
        retry_base_s=settings.step_retry_base_s,
        retry_max_s=settings.step_retry_max_s,
    )
    counts = RedisMetrics(client, prefix=settings.key_prefix)
    metrics = metrics or counts
    ops = OpsStore(client, prefix=settings.key_prefix, metrics=counts)
    intake = Intake(store=store, flows=flows, queue=queue, clock=clock, metrics=metrics)
    # Deliveries go out as Celery tasks; with a fake queue (tests) nothing is published.
    deliveries = delivery_queue_for(queue)
    helpdesk = build_helpdesk(settings, client, vault=vault, intake=intake, clock=clock,
                              queue=deliveries or NoDeliveryQueue(), metrics=metrics)
    if publisher is None:
        publisher = helpdesk.deliveries if deliveries else NullPublisher()
    engine = TurnEngine(store=store, flows=flows, assistants=assistants, queue=queue,
                        clock=clock, config=config, publisher=publisher,
                        metrics=metrics, failures=ops)
    return Services(
        settings=settings,
        store=store,
        flows=flows,
        intake=intake,
        engine=engine,
        watchdog=Watchdog(store=store, queue=queue, clock=clock,
                          grace_s=settings.watchdog_grace_s, metrics=metrics),
        vault=vault,
        tokens=TokenStore(client, prefix=settings.key_prefix),
        agents=AgentDesk(store=store, board=RedisAgentBoard(client, prefix=settings.key_prefix),
                         engine=engine, clock=clock, metrics=metrics),
        helpdesk=helpdesk,
        metrics=metrics,
        ops=ops,
        ops_view=OpsView(store=store, ops=ops, metrics=counts, clock=clock,
                         grace_s=settings.watchdog_grace_s, worker_online_s=settings.worker_online_s),
        uses_workers=deliveries is not None,
    )
