"""Server-sent event streams: a conversation's messages (public), new handoffs (agents)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from marshmallow import Schema, ValidationError

from supportflow.domain.access import Role
from supportflow.settings import Settings

from .agent_schemas import HandoffStreamQuerySchema, StreamQuerySchema
from .auth import current_principal, require_role
from .cors import widget_route
from .deps import find_conversation, message_dict, services, stopping
from .errors import RETRY_AFTER_S, is_transient
from .inputs import query
from .limits import client_address
from .stream_slots import StreamSlots
from .visitors import require_visitor

bp = Blueprint("streams", __name__, url_prefix="/v1")
log = logging.getLogger("supportflow.web")

# fetch(cursor) -> [(event id, event name, data)], oldest first.
Fetch = Callable[[str], list[tuple[str, str, dict[str, Any]]]]


def sse_frame(event_id: str, event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n"


def pump(fetch: Fetch, cursor: str, settings: Settings, stop: threading.Event) -> Iterator[str]:
    """Poll `fetch` until the stream's max duration, or until the process stops (a restart);
    keep-alive comments in between. Either way the stream ends cleanly and the client
    reconnects (to this or another web process) with Last-Event-ID."""
    yield "retry: 1000\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < settings.stream_max_s and not stop.is_set():
        try:
            found = fetch(cursor)
        except Exception as error:
            if not is_transient(error):
                raise
            # The headers are sent: end cleanly; the client reconnects with Last-Event-ID.
            log.warning("stream ended early, store unavailable: %s", error)
            yield f"retry: {RETRY_AFTER_S * 1000}\n: store unavailable; reconnect with Last-Event-ID\n\n"
            return
        for event_id, event, data in found:
            yield sse_frame(event_id, event, data)
            cursor, last_sent = event_id, time.monotonic()
        if time.monotonic() - last_sent >= settings.stream_keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        stop.wait(settings.stream_poll_s)
    yield ": stream ends; reconnect with Last-Event-ID\n\n"


def resume_from(schema: Schema) -> Any:
    """Where a stream resumes: Last-Event-ID, else ?after=, checked by `schema` (422 if bad)."""
    args = query(schema)
    last = request.headers.get("Last-Event-ID", "")
    if not last:  # absent or empty: start from ?after=
        return args.get("after")
    try:
        return schema.load({"after": last})["after"]
    except ValidationError as error:
        problems = error.messages["after"] if isinstance(error.messages, dict) else error.messages
        raise ValidationError({"Last-Event-ID": problems}) from error


def event_stream(body: Iterator[str], client: str) -> Response:
    """The stream as a response, holding one of this process's stream slots until it closes
    (429/503 before anything is sent when `client`'s share or the process's are taken)."""
    slots: StreamSlots = current_app.extensions["supportflow_stream_slots"]
    give_back = slots.take(client)

    def held() -> Iterator[str]:
        try:
            yield from body
        finally:
            give_back()

    response = Response(held(), mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(give_back)  # also when the server never starts the body
    return response


@bp.get("/conversations/<conversation_id>/events")
@widget_route
def conversation_events(conversation_id: str) -> Response:
    """The conversation's new transcript messages as SSE, resumable with Last-Event-ID."""
    require_visitor(conversation_id)
    after = resume_from(StreamQuerySchema()) or 0
    find_conversation(conversation_id)
    store = services().store

    def fetch(cursor: str) -> list[tuple[str, str, dict[str, Any]]]:
        page = store.transcript(conversation_id, int(cursor), 100)
        return [(str(seq), "message", message_dict(seq, message)) for seq, message in page]

    return event_stream(pump(fetch, str(after), services().settings, stopping()),
                        client_address())


@bp.get("/agent/handoffs/stream")
@require_role(Role.AGENT)
def handoff_events() -> Response:
    """New handoffs as SSE (`handoff` events), resumable with Last-Event-ID."""
    board = services().agents.board
    cursor = resume_from(HandoffStreamQuerySchema()) or board.latest_handoff_id()

    def fetch(after: str) -> list[tuple[str, str, dict[str, Any]]]:
        found = board.handoffs_after(after)
        return [(event_id, "handoff", data) for event_id, data in found]

    return event_stream(pump(fetch, cursor, services().settings, stopping()),
                        f"agent:{current_principal().name}")
