"""Customers under load for the HA tests: each holds one conversation, turn after turn.

A customer retries whatever the service refuses (503, a dropped connection, a web process
restarting) with the same client_message_id, as the widget does, and keeps what was
acknowledged (202), so a test can check that nothing acknowledged was lost.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

QUESTIONS = ("How long does shipping take?", "Can I return an item?",
             "Which payment methods do you accept?", "How do I reset my password?")
RETRY_S = 0.2


class Api(Protocol):
    def __call__(self, method: str, path: str, body: dict[str, Any] | None = None,
                 token: str | None = None) -> tuple[int, dict[str, Any]]: ...


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def flask_api(app: Any) -> Api:
    """Requests through the Flask test client (one per caller: it is not shared by threads)."""
    client = app.test_client()

    def call(method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:
        response = client.open(path, method=method, json=body, headers=bearer(token))
        return response.status_code, response.get_json(silent=True) or {}
    return call


def http_api(bases: Callable[[], list[str]]) -> Api:
    """Requests over HTTP, spread over the web processes up now (as a load balancer does)."""
    client = httpx.Client(timeout=10)
    turn = itertools.count()

    def call(method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:
        up = bases()
        base = up[next(turn) % len(up)]
        response = client.request(method, base + path, json=body, headers=bearer(token))
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {}
    return call


@dataclass
class Customer:
    """One conversation of `turns` questions; run() returns when each got its answer."""

    api: Api
    flow: str
    turns: int
    # After `turns`, go on while this says so (a test keeps load on until it is done).
    more: Callable[[], bool] = lambda: False
    timeout_s: float = 90.0
    conversation_id: str = ""
    visitor_token: str = ""
    acknowledged: list[tuple[str, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            started = self._until_ok("POST", "/v1/conversations",
                                     {"contact": {"id": f"load-{id(self)}"}, "flow": self.flow},
                                     201, deadline)
            self.conversation_id = started["conversation_id"]
            self.visitor_token = started["visitor_token"]
            for turn in itertools.count(1):
                if turn > self.turns and not self.more():
                    break
                message_id = f"{self.conversation_id}-m{turn}"
                receipt = self._until_ok(
                    "POST", f"/v1/conversations/{self.conversation_id}/messages",
                    {"text": QUESTIONS[(turn - 1) % len(QUESTIONS)],
                     "client_message_id": message_id}, 202, deadline)
                # The transcript's id of the message (the receipt says it: c:<client id>).
                self.acknowledged.append((receipt["message_id"], time.time()))
                self._until(lambda turn=turn: len(self.bot_turns()) > turn, deadline)
        except Exception as error:  # kept for the test to report
            self.error = f"{type(error).__name__}: {error}"

    def bot_turns(self) -> list[int]:
        page = self._until_ok("GET", f"/v1/conversations/{self.conversation_id}/messages?limit=500",
                              None, 200, time.monotonic() + 30)
        return [m["turn"] for m in page["messages"] if m["author"] == "bot"]

    def _until(self, check: Callable[[], bool], deadline: float) -> None:
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.conversation_id}: no answer in time")
            time.sleep(0.1)

    def _until_ok(self, method: str, path: str, body: dict[str, Any] | None, expected: int,
                  deadline: float) -> dict[str, Any]:
        while True:
            try:
                status, data = self.api(method, path, body, self.visitor_token or None)
                outcome = str(status)
            except Exception as error:  # a dropped connection, a propagated error
                status, data, outcome = 0, {}, type(error).__name__
            self.outcomes[outcome] += 1
            if status == expected:
                return data
            if status not in (0, 503) or time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: {outcome} {data}")
            time.sleep(RETRY_S)


def run_all(customers: Iterable[Customer]) -> list[threading.Thread]:
    """Start every customer in a thread of its own; join the threads to wait for them."""
    threads = [threading.Thread(target=c.run, daemon=True) for c in customers]
    for thread in threads:
        thread.start()
    return threads


def check_transcripts(customers: list[Customer], transcript: Callable[[str], list[dict[str, Any]]]
                      ) -> None:
    """Every acknowledged message is kept, once, and every turn has exactly one bot answer."""
    for customer in customers:
        assert customer.error is None, customer.error
        messages = transcript(customer.conversation_id)
        kept = [m["id"] for m in messages if m["author"] == "customer"]
        assert kept == [message_id for message_id, _ in customer.acknowledged], customer.conversation_id
        answers = Counter(m["turn"] for m in messages if m["author"] == "bot")
        assert answers == {turn: 1 for turn in range(len(customer.acknowledged) + 1)}, (
            customer.conversation_id, answers)
