"""The Celery app: `celery -A workers.app worker` and `celery -A workers.app beat`."""

from __future__ import annotations

from typing import Any

from celery import Celery

from supportflow.adapters.celery_queue import (
    HANDOFF_TIMEOUTS_TASK,
    KNOWLEDGE_SWEEP_TASK,
    OPS_SAMPLE_TASK,
    QUEUE,
    RETENTION_TASK,
)
from supportflow.adapters.redis_connection import celery_broker, redis_target
from supportflow.settings import Settings, load_settings

# Below the 30 s most platforms allow between SIGTERM and SIGKILL.
SOFT_SHUTDOWN_S = 20.0


def celery_config(settings: Settings) -> dict[str, Any]:
    """Delivery settings that follow from DESIGN.md section 3."""
    broker_url, transport_options = celery_broker(settings)
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        # Tasks are acknowledged after they ran, and put back when their process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # No worker_pool here: the pool comes from the command line (Procfile WORKER_POOL,
        # `supportflow dev`, the tests), because Celery lets a configured pool override
        # `--pool prefork` (it takes that for the CLI's default), so prefork could not be chosen.
        # Polls are scheduled in Redis (services/scheduler.py), not as countdowns; the few
        # countdown tasks left (delivery retries) are held in memory: keep that bounded.
        "worker_eta_task_limit": 1000,
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "broker_transport_options": {"visibility_timeout": 3600, **transport_options},
        # SIGTERM to the main process finishes the steps in flight (warm shutdown) and puts the
        # tasks it holds back in Redis. SIGQUIT (or SIGTERM with REMAP_SIGTERM=SIGQUIT,
        # for platforms that signal every process) gives running steps this long, then puts
        # them back too (soft shutdown).
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_S,
        # Beat on several machines, one active (workers/beat.py): schedule and lock in Redis.
        "beat_scheduler": "workers.beat:SupportFlowScheduler",
        "beat_max_loop_interval": settings.beat_max_loop_interval_s,
        "redbeat_lock_timeout": settings.beat_lock_timeout_s,
        "redbeat_key_prefix": f"{settings.key_prefix}:redbeat:",
        # Shown in beat's banner only; the scheduler takes its client from redis_connection.
        "redbeat_redis_url": redis_target(settings).describe(),
        "beat_schedule": {
            "handoff-timeouts": {"task": HANDOFF_TIMEOUTS_TASK,
                                 "schedule": settings.handoff_check_interval_s},
            "ops-sample": {"task": OPS_SAMPLE_TASK, "schedule": settings.ops_sample_interval_s},
            "retention": {"task": RETENTION_TASK, "schedule": settings.retention_interval_s},
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
