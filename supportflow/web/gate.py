"""At most so many ordinary requests run in a web process at once; event streams wait apart.

The web's threads are many so that open event streams (which mostly sleep) do not crowd out
posts. But every thread running Python shares one GIL: with 32 requests at once in a process,
each takes longer and the slowest much longer (bench/README.md: p99 at 64 connections 152-164
ms with 32 threads against 86-100 ms with 8). So ordinary requests pass a gate of
`web_requests_at_once` permits; a thread waiting at it holds no GIL, as a request queued in
the server would not. Streams hold stream slots instead (stream_slots.py), and the health
probes pass freely so that a busy process is not restarted for it.
"""

from __future__ import annotations

import threading
from collections import deque

from flask import Flask, g, request

from .errors import unavailable

UNGATED_BLUEPRINTS = frozenset({"streams", "health"})
# Longer than any ordinary request takes; past it the process is overloaded: say so.
WAIT_S = 30.0


class FairGate:
    """A semaphore that hands a freed permit to the longest waiter (first come, first in).

    threading.Semaphore lets a newly arrived thread take a freed permit before the woken one
    gets the GIL, so under load some requests wait many turns: the slowest ones are the p99.
    """

    def __init__(self, permits: int) -> None:
        self._free = permits
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def enter(self, timeout: float) -> bool:
        """Take a permit, waiting in line up to `timeout` seconds; False when none came."""
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._lock:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        return True  # handed a permit just as the wait ended

    def leave(self) -> None:
        """Give the permit back: to the first in line, if any."""
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


def install_request_gate(app: Flask, at_once: int) -> None:
    """Let `at_once` ordinary requests of this process run at a time, in order of arrival."""
    gate = FairGate(at_once)

    @app.before_request
    def enter() -> None:
        if request.blueprint in UNGATED_BLUEPRINTS:
            return
        if not gate.enter(timeout=WAIT_S):
            raise unavailable("this server is overloaded; try again shortly", code="busy")
        g.gate_permit = True

    @app.teardown_request
    def leave(_error: BaseException | None) -> None:
        if g.pop("gate_permit", False):
            gate.leave()
