"""A timer for the sandbox: callbacks run at their moment (time.monotonic) from one thread."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timer:
    """Runs each callback at its due moment, in due order; a heap holds what is pending.

    Callbacks run on the timer's own thread, so they must be short (finish a run, hand a
    delivery to the senders): a slow one delays every callback after it.
    """

    def __init__(self, name: str = "sandbox-timer") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def call_at(self, due: float, callback: Callable[[], None]) -> None:
        """Run `callback` once time.monotonic() reaches `due` (at once when it has)."""
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._order), callback))
            if self._heap[0][2] is callback:
                self._wake.notify()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` after `delay_s` seconds."""
        self.call_at(time.monotonic() + max(0.0, delay_s), callback)

    def pending(self) -> int:
        """How many callbacks wait for their moment."""
        with self._wake:
            return len(self._heap)

    def close(self) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._wake:
            self._stopped = True
            self._heap.clear()
            self._wake.notify()
        self._thread.join(timeout=5)

    def _next_due(self) -> Callable[[], None] | None:
        """Wait for the earliest callback's moment and take it; None once stopped."""
        with self._wake:
            while not self._stopped:
                if self._heap:
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._heap)[2]
                    self._wake.wait(wait)
                else:
                    self._wake.wait()
            return None

    def _loop(self) -> None:
        while (callback := self._next_due()) is not None:
            try:
                callback()
            except Exception:  # one bad callback must not stop the others
                log.exception("sandbox timer callback failed")
