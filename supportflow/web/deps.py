"""What the blueprints share: this app's services, the JSON body, common lookups."""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Response, current_app

from supportflow.bootstrap import Services
from supportflow.domain.model import Conversation, TranscriptMessage

from .errors import ApiError
from .inputs import json_body

__all__ = ["find_conversation", "json_body", "json_response", "message_dict", "services"]

# One encoder for the hot routes' answers: jsonify builds one per call (a tenth of a post).
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def services() -> Services:
    """The services the app was built with (create_app puts them in app.extensions)."""
    found: Services = current_app.extensions["supportflow"]
    return found


def json_response(data: dict[str, Any], status: int = 200) -> Response:
    """`data` as a compact JSON response, as jsonify writes it."""
    return current_app.response_class(COMPACT_JSON.encode(data) + "\n", status=status,
                                      mimetype="application/json")


def stopping() -> threading.Event:
    """Set once this process is shutting down (long responses should end)."""
    event: threading.Event = current_app.extensions["supportflow_stopping"]
    return event


def message_dict(seq: int, message: TranscriptMessage) -> dict[str, Any]:
    """A transcript message as the API shows it, with its sequence number."""
    return {"seq": seq, **message.to_dict()}


def find_conversation(conversation_id: str) -> Conversation:
    """The conversation, or a 404."""
    conversation = services().store.get(conversation_id)
    if conversation is None:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}")
    return conversation
