"""Agent accounts over the real stack: argon2 at rest, sign-in with a Redis session and CSRF,
sign-out, throttling shared by web processes, and the pages' API calls on the session."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.cli import main
from supportflow.domain.accounts import AccountRole
from tests.conftest import Sandbox, make_app
from tests.integration.account_helpers import make_account, page_csrf, sign_in
from tests.integration.agent_helpers import handed_off_chat


@pytest.fixture(scope="module")
def app(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path) -> Any:
    return make_app(redis_url, sandbox.url, flows_dir)


def test_the_cli_creates_an_account_whose_password_is_kept_as_an_argon2_hash(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["agents", "create", "dana", "--email", "Dana@Example.test", "--role",
                 "admin"]) == 0
    assert "account 'dana' (admin, dana@example.test) created" in capsys.readouterr().out
    record = redis.Redis.from_url(redis_url).hget("sf:accounts", "dana")
    assert record is not None and b"$argon2id$" in record and b"correct horse" not in record
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["agents", "create", "erin", "--email", "erin@example.test"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another long one\n"))
    assert main(["agents", "create", "dana2", "--email", "dana@example.test"]) == 1
    assert "email 'dana@example.test' exists" in capsys.readouterr().err


def test_an_agent_signs_in_and_the_console_calls_the_api_with_the_session_and_csrf(
    app: Any
) -> None:
    person = make_account(app)
    browser = app.test_client()
    assert browser.get("/agent").headers["Location"] == "/signin?next=/agent"
    signed = sign_in(browser, person)
    assert signed.status_code == 302 and signed.headers["Location"] == "/agent"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = browser.get("/agent").get_data(as_text=True)
    assert person.name in page and 'name="csrf-token"' in page
    assert browser.get("/v1/agent/handoffs").status_code == 200

    chat = handed_off_chat(app.test_client())
    refused = browser.post(f"/v1/agent/conversations/{chat.id}/claim")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    headers = {"X-CSRFToken": page_csrf(browser)}
    claimed = browser.post(f"/v1/agent/conversations/{chat.id}/claim", headers=headers)
    assert claimed.status_code == 200 and claimed.get_json()["claimed_by"] == person.name
    sent = browser.post(f"/v1/agent/conversations/{chat.id}/messages", headers=headers,
                        json={"text": "Hello, I'm here."})
    assert sent.status_code == 201
    agent_lines = [m for m in chat.messages("agent")]
    assert agent_lines[-1]["text"] == "Hello, I'm here." and agent_lines[-1]["agent"] == person.name


def test_a_cookie_is_secure_when_the_service_is_reached_over_https(
    redis_url: str, sandbox: Sandbox, flows_dir: Path
) -> None:
    app = make_app(redis_url, sandbox.url, flows_dir, public_url="https://support.example")
    response = sign_in(app.test_client(), make_account(app))
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_form_posts_without_the_csrf_token_are_refused_and_change_nothing(app: Any) -> None:
    person = make_account(app)
    browser = app.test_client()
    browser.get("/signin")
    refused = browser.post("/signin", data={"identifier": person.email,
                                            "password": person.password})
    assert refused.status_code == 400 and "This form expired" in refused.get_data(as_text=True)
    assert browser.get("/agent").status_code == 302  # still not signed in
    sign_in(browser, person)
    assert browser.post("/signout").status_code == 400
    assert browser.get("/agent").status_code == 200  # still signed in
    forged = browser.post("/signout", data={"csrf_token": "forged"})
    assert forged.status_code == 400 and browser.get("/agent").status_code == 200


def test_signing_out_ends_the_session_even_for_a_copied_cookie(app: Any) -> None:
    person = make_account(app)
    browser, thief = app.test_client(), app.test_client()
    sign_in(browser, person)
    stolen = browser.get_cookie("sf_session")
    assert stolen is not None
    thief.set_cookie("sf_session", stolen.value)
    assert thief.get("/v1/agent/handoffs").status_code == 200
    assert browser.post("/signout", data={"csrf_token": page_csrf(browser)}).status_code == 302
    assert thief.get("/v1/agent/handoffs").status_code == 401
    assert browser.get("/agent").status_code == 302


def test_too_many_failed_sign_ins_are_refused_by_every_web_process(
    app: Any, redis_url: str, sandbox: Sandbox, flows_dir: Path
) -> None:
    person = make_account(app)
    other_process = make_app(redis_url, sandbox.url, flows_dir)
    wrong = person.__class__(person.name, person.email, "wrong password!")
    address = {"REMOTE_ADDR": "10.9.8.7"}
    for attempt in range(5):
        failed = sign_in(app.test_client(), wrong, **address)
        assert failed.status_code == 401, attempt
        assert "Wrong email, account name or password" in failed.get_data(as_text=True)
    # The right password, in another web process, from another address: still refused.
    refused = sign_in(other_process.test_client(), person, REMOTE_ADDR="10.9.8.8")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    # Another account is not locked out by it.
    assert sign_in(app.test_client(), make_account(app), **address).status_code == 302


def test_the_ops_dashboard_needs_an_admin_account(app: Any) -> None:
    agent, admin = app.test_client(), app.test_client()
    sign_in(agent, make_account(app))
    sign_in(admin, make_account(app, AccountRole.ADMIN))
    refused = agent.get("/ops")
    assert refused.status_code == 403 and "needs an admin account" in refused.get_data(as_text=True)
    assert agent.get("/v1/ops/overview").status_code == 403
    assert admin.get("/ops").status_code == 200
    assert admin.get("/v1/ops/overview").status_code == 200


def test_deleting_an_account_ends_its_sessions(app: Any) -> None:
    person = make_account(app)
    browser = app.test_client()
    sign_in(browser, person)
    assert browser.get("/v1/agent/handoffs").status_code == 200
    assert app.extensions["supportflow"].accounts.delete(person.name)
    assert browser.get("/v1/agent/handoffs").status_code == 401
    assert browser.get("/agent").status_code == 302


def test_signing_in_never_sends_anyone_to_another_site(app: Any) -> None:
    from tests.integration.account_helpers import csrf

    person = make_account(app)
    for target in ("https://evil.example/x", "//evil.example", "/\\evil.example", "javascript:x"):
        browser = app.test_client()
        form = browser.get("/signin").get_data(as_text=True)
        signed = browser.post("/signin", data={"identifier": person.name, "next": target,
                                               "password": person.password,
                                               "csrf_token": csrf(form)})
        assert signed.headers["Location"] == "/agent", target
