"""`supportflow vault ...`: keep API keys as named connectors, encrypted at rest."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import redis

from supportflow.adapters.vault import Vault, VaultError, new_vault_key
from supportflow.bootstrap import stores
from supportflow.domain.connector import Connector
from supportflow.settings import Settings

COMMAND = "vault"


def register(commands: Any) -> None:
    """Add `vault set|list|delete|keygen`."""
    vault = commands.add_parser(COMMAND, help="API keys as named connectors, encrypted at rest")
    vault.set_defaults(run=run)
    actions = vault.add_subparsers(dest="vault_command", metavar="ACTION")
    store = actions.add_parser("set", help="store a connector; the key is read from stdin "
                                           "(or asked for), never from the command line")
    store.add_argument("name")
    store.add_argument("--base-url", default="https://api.openai.com/v1")
    store.add_argument("--organization")
    store.add_argument("--project")
    actions.add_parser("list", help="list connectors (keys are never shown)")
    delete = actions.add_parser("delete", help="remove a connector")
    delete.add_argument("name")
    actions.add_parser("keygen", help="print a new SUPPORTFLOW_VAULT_KEY")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one vault action; 1 with a message when the vault refuses."""
    if args.vault_command is None:
        print("usage: supportflow vault {set,list,delete,keygen}", file=sys.stderr)
        return 2
    if args.vault_command == "keygen":
        print(new_vault_key())
        return 0
    vault = stores(settings).vault
    try:
        return _act(vault, args)
    except VaultError as error:
        print(f"supportflow vault: error: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow vault: error: Redis at {settings.redis_url}: {error}", file=sys.stderr)
        return 1


def _act(vault: Vault, args: argparse.Namespace) -> int:
    if args.vault_command == "set":
        key = _read_key()
        vault.set(Connector(args.name, key, args.base_url, args.organization, args.project))
        print(f"connector {args.name!r} saved")
    elif args.vault_command == "list":
        for entry in vault.listing():
            extras = "".join(f" {k}={entry[k]}" for k in ("organization", "project") if entry[k])
            print(f"{entry['name']}  {entry['base_url']}{extras}  key: set")
    elif vault.delete(args.name):
        print(f"connector {args.name!r} deleted")
    else:
        print(f"supportflow vault: error: no connector named {args.name!r}", file=sys.stderr)
        return 1
    return 0


def _read_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("API key: ").strip()
    return sys.stdin.readline().strip()
