"""gunicorn settings for the `web` process: restarts that finish requests and end streams.

Used as `gunicorn -c python:supportflow.web.gunicorn_conf ...` (the Procfile does). On SIGTERM
gunicorn stops accepting connections and gives requests in flight `graceful_timeout` seconds;
the hook below also tells the app, so open event streams end at once instead of being cut
when that time runs out, and their clients reconnect elsewhere with Last-Event-ID.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

# Longer than any request but an event stream (those end as soon as the stop is seen).
graceful_timeout = 30
# No control socket: its default path is per user, so two instances on one machine would share
# it, and the Procfile's processes are managed by signals anyway.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Chain the app's stop signal in front of gunicorn's own SIGTERM handler."""
    stopping = worker.wsgi.extensions["supportflow_stopping"]
    graceful = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if callable(graceful):
            graceful(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
