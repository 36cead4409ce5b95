"""The sandbox as its own process serves it: granian's WSGI server, one worker process.

The sandbox shares the cores with what it stands in for, so its server's cost per request is
part of every benchmark. granian parses HTTP and keeps connections alive in Rust, where
waitress did both in Python. One worker process: the sandbox's state (threads, runs, the
times it records) lives in memory. granian imports the app in that process by name, so the
options travel in one environment variable (a child's environment, never its command line).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from flask import Flask

CONFIG_VARIABLE = "SUPPORTFLOW_SANDBOX_SERVED"
FACTORY = "supportflow.sandbox.served:create_app"


def create_app() -> Flask:
    """The sandbox app from the options `serve` left in the environment (granian's factory)."""
    from supportflow.sandbox.server import create_sandbox_app

    options = json.loads(os.environ[CONFIG_VARIABLE])
    return create_sandbox_app(Path(options["knowledge"]), latency_s=options["latency_s"],
                              webhook_url=options["webhook_url"],
                              webhook_secret=options["webhook_secret"])


def serve(host: str, port: int, knowledge_path: Path, latency_s: float = 0.5, *,
          webhook_url: str | None = None, webhook_secret: str | None = None,
          threads: int = 16) -> None:
    """Serve the sandbox until SIGTERM or SIGINT (blocks); OSError when the port is taken."""
    from granian import Granian
    from granian.constants import Interfaces

    ensure_free(host, port)
    os.environ[CONFIG_VARIABLE] = json.dumps({
        "knowledge": str(knowledge_path.resolve()), "latency_s": latency_s,
        "webhook_url": webhook_url, "webhook_secret": webhook_secret})
    Granian(FACTORY, address=host, port=port, interface=Interfaces.WSGI, factory=True,
            workers=1, blocking_threads=threads, websockets=False, log_access=False,
            respawn_failed_workers=True, workers_kill_timeout=5).serve()


def ensure_free(host: str, port: int) -> None:
    """Raise OSError when the address cannot be bound: granian would abort with a backtrace."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
