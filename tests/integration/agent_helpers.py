"""Test-side agents: API tokens with roles, and a conversation handed off through the sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from supportflow.adapters.tokens import TokenStore
from supportflow.domain.access import Role

from .chat import Chat

HANDOFF_REQUEST = "I want to talk to a human please"


def make_token(redis_url: str, role: Role, name: str | None = None) -> dict[str, str]:
    """Authorization headers with a fresh token of `role`."""
    store = TokenStore(redis.Redis.from_url(redis_url), prefix="sf")
    token = store.create(name or f"{role.value}-{uuid.uuid4().hex[:8]}", role)
    return {"Authorization": f"Bearer {token}"}


def handed_off_chat(client: Any, flow: str = "responses") -> Chat:
    """A conversation the sandbox handed off because the customer asked for a person."""
    chat = Chat(client, flow)
    chat.say(HANDOFF_REQUEST)
    chat.wait_for_state("handed_off")
    return chat


class Agent:
    """One agent calling the agents' API with its own token."""

    def __init__(self, client: Any, redis_url: str, role: Role = Role.AGENT) -> None:
        self.client = client
        self.name = f"agent-{uuid.uuid4().hex[:8]}"
        self.headers = make_token(redis_url, role, self.name)

    def get(self, path: str) -> Any:
        return self.client.get(f"/v1/agent{path}", headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(f"/v1/agent{path}", headers=self.headers, json=body)

    def claim(self, conversation_id: str) -> Any:
        return self.post(f"/conversations/{conversation_id}/claim")

    def send(self, conversation_id: str, text: str, message_id: str | None = None) -> Any:
        body: dict[str, Any] = {"text": text}
        if message_id:
            body["client_message_id"] = message_id
        return self.post(f"/conversations/{conversation_id}/messages", body)

    def queue_entry(self, conversation_id: str) -> dict[str, Any] | None:
        response = self.get("/handoffs")
        assert response.status_code == 200, response.get_json()
        entries = [e for e in response.get_json()["handoffs"]
                   if e["conversation_id"] == conversation_id]
        return entries[0] if entries else None
