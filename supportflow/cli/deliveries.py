"""`supportflow deliveries ...`: outbound deliveries that were given up on (dead letters)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from supportflow.adapters.flow_files import FlowError
from supportflow.adapters.redis_connection import redis_target
from supportflow.bootstrap import bootstrap
from supportflow.settings import Settings

from .text import text

COMMAND = "deliveries"


def register(commands: Any) -> None:
    """Add `deliveries dead|replay|replay-all`."""
    deliveries = commands.add_parser(COMMAND, help="outbound deliveries: dead letters")
    deliveries.set_defaults(run=run)
    actions = deliveries.add_subparsers(dest="deliveries_command", metavar="ACTION")
    actions.add_parser("dead", help="list dead letters")
    actions.add_parser("replay", help="send one dead letter again").add_argument("id", type=text)
    actions.add_parser("replay-all", help="send every dead letter again")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """List or replay dead letters."""
    if args.deliveries_command is None:
        print("usage: supportflow deliveries {dead,replay,replay-all}", file=sys.stderr)
        return 2
    try:
        return _act(args, settings)
    except FlowError as error:
        print(f"supportflow deliveries: error: the flows do not load:\n{error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow deliveries: error: Redis at {redis_target(settings).describe()}: {error}",
              file=sys.stderr)
        return 1


def _act(args: argparse.Namespace, settings: Settings) -> int:
    deliveries = bootstrap(settings).deliveries
    if args.deliveries_command == "dead":
        for letter in deliveries.dead_letters(1000):
            print(f"{letter.id}  {letter.event.type.value}  {letter.target}  "
                  f"conversation={letter.event.conversation_id}  {letter.last_error}")
        return 0
    ids = [args.id] if args.deliveries_command == "replay" else [
        letter.id for letter in deliveries.dead_letters(100_000)]
    missing = [i for i in ids if not deliveries.replay(i)]
    print(f"{len(ids) - len(missing)} dead letter(s) sent again")
    for delivery_id in missing:
        print(f"supportflow deliveries: error: no dead letter {delivery_id!r}", file=sys.stderr)
    return 1 if missing else 0
