"""Server-sent event streams against a real threaded HTTP server and the real stack."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from supportflow.domain.access import Role
from tests.conftest import Sandbox, make_app
from tests.helpers import serving, wait_until

from .agent_helpers import HANDOFF_REQUEST, Agent, handed_off_chat, make_token
from .chat import Chat

pytestmark = pytest.mark.slow


@pytest.fixture
def server(stack: dict[str, Any], redis_url: str, sandbox: Sandbox,
           flows_dir: Path) -> Iterator[tuple[str, Any]]:
    """A real threaded server with short streams; yields its base URL and a test client."""
    sandbox.reset()
    app = make_app(redis_url, sandbox.url, flows_dir, stream_max_s=6.0, stream_keepalive_s=0.5,
                   stream_poll_s=0.1)
    with serving(app) as base:
        yield base, app.test_client()


class Reader:
    """Reads one SSE response in a thread: events (id, event, data) and comment lines."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        frame: dict[str, str] = {}
        with httpx.stream("GET", self.url, headers=self.headers, timeout=15) as response:
            self.status = response.status_code
            for line in response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                elif line:
                    key, _, value = line.partition(": ")
                    frame[key] = value
                elif "data" in frame:
                    self.events.append((frame["id"], frame["event"], json.loads(frame["data"])))
                    frame = {}

    def join(self, timeout: float = 15.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end by itself"


def test_widget_stream_delivers_bot_customer_and_agent_messages_in_order(
    server: tuple[str, Any], redis_url: str
) -> None:
    base, client = server
    chat = Chat(client, "responses")
    reader = Reader(f"{base}/v1/conversations/{chat.id}/events", chat.headers)
    chat.say(HANDOFF_REQUEST)
    chat.wait_for_state("handed_off")
    agent = Agent(client, redis_url)
    assert agent.claim(chat.id).status_code == 200
    assert agent.send(chat.id, "Hi, Sam here.").status_code == 201
    started = time.monotonic()
    reader.join()
    assert time.monotonic() - started < 8.0
    assert reader.status == 200
    ids = [int(event_id) for event_id, _, _ in reader.events]
    assert ids == [1, 2, 3, 4]
    assert [data["seq"] for _, _, data in reader.events] == ids
    assert [data["author"] for _, _, data in reader.events] == ["bot", "customer", "bot", "agent"]
    assert reader.events[-1][2]["text"] == "Hi, Sam here."
    assert {event for _, event, _ in reader.events} == {"message"}
    assert ": keep-alive" in reader.comments


def test_widget_stream_resumes_after_last_event_id_without_repeats(
    server: tuple[str, Any], redis_url: str
) -> None:
    base, client = server
    chat = handed_off_chat(client)
    url = f"{base}/v1/conversations/{chat.id}/events"
    first = Reader(url, {**chat.headers, "Last-Event-ID": "2"})
    agent = Agent(client, redis_url)
    assert agent.claim(chat.id).status_code == 200
    assert agent.send(chat.id, "Hello from an agent").status_code == 201
    first.join()
    assert [int(i) for i, _, _ in first.events] == [3, 4]
    again = Reader(f"{url}?after=4", chat.headers)
    again.join()
    assert again.events == []
    bad = httpx.get(url, headers={**chat.headers, "Last-Event-ID": "abc"})
    assert bad.status_code == 422


def test_handoff_stream_announces_new_handoffs_and_resumes(
    server: tuple[str, Any], redis_url: str
) -> None:
    base, client = server
    headers = make_token(redis_url, Role.AGENT)
    url = f"{base}/v1/agent/handoffs/stream"
    reader = Reader(url, headers)
    wait_until(lambda: reader.status is not None or reader.comments, timeout=5)
    chat = handed_off_chat(client)
    reader.join()
    mine = [(i, data) for i, event, data in reader.events
            if event == "handoff" and data["conversation_id"] == chat.id]
    assert len(mine) == 1
    event_id, data = mine[0]
    assert data["reason"] == "the assistant handed the conversation to a person"
    resumed = Reader(url, {**headers, "Last-Event-ID": event_id})
    resumed.join()
    assert chat.id not in [d["conversation_id"] for _, _, d in resumed.events]
    assert httpx.get(url).status_code == 401
    widget = make_token(redis_url, Role.WIDGET)
    assert httpx.get(url, headers=widget).status_code == 403
