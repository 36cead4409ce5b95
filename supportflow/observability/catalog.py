"""Every metric SupportFlow records, declared once: name, kind, help text, labels, buckets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
FAST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("supportflow_messages_in", Kind.COUNTER, "Customer messages accepted.", ("channel",)),
    Metric("supportflow_messages_out", Kind.COUNTER, "Messages sent to customers.",
           ("author",)),
    Metric("supportflow_runs", Kind.COUNTER, "Assistant runs by outcome.", ("backend", "outcome")),
    Metric("supportflow_handoffs", Kind.COUNTER, "Conversations handed to a person.", ("cause",)),
    Metric("supportflow_assistant_errors", Kind.COUNTER, "Assistant API errors by HTTP status.",
           ("status",)),
    Metric("supportflow_polls", Kind.COUNTER, "Run checks made.", ("backend",)),
    Metric("supportflow_poll_lateness_seconds", Kind.HISTOGRAM,
           "How much later than planned a poll ran.", (),
           (*FAST_BUCKETS, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)),
    Metric("supportflow_reply_latency_seconds", Kind.HISTOGRAM,
           "From the customer's first message of a turn to the reply's delivery."),
    Metric("supportflow_webhook_seconds", Kind.HISTOGRAM, "Time to handle an inbound webhook.",
           ("kind",), FAST_BUCKETS),
    Metric("supportflow_delivery_retries", Kind.COUNTER, "Outbound deliveries tried again."),
    Metric("supportflow_dead_letters", Kind.COUNTER, "Outbound deliveries given up."),
    # Written by the scheduler's claim script (adapters/redis_scripts.py CLAIM_DUE).
    Metric("supportflow_dispatched", Kind.COUNTER,
           "Wake-ups the scheduler published: polls, drains, and requeued (claimed again after "
           "a task that never ran, a dead worker's).", ("kind",)),
    Metric("supportflow_step_errors", Kind.COUNTER,
           "Steps that failed for a reason other than the assistant's (a bug, bad data).",
           ("state",)),
    Metric("supportflow_runs_ended", Kind.COUNTER, "Runs found ended, by what led to the "
           "check: an OpenAI webhook or a planned poll.", ("via",)),
    Metric("supportflow_openai_events", Kind.COUNTER,
           "Verified OpenAI webhook events by what became of them.", ("outcome",)),
    Metric("supportflow_openai_events_refused", Kind.COUNTER,
           "OpenAI webhook events refused before any effect.", ("reason",)),
)}
