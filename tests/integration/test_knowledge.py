"""Knowledge the bot answers from, over the real stack: an agent's "save it" through the GPT's
action becomes an article; the Celery worker uploads it (Files API) and attaches it to the flow's
vector store (Vector Store Files API) in the sandbox over HTTP; a new customer's question that
only the article answers gets the article's answer. Deleting it takes it away again; a sync that
fails is retried; a sync nobody sent is sent by beat's sweep."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from supportflow.bootstrap import bootstrap
from supportflow.settings import load_settings
from tests.conftest import Sandbox, make_app
from tests.fakes import RecordingQueue
from tests.helpers import wait_until
from tests.integration.account_helpers import (
    bearer,
    get_code,
    make_account,
    page_csrf,
    register_client,
    sign_in,
    token_request,
)
from tests.integration.chat import Chat

CALLBACK = "http://127.0.0.1:9/callback"
HANDOFF = "I'll connect you with a member of our team."


@pytest.fixture(scope="module")
def app(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path) -> Any:
    return make_app(redis_url, sandbox.url, flows_dir)


@pytest.fixture(scope="module")
def vector_store(flows_dir: Path) -> str:
    flow = yaml.safe_load((flows_dir / "knowledge.yaml").read_text())
    store: str = flow["backend"]["vector_store_id"]
    return store


def stored_files(sandbox: Sandbox, vector_store: str) -> list[str]:
    page = httpx.get(f"{sandbox.url}/vector_stores/{vector_store}/files?limit=100", timeout=5)
    return [entry["id"] for entry in page.json()["data"]]


def synced(client: Any, article_id: str, headers: dict[str, str]) -> bool:
    response = client.get(f"/v1/agent/knowledge/{article_id}", headers=headers)
    return bool(response.status_code == 200 and response.get_json()["synced"])


def ask(app: Any, question: str) -> str:
    """A new customer asks in the widget (the `knowledge` flow); the bot's answer, or HANDOFF
    when the assistant had none and handed the conversation to a person."""
    chat = Chat(app.test_client(), "knowledge")
    chat.say(question)
    state = wait_until(lambda: (s := chat.state()["state"]) in {"wait_for_user", "handed_off"}
                       and s)
    return HANDOFF if state == "handed_off" else chat.bot_texts()[-1]


def test_save_it_through_the_action_becomes_an_answer_the_bot_gives(
    app: Any, sandbox: Sandbox, vector_store: str
) -> None:
    sandbox.reset()
    browser = app.test_client()
    sign_in(browser, make_account(app))
    client_id, secret = register_client(app, CALLBACK, "knowledge:write")
    code = get_code(browser, client_id, CALLBACK, scope="knowledge:write")
    token = token_request(browser, client_id, secret, grant_type="authorization_code",
                          code=code, redirect_uri=CALLBACK).get_json()["access_token"]
    thing = f"zorblax{uuid.uuid4().hex[:6]}"  # a word nothing else in the knowledge knows
    question = f"Can I recycle my {thing} packaging?"
    assert ask(app, question) == HANDOFF

    answer = f"Yes: drop {thing} packaging at any recycling point; it is fully recyclable."
    saved = app.test_client().post("/v1/actions/knowledge", headers=bearer(token), json={
        "title": f"Recycling {thing} packaging", "text": answer, "tags": ["packaging"]})
    assert saved.status_code == 201 and saved.get_json()["synced"] is False
    article = saved.get_json()["id"]
    csrf = {"X-CSRFToken": page_csrf(browser)}
    wait_until(lambda: synced(browser, article, csrf), timeout=20)
    assert len(stored_files(sandbox, vector_store)) >= 1
    assert ask(app, question) == answer
    shipping = ask(app, "How long does shipping take?")
    assert "business days" in shipping and thing not in shipping

    # Deleting the article (in the console) takes the file out of the vector store again.
    before = set(stored_files(sandbox, vector_store))
    assert browser.delete(f"/v1/agent/knowledge/{article}", headers=csrf).status_code == 204
    wait_until(lambda: len(set(stored_files(sandbox, vector_store))) == len(before) - 1)
    assert ask(app, question) == HANDOFF


def test_an_edited_article_replaces_its_file(app: Any, sandbox: Sandbox, vector_store: str
                                             ) -> None:
    browser = app.test_client()
    sign_in(browser, make_account(app))
    csrf = {"X-CSRFToken": page_csrf(browser)}
    thing = f"quibble{uuid.uuid4().hex[:6]}"
    made = browser.post("/v1/agent/knowledge", headers=csrf, json={
        "title": f"{thing} colours", "text": f"The {thing} comes in red."}).get_json()
    wait_until(lambda: synced(browser, made["id"], csrf))
    first = set(stored_files(sandbox, vector_store))
    edited = browser.put(f"/v1/agent/knowledge/{made['id']}", headers=csrf, json={
        "title": f"{thing} colours", "text": f"The {thing} comes in red and blue."})
    assert edited.status_code == 200 and edited.get_json()["revision"] == 2
    wait_until(lambda: synced(browser, made["id"], csrf))
    second = set(stored_files(sandbox, vector_store))
    assert len(second) == len(first) and second != first
    assert ask(app, f"Which colours does the {thing} come in?") == \
        f"The {thing} comes in red and blue."
    assert browser.put("/v1/agent/knowledge/kb_nope", headers=csrf, json={
        "title": "t", "text": "x"}).status_code == 404
    bad = browser.post("/v1/agent/knowledge", headers=csrf, json={"title": " ", "text": "x"})
    assert bad.status_code == 422 and "title" in bad.get_json()["error"]["fields"]


def test_a_sync_that_fails_is_retried_until_the_file_is_in_the_store(
    app: Any, sandbox: Sandbox, vector_store: str
) -> None:
    served = sandbox.stats()["faults_served"]
    sandbox.configure(faults=[{"path": "/files", "method": "POST", "status": 500, "times": 2}])
    browser = app.test_client()
    sign_in(browser, make_account(app))
    csrf = {"X-CSRFToken": page_csrf(browser)}
    made = browser.post("/v1/agent/knowledge", headers=csrf, json={
        "title": "Retried", "text": "This one needed a second try."}).get_json()
    wait_until(lambda: synced(browser, made["id"], csrf), timeout=30)
    assert sandbox.stats()["faults_served"] - served == 2
    sandbox.reset()


def test_a_sync_no_worker_was_sent_is_sent_by_the_sweep(
    stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path, vector_store: str
) -> None:
    # A process that cannot reach the workers (a fake queue) saves an article: only the
    # pending mark in Redis says it still has to go to the vector store.
    settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                              "knowledge_sweep_interval_s": 1.0})
    lonely = bootstrap(settings, queue=RecordingQueue())
    article = lonely.knowledge.save("someone", "Swept", "Sent by beat's sweep.")
    assert lonely.knowledge.unsynced([article.id]) == {article.id}
    wait_until(lambda: not lonely.knowledge.unsynced([article.id]), timeout=20)
    page = httpx.get(f"{sandbox.url}/vector_stores/{vector_store}/files?limit=100", timeout=5)
    assert any(entry["attributes"].get("sf_article") == article.id
               for entry in page.json()["data"])
