"""`supportflow flows check|identity-secret`: validate flow files; keep a flow's identity secret."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import redis

from supportflow.adapters.flow_files import FlowDirectory, FlowError, load_flow_file
from supportflow.adapters.redis_connection import redis_target
from supportflow.adapters.vault import VaultError
from supportflow.bootstrap import stores
from supportflow.domain.secrets import DEFAULT_KEEP_PREVIOUS_S
from supportflow.settings import Settings

from .text import text
from .vault import change_rotating_secret

COMMAND = "flows"


def register(commands: Any) -> None:
    """Add `flows check` and `flows identity-secret`."""
    flows = commands.add_parser(COMMAND, help="work with flow files")
    flows.set_defaults(run=run)
    actions = flows.add_subparsers(dest="flows_command", metavar="ACTION")
    check = actions.add_parser("check", help="validate every flow file of a folder")
    check.add_argument("--dir", type=Path, help="the flows folder (default: SUPPORTFLOW_FLOWS_DIR, "
                                                "./config/flows or the packaged flows)")
    identity = actions.add_parser(
        "identity-secret", help="set (or rotate) the secret a flow's sites sign their users' "
        "contact ids with; read from stdin (or asked for), kept encrypted in the vault")
    identity.add_argument("name", type=text, help="the flow")
    identity.add_argument("--keep-previous", type=float, default=DEFAULT_KEEP_PREVIOUS_S,
                          metavar="SECONDS", help="how long the previous secret still verifies "
                          f"(default {DEFAULT_KEEP_PREVIOUS_S:g}; 0: not at all)")
    identity.add_argument("--remove", action="store_true",
                          help="remove every identity secret of the flow")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one flows action."""
    if args.flows_command == "check":
        return check(args, settings)
    if args.flows_command == "identity-secret":
        return identity_secret(args, settings)
    print("usage: supportflow flows {check,identity-secret}\n"
          "supportflow flows: error: name an action: check, identity-secret", file=sys.stderr)
    return 2


def identity_secret(args: argparse.Namespace, settings: Settings) -> int:
    """Set, rotate or remove a flow's identity secret; never prints one."""
    try:
        flow = FlowDirectory.load(settings.flows_dir, settings.default_flow).get(args.name)
    except FlowError as error:
        print(f"supportflow flows: error: the flows do not load:\n{error}", file=sys.stderr)
        return 1
    except KeyError:
        print(f"supportflow flows: error: no flow named {args.name!r} in {settings.flows_dir}",
              file=sys.stderr)
        return 1
    vault = stores(settings).vault
    try:
        said = change_rotating_secret(
            args, f"identity secret of flow {flow.name!r}", "Identity secret: ",
            lambda secret, now, keep: vault.set_identity_secret(flow.name, secret, now=now,
                                                                keep_previous_s=keep),
            lambda: vault.remove_identity_secrets(flow.name))
    except VaultError as error:
        print(f"supportflow flows: error: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow flows: error: Redis at {redis_target(settings).describe()}: {error}",
              file=sys.stderr)
        return 1
    mode = "" if args.remove else f" (widget.identity: {flow.widget.identity.value})"
    print(said + mode)
    return 0


def check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate every flow file; print OK per flow or the errors; 1 when any is bad."""
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
                  f"{flow.thread_scope.value} threads, identity {flow.widget.identity.value})")
    if failed:
        return 1
    try:
        directory = FlowDirectory.load(folder, settings.default_flow)
    except FlowError as error:
        print(f"ERROR {error}")
        return 1
    print(f"{len(directory.flows)} flow(s) OK; default: {directory.default!r}")
    return 0
