"""`supportflow config`: the effective settings, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from supportflow.settings import Settings, env_name

COMMAND = "config"


def register(commands: Any) -> None:
    """Add `config`."""
    config = commands.add_parser(COMMAND, help="print the effective settings, secrets masked")
    config.set_defaults(run=run)
    config.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings with secrets masked."""
    values = settings.redacted()
    if args.json:
        print(json.dumps(values, indent=2, default=str))
        return 0
    width = max(len(name) for name in values)
    for name, value in values.items():
        print(f"{name:<{width}} = {value}    # {env_name(name)}")
    print(f"{'assistant':<{width}} = "
          f"{'sandbox' if settings.uses_sandbox else 'OpenAI'} at {settings.assistant_base_url}")
    return 0
