"""The pages: a widget demo, the agent console and the ops dashboard (plain HTML, CSS and JS).

Everything a page needs is served by this app (`/static/...`): no CDN, no build step. The pages
call the same JSON API as everyone else; agent and ops tokens stay in the tab's sessionStorage.
"""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

bp = Blueprint("pages", __name__)

# Only this app's own scripts, styles and API; no inline script, no framing by other sites.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")


def page(template: str, **context: str) -> Response:
    response = make_response(render_template(template, **context))
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
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
def agent() -> Response:
    """The agent console: the handoff queue, transcripts, claim, reply, resolve, give back."""
    return page("agent.html", title="Agent console")


@bp.get("/ops")
def ops() -> Response:
    """The ops dashboard: overview and the last hour's reply latency and queue depth."""
    return page("ops.html", title="Ops dashboard")
