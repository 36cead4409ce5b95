"""The tool loop on both backends, over the real stack, with the sandbox calling tools."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.sandbox.store import AFTER_TOOLS_REPLY
from tests.conftest import Sandbox

from .chat import Chat

pytestmark = pytest.mark.slow
BACKENDS = ["responses", "assistants"]


@pytest.fixture
def store(redis_url: str) -> RedisConversationStore:
    return RedisConversationStore(redis.Redis.from_url(redis_url))


def outputs_on(sandbox: Sandbox, store: RedisConversationStore, chat: Chat) -> list[dict[str, Any]]:
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id
    texts = sandbox.stats()["tool_outputs_by_thread"].get(conversation.thread_id, [])
    return [json.loads(text) for text in texts]


@pytest.mark.parametrize("backend", BACKENDS)
def test_handoff_decided_by_the_handoff_tool_not_a_marker(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(tool_calls=True)
    chat = Chat(client, backend)
    chat.say("Can I speak to a real person?")
    state = chat.wait_for_state("handed_off")
    assert state["handoff_reason"] == "customer asked for a person"
    assert chat.bot_texts()[-1].startswith("You're being transferred")
    assert outputs_on(sandbox, store, chat) == [
        {"ok": True, "result": "a person will take over the conversation"}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_attribute_and_note_tools_run_and_the_run_finishes_with_a_reply(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(next_tool_calls=[
        {"name": "set_contact_attribute", "arguments": {"name": "order_id", "value": "A-1001"}},
        {"name": "save_note", "arguments": {"text": "Customer is waiting for order A-1001."}},
    ])
    chat = Chat(client, backend)
    chat.say("My order A-1001 has not arrived, where is my order?")
    assert chat.wait_for_bot_messages(2)[-1] == AFTER_TOOLS_REPLY
    assert chat.wait_for_state("wait_for_user")["turn"] == 1
    assert store.attributes(chat.contact)["order_id"] == "A-1001"
    assert [note["text"] for note in store.notes(chat.id)] == [
        "Customer is waiting for order A-1001."]
    assert all(output["ok"] for output in outputs_on(sandbox, store, chat))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_tools_and_bad_arguments_get_error_outputs_not_a_crash(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(next_tool_calls=[
        {"name": "delete_database", "arguments": {}},
        {"name": "set_contact_attribute", "arguments": "{not json"},
        {"name": "set_contact_attribute", "arguments": {"name": "bad name!", "value": "x"}},
        {"name": "save_note", "arguments": {"text": ""}},
    ])
    chat = Chat(client, backend)
    chat.say("How long does shipping take?")
    assert chat.wait_for_bot_messages(2)[-1] == AFTER_TOOLS_REPLY
    outputs = outputs_on(sandbox, store, chat)
    assert [output["ok"] for output in outputs] == [False, False, False, False]
    assert "unknown tool 'delete_database'" in outputs[0]["error"]
    assert "not valid JSON" in outputs[1]["error"]
    assert "letters, digits and underscores" in outputs[2]["error"]
    assert "'text' must be a non-empty string" in outputs[3]["error"]
    assert "bad name!" not in store.attributes(chat.contact)
    assert store.notes(chat.id) == []
