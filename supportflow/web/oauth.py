"""OAuth2 endpoints for the agents' custom GPT: authorize (sign-in and consent pages), token,
revocation. Errors follow RFC 6749: an unknown client or a redirect URI that is not registered
exactly is shown on the page, never redirected; other authorization errors go back to the
client's redirect URI with `error` and the unchanged `state`; the token and revocation
endpoints answer `{"error", "error_description"}` as JSON.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Flask, Response, current_app, redirect, request
from flask_wtf.csrf import CSRFError

from supportflow.domain.accounts import SCOPE_TEXT, Scope

from .auth import check_csrf, signed_in_account
from .oauth_server import Server, build_server
from .pages import CSP, page

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


def init_oauth(app: Flask, services: Any) -> None:
    """Build the authorization server and the resource protector for this app."""
    # Authlib logs issued tokens at DEBUG: keep them out of the logs whatever the level.
    logging.getLogger("authlib").setLevel(logging.INFO)
    server, protector = build_server(services.oauth, services.accounts, services.settings,
                                     services.clock)
    app.extensions["oauth_server"] = server
    app.extensions["oauth_protector"] = protector


def server() -> Server:
    found: Server = current_app.extensions["oauth_server"]
    return found


def error_page(error: OAuth2Error) -> tuple[Response, int]:
    """An authorization error the client must not receive (no redirect): shown to the person."""
    response = page("oauth_error.html", title="Authorization failed", error=error.error,
                    description=error.get_error_description())
    return response, 400


def _grant_or_error(account: Any) -> Any:
    try:
        return server().get_consent_grant(end_user=account)
    except OAuth2Error as error:
        if error.redirect_uri:
            return server().handle_error_response(None, error)
        return error_page(error)


@bp.get("/authorize")
def authorize() -> Any:
    """Check the request; send the person to sign in, then show the consent page."""
    grant = _grant_or_error(None)
    if not hasattr(grant, "client"):
        return grant
    account = signed_in_account()
    if account is None:
        return redirect("/signin?next=" + quote(request.full_path, safe=""))
    client = grant.client.record
    scopes = [(scope, SCOPE_TEXT[Scope(scope)]) for scope in grant.request.scope.split()]
    # The consent form's redirect leaves for the client's site: allow that one origin.
    target = urlsplit(grant.redirect_uri)
    csp = CSP.replace("form-action 'self'",
                      f"form-action 'self' {target.scheme}://{target.netloc}")
    return page("consent.html", csp=csp, title="Allow access", account=account, client=client,
                scopes=scopes, action=request.full_path, redirect_host=target.netloc)


@bp.post("/authorize")
def decide() -> Any:
    """The person's answer: allow (a code for the client) or deny (access_denied)."""
    try:
        check_csrf()
    except CSRFError:
        response = page("oauth_error.html", title="Authorization failed", error="csrf_failed",
                        description="This form expired. Start again from ChatGPT.")
        return response, 400
    account = signed_in_account()
    if account is None:
        return redirect("/signin?next=" + quote(request.full_path, safe=""))
    grant = _grant_or_error(account)
    if not hasattr(grant, "client"):
        return grant
    allowed = request.form.get("decision") == "allow"
    return server().create_authorization_response(grant_user=account if allowed else None,
                                                  grant=grant)


@bp.post("/token")
def token() -> Response:
    """Exchange a code (or a refresh token) for tokens; RFC 6749 section 5."""
    response: Response = server().create_token_response()
    return response


@bp.post("/revoke")
def revoke() -> Response:
    """Revoke an access or refresh token (RFC 7009); unknown tokens answer 200 too."""
    response: Response = server().create_endpoint_response("revocation")
    return response


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": required,
        "properties": {name: {"type": "string", **extra} for name, extra in properties.items()},
    }}}}


_OAUTH_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string", "description": "An RFC 6749 error code, e.g. invalid_grant"},
    "error_description": {"type": "string"}}}
_TOKEN = {"type": "object", "required": ["access_token", "token_type", "expires_in"],
          "properties": {"access_token": {"type": "string"},
                         "token_type": {"type": "string", "enum": ["bearer"]},
                         "expires_in": {"type": "integer"}, "refresh_token": {"type": "string"},
                         "scope": {"type": "string"}}}
_CLIENT_AUTH = "client_secret_basic (HTTP Basic) or client_secret_post (form fields)."


def _refusal(what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": _OAUTH_ERROR}}}


OAUTH_ROUTES: dict[str, dict[str, Any]] = {
    "/oauth/token": {"post": {
        "summary": "Exchange an authorization code or a refresh token for tokens (RFC 6749)",
        "description": f"Client authentication: {_CLIENT_AUTH} Refresh tokens rotate.",
        "requestBody": _form({
            "grant_type": {"enum": ["authorization_code", "refresh_token"]}, "code": {},
            "redirect_uri": {}, "refresh_token": {}, "code_verifier": {}, "scope": {},
            "client_id": {}, "client_secret": {}}, ["grant_type"]),
        "responses": {"200": {"description": "Tokens", "content": {
                          "application/json": {"schema": _TOKEN}}},
                      "400": _refusal("invalid_request, invalid_grant, unsupported_grant_type, "
                                      "invalid_scope or unauthorized_client"),
                      "401": _refusal("invalid_client")}}},
    "/oauth/revoke": {"post": {
        "summary": "Revoke an access or refresh token (RFC 7009)",
        "description": f"Client authentication: {_CLIENT_AUTH} A refresh token takes every "
                       "token of its authorization with it. Unknown tokens answer 200.",
        "requestBody": _form({"token": {}, "token_type_hint": {
            "enum": ["access_token", "refresh_token"]}, "client_id": {}, "client_secret": {}},
            ["token"]),
        "responses": {"200": {"description": "Revoked (or unknown)", "content": {
                          "application/json": {"schema": {"type": "object"}}}},
                      "400": _refusal("invalid_request or unsupported_token_type"),
                      "401": _refusal("invalid_client")}}},
}
