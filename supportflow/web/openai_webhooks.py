"""OpenAI's webhooks in: signed response events for a vault connector wake their conversation."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from supportflow.adapters.vault import VaultError
from supportflow.services.openai_events import NoWebhookSecret
from supportflow.webhooks.signing import SignatureError

from .deps import json_body, services
from .errors import ApiError
from .ops import timed

bp = Blueprint("openai_webhooks", __name__, url_prefix="/v1")


class OpenAIEventDataSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=256))


class OpenAIEventSchema(Schema):
    """The parts of an OpenAI webhook event SupportFlow reads (`WebhookResponseCompleted`...)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=256))
    type = fields.String(required=True, validate=validate.Length(min=1, max=128))
    created_at = fields.Integer()
    object = fields.String()
    data = fields.Nested(OpenAIEventDataSchema, required=True)


@bp.post("/integrations/openai/<connector>")
@timed("openai")
def openai_event(connector: str) -> tuple[Response, int]:
    """A signed event from OpenAI: 200 once verified (woke, unknown, replayed or ignored)."""
    events = services().openai_events
    try:
        webhook_id = events.verify(connector, dict(request.headers.items()),
                                   request.get_data(cache=True))
    except NoWebhookSecret as error:
        raise ApiError(404, "webhook_not_configured", f"connector {connector!r} has no webhook "
                       "secret (supportflow vault webhook-secret)") from error
    except SignatureError as error:
        raise ApiError(401, "invalid_signature", str(error)) from error
    except VaultError as error:
        raise ApiError(503, "vault_unavailable", str(error)) from error
    try:
        event = OpenAIEventSchema().load(json_body())
    except (ValidationError, ApiError):
        events.refused("malformed")
        raise
    outcome = events.receive(connector, webhook_id, event["type"], event["data"]["id"])
    return jsonify({"received": True, "outcome": outcome.value}), 200
