"""Bearer-token authentication with roles: 401 without a valid token, 403 for the wrong role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from supportflow.domain.access import Principal, Role

from .deps import services
from .errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def current_principal() -> Principal:
    """The caller of the request being served (after require_role)."""
    principal: Principal = g.principal
    return principal


def authenticate() -> Principal:
    """The principal of the request's bearer token, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "send an API token: Authorization: Bearer <token>")
    principal = services().tokens.principal(token.strip())
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown or revoked")
    return principal


def require_role(*roles: Role) -> Callable[[F], F]:
    """Let only tokens with one of `roles` (or admin) call the endpoint."""
    allowed = frozenset(roles)

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if not principal.may(allowed):
                names = ", ".join(sorted(role.value for role in allowed | {Role.ADMIN}))
                raise ApiError(403, "forbidden",
                               f"this needs a token with one of the roles: {names}")
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate
