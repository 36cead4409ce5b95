"""Redis-backed metrics: several processes add to one count; exposition is valid Prometheus text."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from supportflow.observability.redis_metrics import RedisMetrics, render


def _count_in_child(url: str, prefix: str) -> None:
    metrics = RedisMetrics(redis.Redis.from_url(url), prefix=prefix)
    for _ in range(50):
        metrics.inc("supportflow_messages_in", channel="widget")
        metrics.observe("supportflow_reply_latency_seconds", 0.3)


def test_counts_from_several_processes_add_up(redis_url: str) -> None:
    prefix = f"metrics{uuid.uuid4().hex[:6]}"
    children = [multiprocessing.get_context("fork").Process(target=_count_in_child,
                                                            args=(redis_url, prefix))
                for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
    metrics = RedisMetrics(redis.Redis.from_url(redis_url), prefix=prefix)
    assert metrics.counter_values("supportflow_messages_in") == {("widget",): 150.0}
    families = {f.name: f for f in text_string_to_metric_families(
        render(metrics.families).decode())}
    samples = {(s.name, s.labels.get("le")): s.value
               for s in families["supportflow_reply_latency_seconds"].samples}
    assert samples[("supportflow_reply_latency_seconds_count", None)] == 150
    assert samples[("supportflow_reply_latency_seconds_bucket", "0.25")] == 0
    assert samples[("supportflow_reply_latency_seconds_bucket", "0.5")] == 150
    assert samples[("supportflow_reply_latency_seconds_sum", None)] == pytest.approx(45.0)
    assert families["supportflow_messages_in"].samples[0].value == 150


def test_wrong_labels_are_refused(redis_url: str) -> None:
    metrics = RedisMetrics(redis.Redis.from_url(redis_url), prefix="metricsbad")
    with pytest.raises(ValueError, match="takes labels"):
        metrics.inc("supportflow_messages_in", author="bot")
