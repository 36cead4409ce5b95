"""Server-sent event streams: a conversation's messages (public), new handoffs (agents)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, request

from supportflow.domain.access import Role
from supportflow.settings import Settings

from .agent_schemas import StreamQuerySchema
from .auth import require_role
from .cors import widget_route
from .deps import find_conversation, message_dict, services, stopping
from .errors import ApiError
from .visitors import require_visitor

bp = Blueprint("streams", __name__, url_prefix="/v1")

# fetch(cursor) -> [(event id, event name, data)], oldest first.
Fetch = Callable[[str], list[tuple[str, str, dict[str, Any]]]]
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


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
        for event_id, event, data in fetch(cursor):
            yield sse_frame(event_id, event, data)
            cursor, last_sent = event_id, time.monotonic()
        if time.monotonic() - last_sent >= settings.stream_keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        stop.wait(settings.stream_poll_s)
    yield ": stream ends; reconnect with Last-Event-ID\n\n"


def event_stream(body: Iterator[str]) -> Response:
    return Response(body, mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.get("/conversations/<conversation_id>/events")
@widget_route
def conversation_events(conversation_id: str) -> Response:
    """The conversation's new transcript messages as SSE, resumable with Last-Event-ID."""
    require_visitor(conversation_id)
    query = StreamQuerySchema().load(request.args.to_dict())
    last = request.headers.get("Last-Event-ID", "").strip()
    if last and not last.isdigit():
        raise ApiError(422, "invalid_request", "Last-Event-ID must be a message seq",
                       {"Last-Event-ID": ["not a number"]})
    after = int(last) if last else query.get("after", 0)
    find_conversation(conversation_id)
    store = services().store

    def fetch(cursor: str) -> list[tuple[str, str, dict[str, Any]]]:
        page = store.transcript(conversation_id, int(cursor), 100)
        return [(str(seq), "message", message_dict(seq, message)) for seq, message in page]

    return event_stream(pump(fetch, str(after), services().settings, stopping()))


@bp.get("/agent/handoffs/stream")
@require_role(Role.AGENT)
def handoff_events() -> Response:
    """New handoffs as SSE (`handoff` events), resumable with Last-Event-ID."""
    board = services().agents.board
    last = request.headers.get("Last-Event-ID", "").strip() or request.args.get("after", "")
    if last and not STREAM_ID.match(last):
        raise ApiError(422, "invalid_request", "Last-Event-ID must be a handoff event id",
                       {"Last-Event-ID": ["expected <ms>-<n>"]})
    cursor = last or board.latest_handoff_id()

    def fetch(after: str) -> list[tuple[str, str, dict[str, Any]]]:
        found = board.handoffs_after(after)
        return [(event_id, "handoff", data) for event_id, data in found]

    return event_stream(pump(fetch, cursor, services().settings, stopping()))
