"""Beat on several machines, one active: redbeat keeps the schedule and a lock in Redis.

Every beat process runs this scheduler. The one holding the lock sends the periodic tasks and
renews the lock on each tick; the others wait for the lock (trying once per loop interval) and
take over when it expires, within `beat_lock_timeout_s + beat_max_loop_interval_s`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import redis
from redbeat.schedulers import RedBeatScheduler

from supportflow.adapters.redis_connection import connect
from supportflow.bootstrap import stores
from supportflow.settings import load_settings

log = logging.getLogger("supportflow.beat")
# How long to wait before trying again when Redis does not answer (a failover, a restart).
REDIS_RETRY_S = 1.0


class SupportFlowScheduler(RedBeatScheduler):  # type: ignore[misc]
    """redbeat on SupportFlow's Redis client; rides out Redis outages and a lost lock."""

    lock: Any = None

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        settings = load_settings()
        # redbeat's get_redis() returns this client once it is set: one connection factory,
        # so beat follows a Sentinel failover like every other part.
        app.redbeat_redis = connect(settings, decode_responses=True)
        self.ops = stores(settings).ops
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__(app, *args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One loop: as a standby, wait for the lock; as the active beat, send what is due."""
        try:
            if self.lock is None:
                self._stand_by()
            interval: float = super().tick(*args, **kwargs)
            return interval
        except redis.exceptions.LockError:
            # Another beat holds the lock now (ours expired while Redis was out of reach).
            log.warning("beat: lost the lock; standing by")
            self.lock = None
            return 0.0
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("beat: Redis unavailable (%s); trying again in %.0f s", error, REDIS_RETRY_S)
            return REDIS_RETRY_S

    def _stand_by(self) -> None:
        """Block until this beat holds the lock (redbeat's own start-up path, once more)."""
        from redbeat.schedulers import acquire_distributed_beat_lock

        log.info("beat %s: waiting for the lock", self.identity)
        acquire_distributed_beat_lock(sender=_Holder(self))
        log.info("beat %s: active", self.identity)

    def apply_async(self, entry: Any, *args: Any, **kwargs: Any) -> Any:
        """Send the task, and leave a trail of who sent what when (ops, and the HA tests)."""
        result = super().apply_async(entry, *args, **kwargs)
        try:
            self.ops.record_dispatch(entry.task, self.identity, time.time())
        except redis.RedisError as error:
            log.warning("beat: dispatch of %s not recorded: %s", entry.task, error)
        return result


class _Holder:
    """What redbeat's lock helper expects as its sender: something with a `scheduler`."""

    def __init__(self, scheduler: SupportFlowScheduler) -> None:
        self.scheduler = scheduler
