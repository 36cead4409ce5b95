"""Prometheus /metrics over a stack of its own with two workers: counts, gauges, queue, workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supportflow.adapters.celery_queue import CeleryTaskQueue
from supportflow.domain.access import Role
from supportflow.runtime.redis_server import EmbeddedRedis
from supportflow.settings import load_settings
from tests.conftest import Processes, Sandbox, make_app, stack_env
from tests.helpers import wait_until
from workers.app import create_celery

from .agent_helpers import HANDOFF_REQUEST, make_token
from .chat import Chat

pytestmark = pytest.mark.slow
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def two_workers(tmp_path: Path, sandbox: Sandbox, flows_dir: Path) -> Iterator[tuple[Any, str]]:
    """A Redis of its own, two single-process workers with distinct hostnames, and beat."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        processes = Processes(stack_env(server.url, sandbox.url, flows_dir), tmp_path)
        try:
            processes.worker(concurrency=1)
            processes.worker(concurrency=1)
            processes.beat()
            yield make_app(server.url, sandbox.url, flows_dir).test_client(), server.url
        finally:
            processes.stop_all()


def scrape(client: Any, headers: dict[str, str]) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def run_script(client: Any, sandbox: Sandbox) -> None:
    """Three answered turns, one handoff by marker, one run past its deadline."""
    sandbox.reset()
    answered = Chat(client, "responses")
    for turn, question in enumerate(["How long does shipping take?", "Can I return an item?",
                                     "I forgot my password"], start=2):
        answered.say(question)
        answered.wait_for_bot_messages(turn)
    answered.wait_for_state("wait_for_user")
    marker = Chat(client, "responses")
    marker.say(HANDOFF_REQUEST)
    marker.wait_for_state("handed_off")
    sandbox.configure(never_finish=True)
    try:
        late = Chat(client, "responses_deadline")
        late.say("How long does shipping take?")
        assert "did not answer" in late.wait_for_state("handed_off")["failure_reason"]
    finally:
        sandbox.reset()


def test_metrics_count_a_scripted_day_across_two_workers(
    two_workers: tuple[Any, str], sandbox: Sandbox
) -> None:
    client, url = two_workers
    ops = make_token(url, Role.OPS)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=make_token(url, Role.AGENT)).status_code == 403
    run_script(client, sandbox)
    samples = scrape(client, ops)
    assert samples[("supportflow_messages_in_total", (("channel", "widget"),))] == 5
    assert samples[("supportflow_messages_out_total", (("author", "bot"),))] == 5
    for outcome, count in (("completed", 3), ("handoff", 1), ("deadline", 1)):
        key = ("supportflow_runs_total", (("backend", "responses"), ("outcome", outcome)))
        assert samples[key] == count, outcome
    assert samples[("supportflow_handoffs_total", (("cause", "marker"),))] == 1
    assert samples[("supportflow_handoffs_total", (("cause", "failure"),))] == 1
    assert samples[("supportflow_reply_latency_seconds_count", ())] == 5
    assert samples[("supportflow_polls_total", (("backend", "responses"),))] >= 5
    assert samples[("supportflow_poll_lateness_seconds_count", ())] >= 5
    assert samples[("supportflow_conversations", (("state", "handed_off"),))] == 2
    assert samples[("supportflow_conversations", (("state", "wait_for_user"),))] == 1
    assert samples[("supportflow_handoff_queue_length", ())] == 2
    assert samples[("supportflow_handoff_oldest_wait_seconds", ())] > 0


def test_queue_depth_counts_countdown_tasks_held_by_workers_and_both_workers_are_online(
    two_workers: tuple[Any, str]
) -> None:
    client, url = two_workers
    ops = make_token(url, Role.OPS)
    queue = CeleryTaskQueue(create_celery(load_settings({"redis_url": url})))
    # Polls have no countdown any more; a delivery retry does: a worker reserves it at once
    # and holds it.
    queue.deliver("delivery-not-yet", 1, 600.0)
    reserved = ("supportflow_queue_reserved", (("queue", "supportflow"),))
    ready = ("supportflow_queue_ready", (("queue", "supportflow"),))
    # Beat's periodic tasks pass through the ready queue now and then (slowly on a busy
    # machine), so wait for a moment between them: the held task must never count as ready.
    wait_until(lambda: (s := scrape(client, ops))[reserved] >= 1 and s[ready] == 0)
    overview = wait_until(lambda: len((o := client.get("/v1/ops/overview", headers=ops)
                                       .get_json())["workers"]) == 2 and o)
    assert overview["queues"]["supportflow"]["reserved"] >= 1
    names = {worker["name"] for worker in overview["workers"]}
    assert len(names) == 2 and all(w["last_seen_s_ago"] < 60 for w in overview["workers"])
    assert scrape(client, ops)[("supportflow_workers_online", ())] == 2
