"""The agents' custom GPT, end to end: a real OAuth client library (Authlib's, doing what
ChatGPT does) against the live server, an agent signing in and consenting in headless Chromium;
and an agent's article in the console becoming the bot's answer in the widget."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client

from supportflow.domain.accounts import Scope
from tests.conftest import Sandbox, make_app
from tests.e2e.browser import expect, fill_sign_in, shot
from tests.helpers import serving
from tests.integration.account_helpers import make_account, register_client
from tests.integration.agent_helpers import handed_off_chat

pytestmark = pytest.mark.slow
CALLBACK_PAGE = b"<!doctype html><title>Callback</title><p>Back in ChatGPT.</p>"


@pytest.fixture(scope="module")
def live(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path
         ) -> Iterator[tuple[str, Any]]:
    app = make_app(redis_url, sandbox.url, flows_dir, stream_max_s=8.0, stream_poll_s=0.1)
    with serving(app) as base:
        yield base, app


@pytest.fixture
def callback() -> Iterator[str]:
    """Stands in for https://chatgpt.com/aip/g-<id>/oauth/callback: a page on this machine."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [CALLBACK_PAGE]

    with serving(app) as base:
        yield f"{base}/aip/g-test/oauth/callback"


def test_a_gpt_acts_for_the_agent_who_signed_in_and_consented(
    live: tuple[str, Any], context: Any, callback: str
) -> None:
    base, app = live
    agent = make_account(app)
    client_id, secret = register_client(app, callback)
    chat = handed_off_chat(app.test_client())
    gpt = OAuth2Client(client_id, secret, scope=" ".join(s.value for s in Scope),
                       redirect_uri=callback, token_endpoint_auth_method="client_secret_post",
                       timeout=10)
    url, state = gpt.create_authorization_url(f"{base}/oauth/authorize")

    page = context.new_page()
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    fill_sign_in(page, agent.email, agent.password)
    expect(page.get_by_role("heading", name=re.compile("^Allow GPT"))).to_be_visible()
    scopes = page.locator("#scopes")
    for scope in Scope:
        expect(scopes).to_contain_text(scope.value)
    expect(page.get_by_text(f"act as {agent.name}")).to_be_visible()
    shot(page, "oauth-consent")
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page.get_by_text("Back in ChatGPT.")).to_be_visible()
    returned = parse_qs(urlsplit(page.url).query)
    assert returned["state"] == [state] and returned["code"]

    token = gpt.fetch_token(f"{base}/oauth/token", authorization_response=page.url, state=state)
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    assert token["refresh_token"]
    waiting = gpt.get(f"{base}/v1/actions/handoffs").json()["waiting"]
    assert chat.id in [entry["conversation_id"] for entry in waiting]
    note = gpt.post(f"{base}/v1/actions/conversations/{chat.id}/notes",
                    json={"text": "Asked twice about the refund"})
    assert note.status_code == 201 and note.json()["note"]["author"] == agent.name
    assert gpt.post(f"{base}/v1/actions/conversations/{chat.id}/claim").status_code == 200
    assert gpt.post(f"{base}/v1/actions/conversations/{chat.id}/reply",
                    json={"text": "Hello from my GPT"}).status_code == 201
    assert chat.messages("agent")[-1]["agent"] == agent.name

    first = dict(token)
    renewed = gpt.refresh_token(f"{base}/oauth/token")
    assert renewed["access_token"] != first["access_token"]
    assert renewed["refresh_token"] != first["refresh_token"]
    saved = gpt.post(f"{base}/v1/actions/knowledge", json={
        "title": "Gift wrapping", "text": "We gift-wrap any order for $3.50."})
    assert saved.status_code == 201 and saved.json()["author"] == agent.name

    revoked = gpt.revoke_token(f"{base}/oauth/revoke", token=renewed["refresh_token"],
                               token_type_hint="refresh_token")
    assert revoked.status_code == 200
    refused = gpt.get(f"{base}/v1/actions/handoffs")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"
    gpt.close()


def test_an_article_written_in_the_console_is_what_the_bot_answers(
    live: tuple[str, Any], context: Any
) -> None:
    base, app = live
    console = context.new_page()
    person = make_account(app)
    console.goto(f"{base}/agent")
    fill_sign_in(console, person.email, person.password)
    expect(console.get_by_role("heading", name="Handoffs")).to_be_visible()
    thing = f"frobnic{uuid.uuid4().hex[:5]}"
    answer = f"Every {thing} ships with a spare battery in the box."
    console.get_by_label("Title").fill(f"Does the {thing} come with a battery?")
    console.get_by_label("Answer").fill(answer)
    console.get_by_label("Tags (comma-separated)").fill("batteries, accessories")
    console.get_by_role("button", name="Save article", exact=True).click()
    article = console.locator(".article", has_text=thing)
    expect(article).to_contain_text("In the bot's knowledge")
    expect(article).to_contain_text(f"by {person.name}")
    shot(console, "agent-knowledge")

    customer = context.new_page()
    customer.goto(f"{base}/demo?flow=knowledge")
    customer.get_by_role("button", name="Chat with us", exact=True).click()
    box = customer.get_by_label("Your message")
    box.fill(f"Is there a battery with the {thing}?")
    box.press("Enter")
    expect(customer.get_by_role("log", name="Messages")).to_contain_text(answer)
    shot(customer, "demo-knowledge-answer")
