"""Schemas of the answers that are not the widget's or the agents': helpdesk receipts, ops,
health, and the events of the server-sent event streams (the OpenAPI document shows them)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


class ReplayedWebhookSchema(Schema):
    replayed = fields.Boolean(required=True)
    webhook_id = fields.String(required=True)


class IgnoredEventSchema(Schema):
    ignored = fields.Boolean(required=True)


class DeadLetterSchema(Schema):
    id = fields.String(required=True)
    target = fields.String(required=True)
    webhook_id = fields.String(required=True)
    type = fields.String(required=True)
    conversation_id = fields.String(required=True)
    reason = fields.String(allow_none=True, required=True)
    attempts = fields.Integer(required=True)
    at = fields.Float(required=True)


class DeadLettersSchema(Schema):
    dead_letters = fields.List(fields.Nested(DeadLetterSchema), required=True)


class ReplayScheduledSchema(Schema):
    replayed = fields.String(required=True)


class OverviewSchema(Schema):
    conversations_by_state = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    handoff_queue = fields.Dict(required=True)
    polls = fields.Dict(required=True)
    schedule = fields.Dict(required=True, metadata={
        "description": "wake-ups due now (due), how late the oldest is (lag_s) and whether the "
                       "workers are behind (later than the grace period)"})
    queues = fields.Dict(required=True)
    workers = fields.List(fields.Dict(), required=True)
    deliveries = fields.Dict(required=True)
    counters = fields.Dict(required=True)
    reply_latency = fields.Dict(required=True)
    failures = fields.List(fields.Dict(), required=True)


class PointSchema(Schema):
    at = fields.Float(required=True)
    reply_latency_p50_s = fields.Float(allow_none=True, required=True)
    queue_depth = fields.Integer(required=True)
    handoff_queue = fields.Integer(required=True)


class TimeseriesSchema(Schema):
    points = fields.List(fields.Nested(PointSchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ready", "unavailable"]})
    reasons = fields.List(fields.String(), required=True)
    warnings = fields.List(fields.String())
    workers = fields.List(fields.Dict())
    redis = fields.Dict(metadata={"description": "where Redis is (master, replicas, sentinels, "
                                                 "replica wait), or the error when it did not answer"})
    beat = fields.Dict(metadata={"description": "the active beat and when periodic tasks ran"})


class HandoffEventSchema(Schema):
    """The data of a `handoff` event on the agents' stream."""

    conversation_id = fields.String(required=True)
    reason = fields.String(allow_none=True, required=True)
    at = fields.Float(required=True)


DOC_SCHEMAS = {
    "ReplayedWebhook": ReplayedWebhookSchema,
    "IgnoredEvent": IgnoredEventSchema, "DeadLetters": DeadLettersSchema,
    "ReplayScheduled": ReplayScheduledSchema, "Overview": OverviewSchema,
    "Timeseries": TimeseriesSchema, "Health": HealthSchema, "Readiness": ReadinessSchema,
    "HandoffEvent": HandoffEventSchema,
}


def sse(event: str, id_pattern: str, data_schema: str, description: str) -> dict[str, Any]:
    """A text/event-stream response whose schema describes one event (OpenAPI 3.0 has no
    itemSchema): `data` is the JSON text of `data_schema` (x-data-schema says which)."""
    event_schema = {
        "type": "object", "required": ["event", "id", "data"],
        "properties": {
            "event": {"type": "string", "enum": [event]},
            "id": {"type": "string", "pattern": id_pattern,
                   "description": "send it back as Last-Event-ID to resume after this event"},
            "data": {"type": "string", "description": f"a {data_schema}, as JSON"},
            "retry": {"type": "integer", "minimum": 0},
        },
        "x-data-schema": {"$ref": f"#/components/schemas/{data_schema}"},
    }
    return {"description": description, "content": {"text/event-stream": {"schema": event_schema}}}
