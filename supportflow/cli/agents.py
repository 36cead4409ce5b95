"""`supportflow agents ...`: the accounts people sign in with (the pages, the agents' GPT)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import redis

from supportflow.bootstrap import stores
from supportflow.domain.accounts import AccountError, AccountRole
from supportflow.settings import Settings

from .text import text

COMMAND = "agents"


def register(commands: Any) -> None:
    """Add `agents create|list|set-password|delete`."""
    agents = commands.add_parser(COMMAND, help="agent accounts (sign-in for the pages and GPT)")
    agents.set_defaults(run=run)
    actions = agents.add_subparsers(dest="agents_command", metavar="ACTION")
    create = actions.add_parser("create", help="make an account; the password is read from "
                                               "stdin (or asked for), never from the command line")
    create.add_argument("name", type=text)
    create.add_argument("--email", required=True, type=text)
    create.add_argument("--role", choices=[r.value for r in AccountRole], default="agent")
    actions.add_parser("list", help="list accounts")
    password = actions.add_parser("set-password", help="replace an account's password (stdin)")
    password.add_argument("name", type=text)
    delete = actions.add_parser("delete", help="delete an account: its sessions and tokens end")
    delete.add_argument("name", type=text)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one agents action; 1 with a message when it cannot be done."""
    if args.agents_command is None:
        print("usage: supportflow agents {create,list,set-password,delete}", file=sys.stderr)
        return 2
    accounts = stores(settings).accounts
    try:
        if args.agents_command == "create":
            account = accounts.create(args.name, args.email, AccountRole(args.role),
                                      read_password())
            print(f"account {account.name!r} ({account.role.value}, {account.email}) created")
        elif args.agents_command == "list":
            for found in accounts.listing():
                print(f"{found.name}  {found.role.value}  {found.email}")
        elif args.agents_command == "set-password":
            accounts.set_password(args.name, read_password())
            print(f"password of {args.name!r} changed")
        elif not accounts.delete(args.name):
            raise AccountError(f"no account named {args.name!r}")
        else:
            print(f"account {args.name!r} deleted")
    except AccountError as error:
        print(f"supportflow agents: error: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow agents: error: Redis at {settings.redis_url}: {error}",
              file=sys.stderr)
        return 1
    return 0


def read_password() -> str:
    """The password from stdin's first line, or asked twice on a terminal."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise AccountError("the two passwords differ")
    return first
