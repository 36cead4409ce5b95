"""The Celery app: `celery -A workers.app worker` and `celery -A workers.app beat`."""

from __future__ import annotations

from typing import Any

from celery import Celery

from supportflow.adapters.celery_queue import (
    HANDOFF_TIMEOUTS_TASK,
    KNOWLEDGE_SWEEP_TASK,
    OPS_SAMPLE_TASK,
    QUEUE,
)
from supportflow.settings import Settings, load_settings


def celery_config(settings: Settings) -> dict[str, Any]:
    """Delivery settings that follow from DESIGN.md section 3."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # Tasks are acknowledged after they ran, and put back when their process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Steps wait on the assistant's API (I/O): threads, many at once (bench/README.md).
        "worker_pool": "threads",
        # Polls are scheduled in Redis (services/scheduler.py), not as countdowns; the few
        # countdown tasks left (delivery retries) are held in memory: keep that bounded.
        "worker_eta_task_limit": 1000,
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "broker_transport_options": {"visibility_timeout": 3600},
        "beat_schedule": {
            "handoff-timeouts": {"task": HANDOFF_TIMEOUTS_TASK,
                                 "schedule": settings.handoff_check_interval_s},
            "ops-sample": {"task": OPS_SAMPLE_TASK, "schedule": settings.ops_sample_interval_s},
            "knowledge-sweep": {"task": KNOWLEDGE_SWEEP_TASK,
                                "schedule": settings.knowledge_sweep_interval_s},
        },
    }


def create_celery(settings: Settings | None = None) -> Celery:
    """Build the Celery app bound to the settings; tasks come from workers.tasks."""
    settings = settings or load_settings()
    celery = Celery("supportflow", task_cls="workers.base:SupportFlowTask")
    celery.conf.update(celery_config(settings))
    celery.conf.include = ["workers.tasks"]
    from .signals import Dispatching, Heartbeat  # also connects JSON logging to setup_logging

    celery.steps["worker"].add(Heartbeat)
    celery.steps["worker"].add(Dispatching)
    return celery


app = create_celery()
