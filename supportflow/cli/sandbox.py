"""`supportflow sandbox`: serve the local stand-in for the OpenAI API."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from supportflow.settings import Settings

COMMAND = "sandbox"


def register(commands: Any) -> None:
    """Add `sandbox`."""
    sandbox = commands.add_parser(COMMAND, help="run the local stand-in for the OpenAI API")
    sandbox.set_defaults(run=run)
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--latency", type=float, default=0.5, metavar="S",
                         help="seconds before a run finishes (default 0.5)")
    sandbox.add_argument("--knowledge", type=Path, help="the knowledge file (default: "
                         "./config/sandbox/knowledge.yaml or the packaged one)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the sandbox assistant until interrupted."""
    from supportflow.sandbox.server import serve

    knowledge: Path = args.knowledge or settings.sandbox_knowledge
    if not knowledge.is_file():
        print(f"supportflow: error: no knowledge file at {knowledge}", file=sys.stderr)
        return 2
    print(f"sandbox assistant on http://{args.host}:{args.port}/v1 "
          f"(latency {args.latency} s, knowledge {knowledge})", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(args.host, args.port, knowledge, args.latency)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"supportflow: error: cannot serve on {args.host}:{args.port}: {error}",
              file=sys.stderr)
        return 1
    return 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
