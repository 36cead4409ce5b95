"""granian glue for the `web` process: restarts that finish requests and end event streams.

The Procfile, `supportflow dev` and the tests run `granian --interface wsgi --factory
supportflow.web.serve:create_app` (`granian_argv` has the options). How granian stops: SIGTERM
to its main process closes the listening socket and sends SIGTERM to every worker process; in a
worker, granian's Python handler starts the Rust server's graceful shutdown, which lets every
request in flight run to its end (event streams too) and `--workers-kill-timeout` bounds that.

An event stream would then run for its whole `stream_max_s` and be cut at the kill timeout, so
the app's stop event (`app.extensions["supportflow_stopping"]`) must be set on that SIGTERM too.
granian's worker installs its handler after the factory has run, so a handler chained here (as
gunicorn's `post_worker_init` did) would be replaced. Python's signal wakeup fd does not depend
on whose handler runs: the C-level handler writes every caught signal's number to it, and a
thread here reads it and sets the event.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Mapping

from flask import Flask

# SIGINT too: granian treats it as SIGTERM (Ctrl-C on a granian run by hand).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
# Longer than any request but an event stream (those end as soon as the stop is seen); what
# gunicorn's graceful_timeout was.
GRACEFUL_TIMEOUT_S = 30
FACTORY = "supportflow.web.serve:create_app"


def create_app() -> Flask:
    """`supportflow.web.create_app()` as granian's workers serve it: SIGTERM ends its streams."""
    from supportflow.web import create_app as build

    app = build({"SUPPORTFLOW_SETTINGS": stream_bound(os.environ)})
    watch_stop_signals(app.extensions["supportflow_stopping"])
    return app


def stream_bound(environ: Mapping[str, str]) -> dict[str, int]:
    """With WEB_THREADS in the environment (as the operator sets it), streams may hold 3/4 of
    the threads unless SUPPORTFLOW_STREAM_MAX_OPEN says otherwise: posts always find one."""
    threads = environ.get("WEB_THREADS", "")
    if not threads.isdigit() or environ.get("SUPPORTFLOW_STREAM_MAX_OPEN"):
        return {}
    return {"stream_max_open": max(1, int(threads) * 3 // 4)}


def watch_stop_signals(stopping: threading.Event) -> None:
    """Set `stopping` when this process catches SIGTERM or SIGINT, whoever handles them.

    Call it from the main thread (granian calls its factory there). Signals without a Python
    handler are not written to the wakeup fd: granian's worker installs one for both.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it: a signal must never block
    previous = signal.set_wakeup_fd(write_fd)
    threading.Thread(target=_relay, args=(read_fd, previous, stopping),
                     name="supportflow-stop-signals", daemon=True).start()


def _relay(read_fd: int, previous: int, stopping: threading.Event) -> None:
    while True:
        caught = os.read(read_fd, 512)
        if not caught:
            return
        if previous >= 0:  # whoever had the wakeup fd before still hears about its signals
            with contextlib.suppress(OSError):
                os.write(previous, caught)
        if STOP_SIGNALS.intersection(caught):
            stopping.set()


def granian_argv(host: str, port: int, workers: int, threads: int, *,
                 access_log: bool = False) -> list[str]:
    """granian's options for the web process, as the Procfile spells them (after `granian`).

    The access log is off unless asked for (here, or GRANIAN_LOG_ACCESS_ENABLED, which the
    Procfile sets from WEB_ACCESS_LOG): it costs ~0.05 ms of CPU per request (README.md).
    """
    return [
        "--interface", "wsgi", "--factory", "--no-ws",
        "--host", host, "--port", str(port), "--workers", str(workers),
        # Each request (an event stream too) holds one of these Python threads while it runs.
        "--blocking-threads", str(threads),
        "--workers-kill-timeout", str(GRACEFUL_TIMEOUT_S),
        # gunicorn replaced a worker that died; granian's default is to stop the whole server.
        "--respawn-failed-workers",
        *(["--access-log"] if access_log else []),
        FACTORY,
    ]
