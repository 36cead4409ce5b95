"""The operators' view: the ops overview, Prometheus gauges read at scrape time, time-series points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from supportflow.services.ports import OpsIndex

from .ops import LATENCY, OpsStore
from .redis_metrics import RedisMetrics, histogram_buckets, quantile


class OpsView:
    """Builds what /v1/ops/overview, /v1/ops/timeseries and /metrics show."""

    def __init__(self, *, store: OpsIndex, ops: OpsStore, metrics: RedisMetrics,
                 clock: Callable[[], float], grace_s: float, worker_online_s: float) -> None:
        self.store, self.ops, self.metrics, self.clock = store, ops, metrics, clock
        self.grace_s, self.worker_online_s = grace_s, worker_online_s

    def overview(self) -> dict[str, Any]:
        """Everything the ops dashboard shows, in one JSON object."""
        now = self.clock()
        by_state = self.store.counts_by_state()
        handoffs = self.store.handoff_queue()
        oldest = min((entered for _, entered in handoffs), default=None)
        buckets = histogram_buckets(self.metrics, LATENCY)
        return {
            "conversations_by_state": by_state,
            "handoff_queue": {"length": len(handoffs),
                              "oldest_wait_s": None if oldest is None else max(0.0, now - oldest)},
            "polls": {"pending": by_state.get("poll", 0),
                      "overdue": self.store.overdue_count(now, self.grace_s)},
            "schedule": self.schedule(now),
            "queues": {self.ops.queue: self.ops.queue_depth()},
            "workers": self.workers(),
            "deliveries": {"dead_letters": self.ops.dead_letters()},
            "counters": self.counters(),
            "reply_latency": {"p50_s": quantile(buckets, 0.5), "p95_s": quantile(buckets, 0.95)},
            "failures": self.ops.failures(20),
        }

    def schedule(self, now: float) -> dict[str, Any]:
        """Whether the workers keep up: wake-ups due now, how late the oldest is, and `behind`
        once that is more than the grace period (a backlog waits in the schedule)."""
        due, lag = self.store.schedule_lag(now)
        return {"due": due, "lag_s": round(lag, 3), "behind": lag > self.grace_s}

    def workers(self) -> list[dict[str, Any]]:
        """Workers seen recently."""
        return self.ops.workers(self.clock(), self.worker_online_s)

    def counters(self) -> dict[str, Any]:
        """Totals of the main counters, across every process."""
        values = self.metrics.counter_values
        return {
            "messages_in": _total(values("supportflow_messages_in")),
            "messages_out": _total(values("supportflow_messages_out")),
            "handoffs": _total(values("supportflow_handoffs")),
            "runs": _by_label(values("supportflow_runs"), 1),
            "assistant_errors": _by_label(values("supportflow_assistant_errors"), 0),
            "runs_ended": _by_label(values("supportflow_runs_ended"), 0),
            "openai_events": _by_label(values("supportflow_openai_events"), 0),
            "openai_events_refused": _by_label(values("supportflow_openai_events_refused"), 0),
        }

    def timeseries(self, minutes: float) -> list[dict[str, Any]]:
        """Sampled points of the last `minutes`, oldest first."""
        return self.ops.points(self.clock() - minutes * 60)

    def sample(self) -> dict[str, Any]:
        """Record one time-series point (the beat task calls this)."""
        return self.ops.sample(self.clock(), len(self.store.handoff_queue()))

    def gauges(self) -> Iterator[Metric]:
        """Gauges read from Redis at scrape time."""
        view = self.overview()
        states = GaugeMetricFamily("supportflow_conversations", "Conversations by state.",
                                   labels=["state"])
        for state, count in view["conversations_by_state"].items():
            states.add_metric([state], count)
        yield states
        handoff = view["handoff_queue"]
        yield _gauge("supportflow_handoff_queue_length", "Conversations waiting for an agent.",
                     handoff["length"])
        yield _gauge("supportflow_handoff_oldest_wait_seconds", "Wait of the oldest handoff.",
                     handoff["oldest_wait_s"] or 0.0)
        yield _gauge("supportflow_polls_pending", "Conversations waiting on a run.",
                     view["polls"]["pending"])
        yield _gauge("supportflow_polls_overdue", "Wake-ups later than the grace period.",
                     view["polls"]["overdue"])
        yield _gauge("supportflow_schedule_lag_seconds",
                     "How late the oldest due wake-up is (the workers are behind when it grows).",
                     view["schedule"]["lag_s"])
        yield from _queue_gauges(view["queues"])
        yield _gauge("supportflow_workers_online", "Workers seen recently.", len(view["workers"]))
        yield _gauge("supportflow_dead_letter_queue_length", "Dead deliveries not replayed.",
                     view["deliveries"]["dead_letters"])

    def families(self) -> Iterator[Metric]:
        """Counters, histograms and gauges: everything /metrics exposes."""
        yield from self.metrics.families()
        yield from self.gauges()


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _queue_gauges(queues: dict[str, dict[str, int]]) -> Iterator[Metric]:
    for kind, help_text in (("ready", "Celery tasks waiting in the broker's queue."),
                            ("reserved", "Celery tasks held by workers (countdowns included).")):
        family = GaugeMetricFamily(f"supportflow_queue_{kind}", help_text, labels=["queue"])
        for name, depth in queues.items():
            family.add_metric([name], depth[kind])
        yield family


def _total(values: dict[tuple[str, ...], float]) -> int:
    return int(sum(values.values()))


def _by_label(values: dict[tuple[str, ...], float], index: int) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for labels, value in values.items():
        found[labels[index]] += int(value)
    return dict(found)
