"""How many event streams a web process holds open at once, in all and per client.

A WSGI server gives each open stream one of its threads for the stream's whole life, so
without a bound a few dozen open widgets (or one client opening many) would leave no thread
for the posts that carry customers' messages. A stream over the bound is refused before
anything is sent: 429 when one client holds its share, 503 when the process holds its
all; both with Retry-After, and the widget falls back to polling the messages.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from .errors import RETRY_AFTER_S, ApiError

# A full server frees a slot when some stream ends: seconds, not the outage's one.
STREAM_RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_S * 5)}


class StreamSlots:
    """Counts this process's open streams; `take` reserves one or refuses."""

    def __init__(self, *, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._open_total = 0

    def take(self, client: str) -> Callable[[], None]:
        """Reserve a stream for `client`; the function that gives it back (safe to call twice)."""
        with self._lock:
            if self._open[client] >= self.per_client:
                raise ApiError(429, "too_many_streams",
                               f"this client already has {self.per_client} event streams "
                               "open here; close one, or poll the messages instead",
                               headers=dict(STREAM_RETRY_AFTER))
            if self._open_total >= self.total:
                raise ApiError(503, "streams_full",
                               "this server holds as many event streams as it can; try "
                               "again shortly, or poll the messages instead",
                               headers=dict(STREAM_RETRY_AFTER))
            self._open[client] += 1
            self._open_total += 1
        held = [True]

        def give_back() -> None:
            with self._lock:
                if not held:
                    return
                held.clear()
                self._open_total -= 1
                self._open[client] -= 1
                if self._open[client] <= 0:
                    del self._open[client]

        return give_back

    def open_count(self) -> int:
        """Streams open in this process now."""
        return self._open_total
