"""A test-side customer: starts a conversation through the widget API and reads replies."""

from __future__ import annotations

from typing import Any

from tests.helpers import wait_until


class Chat:
    """One customer conversation driven through the Flask test client."""

    def __init__(self, client: Any, flow: str, contact: str | None = None,
                 profile: dict[str, Any] | None = None, *, server: dict[str, str] | None = None,
                 contact_token: str | None = None, contact_hash: str | None = None) -> None:
        """A browser's start: an anonymous contact (the same one again with `contact_token`),
        or `contact` proven by `contact_hash`; or a trusted server's naming `contact` (`server`:
        its widget token's headers)."""
        self.client = client
        body: dict[str, Any] = {"contact": {**(profile or {})}, "flow": flow}
        if contact:
            body["contact"]["id"] = contact
        if contact_hash:
            body["contact"]["id_hash"] = contact_hash
        if contact_token:
            body["contact_token"] = contact_token
        response = client.post("/v1/conversations", json=body, headers=server or {})
        assert response.status_code == 201, response.get_json()
        self.started = response.get_json()
        self.id: str = self.started["conversation_id"]
        self.contact: str = self.started["contact_id"]
        # The visitor token opens this conversation (and only it) on the widget routes.
        self.headers = {"Authorization": f"Bearer {self.started['visitor_token']}"}

    def say(self, text: str, message_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if message_id:
            body["client_message_id"] = message_id
        response = self.client.post(f"/v1/conversations/{self.id}/messages", json=body,
                                    headers=self.headers)
        assert response.status_code == 202, response.get_json()
        data: dict[str, Any] = response.get_json()
        return data

    def messages(self, author: str | None = None) -> list[dict[str, Any]]:
        response = self.client.get(f"/v1/conversations/{self.id}/messages?limit=500",
                                   headers=self.headers)
        assert response.status_code == 200
        found: list[dict[str, Any]] = response.get_json()["messages"]
        return [m for m in found if author is None or m["author"] == author]

    def bot_texts(self) -> list[str]:
        return [m["text"] for m in self.messages("bot")]

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = self.client.get(f"/v1/conversations/{self.id}",
                                               headers=self.headers).get_json()
        return data

    def wait_for_bot_messages(self, count: int, timeout: float = 20.0) -> list[str]:
        """Wait until the bot has sent `count` messages (the welcome counts as one)."""
        return list(wait_until(lambda: len(self.bot_texts()) >= count and self.bot_texts(),
                               timeout=timeout))

    def wait_for_state(self, state: str, timeout: float = 20.0) -> dict[str, Any]:
        found: dict[str, Any] = wait_until(
            lambda: (s := self.state())["state"] == state and s, timeout=timeout
        )
        return found
