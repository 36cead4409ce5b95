"""The one base task: logging context, metrics hooks, and the shared delivery policy."""

from __future__ import annotations

import logging
import threading
import time
from functools import cache
from typing import Any

import redis
from celery import Task, current_app

from supportflow.adapters.celery_queue import PERIODIC_TASKS, CeleryTaskQueue
from supportflow.bootstrap import Services, bootstrap
from supportflow.observability.logs import log_context

log = logging.getLogger("supportflow.tasks")
HEARTBEAT_EVERY_S = 5.0
_last_heartbeat = [0.0]


_building = threading.Lock()


@cache
def _services() -> Services:
    return bootstrap(queue=CeleryTaskQueue(current_app))


def services() -> Services:
    """This worker process's services, built once on first use (after a pool forks; the
    threads of a threads pool share them)."""
    with _building:
        return _services()


class SupportFlowTask(Task):  # type: ignore[misc]
    """Acks late, retries Redis outages with backoff, logs each run with its conversation."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (redis.ConnectionError, redis.TimeoutError)
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 8

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        # A conversation's id, or a wake task's list of wake-ups (each step logs its own).
        conversation = args[0] if args and isinstance(args[0], str) else (
            f"{len(args[0])} wake-ups" if args and isinstance(args[0], list) else "-")
        self._heartbeat()
        try:
            owned = conversation.startswith("conv-")
            with log_context(task_id=self.request.id, task=self.name,
                             conversation_id=conversation if owned else None):
                result = super().__call__(*args, **kwargs)
            if self.name in PERIODIC_TASKS:
                services().ops.record_run(self.name, time.time())
            return result
        finally:
            log.debug(
                "task %s [%s] conversation=%s took %.3f s",
                self.name, self.request.id, conversation, time.monotonic() - started,
            )

    def _heartbeat(self) -> None:
        """Say this worker is alive, at most every few seconds per process."""
        hostname = self.request.hostname
        now = time.time()
        if hostname and now - _last_heartbeat[0] >= HEARTBEAT_EVERY_S:
            _last_heartbeat[0] = now
            try:
                services().ops.heartbeat(hostname, now)
            except redis.RedisError as error:
                log.warning("heartbeat not recorded: %s", error)
