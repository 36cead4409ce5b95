"""The pages: a widget demo, the agent console and the ops dashboard (plain HTML, CSS and JS).

Everything a page needs is served by this app (`/static/...`): no CDN, no build step. The pages
call the same JSON API as everyone else, signed in with an agent account: the session cookie,
and the CSRF token from the page's <meta name="csrf-token"> on every change.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, make_response, redirect, render_template, request
from flask.typing import ResponseReturnValue

from .auth import signed_in_account

bp = Blueprint("pages", __name__)

# Only this app's own scripts, styles and API; no inline script, no framing by other sites.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")


def page(template: str, csp: str = CSP, **context: Any) -> Response:
    response = make_response(render_template(template, **context))
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Same-origin requests keep their Referer (CSRF checks over HTTPS need it); others get none.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> Response:
    """Links to the three pages and the API document."""
    return page("index.html", title="SupportFlow")


@bp.get("/demo")
def demo() -> Response:
    """A page that embeds the chat widget with one script tag."""
    return page("demo.html", title="Widget demo")


@bp.get("/agent")
def agent() -> ResponseReturnValue:
    """The agent console: the handoff queue, transcripts, claim, reply, resolve, give back."""
    account = signed_in_account()
    if account is None:
        return redirect(f"/signin?next={request.path}")
    return page("agent.html", title="Agent console", account=account)


@bp.get("/ops")
def ops() -> ResponseReturnValue:
    """The ops dashboard (admin accounts): overview, reply latency and queue depth."""
    account = signed_in_account()
    if account is None:
        return redirect(f"/signin?next={request.path}")
    if account.role.value != "admin":
        return page("forbidden.html", title="Ops dashboard", account=account,
                    needed="an admin account"), 403
    return page("ops.html", title="Ops dashboard", account=account)
