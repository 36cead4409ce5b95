"""Rate limits of the public widget routes: 429 with Retry-After, shared through Redis, recovered."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.bootstrap import bootstrap
from supportflow.domain.access import Role
from supportflow.settings import load_settings
from supportflow.web import create_app
from tests.conftest import WIDGET_SITE
from tests.fakes import RecordingQueue
from tests.helpers import wait_until

PREFIX = "limittest"
Make = Callable[..., Any]


@pytest.fixture
def make_client(redis_url: str, flows_dir: Path) -> Make:
    """A test client of a new web app (its own services) with these limits, from one address."""
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"

    def make(**limits: str) -> Any:
        settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                                  "key_prefix": PREFIX, "rate_limits_enabled": True, **limits})
        services = bootstrap(settings, queue=RecordingQueue(), assistants=object())  # type: ignore[arg-type]
        client = create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services}).test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    return make


def start(client: Any, **headers: str) -> tuple[Any, dict[str, str]]:
    response = client.post("/v1/conversations", json={"contact": {"id": "r-1"}}, headers=headers)
    if response.status_code != 201:
        return response, {}
    body = response.get_json()
    return response, {"Authorization": f"Bearer {body['visitor_token']}",
                      "X-Conversation": body["conversation_id"], **headers}


def post(client: Any, headers: dict[str, str], text: str, message_id: str) -> Any:
    return client.post(f"/v1/conversations/{headers['X-Conversation']}/messages", headers=headers,
                       json={"text": text, "client_message_id": message_id})


def read(client: Any, headers: dict[str, str], what: str = "/messages") -> Any:
    return client.get(f"/v1/conversations/{headers['X-Conversation']}{what}", headers=headers)


def refused_politely(response: Any) -> int:
    """Assert a JSON 429 with Retry-After; return the seconds it asks to wait."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "rate_limited"
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 2
    return wait


def test_posting_faster_than_the_limit_gets_429_with_retry_after_and_then_recovers(
    make_client: Make,
) -> None:
    client = make_client(rate_limit_messages="3 per 2 seconds")
    _, headers = start(client, Origin=WIDGET_SITE)
    for n in range(3):
        assert post(client, headers, f"message {n}", f"m-{n}").status_code == 202
    refused = post(client, headers, "one too many", "m-3")
    refused_politely(refused)
    # A listed site can read the refusal and its Retry-After.
    assert refused.headers["Access-Control-Allow-Origin"] == WIDGET_SITE
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    services = client.application.extensions["supportflow"]
    assert [m.text for m in services.store.mailbox(headers["X-Conversation"])] == [
        "message 0", "message 1", "message 2"]
    accepted = wait_until(lambda: (r := post(client, headers, "one too many", "m-3"))
                          .status_code == 202 and r, timeout=5, interval=0.25)
    assert accepted.get_json()["duplicate"] is False


def test_a_visitors_reads_share_one_limit_that_other_visitors_do_not_feel(make_client: Make) -> None:
    client = make_client(rate_limit_reads="3 per 2 seconds")
    _, first = start(client)
    _, second = start(client)
    assert read(client, first, "").status_code == 200
    assert read(client, first).status_code == 200
    assert client.post(f"/v1/conversations/{first['X-Conversation']}/token",
                       headers=first).status_code == 200
    refused_politely(read(client, first, "/events"))
    assert read(client, second).status_code == 200


def test_every_route_shares_one_limit_per_client_address(make_client: Make) -> None:
    client = make_client(rate_limit_address="3 per 2 seconds")
    _, headers = start(client)
    assert post(client, headers, "hello", "m-1").status_code == 202
    assert read(client, headers).status_code == 200
    refused_politely(read(client, headers, ""))
    client.environ_base["REMOTE_ADDR"] = "10.255.255.254"
    assert read(client, headers, "").status_code == 200


def test_web_processes_share_the_count_in_redis(make_client: Make, redis_url: str) -> None:
    one, two = (make_client(rate_limit_start="2 per 2 seconds") for _ in range(2))
    assert start(one)[0].status_code == 201
    assert start(two)[0].status_code == 201
    client: redis.Redis = redis.Redis.from_url(redis_url)
    before = client.zcard(f"{PREFIX}:conversations")
    refused_politely(start(one)[0])
    assert client.zcard(f"{PREFIX}:conversations") == before
    assert any(client.scan_iter(f"{PREFIX}:ratelimit:*"))


def test_a_trusted_servers_starts_are_not_held_to_the_start_limit(make_client: Make) -> None:
    client = make_client(rate_limit_start="1 per 2 seconds")
    tokens = client.application.extensions["supportflow"].tokens
    server = {"Authorization": f"Bearer {tokens.create(f'server-{random.getrandbits(32)}', Role.WIDGET)}"}
    assert start(client)[0].status_code == 201
    refused_politely(start(client)[0])
    for _ in range(3):  # a site's server starts conversations for many people from one address
        assert start(client, **server)[0].status_code == 201


class CountingConnection(redis.Connection):
    """Counts what it writes to Redis: one write per round trip (a pipeline writes once)."""

    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


def test_all_the_limits_of_a_request_cost_one_redis_round_trip(redis_url: str,
                                                              flows_dir: Path) -> None:
    def round_trips(limits_on: bool) -> dict[str, int]:
        pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
        settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                                  "key_prefix": PREFIX, "rate_limits_enabled": limits_on})
        services = bootstrap(settings, queue=RecordingQueue(), assistants=object(),  # type: ignore[arg-type]
                             redis_client=redis.Redis(connection_pool=pool))
        client = create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services}).test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.{random.randrange(256)}.{random.randrange(256)}"
        _, headers = start(client)
        post(client, headers, "warm up", "w-0")  # loads the limits' script once
        counted = {}
        bad_post = lambda: client.post(  # noqa: E731
            f"/v1/conversations/{headers['X-Conversation']}/messages", headers=headers,
            data="not json", content_type="application/json")
        for name, call in (("post", lambda: post(client, headers, "hello", "m-1")),
                           ("bad post", bad_post),
                           ("read", lambda: read(client, headers)),
                           ("start", lambda: start(client))):
            before = CountingConnection.writes
            call()
            counted[name] = CountingConnection.writes - before
        return counted

    without, limited = round_trips(False), round_trips(True)
    # A message's limits ride in the script that accepts it; a post refused before that
    # (here its body) counts them on their own.
    assert {name: limited[name] - without[name] for name in without} == {
        "post": 0, "bad post": 1, "read": 1, "start": 1}
    assert without["post"] == 1


def test_posts_refused_before_they_are_accepted_count_against_the_limit(make_client: Make) -> None:
    client = make_client(rate_limit_messages="2 per 2 seconds")
    _, headers = start(client)
    url = f"/v1/conversations/{headers['X-Conversation']}/messages"
    assert client.post(url, headers=headers, data="{", content_type="application/json"
                       ).status_code == 400
    assert client.post(url, headers=headers, json={"text": ""}).status_code == 422
    refused_politely(post(client, headers, "now a good one", "m-1"))
    # Past the limit, a bad post is a 429 too (as before any check of its body).
    refused_politely(client.post(url, headers=headers, data="{", content_type="application/json"))
    services = client.application.extensions["supportflow"]
    assert services.store.mailbox(headers["X-Conversation"]) == []


def test_a_limit_that_does_not_parse_names_its_setting(make_client: Make) -> None:
    with pytest.raises(ValueError, match="SUPPORTFLOW_RATE_LIMIT_MESSAGES"):
        make_client(rate_limit_messages="lots")
