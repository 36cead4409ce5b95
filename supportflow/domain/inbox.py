"""An inbox: one helpdesk connection (a signed webhook pair, or a Chatwoot agent bot)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

INBOX_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
MAX_INBOUND_SECRETS = 2


class InboxKind(StrEnum):
    WEBHOOK = "webhook"
    CHATWOOT = "chatwoot"


@dataclass
class Inbox:
    """A helpdesk connection; secrets never show in repr, listings or logs."""

    name: str
    kind: InboxKind
    flow: str | None = None
    # Secrets that verify inbound requests, newest first (two while a rotation is under way).
    inbound_secrets: list[str] = field(default_factory=list, repr=False)
    callback_url: str | None = None
    outbound_secret: str | None = field(default=None, repr=False)
    enabled: bool = True
    disabled_reason: str | None = None
    # Chatwoot agent bot: where Chatwoot is, the bot's token, its webhook secret, the agents' team.
    base_url: str | None = None
    account_id: int | None = None
    api_access_token: str | None = field(default=None, repr=False)
    hmac_secret: str | None = field(default=None, repr=False)
    team_id: int | None = None

    @property
    def channel(self) -> str:
        """The conversation channel of this inbox's conversations."""
        return f"{self.kind.value}:{self.name}"

    def public(self) -> dict[str, Any]:
        """Everything but the secrets, for listings and APIs."""
        return {
            "name": self.name, "kind": self.kind.value, "flow": self.flow,
            "callback_url": self.callback_url, "enabled": self.enabled,
            "disabled_reason": self.disabled_reason, "base_url": self.base_url,
            "account_id": self.account_id, "team_id": self.team_id,
            "inbound_secrets": len(self.inbound_secrets),
            "hmac_secret": bool(self.hmac_secret),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inbox:
        values = dict(data)
        values["kind"] = InboxKind(values["kind"])
        return cls(**values)

    def rotate_inbound(self, secret: str) -> None:
        """Make `secret` the newest inbound secret; the previous one keeps working."""
        self.inbound_secrets = [secret, *self.inbound_secrets][:MAX_INBOUND_SECRETS]
