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
