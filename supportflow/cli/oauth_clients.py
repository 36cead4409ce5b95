"""`supportflow oauth-clients ...`: OAuth clients, such as an agent's custom GPT in ChatGPT."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from supportflow.adapters.oauth_store import OAuthClientError
from supportflow.bootstrap import stores
from supportflow.domain.accounts import Scope
from supportflow.settings import Settings

from .text import text

COMMAND = "oauth-clients"


def register(commands: Any) -> None:
    """Add `oauth-clients create|list|delete`."""
    clients = commands.add_parser(COMMAND, help="OAuth clients: the agents' custom GPTs")
    clients.set_defaults(run=run)
    actions = clients.add_subparsers(dest="clients_command", metavar="ACTION")
    made = actions.add_parser("create", help="register a client; its id and secret are "
                                             "printed once")
    made.add_argument("name", type=text)
    made.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris",
                      type=text, help="exact callback URL, e.g. https://chatgpt.com/aip/g-<id>/oauth/callback")
    made.add_argument("--scope", action="append", dest="scopes", default=None, type=text,
                      help="a scope (repeat, or space-separated); default: all of them")
    actions.add_parser("list", help="list clients (never their secrets)")
    gone = actions.add_parser("delete", help="delete a client")
    gone.add_argument("client_id", type=text)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one oauth-clients action; 1 with a message when it cannot be done."""
    if args.clients_command is None:
        print("usage: supportflow oauth-clients {create,list,delete}", file=sys.stderr)
        return 2
    store = stores(settings).oauth
    try:
        if args.clients_command == "create":
            scopes = [part for raw in args.scopes or [] for part in raw.split()] or [
                scope.value for scope in Scope]
            client, secret = store.create_client(args.name, args.redirect_uris, scopes)
            print(f"client_id:     {client.client_id}\nclient_secret: {secret}\n"
                  f"scopes:        {' '.join(client.scopes)}\n"
                  "Keep the secret now: it is stored hashed and never shown again.")
        elif args.clients_command == "list":
            for found in store.clients():
                print(f"{found.client_id}  {found.name}  scopes: {' '.join(found.scopes)}  "
                      f"redirect: {' '.join(found.redirect_uris)}")
        elif store.delete_client(args.client_id):
            print(f"client {args.client_id!r} deleted")
        else:
            raise OAuthClientError(f"no client {args.client_id!r}")
    except OAuthClientError as error:
        print(f"supportflow oauth-clients: error: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow oauth-clients: error: Redis at {settings.redis_url}: {error}",
              file=sys.stderr)
        return 1
    return 0
