"""`supportflow dev`: Redis, the sandbox, a worker, beat and the web app on this machine."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from supportflow.settings import Settings

COMMAND = "dev"


def register(commands: Any) -> None:
    """Add `dev`."""
    dev = commands.add_parser(COMMAND, help="run Redis, the sandbox, workers, beat and the web app")
    dev.set_defaults(run=run)
    dev.add_argument("--port", type=int, default=5000, help="the web app's port (default 5000)")
    dev.add_argument("--data", type=Path, default=Path("var"),
                     help="folder for Redis data and the beat schedule (default ./var)")
    dev.add_argument("--redis-url", help="use this Redis instead of starting an embedded one")
    dev.add_argument("--sandbox-port", type=int, default=8765)
    dev.add_argument("--concurrency", type=int, default=32,
                     help="steps the Celery worker runs at once (threads)")
    dev.add_argument("--workers", type=int, default=default_workers(),
                     help="Celery worker processes (default: one per core, here "
                          f"{default_workers()})")
    dev.add_argument("--no-webhooks", dest="webhooks", action="store_false",
                     help="the sandbox sends no response events (replies wait for polls)")


def default_workers() -> int:
    """One worker process per core: each runs its steps on threads, held to a core by the GIL."""
    return max(1, os.cpu_count() or 1)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the whole service on this machine until Ctrl-C."""
    from supportflow.runtime import dev

    for count, what in ((args.workers, "--workers"), (args.concurrency, "--concurrency")):
        if count < 1:
            print(f"supportflow: error: {what} must be at least 1", file=sys.stderr)
            return 2
    for port, what in ((args.port, "--port"), (args.sandbox_port, "--sandbox-port")):
        if not 0 < port < 65536:
            print(f"supportflow: error: {what} must be a port number", file=sys.stderr)
            return 2
        if port_in_use(port) and (what == "--port" or settings.uses_sandbox):
            print(f"supportflow: error: port {port} is already in use; pick another with {what}",
                  file=sys.stderr)
            return 1
    return dev.run(dev.DevOptions(
        web_port=args.port, data_dir=args.data.resolve(), redis_url=args.redis_url,
        sandbox_port=args.sandbox_port, concurrency=args.concurrency, webhooks=args.webhooks,
        workers=args.workers,
    ), settings)
