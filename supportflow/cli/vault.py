"""`supportflow vault ...`: keep API keys as named connectors, encrypted at rest."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from supportflow.adapters.redis_connection import redis_target
from supportflow.adapters.vault import Vault, VaultError, new_vault_key
from supportflow.bootstrap import stores
from supportflow.domain.connector import DEFAULT_CONNECTOR, Connector
from supportflow.domain.secrets import DEFAULT_KEEP_PREVIOUS_S
from supportflow.settings import Settings

from .text import text

COMMAND = "vault"


def register(commands: Any) -> None:
    """Add `vault set|list|delete|keygen|webhook-secret`."""
    vault = commands.add_parser(COMMAND, help="API keys as named connectors, encrypted at rest")
    vault.set_defaults(run=run)
    actions = vault.add_subparsers(dest="vault_command", metavar="ACTION")
    store = actions.add_parser("set", help="store a connector; the key is read from stdin "
                                           "(or asked for), never from the command line")
    store.add_argument("name", type=text)
    store.add_argument("--base-url", default="https://api.openai.com/v1", type=text)
    store.add_argument("--organization", type=text)
    store.add_argument("--project", type=text)
    actions.add_parser("list", help="list connectors (keys are never shown)")
    delete = actions.add_parser("delete", help="remove a connector")
    delete.add_argument("name", type=text)
    actions.add_parser("keygen", help="print a new SUPPORTFLOW_VAULT_KEY")
    webhook = actions.add_parser(
        "webhook-secret", help="set (or rotate) the whsec_ secret that verifies a connector's "
        "OpenAI webhooks; read from stdin (or asked for)")
    webhook.add_argument("name", help=f"a connector, or {DEFAULT_CONNECTOR!r} (OPENAI_API_KEY)")
    webhook.add_argument("--keep-previous", type=float, default=DEFAULT_KEEP_PREVIOUS_S,
                         metavar="SECONDS", help="how long the previous secret still verifies "
                         f"(default {DEFAULT_KEEP_PREVIOUS_S:g}; 0: not at all)")
    webhook.add_argument("--remove", action="store_true",
                         help="remove every webhook secret of the connector")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one vault action; 1 with a message when the vault refuses."""
    if args.vault_command is None:
        print("usage: supportflow vault {set,list,delete,keygen,webhook-secret}", file=sys.stderr)
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
        print(f"supportflow vault: error: Redis at {redis_target(settings).describe()}: {error}",
              file=sys.stderr)
        return 1


def _act(vault: Vault, args: argparse.Namespace) -> int:
    if args.vault_command == "set":
        key = read_secret("API key: ")
        vault.set(Connector(args.name, key, args.base_url, args.organization, args.project))
        print(f"connector {args.name!r} saved")
    elif args.vault_command == "webhook-secret":
        return _webhook_secret(vault, args)
    elif args.vault_command == "list":
        now = time.time()
        for entry in vault.listing():
            extras = "".join(f" {k}={entry[k]}" for k in ("organization", "project") if entry[k])
            print(f"{entry['name']}  {entry['base_url']}{extras}  key: set  "
                  f"webhook secrets: {len(vault.webhook_secrets(entry['name'] or '', now))}")
        default = len(vault.webhook_secrets(DEFAULT_CONNECTOR, now))
        if default:
            print(f"{DEFAULT_CONNECTOR}  (OPENAI_API_KEY)  webhook secrets: {default}")
    elif vault.delete(args.name):
        print(f"connector {args.name!r} deleted")
    else:
        print(f"supportflow vault: error: no connector named {args.name!r}", file=sys.stderr)
        return 1
    return 0


def _webhook_secret(vault: Vault, args: argparse.Namespace) -> int:
    """Set, rotate or remove a connector's webhook secrets; never prints one."""
    said = change_rotating_secret(
        args, f"webhook secret of {args.name!r}", "Webhook secret (whsec_...): ",
        lambda secret, now, keep: vault.set_webhook_secret(args.name, secret, now=now,
                                                           keep_previous_s=keep),
        lambda: vault.remove_webhook_secrets(args.name))
    endpoint = "" if args.remove else (
        f"; OpenAI's endpoint for it: /v1/integrations/openai/{args.name}")
    print(said + endpoint)
    return 0


def change_rotating_secret(args: argparse.Namespace, subject: str, prompt: str,
                           save: Callable[[str, float, float], int],
                           remove: Callable[[], bool]) -> str:
    """Remove (`--remove`) or set a rotating secret read from stdin, the previous one verifying
    for `--keep-previous` seconds; the line to print, which never holds the secret."""
    if args.remove:
        return f"{subject}: {'removed' if remove() else 'none was set'}"
    if args.keep_previous < 0:
        raise VaultError("--keep-previous takes seconds, 0 or more")
    count = save(read_secret(prompt), time.time(), args.keep_previous)
    kept = f"; the previous one still verifies for {args.keep_previous:g} s" if count > 1 else ""
    return f"{subject} saved{kept}"


def read_secret(prompt: str) -> str:
    """A secret from standard input (asked for without echo on a terminal), never from argv."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt).strip()
    return sys.stdin.readline().strip()
