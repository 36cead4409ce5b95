"""Secrets that rotate: the newest verifies from now on, the previous ones for a while longer."""

from __future__ import annotations

from dataclasses import dataclass, field

# Rotating a secret keeps the previous one valid this long by default.
DEFAULT_KEEP_PREVIOUS_S = 86_400.0


@dataclass(frozen=True)
class RotatingSecret:
    """A secret that verifies until `expires_at` (None: no end); never shown in repr."""

    secret: str = field(repr=False)
    expires_at: float | None = None

    def valid(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


def rotate_secrets(current: list[RotatingSecret], new: str, *, now: float,
                   keep_previous_s: float) -> list[RotatingSecret]:
    """`new` first; the previous ones stay valid for `keep_previous_s` at most (0: not at all)."""
    kept = [RotatingSecret(old.secret, min(old.expires_at or now + keep_previous_s,
                                           now + keep_previous_s))
            for old in current if old.valid(now) and old.secret != new]
    return [RotatingSecret(new), *(old for old in kept if old.valid(now))]
