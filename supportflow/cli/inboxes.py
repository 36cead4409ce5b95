"""`supportflow inboxes ...`: helpdesk connections (webhooks, Chatwoot) and their secrets."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from supportflow.adapters.inbox_store import InboxError, InboxStore
from supportflow.adapters.redis_connection import redis_target
from supportflow.adapters.vault import VaultError
from supportflow.bootstrap import stores
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.settings import Settings
from supportflow.webhooks.signing import new_secret

from .text import text

COMMAND = "inboxes"


def register(commands: Any) -> None:
    """Add `inboxes create|list|rotate-secret|enable|delete`."""
    inboxes = commands.add_parser(COMMAND, help="helpdesk connections (webhooks, Chatwoot)")
    inboxes.set_defaults(run=run)
    actions = inboxes.add_subparsers(dest="inboxes_command", metavar="ACTION")
    create = actions.add_parser("create", help="add an inbox; prints its secrets once")
    create.add_argument("name", type=text)
    create.add_argument("--kind", choices=[k.value for k in InboxKind], default="webhook")
    create.add_argument("--flow", type=text,
                        help="the flow its conversations run (default: the default flow)")
    create.add_argument("--callback-url", help="webhook: where bot and agent messages go", type=text)
    create.add_argument("--base-url", help="chatwoot: e.g. https://app.chatwoot.com", type=text)
    create.add_argument("--account-id", type=int, help="chatwoot: the account id")
    create.add_argument("--team-id", type=int, help="chatwoot: the team handoffs are assigned to")
    actions.add_parser("list", help="list inboxes (secrets are never shown)")
    rotate = actions.add_parser("rotate-secret", help="new inbound secret; the previous one "
                                                      "keeps working until the next rotation")
    rotate.add_argument("name", type=text)
    rotate.add_argument("--outbound", action="store_true", help="replace the outbound secret")
    for action, what in (("enable", "deliver to the inbox again (after a 410)"),
                         ("delete", "remove an inbox")):
        actions.add_parser(action, help=what).add_argument("name", type=text)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one inboxes action; 1 with a message when it cannot be done."""
    if args.inboxes_command is None:
        print("usage: supportflow inboxes {create,list,rotate-secret,enable,delete}", file=sys.stderr)
        return 2
    store = stores(settings).inboxes
    try:
        return _inbox_action(store, args)
    except (InboxError, VaultError) as error:
        print(f"supportflow inboxes: error: {error}", file=sys.stderr)
    except redis.RedisError as error:
        print(f"supportflow inboxes: error: Redis at {redis_target(settings).describe()}: {error}",
              file=sys.stderr)
    return 1


def _inbox_action(store: InboxStore, args: argparse.Namespace) -> int:
    if args.inboxes_command == "create":
        _create(store, args)
    elif args.inboxes_command == "list":
        for inbox in store.listing():
            info = inbox.public()
            where = info["callback_url"] if inbox.kind is InboxKind.WEBHOOK else info["base_url"]
            state = "enabled" if inbox.enabled else f"DISABLED ({inbox.disabled_reason})"
            print(f"{inbox.name}  {inbox.kind.value}  flow={inbox.flow or '-'}  {where or '-'}  "
                  f"{state}  inbound secrets: {info['inbound_secrets']}")
    elif args.inboxes_command == "delete":
        if not store.delete(args.name):
            raise InboxError(f"no inbox named {args.name!r}")
        print(f"inbox {args.name!r} deleted")
    else:
        found = store.get(args.name)
        if found is None:
            raise InboxError(f"no inbox named {args.name!r}")
        _change(store, found, args)
    return 0


def _create(store: InboxStore, args: argparse.Namespace) -> None:
    kind = InboxKind(args.kind)
    inbox = Inbox(name=args.name, kind=kind, flow=args.flow)
    if kind is InboxKind.WEBHOOK:
        inbox.inbound_secrets = [new_secret()]
        inbox.callback_url, inbox.outbound_secret = args.callback_url, new_secret()
    else:
        if not args.base_url or args.account_id is None:
            raise InboxError("a chatwoot inbox needs --base-url and --account-id")
        token, hmac_secret = _read_chatwoot_secrets()
        inbox.base_url, inbox.account_id, inbox.team_id = args.base_url, args.account_id, args.team_id
        inbox.api_access_token, inbox.hmac_secret = token, hmac_secret
    store.create(inbox)
    print(f"inbox {inbox.name!r} created; its endpoint: "
          f"/v1/{'webhooks' if kind is InboxKind.WEBHOOK else 'integrations/chatwoot'}/{inbox.name}")
    if kind is InboxKind.WEBHOOK:
        print(f"inbound secret (sign requests to SupportFlow): {inbox.inbound_secrets[0]}")
        print(f"outbound secret (verify SupportFlow's callbacks): {inbox.outbound_secret}")
        print("these secrets are shown once; keep them in your secret store")


def _change(store: InboxStore, inbox: Inbox, args: argparse.Namespace) -> None:
    if args.inboxes_command == "enable":
        inbox.enabled, inbox.disabled_reason = True, None
        store.save(inbox)
        print(f"inbox {inbox.name!r} enabled")
        return
    secret = new_secret()
    if args.outbound:
        inbox.outbound_secret = secret
        print(f"new outbound secret (shown once): {secret}")
    else:
        inbox.rotate_inbound(secret)
        print(f"new inbound secret (shown once; the previous one still works): {secret}")
    store.save(inbox)


def _read_chatwoot_secrets() -> tuple[str, str | None]:
    """The bot's api_access_token, then (optionally) the webhook secret, one a line on stdin."""
    if sys.stdin.isatty():
        import getpass

        token = getpass.getpass("Chatwoot bot api_access_token: ").strip()
        secret = getpass.getpass("Chatwoot webhook secret (empty: none): ").strip()
    else:
        token, secret = sys.stdin.readline().strip(), sys.stdin.readline().strip()
    if not token:
        raise InboxError("a chatwoot inbox needs the bot's api_access_token on stdin")
    return token, secret or None
