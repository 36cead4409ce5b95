"""`supportflow tokens ...`: API tokens with roles, shown once, stored hashed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from supportflow.adapters.redis_connection import redis_target
from supportflow.adapters.tokens import TokenError
from supportflow.bootstrap import stores
from supportflow.domain.access import Role
from supportflow.settings import Settings

from .text import text

COMMAND = "tokens"


def register(commands: Any) -> None:
    """Add `tokens create|list|revoke`."""
    tokens = commands.add_parser(COMMAND, help="API tokens with roles")
    tokens.set_defaults(run=run)
    actions = tokens.add_subparsers(dest="tokens_command", metavar="ACTION")
    create = actions.add_parser("create", help="make a token; it is printed once")
    create.add_argument("--name", required=True, type=text)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    actions.add_parser("list", help="list token names and roles")
    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name", type=text)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one tokens action; 1 with a message when it cannot be done."""
    if args.tokens_command is None:
        print("usage: supportflow tokens {create,list,revoke}", file=sys.stderr)
        return 2
    store = stores(settings).tokens
    try:
        if args.tokens_command == "create":
            print(store.create(args.name, Role(args.role)))
        elif args.tokens_command == "list":
            for record in store.listing():
                print(f"{record['name']}  {record['role']}")
        elif not store.revoke(args.name):
            print(f"supportflow tokens: error: no token named {args.name!r}", file=sys.stderr)
            return 1
    except TokenError as error:
        print(f"supportflow tokens: error: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow tokens: error: Redis at {redis_target(settings).describe()}: {error}",
              file=sys.stderr)
        return 1
    return 0
