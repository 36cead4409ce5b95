"""The ops overview, time series, failures, readiness and the workers' JSON logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportflow.domain.access import Role
from supportflow.runtime.redis_server import EmbeddedRedis
from tests.conftest import Processes, Sandbox, make_app, stack_env
from tests.helpers import wait_until

from .agent_helpers import HANDOFF_REQUEST, make_token
from .chat import Chat

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox,
              flows_dir: Path) -> Iterator[dict[str, Any]]:
    """A Redis of its own, one worker and beat, and a scripted set of conversations."""
    folder = tmp_path_factory.mktemp("ops")
    with EmbeddedRedis(folder / "redis") as server:
        processes = Processes(stack_env(server.url, sandbox.url, flows_dir), folder)
        try:
            processes.worker(concurrency=2)
            processes.beat()
            client = make_app(server.url, sandbox.url, flows_dir).test_client()
            yield {"client": client, "url": server.url, "logs": folder,
                   "chats": script(client, sandbox), "ops": make_token(server.url, Role.OPS)}
        finally:
            processes.stop_all()


def script(client: Any, sandbox: Sandbox) -> dict[str, Chat]:
    """One answered turn, one handoff, one run past its deadline."""
    sandbox.reset()
    answered = Chat(client, "responses")
    answered.say("How long does shipping take?")
    answered.wait_for_state("wait_for_user")
    handed = Chat(client, "assistants")
    handed.say(HANDOFF_REQUEST)
    handed.wait_for_state("handed_off")
    sandbox.configure(never_finish=True)
    try:
        late = Chat(client, "responses_deadline")
        late.say("Can I return an item?")
        late.wait_for_state("handed_off")
    finally:
        sandbox.reset()
    return {"answered": answered, "handed": handed, "late": late}


def test_overview_has_the_agreed_shape_and_values(ops_stack: dict[str, Any]) -> None:
    client, ops = ops_stack["client"], ops_stack["ops"]
    assert client.get("/v1/ops/overview").status_code == 401
    view = client.get("/v1/ops/overview", headers=ops).get_json()
    assert set(view) == {"conversations_by_state", "handoff_queue", "polls", "schedule", "queues",
                         "workers", "deliveries", "counters", "reply_latency", "failures"}
    assert view["conversations_by_state"]["handed_off"] == 2
    assert view["conversations_by_state"]["wait_for_user"] == 1
    assert view["handoff_queue"]["length"] == 2 and view["handoff_queue"]["oldest_wait_s"] > 0
    assert view["polls"] == {"pending": 0, "overdue": 0}
    assert view["schedule"] == {"due": 0, "lag_s": 0.0, "behind": False}
    assert set(view["queues"]["supportflow"]) == {"ready", "reserved"}
    assert len(view["workers"]) == 1 and view["workers"][0]["last_seen_s_ago"] < 60
    # Handoffs are announced to an agents' webhook nobody listens on here: they may die.
    assert set(view["deliveries"]) == {"dead_letters"} and view["deliveries"]["dead_letters"] >= 0
    counters = view["counters"]
    assert counters["messages_in"] == 3 and counters["messages_out"] == 3
    assert counters["handoffs"] == 2
    assert counters["runs"] == {"completed": 1, "handoff": 1, "deadline": 1}
    assert counters["assistant_errors"] == {}
    assert 0 < view["reply_latency"]["p50_s"] <= view["reply_latency"]["p95_s"]


def test_failures_list_the_latest_with_their_reason(ops_stack: dict[str, Any]) -> None:
    view = ops_stack["client"].get("/v1/ops/overview", headers=ops_stack["ops"]).get_json()
    late = ops_stack["chats"]["late"]
    assert [f["conversation_id"] for f in view["failures"]] == [late.id]
    assert "did not answer within 1.5 s" in view["failures"][0]["reason"]
    assert view["failures"][0]["at"] > 0


def test_timeseries_returns_points_oldest_first(ops_stack: dict[str, Any]) -> None:
    client, ops = ops_stack["client"], ops_stack["ops"]
    points = wait_until(lambda: (p := client.get("/v1/ops/timeseries?minutes=60", headers=ops)
                                 .get_json()["points"]) and p[-1]["handoff_queue"] == 2 and p)
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)
    assert set(points[-1]) == {"at", "reply_latency_p50_s", "queue_depth", "handoff_queue"}
    assert len(points) >= 2
    assert any(p["reply_latency_p50_s"] for p in points)
    assert client.get("/v1/ops/timeseries?minutes=abc", headers=ops).status_code == 422


def test_readiness_needs_a_recent_worker(ops_stack: dict[str, Any], tmp_path: Path,
                                         sandbox: Sandbox, flows_dir: Path) -> None:
    ready = ops_stack["client"].get("/readyz")
    assert ready.status_code == 200 and len(ready.get_json()["workers"]) == 1
    with EmbeddedRedis(tmp_path / "redis") as server:
        lonely = make_app(server.url, sandbox.url, flows_dir).test_client()
        response = lonely.get("/readyz")
    assert response.status_code == 503
    assert any("no worker seen" in reason for reason in response.get_json()["reasons"])


def test_worker_log_lines_are_json_with_conversation_turn_and_task(
    ops_stack: dict[str, Any]
) -> None:
    lines = []
    for path in Path(ops_stack["logs"]).glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    late = ops_stack["chats"]["late"]
    mine = [line for line in lines if line.get("conversation_id") == late.id]
    assert mine and all("task_id" in line and "task" in line for line in mine)
    failed = [line for line in mine if "failed" in line["message"]]
    assert failed and failed[0]["turn"] == 1 and failed[0]["level"] == "warning"
    assert all(line["task"] == "supportflow.wake" for line in mine)  # the task that ran it


def test_web_responses_carry_a_request_id(ops_stack: dict[str, Any]) -> None:
    response = ops_stack["client"].get("/healthz", headers={"X-Request-Id": "req-123"})
    assert response.headers["X-Request-Id"] == "req-123"
    assert ops_stack["client"].get("/healthz").headers["X-Request-Id"]
