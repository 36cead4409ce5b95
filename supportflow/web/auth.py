"""Who is calling: a bearer API token (machines) or a signed-in account's session (pages).

Token callers: 401 without a valid token, 403 for the wrong role. Session callers (the agent
console and the ops dashboard) also send the session's CSRF token on every change
(`X-CSRFToken`), else 403 `csrf_failed`: a cookie alone never changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, request, session
from flask_wtf.csrf import CSRFError

from supportflow.domain.access import Principal, Role
from supportflow.domain.accounts import Account

from .deps import services
from .errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_principal() -> Principal:
    """The caller of the request being served (after require_role)."""
    principal: Principal = g.principal
    return principal


def signed_in_account() -> Account | None:
    """The account of the request's session, if signed in and the account still exists."""
    if "account" in g:
        found: Account | None = g.account
        return found
    account = None
    if request.cookies:  # no cookie, no session to open (API callers never get one)
        name = session.get("account")
        account = services().accounts.get(name) if isinstance(name, str) else None
        if name is not None and account is None:
            session.clear()  # the account was deleted: its sessions end
    g.account = account
    return account


def check_csrf() -> None:
    """Raise CSRFError unless the request carries the session's CSRF token (form or header)."""
    current_app.extensions["csrf"].protect()


def authenticate() -> Principal:
    """The principal of the bearer token, else of the signed-in session; or a 401."""
    header = request.headers.get("Authorization", "")
    if not header:
        account = signed_in_account()
        if account is not None:
            if request.method not in SAFE_METHODS:
                try:
                    check_csrf()
                except CSRFError as error:
                    raise ApiError(403, "csrf_failed", "send the page's CSRF token in "
                                   "X-CSRFToken with every change") from error
            return account.principal
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "sign in, or send an API token: "
                       "Authorization: Bearer <token>")
    principal = services().tokens.principal(token.strip())
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown or revoked")
    return principal


def require_role(*roles: Role) -> Callable[[F], F]:
    """Let only callers with one of `roles` (or admin) call the endpoint."""
    allowed = frozenset(roles)

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if not principal.may(allowed):
                names = ", ".join(sorted(role.value for role in allowed | {Role.ADMIN}))
                raise ApiError(403, "forbidden",
                               f"this needs a token or account with one of the roles: {names}")
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


TRUSTED_SERVER_ROLES = frozenset({Role.WIDGET})


def _api_caller() -> tuple[bool, Principal | None]:
    """Whether the request sends a bearer token, and the API token's principal (looked up once;
    visitor and other tokens cost no Redis round trip)."""
    if "api_caller" not in g:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        sent = scheme.lower() == "bearer" and bool(token.strip())
        g.api_caller = (sent, services().tokens.principal(token.strip()) if sent else None)
    found: tuple[bool, Principal | None] = g.api_caller
    return found


def is_trusted_server() -> bool:
    """True when the request carries a widget-role (or admin) API token; never raises."""
    principal = _api_caller()[1]
    return principal is not None and principal.may(TRUSTED_SERVER_ROLES)


def trusted_server() -> bool:
    """True for a widget-role (or admin) API token, False without a token; 401 for a token
    that is not a valid API token, 403 for a token of another role."""
    sent, principal = _api_caller()
    if not sent:
        return False
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown or revoked (browsers "
                       "start conversations without one)")
    if not principal.may(TRUSTED_SERVER_ROLES):
        raise ApiError(403, "forbidden", "naming contacts needs a token with the widget or "
                       "admin role")
    return True
