"""Worker process hooks: JSON logs (Celery's setup_logging) and a heartbeat from the main process."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import redis
from celery import bootsteps
from celery.signals import setup_logging, worker_ready

from supportflow.bootstrap import Stores, stores
from supportflow.observability.logs import configure_logging
from supportflow.observability.ops import OpsStore
from supportflow.runtime.redis_server import check_redis_durability

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
