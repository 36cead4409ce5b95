"""`supportflow sandbox`: serve the local stand-in for the OpenAI API."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from supportflow.settings import Settings
from supportflow.webhooks.signing import is_secret

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
    sandbox.add_argument("--webhook-url", metavar="URL",
                         help="send signed response events here when background responses end "
                         "(e.g. http://127.0.0.1:5000/v1/integrations/openai/default)")
    sandbox.add_argument("--webhook-secret", metavar="WHSEC",
                         help="the whsec_ secret that signs them (default: OPENAI_WEBHOOK_SECRET; "
                         "prefer the variable, command lines show in process lists)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the sandbox assistant until interrupted."""
    from supportflow.sandbox.served import serve

    knowledge: Path = args.knowledge or settings.sandbox_knowledge
    if not knowledge.is_file():
        print(f"supportflow: error: no knowledge file at {knowledge}", file=sys.stderr)
        return 2
    secret = args.webhook_secret or settings.openai_webhook_secret
    if args.webhook_url and not is_secret(secret):
        print("supportflow: error: --webhook-url needs a whsec_ secret (--webhook-secret or "
              "OPENAI_WEBHOOK_SECRET)", file=sys.stderr)
        return 2
    events = f", response events to {args.webhook_url}" if args.webhook_url else ""
    print(f"sandbox assistant on http://{args.host}:{args.port}/v1 "
          f"(latency {args.latency} s, knowledge {knowledge}{events})", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(args.host, args.port, knowledge, args.latency, webhook_url=args.webhook_url,
              webhook_secret=secret if args.webhook_url else None)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"supportflow: error: cannot serve on {args.host}:{args.port}: {error}",
              file=sys.stderr)
        return 1
    return 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
