"""Worker process hooks: JSON logs (Celery's setup_logging) and a heartbeat from the main process."""

from __future__ import annotations

import logging
import threading
import time
from functools import cache
from typing import Any

import redis
from celery import bootsteps
from celery.signals import setup_logging, worker_init, worker_ready

from supportflow.adapters.celery_queue import CeleryTaskQueue
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.bootstrap import Stores, scheduler_config, stores
from supportflow.observability.logs import configure_logging
from supportflow.observability.ops import OpsStore
from supportflow.runtime.priority import give_way
from supportflow.runtime.redis_server import check_redis_durability
from supportflow.services.scheduler import Scheduler

log = logging.getLogger("supportflow.worker")
HEARTBEAT_S = 5.0


@setup_logging.connect
def json_logs(loglevel: int | str | None = None, **_: Any) -> None:
    """Workers and beat write JSON lines (with conversation, turn and task) at their --loglevel."""
    configure_logging(loglevel or "INFO")


@cache
def main_stores() -> Stores:
    """The worker's main process's stores (the pool's processes build their own after forking)."""
    return stores()


PRIORITY: list[str] = []  # what lower_priority changed, logged once logging is set up


@worker_init.connect
def lower_priority(**_: Any) -> None:
    """Give way to the web on a shared machine (SUPPORTFLOW_WORKER_NICE; a pool's processes
    inherit it)."""
    PRIORITY[:] = give_way(main_stores().settings.worker_nice)


@worker_ready.connect
def log_priority(**_: Any) -> None:
    """Say what the worker's priority became."""
    if PRIORITY:
        log.info("worker priority: %s (SUPPORTFLOW_WORKER_NICE)", ", ".join(PRIORITY))


@worker_ready.connect
def check_redis_on_start(**_: Any) -> None:
    """Say at start when Redis would lose data on a restart or evict keys (DESIGN.md 6)."""
    for warning in check_redis_durability(main_stores().redis):
        log.warning("redis: %s", warning)


class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Records `hostname -> last seen` in Redis every few seconds while the worker runs."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.ops: OpsStore | None = None

    def start(self, worker: Any) -> None:
        self.ops = main_stores().ops
        self.beat(worker.hostname)
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_S, self.beat, (worker.hostname,),
                                                 priority=10)

    def beat(self, hostname: str) -> None:
        """One heartbeat; a Redis outage only costs a warning."""
        try:
            if self.ops is not None:
                self.ops.heartbeat(hostname)
        except redis.RedisError as error:
            log.warning("heartbeat not recorded: %s", error)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
        try:
            if self.ops is not None:
                self.ops.forget_worker(worker.hostname)
        except redis.RedisError:
            pass


class Dispatching(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the scheduler in the worker's main process: a thread publishes due wake-ups.

    Every worker runs one; claims are atomic, so several never publish a wake-up twice, and
    no single process is needed for polls to happen.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        base = main_stores()
        scheduler = Scheduler(
            schedule=RedisConversationStore(base.redis, prefix=base.settings.key_prefix),
            queue=CeleryTaskQueue(worker.app), clock=time.time,
            config=scheduler_config(base.settings))
        self.thread = threading.Thread(target=scheduler.run, args=(self.stopped,),
                                       name="scheduler", daemon=True)
        self.thread.start()

    def stop(self, worker: Any) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
