"""A named connection to an assistant API: where it is and the key that opens it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# The connector of flows that name none: OPENAI_API_KEY (or the sandbox).
DEFAULT_CONNECTOR = "default"


@dataclass(frozen=True)
class Connector:
    """Credentials for one API account; the key never shows in repr or logs."""

    name: str
    api_key: str = field(repr=False)
    base_url: str = "https://api.openai.com/v1"
    organization: str | None = None
    project: str | None = None

    def public(self) -> dict[str, str | None]:
        """Everything but the key, for listings and APIs."""
        return {"name": self.name, "base_url": self.base_url,
                "organization": self.organization, "project": self.project}


# Rotating a connector's webhook secret keeps the previous one valid this long by default.
DEFAULT_KEEP_PREVIOUS_S = 86_400.0


@dataclass(frozen=True)
class WebhookSecret:
    """A secret that verifies a connector's OpenAI webhooks; `expires_at` None: no end."""

    secret: str = field(repr=False)
    expires_at: float | None = None

    def valid(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


def rotate_webhook_secrets(current: list[WebhookSecret], new: str, *, now: float,
                           keep_previous_s: float) -> list[WebhookSecret]:
    """`new` first; the previous ones stay valid for `keep_previous_s` at most (0: not at all)."""
    kept = [WebhookSecret(old.secret, min(old.expires_at or now + keep_previous_s,
                                          now + keep_previous_s))
            for old in current if old.valid(now) and old.secret != new]
    return [WebhookSecret(new), *(old for old in kept if old.valid(now))]
