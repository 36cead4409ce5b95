"""Test-side accounts and a browser-like client: sign in with CSRF, consent, get OAuth codes."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from supportflow.domain.accounts import AccountRole, Scope

ALL_SCOPES = " ".join(scope.value for scope in Scope)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    password: str


def make_account(app: Any, role: AccountRole = AccountRole.AGENT) -> Person:
    """A new account (unique name and email) through the app's own use case."""
    name = f"{role.value}-{uuid.uuid4().hex[:8]}"
    person = Person(name, f"{name}@example.test", secrets.token_urlsafe(12))
    app.extensions["supportflow"].accounts.create(person.name, person.email, role,
                                                  person.password)
    return person


def csrf(html: str) -> str:
    found = CSRF_FIELD.search(html) or CSRF_META.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: Any, person: Person, **environ: Any) -> Any:
    """Sign in through the form, as a browser does (GET the form, POST it with its token)."""
    token = csrf(client.get("/signin").get_data(as_text=True))
    return client.post("/signin", data={"identifier": person.email, "password": person.password,
                                        "csrf_token": token}, environ_base=environ)


def page_csrf(client: Any, path: str = "/agent") -> str:
    """The CSRF token a signed-in page carries (for X-CSRFToken)."""
    return csrf(client.get(path).get_data(as_text=True))


def register_client(app: Any, redirect_uri: str, scopes: str = ALL_SCOPES) -> tuple[str, str]:
    """An OAuth client (id, secret) as `supportflow oauth-clients create` makes it."""
    client, secret = app.extensions["supportflow"].oauth.create_client(
        f"GPT {uuid.uuid4().hex[:6]}", [redirect_uri], scopes.split())
    return client.client_id, secret


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(client_id: str, redirect_uri: str, scope: str = ALL_SCOPES,
                  state: str = "st-1", **extra: str) -> str:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": scope, "state": state, **extra}
    return "/oauth/authorize?" + urlencode(query)


def consent(client: Any, url: str, decision: str = "allow") -> Any:
    """Open the consent page (signed in) and answer it; the response redirects to the client."""
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return client.post(url, data={"csrf_token": csrf(page.get_data(as_text=True)),
                                  "decision": decision})


def redirect_params(response: Any) -> dict[str, str]:
    """The query of a redirect to the client, as a flat dict."""
    assert response.status_code == 302, (response.status_code, response.get_data(as_text=True))
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return {key: values[0] for key, values in query.items()}


def get_code(client: Any, client_id: str, redirect_uri: str, **extra: str) -> str:
    params = redirect_params(consent(client, authorize_url(client_id, redirect_uri, **extra)))
    return params["code"]


def token_request(client: Any, client_id: str, secret: str, **fields: str) -> Any:
    """POST /oauth/token with client_secret_post."""
    return client.post("/oauth/token", data={"client_id": client_id, "client_secret": secret,
                                             **fields})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
