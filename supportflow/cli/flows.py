"""`supportflow flows check`: validate every flow file of a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from supportflow.adapters.flow_files import FlowDirectory, FlowError, load_flow_file
from supportflow.settings import Settings

COMMAND = "flows"


def register(commands: Any) -> None:
    """Add `flows check`."""
    flows = commands.add_parser(COMMAND, help="work with flow files")
    flows.set_defaults(run=run)
    actions = flows.add_subparsers(dest="flows_command", metavar="ACTION")
    check = actions.add_parser("check", help="validate every flow file of a folder")
    check.add_argument("--dir", type=Path, help="the flows folder (default: SUPPORTFLOW_FLOWS_DIR, "
                                                "./config/flows or the packaged flows)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Validate every flow file; print OK per flow or the errors; 1 when any is bad."""
    if args.flows_command is None:
        print("usage: supportflow flows check [--dir DIR]\n"
              "supportflow flows: error: name an action: check", file=sys.stderr)
        return 2
    folder: Path = args.dir or settings.flows_dir
    if not folder.is_dir():
        print(f"{folder}: no such folder", file=sys.stderr)
        return 1
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        print(f"{folder}: no flow files (*.yaml)", file=sys.stderr)
        return 1
    failed = False
    for path in paths:
        try:
            flow = load_flow_file(path)
        except FlowError as error:
            failed = True
            print(f"ERROR {error}")
        else:
            print(f"OK    {path}: flow {flow.name!r} ({flow.backend.kind.value} backend, "
                  f"{flow.thread_scope.value} threads)")
    if failed:
        return 1
    try:
        directory = FlowDirectory.load(folder, settings.default_flow)
    except FlowError as error:
        print(f"ERROR {error}")
        return 1
    print(f"{len(directory.flows)} flow(s) OK; default: {directory.default!r}")
    return 0
