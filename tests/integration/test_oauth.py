"""The OAuth2 authorization server over the real stack (Redis, the app's own wiring), refusing
what RFC 6749, RFC 7009 and RFC 7636 say it must refuse. The whole flow with a real client
library and a browser is tests/e2e/test_gpt.py."""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.cli import main
from tests.conftest import Sandbox, make_app
from tests.integration.account_helpers import (
    ALL_SCOPES,
    authorize_url,
    bearer,
    consent,
    get_code,
    make_account,
    pkce_pair,
    redirect_params,
    register_client,
    sign_in,
    token_request,
)

CALLBACK = "http://127.0.0.1:9/callback"
CHATGPT = "https://chatgpt.com/aip/g-0123456789abcdef/oauth/callback"


class Clock:
    """Real time, plus whatever a test skips ahead."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path,
        clock: Clock) -> Any:
    return make_app(redis_url, sandbox.url, flows_dir, clock=clock)


@pytest.fixture
def browser(app: Any) -> Any:
    """A signed-in agent's browser."""
    client = app.test_client()
    sign_in(client, make_account(app))
    return client


def tokens(browser: Any, client_id: str, secret: str, scope: str = ALL_SCOPES) -> dict[str, Any]:
    code = get_code(browser, client_id, CALLBACK, scope=scope)
    response = token_request(browser, client_id, secret, grant_type="authorization_code",
                             code=code, redirect_uri=CALLBACK)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_a_chatgpt_redirect_uri_is_accepted_and_matched_exactly(app: Any, browser: Any) -> None:
    client_id, _ = register_client(app, CHATGPT)
    assert browser.get(authorize_url(client_id, CHATGPT)).status_code == 200
    for near_miss in (CHATGPT + "/", CHATGPT.replace("g-0123", "g-9123"), CHATGPT.upper(),
                      CHATGPT + "?x=1", CHATGPT.replace("https", "http")):
        shown = browser.get(authorize_url(client_id, near_miss))
        assert shown.status_code == 400 and "Location" not in shown.headers, near_miss
        assert "invalid_request" in shown.get_data(as_text=True)
    params = redirect_params(consent(browser, authorize_url(client_id, CHATGPT, state="s-42")))
    assert params["state"] == "s-42" and params["code"]


def test_an_unknown_client_is_shown_on_the_page_never_redirected(browser: Any) -> None:
    shown = browser.get(authorize_url("sfc_unknown", CALLBACK))
    assert shown.status_code == 400 and "Location" not in shown.headers
    assert "invalid_client" in shown.get_data(as_text=True)


def test_the_consent_page_names_the_client_and_its_scopes_and_deny_keeps_the_state(
    app: Any, browser: Any
) -> None:
    client_id, _ = register_client(app, CALLBACK, "notes:write knowledge:write")
    page = browser.get(authorize_url(client_id, CALLBACK, scope="knowledge:write"))
    html = page.get_data(as_text=True)
    assert "Allow GPT" in html and "knowledge:write" in html and "notes:write" not in html
    assert "Save answers to the knowledge base the bot uses" in html
    denied = redirect_params(consent(browser, authorize_url(client_id, CALLBACK,
                                                            scope="knowledge:write",
                                                            state="keep me as I am"), "deny"))
    assert denied["error"] == "access_denied" and denied["state"] == "keep me as I am"
    assert "code" not in denied
    wrong_scope = redirect_params(browser.get(authorize_url(
        client_id, CALLBACK, scope="handoffs:reply", state="x/y z")))
    assert wrong_scope["error"] == "invalid_scope" and wrong_scope["state"] == "x/y z"


def test_signing_in_on_the_way_comes_back_to_the_consent_page(app: Any) -> None:
    client_id, _ = register_client(app, CALLBACK)
    browser = app.test_client()
    url = authorize_url(client_id, CALLBACK)
    to_signin = browser.get(url)
    assert to_signin.status_code == 302 and to_signin.headers["Location"].startswith("/signin?")
    signed = sign_in_to(browser, app, to_signin.headers["Location"])
    assert signed.headers["Location"] == url
    assert browser.get(url).status_code == 200


def sign_in_to(browser: Any, app: Any, signin_url: str) -> Any:
    from tests.integration.account_helpers import csrf

    person = make_account(app)
    form = browser.get(signin_url).get_data(as_text=True)
    next_value = form.split('name="next" value="')[1].split('"')[0].replace("&amp;", "&")
    return browser.post("/signin", data={"identifier": person.name, "password": person.password,
                                         "csrf_token": csrf(form), "next": next_value})


def test_a_wrong_client_secret_is_refused_with_both_client_auth_methods(
    app: Any, browser: Any
) -> None:
    client_id, secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    post = token_request(browser, client_id, secret + "x", grant_type="authorization_code",
                         code=code, redirect_uri=CALLBACK)
    assert post.status_code == 401 and post.get_json()["error"] == "invalid_client"
    basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    refused = browser.post("/oauth/token", headers={"Authorization": f"Basic {basic}"},
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": CALLBACK})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic")


def test_client_secret_basic_exchanges_a_code(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = browser.post("/oauth/token", headers={"Authorization": f"Basic {basic}"},
                            data={"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": CALLBACK})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["scope"] == ALL_SCOPES and body["refresh_token"] and body["access_token"]


def test_a_code_used_twice_is_refused_and_revokes_what_it_made(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    first = token_request(browser, client_id, secret, **exchange).get_json()
    assert browser.get("/v1/actions/handoffs", headers=bearer(first["access_token"])
                       ).status_code == 200
    again = token_request(browser, client_id, secret, **exchange)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert browser.get("/v1/actions/handoffs", headers=bearer(first["access_token"])
                       ).status_code == 401
    refreshed = token_request(browser, client_id, secret, grant_type="refresh_token",
                              refresh_token=first["refresh_token"])
    assert refreshed.get_json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(app: Any, browser: Any, clock: Clock) -> None:
    client_id, secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    clock.skipped += 301  # codes live 5 minutes
    response = token_request(browser, client_id, secret, grant_type="authorization_code",
                             code=code, redirect_uri=CALLBACK)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_a_code_needs_the_same_redirect_uri_and_its_own_client(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK)
    other_id, other_secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    stolen = token_request(browser, other_id, other_secret, grant_type="authorization_code",
                           code=code, redirect_uri=CALLBACK)
    assert stolen.get_json()["error"] == "invalid_grant"
    code = get_code(browser, client_id, CALLBACK)
    moved = token_request(browser, client_id, secret, grant_type="authorization_code", code=code,
                          redirect_uri="http://127.0.0.1:9/elsewhere")
    assert moved.get_json()["error"] == "invalid_grant"


def test_an_expired_access_token_is_refused_and_a_refresh_rotates_it(
    app: Any, browser: Any, clock: Clock
) -> None:
    client_id, secret = register_client(app, CALLBACK)
    first = tokens(browser, client_id, secret)
    clock.skipped += 3601
    expired = browser.get("/v1/actions/handoffs", headers=bearer(first["access_token"]))
    assert expired.status_code == 401 and expired.get_json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    second = token_request(browser, client_id, secret, grant_type="refresh_token",
                           refresh_token=first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert browser.get("/v1/actions/handoffs", headers=bearer(second["access_token"])
                       ).status_code == 200


def test_a_refresh_token_used_again_after_rotation_revokes_the_family(
    app: Any, browser: Any
) -> None:
    client_id, secret = register_client(app, CALLBACK)
    first = tokens(browser, client_id, secret)
    second = token_request(browser, client_id, secret, grant_type="refresh_token",
                           refresh_token=first["refresh_token"]).get_json()
    replayed = token_request(browser, client_id, secret, grant_type="refresh_token",
                             refresh_token=first["refresh_token"])
    assert replayed.status_code == 400 and replayed.get_json()["error"] == "invalid_grant"
    # Whoever replayed it may hold the newer tokens too: the whole family is gone.
    assert browser.get("/v1/actions/handoffs", headers=bearer(second["access_token"])
                       ).status_code == 401
    assert token_request(browser, client_id, secret, grant_type="refresh_token",
                         refresh_token=second["refresh_token"]).get_json()["error"] == \
        "invalid_grant"


def test_a_missing_scope_is_403_insufficient_scope(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK, "knowledge:read")
    token = tokens(browser, client_id, secret, "knowledge:read")["access_token"]
    assert browser.get("/v1/actions/knowledge?q=gift", headers=bearer(token)).status_code == 200
    refused = browser.post("/v1/actions/knowledge", headers=bearer(token),
                           json={"title": "t", "text": "x"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_scope"
    assert 'scope="knowledge:write"' in refused.headers["WWW-Authenticate"]
    assert browser.get("/v1/actions/handoffs").status_code == 401


def test_pkce_s256_is_checked_when_the_client_sends_a_challenge(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK)
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    exchange = {"grant_type": "authorization_code", "redirect_uri": CALLBACK}
    code = get_code(browser, client_id, CALLBACK, **pkce)
    missing = token_request(browser, client_id, secret, code=code, **exchange)
    assert missing.get_json()["error"] == "invalid_request"
    code = get_code(browser, client_id, CALLBACK, **pkce)
    wrong = token_request(browser, client_id, secret, code=code, code_verifier="x" * 50,
                          **exchange)
    assert wrong.get_json()["error"] == "invalid_grant"
    code = get_code(browser, client_id, CALLBACK, **pkce)
    right = token_request(browser, client_id, secret, code=code, code_verifier=verifier,
                          **exchange)
    assert right.status_code == 200
    plain = redirect_params(browser.get(authorize_url(
        client_id, CALLBACK, code_challenge=verifier, code_challenge_method="plain")))
    assert plain["error"] == "invalid_request" and plain["state"] == "st-1"


def test_revoking_a_refresh_token_revokes_its_access_tokens(app: Any, browser: Any) -> None:
    client_id, secret = register_client(app, CALLBACK)
    issued = tokens(browser, client_id, secret)
    refused = browser.post("/oauth/revoke", data={"token": issued["refresh_token"]})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    revoked = browser.post("/oauth/revoke", data={
        "token": issued["refresh_token"], "token_type_hint": "refresh_token",
        "client_id": client_id, "client_secret": secret})
    assert revoked.status_code == 200
    assert browser.get("/v1/actions/handoffs", headers=bearer(issued["access_token"])
                       ).status_code == 401
    unknown = browser.post("/oauth/revoke", data={"token": "sfat_nothing", "client_id": client_id,
                                                  "client_secret": secret})
    assert unknown.status_code == 200


def test_secrets_codes_and_tokens_are_only_hashes_at_rest_and_never_logged(
    app: Any, browser: Any, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id, secret = register_client(app, CALLBACK)
    code = get_code(browser, client_id, CALLBACK)
    issued = token_request(browser, client_id, secret, grant_type="authorization_code",
                           code=code, redirect_uri=CALLBACK).get_json()
    secrets_ = [secret, code, issued["access_token"], issued["refresh_token"]]
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("sf:oauth:*"):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = list(client.hgetall(key).values())
        else:
            values = list(client.smembers(key))
        blob = key + b"".join(values)
        assert not any(s.encode() in blob for s in secrets_), key
    assert not any(s in caplog.text for s in secrets_)


def test_the_cli_prints_a_client_secret_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", redis_url)
    assert main(["oauth-clients", "create", "Sam's GPT", "--redirect-uri", CHATGPT,
                 "--scope", "notes:write knowledge:write"]) == 1
    assert "client names use" in capsys.readouterr().err
    assert main(["oauth-clients", "create", "Sams GPT", "--redirect-uri", CHATGPT,
                 "--scope", "notes:write knowledge:write"]) == 0
    out = capsys.readouterr().out
    secret = out.split("client_secret: ")[1].split()[0]
    assert "scopes:        notes:write knowledge:write" in out
    assert main(["oauth-clients", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Sams GPT" in listing and CHATGPT in listing and secret not in listing
    assert main(["oauth-clients", "create", "x", "--redirect-uri", "http://example.com/cb"]) == 1
    assert "use https" in capsys.readouterr().err
    assert main(["oauth-clients", "create", "x", "--redirect-uri", CHATGPT,
                 "--scope", "everything"]) == 1
    assert "unknown scope" in capsys.readouterr().err
