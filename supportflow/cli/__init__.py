"""The `supportflow` command: one module per command group, each adding its own parser.

Every group module has `COMMAND` (its name) and `register(commands)`, which adds its subparser
and sets `run`: the function that takes the parsed arguments and the settings and returns the
exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from supportflow.adapters.redis_connection import redis_target
from supportflow.settings import load_settings

from . import (
    agents,
    config,
    contacts,
    deliveries,
    dev,
    flows,
    inboxes,
    init,
    oauth_clients,
    sandbox,
    tokens,
    vault,
    widget,
)

GROUPS = (init, flows, sandbox, dev, vault, tokens, agents, oauth_clients, inboxes, deliveries,
          contacts, widget, config)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group."""
    parser = argparse.ArgumentParser(
        prog="supportflow",
        description="Customer-support chats between a helpdesk widget and an OpenAI assistant.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `supportflow` command; returns the exit code (2 for bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or bad usage (2)
        return int(stop.code or 0) if not isinstance(stop.code, str) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        names = ", ".join(group.COMMAND for group in GROUPS)
        print(f"supportflow: error: name a command: {names}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        redis_target(settings)  # a malformed Redis or Sentinel setting is bad usage too
    except ValueError as error:
        print(f"supportflow: error: bad setting in the environment: {error}", file=sys.stderr)
        return 2
    code: int = args.run(args, settings)
    return code
