"""Retention on the real Redis, with a clock the test moves: expired conversations leave with
every key and index entry that names them; live ones and recent contacts stay."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from supportflow.domain.inbox import InboxKind
from supportflow.services.retention import Erasure, RetentionPolicy
from tests.conftest import Sandbox
from tests.isolated import Isolated, signed_webhook, webhook_payload

DAY = 86400.0
HUMAN = "I want to talk to a human please"


class Clock:
    """A clock the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def naming(iso: Isolated, needle: str) -> dict[str, Any]:
    """Every key of the app whose name or value holds `needle`."""
    found = {}
    for key, value in iso.snapshot().items():
        if needle in key or needle.encode() in repr(value).encode():
            found[key] = value
    return found


def kept_state(iso: Isolated, conversation_id: str) -> tuple[dict[str, Any], set[str]]:
    """A conversation's own keys with their values, and the names of the indexes holding it."""
    found = naming(iso, conversation_id)
    own = {key: value for key, value in found.items()
           if key.startswith(f"{iso.prefix}:conv:{conversation_id}")}
    return own, set(found) - set(own)


def closed_conversation(iso: Isolated, contact: str) -> str:
    conversation = iso.start(contact, named=True)
    iso.api.post(f"/v1/conversations/{conversation}/messages", json={"text": HUMAN},
                 headers=iso.visitor[conversation])
    iso.drive(conversation, "handed_off")
    iso.services.agents.resolve(conversation, "sam")
    return conversation


def test_retention_removes_expired_conversations_and_keeps_live_ones(
        redis_url: str, flows_dir: Path, sandbox: Sandbox) -> None:
    sandbox.reset()
    now = time.time()
    clock = Clock(now - 40 * DAY)
    iso = Isolated(redis_url, flows_dir, sandbox_url=sandbox.url, clock=clock)
    idle = iso.start("idle-contact", named=True, name="Idle Person")
    iso.api.post(f"/v1/conversations/{idle}/messages", json={"text": "idle question"},
                 headers=iso.visitor[idle])
    inbox = iso.inbox(InboxKind.WEBHOOK)
    body = webhook_payload("helpdesk-7", "a helpdesk's question")
    helpdesk = iso.api.post(f"/v1/webhooks/{inbox.name}", data=body,
                            headers=signed_webhook(inbox, body)).get_json()["conversation_id"]
    clock.now = now - 2 * DAY
    closed = closed_conversation(iso, "closed-contact")
    clock.now = now - 3600
    recently_closed = closed_conversation(iso, "recent-contact")
    clock.now = now
    live = iso.start("live-contact", named=True)
    iso.api.post(f"/v1/conversations/{live}/messages", json={"text": "still here"},
                 headers=iso.visitor[live])
    kept_before = {cid: kept_state(iso, cid) for cid in (recently_closed, live)}
    iso.services.retention.policy = RetentionPolicy(batch=1)  # several batches

    erasure = iso.services.retention.sweep()

    assert sorted(erasure.conversations) == sorted([idle, helpdesk, closed])
    assert sorted(erasure.contacts) == sorted(["idle-contact", f"{inbox.name}:hc-1"])
    for gone in (idle, helpdesk, closed, "idle-contact", "helpdesk-7"):
        assert naming(iso, gone) == {}, gone
    for cid, state in kept_before.items():
        assert kept_state(iso, cid) == state
    # A contact whose conversation left early (closed) keeps its data for the idle period.
    assert iso.services.store.attributes("closed-contact")
    assert iso.services.retention.sweep().conversations == []


def test_sweeps_on_many_machines_erase_each_conversation_once(
        redis_url: str, flows_dir: Path) -> None:
    clock = Clock(time.time() - 40 * DAY)
    iso = Isolated(redis_url, flows_dir, clock=clock)
    expired = {iso.start(f"c-{n}") for n in range(6)}
    clock.now += 40 * DAY
    results: list[Erasure] = []
    sweeps = [threading.Thread(target=lambda: results.append(iso.services.retention.sweep()))
              for _ in range(3)]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join()
    erased = [cid for result in results for cid in result.conversations]
    assert sorted(erased) == sorted(expired)
    assert all(naming(iso, cid) == {} for cid in expired)
