"""The pages in headless Chromium against the real stack: widget, agent console, ops dashboard.

Debian's Chromium (/usr/bin/chromium; scripts/test.sh installs it) driven by Playwright. The app
runs on a real port in a thread; Redis, the Celery worker and beat and the sandbox are the
session's real ones. Each test saves screenshots under tests/e2e/screenshots/ (ignored by git).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportflow.domain.accounts import AccountRole
from tests.conftest import Sandbox, make_app
from tests.e2e.browser import SHIPPING, SHIPPING_ANSWER, TIMEOUT_MS, expect, fill_sign_in, shot
from tests.helpers import serving, wait_settled
from tests.integration.account_helpers import Person, make_account
from tests.integration.agent_helpers import HANDOFF_REQUEST, handed_off_chat

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(stack: dict[str, Any], redis_url: str, sandbox: Sandbox,
         flows_dir: Path) -> Iterator[tuple[str, Any]]:
    """The real app on a real port (threaded), with short SSE responses; its URL and the app."""
    app = make_app(redis_url, sandbox.url, flows_dir, stream_max_s=8.0, stream_keepalive_s=1.0,
                   stream_poll_s=0.1)
    with serving(app) as base:
        yield base, app


PHONE = {"width": 390, "height": 844}


def fits_width(page: Any) -> bool:
    """Nothing sticks out sideways (no horizontal scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def open_widget(page: Any, base: str) -> Any:
    """The demo page with the chat open; returns the message box."""
    page.goto(f"{base}/demo")
    page.get_by_role("button", name="Chat with us", exact=True).click()
    expect(page.get_by_role("log", name="Messages")).to_contain_text("Hello! How can I help?")
    box = page.get_by_label("Your message")
    expect(box).to_be_focused()
    return box


def conversation_id(page: Any) -> str:
    found: str = page.evaluate("sessionStorage.getItem('supportflow.widget.default.conversation')")
    assert found and found.startswith("conv"), found
    return found


def sign_in(page: Any, base: str, person: Person, path: str = "/agent") -> None:
    """Open a page that needs an account: the sign-in form first, then the page."""
    page.goto(f"{base}{path}")
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    fill_sign_in(page, person.email, person.password)
    expect(page).to_have_url(f"{base}{path}")


def test_a_conversation_in_the_widget_handed_off_and_answered_in_the_agent_console(
    site: tuple[str, Any], context: Any
) -> None:
    base, app = site
    customer = context.new_page()
    box = open_widget(customer, base)
    log = customer.get_by_role("log", name="Messages")
    box.fill(SHIPPING)
    box.press("Enter")
    expect(log).to_contain_text(SHIPPING_ANSWER)
    shot(customer, "demo-answer")
    conversation = conversation_id(customer)

    box.fill(HANDOFF_REQUEST)
    customer.get_by_role("button", name="Send", exact=True).click()
    expect(customer.get_by_text("You've been handed to a person")).to_be_visible()
    expect(customer.get_by_text("The assistant is typing")).to_be_hidden()
    shot(customer, "demo-handed-off")

    # Reloading keeps the conversation (sessionStorage) and its transcript.
    customer.reload()
    expect(log).to_contain_text(SHIPPING_ANSWER)
    assert conversation_id(customer) == conversation

    agent = context.new_page()
    sam = make_account(app)
    sign_in(agent, base, sam)
    entry = agent.locator(f'[data-conversation="{conversation}"]')
    expect(entry).to_contain_text(HANDOFF_REQUEST)
    expect(agent.get_by_role("status").filter(has_text="Live")).to_be_visible()
    entry.click()
    transcript = agent.get_by_role("log", name="Transcript")
    expect(transcript).to_contain_text(SHIPPING_ANSWER)
    expect(agent.locator("#attributes")).to_contain_text("gpt_response")
    agent.get_by_role("button", name="Claim", exact=True).click()
    reply = agent.get_by_label("Reply to the customer")
    expect(reply).to_be_focused()
    reply.fill("Hi, Sam here. How can I help?")
    reply.press("Enter")
    expect(transcript).to_contain_text("Hi, Sam here.")
    expect(entry).to_contain_text(f"claimed by {sam.name}")
    shot(agent, "agent-claimed")

    expect(log).to_contain_text("Hi, Sam here. How can I help?")
    expect(customer.locator("supportflow-widget .message.agent")).to_have_count(1)
    customer.get_by_label("Your message").fill("Thanks Sam, where is my parcel?")
    customer.get_by_label("Your message").press("Enter")
    expect(transcript).to_contain_text("where is my parcel?")
    shot(customer, "demo-agent-reply")

    agent.get_by_role("button", name="Resolve", exact=True).click()
    expect(agent.get_by_text("This conversation is resolved.")).to_be_visible()
    expect(entry).to_have_count(0)
    expect(customer.get_by_text("This conversation is closed.")).to_be_visible()
    expect(customer.get_by_label("Your message")).to_be_disabled()
    expect(customer.get_by_role("button", name="Start a new conversation", exact=True)).to_be_visible()
    shot(customer, "demo-closed")


def test_agent_console_refuses_a_wrong_password_and_shows_empty_and_error_states(
    site: tuple[str, Any], context: Any
) -> None:
    base, app = site
    kim = make_account(app)
    page = context.new_page()
    page.goto(f"{base}/agent")
    expect(page.get_by_label("Email or account name")).to_be_focused()
    fill_sign_in(page, kim.email, "not the password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong email, account name or password")
    shot(page, "signin-refused")

    page.route("**/v1/agent/handoffs", lambda route: route.fulfill(json={"handoffs": []}))
    fill_sign_in(page, kim.name, kim.password)
    expect(page).to_have_url(f"{base}/agent")
    expect(page.get_by_text(f"Signed in as {kim.name}")).to_be_visible()
    expect(page.get_by_text("No handoffs waiting")).to_be_visible()
    shot(page, "agent-empty")
    page.set_viewport_size(PHONE)
    assert fits_width(page)
    shot(page, "agent-phone-empty")
    page.unroute("**/v1/agent/handoffs")
    page.route("**/v1/agent/handoffs", lambda route: route.abort())
    expect(page.get_by_text("Can't reach the server — retrying")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(f"{base}/signin")
    page.goto(f"{base}/agent")
    expect(page).to_have_url(re.compile(r"/signin\?next=/agent$"))


def test_ops_dashboard_shows_the_counts_move(site: tuple[str, Any], context: Any, redis_url: str,
                                            flows_dir: Path) -> None:
    base, app = site
    # The counts are the whole stack's: earlier tests' chats must not move them meanwhile.
    wait_settled(redis_url, flows_dir)
    agent = context.new_page()
    agent.goto(f"{base}/signin?next=/ops")
    person = make_account(app)
    fill_sign_in(agent, person.email, person.password)
    expect(agent.get_by_role("alert")).to_contain_text("This page needs an admin account")
    page = context.new_page()
    page.context.clear_cookies()
    sign_in(page, base, make_account(app, AccountRole.ADMIN), "/ops")
    expect(page.get_by_role("status").filter(has_text="Updated")).to_be_visible()
    waiting = page.locator(".tile", has_text="Waiting for an agent").locator(".value")
    expect(waiting).to_have_text(re.compile(r"^\d+$"))
    before = int(waiting.inner_text())
    handoffs = page.locator("#counters tr", has_text="Handoffs").locator("td").nth(1)
    expect(handoffs).to_have_text(re.compile(r"^(\d+|—)$"))
    counted = int(handoffs.inner_text().replace("—", "0"))

    handed_off_chat(app.test_client())
    expect(waiting).to_have_text(str(before + 1))
    expect(handoffs).to_have_text(str(counted + 1))
    expect(page.locator("#states")).to_contain_text("handed off")
    latency = page.locator("#latency-chart svg")
    expect(latency).to_have_attribute("aria-label", re.compile("p50 reply latency"))
    expect(page.locator("#queue-chart svg")).to_be_visible()
    shot(page, "ops-overview")
    page.set_viewport_size(PHONE)
    expect(latency).to_have_attribute("viewBox", re.compile(r"^0 0 [23]\d\d "))  # redrawn to fit
    assert fits_width(page)
    shot(page, "ops-phone")


def test_ops_dashboard_says_so_when_the_endpoints_fail(site: tuple[str, Any], context: Any) -> None:
    base, app = site
    page = context.new_page()
    not_found = {"error": {"code": "not_found", "message": "no such endpoint"}}
    page.route("**/v1/ops/overview", lambda route: route.fulfill(status=404, json=not_found))
    page.route("**/v1/ops/timeseries*", lambda route: route.fulfill(status=500, json={}))
    sign_in(page, base, make_account(app, AccountRole.ADMIN), "/ops")
    expect(page.get_by_role("alert")).to_contain_text(re.compile("isn't available on this server|failed"))
    expect(page.get_by_text("Not up to date")).to_be_visible()
    expect(page.locator("#latency-chart")).to_contain_text("No data in the last hour")
    shot(page, "ops-error")


def test_widget_at_phone_width_is_usable(site: tuple[str, Any], browser: Any, sandbox: Sandbox) -> None:
    base, _ = site
    sandbox.reset()
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        page = phone.new_page()
        page.goto(f"{base}/demo")
        launcher = page.get_by_role("button", name="Chat with us", exact=True)
        box = launcher.bounding_box()
        assert box and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
        shot(page, "phone-closed")
        launcher.tap()
        panel = page.get_by_role("dialog", name="Chat with us")
        expect(panel).to_be_visible()
        area = panel.bounding_box()
        assert area and area["x"] >= 0 and area["x"] + area["width"] <= 390, area
        assert area["y"] >= 0 and area["y"] + area["height"] <= 844, area
        message = page.get_by_label("Your message")
        send = page.get_by_role("button", name="Send", exact=True)
        expect(message).to_be_in_viewport()
        expect(send).to_be_in_viewport()
        send_box = send.bounding_box()
        assert send_box and send_box["height"] >= 44  # a finger-sized target
        message.fill(SHIPPING)
        send.tap()
        expect(page.get_by_role("log", name="Messages")).to_contain_text(SHIPPING_ANSWER)
        shot(page, "phone-answer")
        page.get_by_role("button", name="Close chat", exact=True).tap()
        expect(panel).to_be_hidden()
        expect(launcher).to_be_visible()
    finally:
        phone.close()


def test_widget_polls_when_the_stream_fails_and_works_by_keyboard(
    site: tuple[str, Any], context: Any
) -> None:
    base, _ = site
    page = context.new_page()
    page.route("**/events*", lambda route: route.abort())
    page.goto(f"{base}/demo")
    for _ in range(12):  # skip link, nav links, then the widget's launcher
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.localName") == "supportflow-widget":
            break
    page.keyboard.press("Enter")
    box = page.get_by_label("Your message")
    expect(box).to_be_focused()
    page.keyboard.type(SHIPPING)
    page.keyboard.press("Enter")
    expect(page.get_by_role("log", name="Messages")).to_contain_text(SHIPPING_ANSWER)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Chat with us")).to_be_hidden()
    expect(page.get_by_role("button", name="Chat with us", exact=True)).to_be_focused()
    shot(page, "demo-polling")


def test_widget_refused_a_stream_polls_without_telling_the_visitor_the_service_is_busy(
    site: tuple[str, Any], context: Any
) -> None:
    base, _ = site
    page = context.new_page()
    refusals: list[str] = []

    def full(route: Any) -> None:
        refusals.append(route.request.url)
        route.fulfill(status=503, headers={"Retry-After": "5", "Content-Type": "application/json"},
                      body='{"error": {"code": "streams_full", "message": "try again shortly"}}')

    page.route("**/events*", full)
    page.goto(f"{base}/demo")
    page.get_by_role("button", name="Chat with us", exact=True).click()
    box = page.get_by_label("Your message")
    box.fill(SHIPPING)
    box.press("Enter")
    expect(page.get_by_role("log", name="Messages")).to_contain_text(SHIPPING_ANSWER)
    assert len(refusals) == 1  # straight to polling, no retry loop against a full server
    expect(page.get_by_role("status").filter(has_text="busy")).to_have_count(0)


def test_agent_gives_a_conversation_back_and_the_bot_answers_again(
    site: tuple[str, Any], context: Any
) -> None:
    base, app = site
    customer = context.new_page()
    box = open_widget(customer, base)
    box.fill(HANDOFF_REQUEST)
    box.press("Enter")
    banner = customer.get_by_text("You've been handed to a person")
    expect(banner).to_be_visible()
    conversation = conversation_id(customer)

    agent = context.new_page()
    sign_in(agent, base, make_account(app))
    agent.locator(f'[data-conversation="{conversation}"]').click()
    expect(agent.get_by_role("log", name="Transcript")).to_contain_text(HANDOFF_REQUEST)
    agent.get_by_role("button", name="Give back to the bot", exact=True).click()
    expect(agent.get_by_text("The bot has this conversation.")).to_be_visible()
    expect(agent.get_by_role("button", name="Give back to the bot", exact=True)).to_be_disabled()
    expect(agent.locator(f'[data-conversation="{conversation}"]')).to_have_count(0)
    shot(agent, "agent-given-back")

    expect(banner).to_be_hidden()
    box.fill(SHIPPING)
    box.press("Enter")
    expect(customer.get_by_role("log", name="Messages")).to_contain_text(SHIPPING_ANSWER)
