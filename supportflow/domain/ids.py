"""Message ids: every source writes in a namespace of its own, so whatever id a client sends it
can never collide with another party's message or with the service's own.

| prefix | whose | id |
| --- | --- | --- |
| `c:` | the customer (widget) | `c:<client_message_id>` |
| `w:` | a helpdesk (signed webhook) | `w:<message.id>` |
| `cw:` | Chatwoot | `cw:<Chatwoot message id>` |
| `a:` | an agent | `a:<agent>:<client_message_id>` (`%` and `:` in the name percent-encoded) |
| `sf:` | the service | `sf:welcome`, `sf:<turn>:reply`, ...; `sf:m-<hex>` when a message came without an id |
"""

from __future__ import annotations

import uuid
from enum import StrEnum


class Source(StrEnum):
    """Who gave a message its id; the value is the id's prefix."""

    CUSTOMER = "c"
    WEBHOOK = "w"
    CHATWOOT = "cw"
    AGENT = "a"
    SERVICE = "sf"


def message_id(source: Source, client_id: str | None, *, agent: str | None = None) -> str:
    """The transcript id of a message `source` sent with `client_id` (None: the service makes
    one up). The same client id always gives the same id, so retries count once."""
    if client_id is None:
        return f"{Source.SERVICE}:m-{uuid.uuid4().hex}"
    if source is Source.AGENT:
        name = (agent or "").replace("%", "%25").replace(":", "%3A")
        return f"{Source.AGENT}:{name}:{client_id}"
    return f"{source}:{client_id}"


def service_id(*parts: object) -> str:
    """An id of one of the service's own messages, e.g. service_id(3, "reply") == "sf:3:reply"."""
    return ":".join((Source.SERVICE.value, *(str(part) for part in parts)))


WELCOME_ID = service_id("welcome")
