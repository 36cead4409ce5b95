"""Agents sign in with their accounts: a form (CSRF-protected), a Redis session, sign-out.

Failed sign-ins are counted per account and per client address in Redis, so every web process
refuses the same attempts; a refused attempt answers 429 with Retry-After.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from supportflow.services.accounts import SignInRefused, SignInThrottled

from .auth import check_csrf, signed_in_account
from .deps import services
from .pages import page

bp = Blueprint("signin", __name__)
DEFAULT_NEXT = "/agent"


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in (never another site)."""
    if not target:
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return DEFAULT_NEXT
    return target


def client_address() -> str:
    return request.remote_addr or "-"


def form(message: str = "", status: int = 200, identifier: str = "") -> tuple[Response, int]:
    response = page("signin.html", title="Sign in", message=message, identifier=identifier,
                    next=safe_next(request.values.get("next")))
    return response, status


@bp.get("/signin")
def signin_form() -> ResponseReturnValue:
    """The sign-in form (or straight on, when already signed in)."""
    if signed_in_account() is not None:
        return redirect(safe_next(request.args.get("next")))
    return form()


@bp.post("/signin")
def signin() -> ResponseReturnValue:
    """Check the account's password; on success a new session (new id) and on to `next`."""
    identifier = request.form.get("identifier", "")[:320]
    try:
        check_csrf()
    except CSRFError:
        return form("This form expired. Sign in again.", 400, identifier)
    try:
        account = services().accounts.sign_in(identifier, request.form.get("password", "")[:1024],
                                              client_address())
    except SignInThrottled as error:
        minutes = max(1, math.ceil(error.retry_after_s / 60))
        response, status = form(f"Too many failed sign-ins. Try again in {minutes} min.", 429,
                                identifier)
        response.headers["Retry-After"] = str(math.ceil(error.retry_after_s))
        return response, status
    except SignInRefused:
        return form("Wrong email, account name or password.", 401, identifier)
    session.clear()
    session.renew()  # type: ignore[attr-defined]
    session["account"] = account.name
    return redirect(safe_next(request.form.get("next")))


@bp.post("/signout")
def signout() -> ResponseReturnValue:
    """End the session (its data leaves Redis) and go back to the sign-in form."""
    try:
        check_csrf()
    except CSRFError:
        return form("This form expired. Sign out again.", 400)
    session.clear()
    return redirect("/signin")
