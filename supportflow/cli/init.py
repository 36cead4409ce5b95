"""`supportflow init`: write a `config/` folder (flows, sandbox knowledge) to start from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from supportflow import defaults
from supportflow.settings import Settings

COMMAND = "init"


def register(commands: Any) -> None:
    """Add `init`."""
    init = commands.add_parser(COMMAND, help="write ./config (the default flow and the sandbox's "
                                             "knowledge) to edit")
    init.set_defaults(run=run)
    init.add_argument("--dir", type=Path, default=Path("config"),
                      help="where to write (default ./config)")
    init.add_argument("--force", action="store_true", help="overwrite files that are there")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Copy the packaged defaults; refuse to overwrite without --force."""
    try:
        written = defaults.write_config(args.dir, force=args.force)
    except defaults.ConfigExists as error:
        print(f"supportflow init: error: already there (use --force to overwrite): {error}",
              file=sys.stderr)
        return 1
    except OSError as error:
        print(f"supportflow init: error: cannot write {args.dir}: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if args.dir.resolve() != Path("config").resolve():
        print(f"point SUPPORTFLOW_FLOWS_DIR at {args.dir / 'flows'} to use them")
    return 0
