"""Builds the helpdesk parts (inboxes, inbound, deliveries) for the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from supportflow.adapters.celery_queue import CeleryTaskQueue
from supportflow.adapters.delivery_queue import CeleryDeliveryQueue
from supportflow.adapters.delivery_store import RedisDeliveryStore
from supportflow.adapters.http_delivery import HttpTransport, make_client
from supportflow.adapters.inbox_store import InboxStore, RedisConversationMap
from supportflow.adapters.vault import Vault
from supportflow.services.deliveries import AgentsWebhook, Deliveries, DeliveryQueue
from supportflow.services.helpdesk import HelpdeskInbound
from supportflow.services.intake import Intake
from supportflow.services.ports import Metrics
from supportflow.settings import Settings


@dataclass
class Helpdesk:
    """Inboxes, the inbound use case and the deliveries (also the EventPublisher)."""

    inboxes: InboxStore
    inbound: HelpdeskInbound
    deliveries: Deliveries


def build_helpdesk(settings: Settings, client: redis.Redis, *, vault: Vault, intake: Intake,
                   queue: DeliveryQueue, clock: Callable[[], float],
                   metrics: Metrics | None = None) -> Helpdesk:
    """Wire the helpdesk parts on Redis, httpx and the given delivery queue."""
    inboxes = InboxStore(client, prefix=settings.key_prefix, vault=vault)
    transport = HttpTransport(
        make_client(settings.http_connect_timeout_s, settings.delivery_timeout_s), clock)
    deliveries = Deliveries(
        store=RedisDeliveryStore(client, prefix=settings.key_prefix), queue=queue,
        inboxes=inboxes, transport=transport, schedule=settings.delivery_schedule,
        agents=AgentsWebhook(settings.agents_webhook_url, settings.agents_webhook_secret),
        clock=clock, metrics=metrics,
    )
    inbound = HelpdeskInbound(
        intake=intake, conversations=RedisConversationMap(client, prefix=settings.key_prefix))
    return Helpdesk(inboxes=inboxes, inbound=inbound, deliveries=deliveries)


class NoDeliveryQueue:
    """For processes given a queue that cannot carry deliveries (tests with fakes)."""

    def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        return None


def delivery_queue_for(queue: object) -> DeliveryQueue | None:
    """A Celery delivery queue beside a Celery task queue; None beside a fake."""
    if isinstance(queue, CeleryTaskQueue):
        return CeleryDeliveryQueue(queue.sender)
    return None
