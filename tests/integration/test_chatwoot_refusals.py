"""What each answer of the Chatwoot route makes Chatwoot do, chosen refusal by refusal.

Chatwoot's agent-bot webhook (lib/webhooks/trigger.rb, AgentBots::WebhookJob): a 2xx is
taken; 429 and 500 are tried again (3 attempts, 3 s apart) and then count as a failure; any
other answer (or no answer within 5 s) is a failure at once. A failure opens the conversation
(from pending to open): a person takes it, with the message in front of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supportflow.domain.inbox import InboxKind
from supportflow.web import create_app
from tests.conftest import Sandbox
from tests.helpers import free_port
from tests.isolated import Isolated, chatwoot_event, signed_chatwoot

HAND_TO_A_PERSON, TRY_AGAIN, TAKEN = "opens the conversation", "tries again", "taken"


def chatwoot_does(status: int) -> str:
    """What Chatwoot does after this answer to a message_created event."""
    if 200 <= status < 300:
        return TAKEN
    return TRY_AGAIN if status in (429, 500) else HAND_TO_A_PERSON


def post(iso: Isolated, inbox: str, event: dict[str, Any], **headers: str) -> Any:
    body = json.dumps(event).encode()
    return iso.api.post(f"/v1/integrations/chatwoot/{inbox}", data=body,
                        headers={**signed_chatwoot(body), **headers})


@pytest.fixture
def inbox(isolated: Isolated) -> str:
    return isolated.inbox(InboxKind.CHATWOOT).name


# Refusals that retrying cannot fix: a person should see the message now.
@pytest.mark.parametrize(("case", "status"), [
    ("forged signature", 401), ("unknown inbox", 404), ("not JSON", 400), ("bad text", 422),
    ("too long", 422), ("flow gone", 409),
])
def test_what_retrying_cannot_fix_hands_the_conversation_to_a_person_at_once(
        isolated: Isolated, inbox: str, case: str, status: int) -> None:
    event = chatwoot_event(11, "hello")
    if case == "bad text":
        event["content"] = "hi \udc80"
    elif case == "too long":
        event["content"] = "x" * (isolated.settings.max_message_chars + 1)
    elif case == "flow gone":
        inbox = isolated.inbox(InboxKind.CHATWOOT, flow="no-such-flow").name
    before = isolated.snapshot()
    if case == "forged signature":
        response = post(isolated, inbox, event, **{"X-Chatwoot-Signature": "sha256=" + "0" * 64})
    elif case == "unknown inbox":
        response = post(isolated, "cw-nowhere", event)
    elif case == "not JSON":
        response = isolated.api.post(f"/v1/integrations/chatwoot/{inbox}", data=b"{",
                                     headers=signed_chatwoot(b"{"))
    else:
        response = post(isolated, inbox, event)
    assert response.status_code == status, response.get_json()
    assert chatwoot_does(status) == HAND_TO_A_PERSON
    assert isolated.snapshot() == before


def test_a_conversation_with_supportflows_agents_is_handed_to_a_person_in_chatwoot(
        redis_url: str, flows_dir: Path, sandbox: Sandbox) -> None:
    """Chatwoot still says pending (our open has not reached it, or it came back): the bot may
    not answer, so Chatwoot gives the message to a person."""
    sandbox.reset()
    iso = Isolated(redis_url, flows_dir, sandbox_url=sandbox.url)
    inbox = iso.inbox(InboxKind.CHATWOOT).name
    taken = post(iso, inbox, chatwoot_event(12, "I want to talk to a human please"))
    assert taken.status_code == 202
    iso.drive(taken.get_json()["conversation_id"], "handed_off")
    before = iso.snapshot()
    refused = post(iso, inbox, chatwoot_event(12, "hello? anyone?"))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_with_the_bot"
    assert chatwoot_does(409) == HAND_TO_A_PERSON
    assert iso.snapshot() == before


def test_a_busy_conversation_is_tried_again(isolated: Isolated, inbox: str) -> None:
    isolated.redis.set(f"{isolated.prefix}:inbox:{inbox}:lock:13", "someone", px=10_000)
    response = post(isolated, inbox, chatwoot_event(13, "hello"))
    assert response.status_code == 429 and response.headers["Retry-After"].isdigit()
    assert chatwoot_does(429) == TRY_AGAIN


def test_while_redis_is_down_chatwoot_tries_again_instead_of_handing_off(flows_dir: Path) -> None:
    app = create_app({"TESTING": True, "SUPPORTFLOW_SETTINGS": {
        "redis_url": f"redis://127.0.0.1:{free_port()}/0", "flows_dir": flows_dir}})
    body = json.dumps(chatwoot_event(14, "hello")).encode()
    response = app.test_client().post("/v1/integrations/chatwoot/cw-any", data=body,
                                      headers=signed_chatwoot(body))
    assert response.status_code == 429 and response.headers["Retry-After"].isdigit()
    assert response.get_json()["error"]["code"] == "unavailable"
    assert chatwoot_does(429) == TRY_AGAIN


def test_a_closed_conversation_is_taken_by_a_fresh_one(
        redis_url: str, flows_dir: Path, sandbox: Sandbox) -> None:
    sandbox.reset()
    iso = Isolated(redis_url, flows_dir, sandbox_url=sandbox.url)
    inbox = iso.inbox(InboxKind.CHATWOOT).name
    first = post(iso, inbox, chatwoot_event(15, "I want to talk to a human please")).get_json()
    iso.drive(first["conversation_id"], "handed_off")
    iso.services.agents.resolve(first["conversation_id"], "sam")
    again = post(iso, inbox, chatwoot_event(15, "one more question"))
    assert again.status_code == 202 and chatwoot_does(202) == TAKEN
    assert again.get_json()["conversation_id"] != first["conversation_id"]

