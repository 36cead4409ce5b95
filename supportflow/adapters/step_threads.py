"""A StepRunner on a thread pool shared by the process: a batch's conversations side by side.

A wake task carries up to 20 conversations; their steps mostly wait on the assistant API (a
tenth of a second to a second each against OpenAI), so they run at once, each in a copy of the
task's logging context (so no conversation's fields leak into another's lines).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from supportflow.services.ports import Job


class StepThreads:
    """Runs a batch's first job in the caller's thread and the others on the pool."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def run(self, jobs: Sequence[Job]) -> None:
        """Run every job; return when all are done, raising the first error of any."""
        if not jobs:
            return
        pool = self._executor() if len(jobs) > 1 else None
        futures: list[Future[None]] = []
        if pool is not None:
            futures = [pool.submit(contextvars.copy_context().run, job) for job in jobs[1:]]
        first: BaseException | None = None
        try:
            contextvars.copy_context().run(jobs[0])
        except Exception as error:
            first = error
        for future in futures:
            failed = future.exception()
            if failed is not None and first is None:
                first = failed
        if first is not None:
            raise first

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():  # first use, or after a fork
                self._pid = os.getpid()
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="step")
            return self._pool
