"""Who may call the API: roles and the principal a token stands for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    WIDGET = "widget"
    AGENT = "agent"
    OPS = "ops"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The holder of an API token."""

    name: str
    role: Role

    def may(self, allowed: frozenset[Role]) -> bool:
        """Admins may do everything; others what the endpoint allows their role."""
        return self.role is Role.ADMIN or self.role in allowed
