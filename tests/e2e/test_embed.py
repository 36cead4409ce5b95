"""The widget on a customer's own site, in headless Chromium.

The shop's page is served from another origin (http://localhost:<port>, while SupportFlow is on
http://127.0.0.1:<port>) with a strict Content-Security-Policy that only adds SupportFlow's
origin, and embeds the widget with the README's snippet, as a helpdesk owner would.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.wrappers import Request, Response

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.domain.contacts import identity_hash
from tests.conftest import WIDGET_SITE, WIDGET_SITE_PORT, Sandbox, make_app
from tests.e2e.browser import SHIPPING, SHIPPING_ANSWER, TIMEOUT_MS, expect, shot
from tests.helpers import free_port, readme_snippet, serving
from tests.integration.agent_helpers import HANDOFF_REQUEST, Agent

pytestmark = pytest.mark.slow

README_BASE = "https://support.example.com"
# The shop's own styles: as hostile to an embedded widget as a stylesheet gets.
SHOP_CSS = """
* { font-family: "Courier New", monospace !important; letter-spacing: 2px !important;
    text-transform: uppercase !important; color: #c00 !important; line-height: 3 !important; }
button { background: #ff0 !important; border-radius: 0 !important; padding: 30px !important; }
div, section, p, li, ol, h2 { display: block !important; opacity: .4 !important; }
supportflow-widget, supportflow-widget * { display: none !important; filter: blur(4px) !important; }
[hidden] { display: block !important; }
"""
SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme shop</title>
{css}</head>
<body><h1>Acme shop</h1><p class="intro">Hand-made things.</p>
<button type="button" id="buy">Buy</button><ul><li>Teapot</li><li>Mug</li></ul>
{widget}
</body></html>"""


def shop_app(supportflow: str, snippet: str) -> Callable[..., Any]:
    """The shop's web site: its page with a strict CSP that adds SupportFlow's origin only."""
    policy = (f"default-src 'none'; script-src {supportflow}; style-src 'self' {supportflow}; "
              f"connect-src {supportflow}; img-src 'self'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; require-trusted-types-for 'script'")

    @Request.application  # type: ignore[arg-type]
    def site(request: Request) -> Response:
        if request.path == "/shop.css":
            return Response(SHOP_CSS, content_type="text/css")
        css = "" if "plain" in request.args else '<link rel="stylesheet" href="/shop.css">'
        widget = "" if "nowidget" in request.args else snippet.replace(README_BASE, supportflow)
        if "user" in request.args:  # a signed-in user, as the shop's server writes the snippet
            widget = widget.replace('data-flow="default"', 'data-flow="identified" '
                                    f'data-contact="{html.escape(request.args["user"])}" '
                                    f'data-contact-hash="{html.escape(request.args["hash"])}"')
        page = SHOP_PAGE.format(css=css, widget=widget)
        return Response(page, content_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": policy})

    return site  # type: ignore[return-value]


@pytest.fixture(scope="module")
def supportflow(stack: dict[str, Any], redis_url: str, sandbox: Sandbox,
                flows_dir: Path) -> Iterator[tuple[str, Any]]:
    """SupportFlow on its own origin, rate limits on, short event streams."""
    app = make_app(redis_url, sandbox.url, flows_dir, stream_max_s=8.0, stream_keepalive_s=1.0,
                   stream_poll_s=0.1, rate_limits_enabled=True)
    with serving(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def shop(supportflow: tuple[str, Any]) -> Iterator[str]:
    """The shop's site on the origin the default flow lists."""
    with serving(shop_app(supportflow[0], readme_snippet()), WIDGET_SITE_PORT):
        yield WIDGET_SITE


@pytest.fixture(scope="module")
def stranger(supportflow: tuple[str, Any]) -> Iterator[str]:
    """The same page on an origin no flow lists."""
    port = free_port()
    with serving(shop_app(supportflow[0], readme_snippet()), port):
        yield f"http://localhost:{port}"


# Recorded in the page before any of its scripts run: what the CSP (or Trusted Types) refused.
WATCH_CSP = """window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));"""


@pytest.fixture
def page(browser: Any, sandbox: Sandbox) -> Iterator[Any]:
    sandbox.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(WATCH_CSP)
    opened = context.new_page()
    yield opened
    violations = opened.evaluate("window.__violations")
    context.close()
    assert violations == [], violations


def widget(page: Any) -> Any:
    return page.locator("supportflow-widget")


def open_chat(page: Any) -> Any:
    """Open the chat (it reopens by itself after a navigation) and wait for the welcome."""
    launcher = page.get_by_role("button", name="Ask Acme", exact=True)
    if launcher.get_attribute("aria-expanded") != "true":
        launcher.click()
    log = page.get_by_role("log", name="Messages")
    expect(log).to_contain_text("Hello! How can I help?")
    return log


def test_a_whole_conversation_on_a_shop_site_under_a_strict_csp(
    supportflow: tuple[str, Any], shop: str, page: Any, redis_url: str
) -> None:
    _, app = supportflow
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    page.goto(shop)
    launcher = page.get_by_role("button", name="Ask Acme", exact=True)
    # Texts and colours come from the snippet's data- attributes.
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(10, 125, 50)"
    log = open_chat(page)
    box = page.get_by_label("Your message")
    expect(box).to_be_focused()
    box.fill(SHIPPING)
    box.press("Enter")
    expect(log).to_contain_text(SHIPPING_ANSWER)
    announcer = widget(page).locator("[data-announcer]")
    expect(announcer).to_contain_text(f"Assistant: {SHIPPING_ANSWER}")
    box.fill(HANDOFF_REQUEST)
    box.press("Enter")
    banner = page.get_by_text("You've been handed to a person")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("aria-live", "polite")
    shot(page, "embed-handed-off")

    conversation = page.evaluate("sessionStorage.getItem('supportflow.widget.default.conversation')")
    token = page.evaluate("sessionStorage.getItem('supportflow.widget.default.token')")
    agent = Agent(app.test_client(), redis_url)
    assert agent.claim(conversation).status_code == 200
    assert agent.send(conversation, "Hi, Sam from Acme here.").status_code == 201
    expect(log).to_contain_text("Hi, Sam from Acme here.")
    expect(announcer).to_contain_text("Support team: Hi, Sam from Acme here.")
    shot(page, "embed-agent-reply")

    # An anonymous visitor: the widget keeps the contact token that names their contact.
    services = app.extensions["supportflow"]
    kept = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('supportflow.contact.'))"
                         ".map(k => localStorage.getItem(k))")
    found = services.store.get(conversation)
    assert len(kept) == 1 and found is not None
    assert services.contact_tokens.contact_of(kept[0], "default") == found.contact_id

    # The visitor token went in a header, to the event stream too, and never in a URL.
    assert token and token.startswith("sfv_")
    assert all(token not in request.url for request in requests)
    streams = [r for r in requests if r.url.split("?")[0].endswith(f"{conversation}/events")]
    assert streams and all(r.all_headers().get("authorization") == f"Bearer {token}"
                           for r in streams)


def test_a_site_the_flow_does_not_list_is_refused(
    supportflow: tuple[str, Any], stranger: str, page: Any, redis_url: str
) -> None:
    conversations = redis.Redis.from_url(redis_url)
    before = conversations.zcard("sf:conversations")
    page.goto(stranger)
    page.get_by_role("button", name="Ask Acme", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="This chat isn't available on this site.")
           ).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('supportflow.widget.default.conversation')") is None
    assert conversations.zcard("sf:conversations") == before
    shot(page, "embed-refused")


WIDGET_LOOKS = """w => {
  const root = w.shadowRoot;
  const pick = (el) => { const s = getComputedStyle(el); return [s.fontFamily, s.fontSize, s.color,
    s.backgroundColor, s.letterSpacing, s.textTransform, s.lineHeight, s.borderRadius, s.opacity,
    s.filter, s.display, s.paddingTop].join("|"); };
  return ["button.launcher", ".panel", ".panel h2", "textarea", "button.send", ".message"]
    .map((sel) => root.querySelector(sel)).map((el) => el && pick(el));
}"""
PAGE_LOOKS = """() => ["body", "h1", "p.intro", "#buy", "li"].map((sel) => {
  const s = getComputedStyle(document.querySelector(sel));
  return [s.fontFamily, s.fontSize, s.color, s.backgroundColor, s.margin, s.padding, s.boxSizing,
          s.lineHeight].join("|");
}).concat([String(document.styleSheets.length), String(document.head.children.length)])"""


def test_the_shops_css_does_not_reach_the_widget_nor_the_widgets_css_the_shop(
    shop: str, page: Any
) -> None:
    looks = {}
    for variant in ("?plain=1", ""):
        page.goto(shop + variant)
        open_chat(page)
        page.mouse.move(0, 0)  # no hover
        looks[variant] = widget(page).evaluate(WIDGET_LOOKS)
        if not variant:
            shot(page, "embed-hostile-css")
    assert looks["?plain=1"] == looks[""]
    assert all(looks[""]), looks

    page.goto(shop + "?nowidget=1")
    without = page.evaluate(PAGE_LOOKS)
    page.goto(shop)
    open_chat(page)
    assert page.evaluate(PAGE_LOOKS) == without


@pytest.fixture(scope="module")
def strict(stack: dict[str, Any], redis_url: str, sandbox: Sandbox,
           flows_dir: Path) -> Iterator[tuple[str, Any]]:
    """SupportFlow with a low limit on posts and visitor tokens that last four seconds."""
    app = make_app(redis_url, sandbox.url, flows_dir, stream_max_s=8.0, stream_poll_s=0.1,
                   rate_limits_enabled=True, rate_limit_messages="2 per 3 seconds",
                   visitor_token_ttl_s=4.0)
    with serving(app) as base:
        yield base, app


def test_the_widget_waits_out_busy_answers_and_keeps_its_token_fresh(
    strict: tuple[str, Any], page: Any
) -> None:
    base, app = strict
    store = app.extensions["supportflow"].store
    refused: list[str] = []

    def unavailable_once(route: Any) -> None:
        # What a web process answers while Redis is down (a 503 with Retry-After).
        if route.request.method == "POST" and not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, headers={"Retry-After": "1"},
                          json={"error": {"code": "unavailable", "message": "try again"}})
        else:
            route.continue_()

    page.route("**/messages", unavailable_once)
    page.goto(f"{base}/demo")
    page.get_by_role("button", name="Chat with us", exact=True).click()
    expect(page.get_by_role("log", name="Messages")).to_contain_text("Hello! How can I help?")
    first_token = page.evaluate("sessionStorage.getItem('supportflow.widget.default.token')")
    conversation = page.evaluate("sessionStorage.getItem('supportflow.widget.default.conversation')")
    status = page.get_by_role("status").filter(has_text="trying again")
    box = page.get_by_label("Your message")
    pending = widget(page).locator(".message.pending")

    def sent() -> list[str]:
        return [m.text for _, m in store.transcript(conversation, 0, 500) if m.author == "customer"]

    # (Waits go through Playwright, which serves the route handler meanwhile.)
    box.fill("first")
    box.press("Enter")
    expect(status).to_contain_text("The service is busy — trying again in 1 s")
    expect(pending).to_have_count(0)
    assert refused and sent() == ["first"]
    for text in ("second", "third"):
        box.fill(text)
        box.press("Enter")
    expect(status).to_contain_text("Too many messages at once — trying again in")
    expect(pending).to_have_count(0)
    assert sent() == ["first", "second", "third"]
    assert widget(page).locator(".message.failed").count() == 0

    # Once the first token has expired (four seconds), the widget holds a renewed one...
    page.wait_for_function(
        "([first, since]) => Date.now() > since + 4500"
        " && sessionStorage.getItem('supportflow.widget.default.token') !== first",
        arg=[first_token, int(time.time() * 1000)], polling=200)
    # ... and the chat goes on.
    box.fill("fourth")
    box.press("Enter")
    expect(pending).to_have_count(0)
    assert sent()[-1] == "fourth"


def test_an_identified_visitor_chats_as_their_contact_and_a_forged_hash_starts_nothing(
    shop: str, page: Any, redis_url: str, identity_secret: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    user = f"user-{uuid.uuid4().hex[:8]}"
    page.goto(f"{shop}?user={user}&hash={identity_hash(identity_secret, user)}")
    open_chat(page)
    conversation = page.evaluate(
        f"sessionStorage.getItem('supportflow.widget.identified.user.{user}.conversation')")
    found = RedisConversationStore(client).get(conversation)
    assert found is not None and found.contact_id == user

    before = client.zcard("sf:conversations")
    mallory = f"mallory-{uuid.uuid4().hex[:8]}"
    page.goto(f"{shop}?user={mallory}&hash={identity_hash(identity_secret, user)}")
    page.get_by_role("button", name="Ask Acme", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="We couldn't confirm who you are")
           ).to_be_visible()
    shot(page, "embed-identity-refused")
    assert page.evaluate(
        f"sessionStorage.getItem('supportflow.widget.identified.user.{mallory}.conversation')"
    ) is None
    assert client.zcard("sf:conversations") == before
