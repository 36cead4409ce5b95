"""`supportflow contacts forget ID`: erase a contact's data on request."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from supportflow.bootstrap import retention, stores
from supportflow.services.retention import ConversationsBusy
from supportflow.settings import Settings
from supportflow.web.contacts import CONTACT_ID

from .text import text

COMMAND = "contacts"


def register(commands: Any) -> None:
    """Add `contacts forget ID`."""
    contacts = commands.add_parser(COMMAND, help="contacts' data: erase it on request")
    contacts.set_defaults(run=run)
    actions = contacts.add_subparsers(dest="contacts_command", metavar="ACTION")
    forget = actions.add_parser("forget", help="erase a contact: conversations, transcripts, "
                                               "attributes, notes, queue entries, deliveries")
    forget.add_argument("contact_id", type=text,
                        help="a widget contact's id, or a helpdesk's as <inbox>:<its id>")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Erase the contact and print what was erased; 1 when nothing is stored for it."""
    if args.contacts_command is None:
        print("usage: supportflow contacts forget CONTACT_ID", file=sys.stderr)
        return 2
    contact_id = args.contact_id
    if CONTACT_ID.fullmatch(contact_id) is None:
        print(f"supportflow contacts: error: {contact_id!r} is not a contact id (1-128 letters, "
              "digits or ._:@-)", file=sys.stderr)
        return 2
    try:
        erasure = retention(settings, stores(settings).redis).forget_contact(contact_id)
    except ConversationsBusy:
        print("supportflow contacts: error: a worker holds one of the contact's conversations; "
              "nothing was erased: try again", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"supportflow contacts: error: Redis: {error}", file=sys.stderr)
        return 1
    if erasure is None:
        print(f"supportflow contacts: nothing is stored for contact {contact_id!r}", file=sys.stderr)
        return 1
    print(f"erased contact {contact_id}:")
    print(f"  conversations          {len(erasure.conversations)}  {' '.join(erasure.conversations)}")
    for name in ("messages", "notes", "deliveries", "attributes", "threads",
                 "handoff_announcements", "failure_records"):
        print(f"  {name.replace('_', ' '):<22} {getattr(erasure, name)}")
    return 0
