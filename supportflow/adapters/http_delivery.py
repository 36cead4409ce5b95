"""The Transport port over httpx: signed webhook POSTs and Chatwoot's application API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from supportflow.domain.events import ConversationEvent, EventType
from supportflow.domain.inbox import Inbox
from supportflow.services.deliveries import Outcome, Result
from supportflow.webhooks.signing import signed_headers

log = logging.getLogger("supportflow.deliveries")


def make_client(connect_timeout_s: float, read_timeout_s: float) -> httpx.Client:
    """One pooled client per process, with explicit timeouts."""
    timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
    return httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=20),
                        follow_redirects=False)


def webhook_body(event: ConversationEvent) -> bytes:
    """The JSON body of an outbound webhook: type, timestamp and the event's data."""
    data = {"conversation_id": event.conversation_id, "external_id": event.external_id,
            **event.data}
    stamp = datetime.fromtimestamp(event.at, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event.type.value, "timestamp": stamp, "data": data},
                      separators=(",", ":")).encode()


def _result(response: httpx.Response) -> Result:
    if response.is_success:
        return Result(Outcome.DELIVERED)
    if response.status_code == 410:
        return Result(Outcome.GONE, "the endpoint answered 410 Gone")
    return Result(Outcome.RETRY, f"HTTP {response.status_code}")


class HttpTransport:
    """Sends deliveries; every failure is a Result, never an exception."""

    def __init__(self, client: httpx.Client, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock

    def webhook(self, url: str, secret: str | None, event: ConversationEvent) -> Result:
        """POST the event, signed per Standard Webhooks with webhook-id = the event's id."""
        body = webhook_body(event)
        headers = signed_headers([secret] if secret else [], event.id, body, self.clock())
        headers["content-type"] = "application/json"
        return self._call(lambda: self.client.post(url, content=body, headers=headers))

    def chatwoot(self, inbox: Inbox, event: ConversationEvent) -> Result:
        """Bot and agent messages become outgoing messages; a handoff opens the conversation."""
        base = (f"{(inbox.base_url or '').rstrip('/')}/api/v1/accounts/{inbox.account_id}"
                f"/conversations/{event.external_id}")
        calls: list[tuple[str, dict[str, Any]]] = []
        if event.type is EventType.MESSAGE_CREATED:
            message = event.data.get("message") or {}
            if message.get("author") in ("bot", "agent") and message.get("text"):
                calls.append(("messages", {"content": message["text"], "message_type": "outgoing",
                                           "private": False}))
        elif event.type is EventType.HANDED_OFF:
            calls.append(("toggle_status", {"status": "open"}))
            if inbox.team_id is not None:
                calls.append(("assignments", {"team_id": inbox.team_id}))
        headers = {"api_access_token": inbox.api_access_token or ""}
        for route, payload in calls:
            result = self._call(partial(self.client.post, f"{base}/{route}", json=payload,
                                        headers=headers))
            if result.outcome is not Outcome.DELIVERED:
                return result
        return Result(Outcome.DELIVERED)

    def _call(self, send: Callable[[], httpx.Response]) -> Result:
        try:
            return _result(send())
        except httpx.HTTPError as error:
            log.info("delivery failed: %s", type(error).__name__)
            return Result(Outcome.RETRY, f"{type(error).__name__}: {error}")
