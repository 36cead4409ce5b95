"""The sandbox assistant server: Assistants v2 and Responses/Conversations paths under /v1.

Over 300 lines on purpose: both APIs' routes sit beside the fault injection, error shape and
paging they share, so what a client sees from either API is decided in one file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from supportflow.sandbox import render
from supportflow.sandbox.background import Background
from supportflow.sandbox.brain import load_brain
from supportflow.sandbox.file_routes import register_file_routes
from supportflow.sandbox.records import run_records
from supportflow.sandbox.requests import (
    body_object,
    list_params,
    metadata_of,
    parse_settings,
    required_str,
    response_input,
    user_items,
)
from supportflow.sandbox.store import (
    ApiError,
    Run,
    SandboxSettings,
    SandboxStore,
    Thread,
)


def create_sandbox_app(knowledge_path: Path, *, latency_s: float = 0.5,
                       webhook_url: str | None = None, webhook_secret: str | None = None) -> Flask:
    """The sandbox as a Flask app, with its own in-memory state and background threads.

    With a webhook URL and secret, each background response's end is announced there.
    """
    app = Flask("supportflow.sandbox")
    store = SandboxStore(load_brain(knowledge_path), SandboxSettings(
        latency_s=latency_s, webhook_url=webhook_url, webhook_secret=webhook_secret))
    app.extensions["sandbox_store"] = store
    background = app.extensions["sandbox_background"] = Background(store)
    _error_handlers(app)
    _fault_injection(app, store)
    _control_routes(app, store, background)
    _assistants_routes(app, store)
    _responses_routes(app, store)
    register_file_routes(app, store)
    return app


def _fault_injection(app: Flask, store: SandboxStore) -> None:
    """Answer requests that match an injected fault with it (after its delay, if any)."""

    @app.before_request
    def inject() -> tuple[Response, int] | None:
        if not request.path.startswith("/v1/"):
            return None
        with store.lock:
            store.note_bearer(request.headers.get("Authorization", ""))
            fault = store.take_fault(request.method, request.path)
        if fault is None:
            return None
        if fault["after"]:
            g.answer_late_s = fault["delay_s"]
            return None
        if fault["delay_s"]:
            time.sleep(fault["delay_s"])
        if fault["status"] is None:
            return None
        body = render.error_body("The sandbox injected this fault.",
                                 "server_error" if fault["status"] >= 500 else "invalid_request_error",
                                 None, None)
        response = jsonify(body)
        if fault["retry_after_ms"] is not None:
            response.headers["retry-after-ms"] = str(fault["retry_after_ms"])
        if fault["retry_after"] is not None:
            response.headers["retry-after"] = str(fault["retry_after"])
        return response, fault["status"]

    @app.after_request
    def answer_late(response: Response) -> Response:
        late = g.pop("answer_late_s", 0.0)
        if late:
            time.sleep(late)
        return response


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        body = render.error_body(error.message, error.kind, error.param, error.code)
        return jsonify(body), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        message = f"{request.method} {request.path}: {error.description}"
        return jsonify(render.error_body(message, "invalid_request_error", None, None)), status


def _poll_hint(store: SandboxStore, run: Run, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    hint = store.settings.poll_after_ms
    if hint is not None and run.status in {"queued", "in_progress"}:
        response.headers["openai-poll-after-ms"] = str(hint)
    return response


def _control_routes(app: Flask, store: SandboxStore, background: Background) -> None:
    @app.put("/_sandbox/settings")
    def put_settings() -> Response:
        changes = parse_settings(body_object())
        with store.lock:
            for key, value in changes.items():
                setattr(store.settings, key, value)
            return jsonify(store.settings.public())

    @app.delete("/_sandbox/settings")
    def reset_settings() -> Response:
        with store.lock:
            store.settings = SandboxSettings(**vars(store.defaults))
            return jsonify(store.settings.public())

    @app.get("/_sandbox/stats")
    def stats() -> Response:
        with store.lock:
            return jsonify({**store.stats(), **background.sender.stats()})

    @app.get("/_sandbox/runs")
    def runs() -> Response:
        """Per-run records since `since` (epoch seconds): store.run_records."""
        try:
            since = float(request.args.get("since", "0"))
        except ValueError as error:
            raise ApiError(400, "since must be a number (epoch seconds).",
                           param="since") from error
        with store.lock:
            return jsonify(run_records(store, since))

    @app.post("/_sandbox/sink/<path:_>")
    def sink(_: str) -> tuple[str, int]:
        """Takes any POST (a helpdesk callback for benchmarks) and answers 204."""
        return "", 204


def _page(
    items: list[dict[str, Any]], default_order: str = "desc"
) -> dict[str, Any]:
    limit, order, after, before = list_params(default_order)
    if order == "desc":
        items = list(reversed(items))
    ids = [item["id"] for item in items]
    if after is not None and after in ids:
        items = items[ids.index(after) + 1 :]
    elif before is not None and before in ids:
        items = items[: ids.index(before)]
    return render.list_object(items[:limit], len(items) > limit)


def _assistants_routes(app: Flask, store: SandboxStore) -> None:
    def thread(thread_id: str) -> Thread:
        return store.thread(thread_id, "assistants")

    @app.post("/v1/threads")
    def create_thread() -> Response:
        body = body_object(allow_empty=True)
        with store.lock:
            created = store.create_thread("assistants", metadata_of(body))
            for text, _ in user_items(body.get("messages") or [], api="assistants"):
                store.add_user_message(created, text, {})
            return jsonify(render.thread_object(created))

    @app.get("/v1/threads/<thread_id>")
    def get_thread(thread_id: str) -> Response:
        with store.lock:
            return jsonify(render.thread_object(thread(thread_id)))

    @app.post("/v1/threads/<thread_id>/messages")
    def create_message(thread_id: str) -> Response:
        body = body_object()
        ((text, role),) = user_items([body], api="assistants")
        with store.lock:
            found = thread(thread_id)
            if role != "user":
                raise ApiError(400, "The sandbox only accepts user messages.", param="role")
            message = store.add_user_message(found, text, metadata_of(body))
            return jsonify(render.message_object(found, message))

    @app.get("/v1/threads/<thread_id>/messages")
    def list_messages(thread_id: str) -> Response:
        run_id = request.args.get("run_id")
        with store.lock:
            found = thread(thread_id)
            data = [render.message_object(found, m) for m in found.messages
                    if m.kind == "message" and (run_id is None or m.run_id == run_id)]
            return jsonify(_page(data))

    @app.post("/v1/threads/<thread_id>/runs")
    def create_run(thread_id: str) -> Response:
        body = body_object()
        required_str(body, "assistant_id")
        body["metadata"] = metadata_of(body)
        with store.lock:
            run = store.create_run(thread(thread_id), body)
            return jsonify(render.run_object(run))

    @app.get("/v1/threads/<thread_id>/runs")
    def list_runs(thread_id: str) -> Response:
        with store.lock:
            found = thread(thread_id)
            return jsonify(_page([render.run_object(store.runs[r]) for r in found.runs]))

    @app.get("/v1/threads/<thread_id>/runs/<run_id>")
    def get_run(thread_id: str, run_id: str) -> Response:
        with store.lock:
            thread(thread_id)
            run = store.run(run_id, thread_id)
            store.check(run)
            return _poll_hint(store, run, render.run_object(run))

    @app.post("/v1/threads/<thread_id>/runs/<run_id>/submit_tool_outputs")
    def submit_tool_outputs(thread_id: str, run_id: str) -> Response:
        outputs = _tool_outputs(body_object())
        with store.lock:
            thread(thread_id)
            run = store.run(run_id, thread_id)
            store.submit_tool_outputs(run, outputs)
            return jsonify(render.run_object(run))


def _tool_outputs(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("tool_outputs")
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise ApiError(400, "Missing required parameter: 'tool_outputs'.", param="tool_outputs")
    return [(str(o.get("tool_call_id", "")), str(o.get("output", ""))) for o in raw]


def _responses_routes(app: Flask, store: SandboxStore) -> None:
    def conversation(conversation_id: str) -> Thread:
        return store.thread(conversation_id, "responses")

    @app.post("/v1/conversations")
    def create_conversation() -> Response:
        body = body_object(allow_empty=True)
        with store.lock:
            created = store.create_thread("responses", metadata_of(body))
            for text, role in user_items(body.get("items") or [], api="responses"):
                store.add_user_message(created, text, {}, role)
            return jsonify(render.thread_object(created))

    @app.get("/v1/conversations/<conversation_id>")
    def get_conversation(conversation_id: str) -> Response:
        with store.lock:
            return jsonify(render.thread_object(conversation(conversation_id)))

    @app.post("/v1/conversations/<conversation_id>/items")
    def add_items(conversation_id: str) -> Response:
        items = user_items(body_object().get("items"), api="responses", required=True)
        with store.lock:
            found = conversation(conversation_id)
            added = []
            for text, role in items:
                message = store.add_user_message(found, text, {}, role)
                added.append(render.item_object(message))
            return jsonify(render.list_object(added, False))

    @app.get("/v1/conversations/<conversation_id>/items")
    def list_items(conversation_id: str) -> Response:
        with store.lock:
            found = conversation(conversation_id)
            return jsonify(_page([render.item_object(m) for m in found.messages]))

    @app.post("/v1/responses")
    def create_response() -> Response:
        body = body_object()
        conversation_id, messages, outputs = response_input(body)
        body["metadata"] = metadata_of(body)
        with store.lock:
            found = conversation(conversation_id)
            store.add_function_outputs(found, outputs)
            for text, role in messages:
                store.add_user_message(found, text, {}, role)
            run = store.create_run(found, body)
            return jsonify(render.response_object(run))

    @app.get("/v1/responses/<response_id>")
    def get_response(response_id: str) -> Response:
        with store.lock:
            run = store.run(response_id)
            store.check(run)
            return _poll_hint(store, run, render.response_object(run))


@dataclass
class SandboxHandle:
    """A sandbox served from a background thread; `url` ends in /v1."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread
    background: Background

    def stop(self) -> None:
        """Stop serving and wait for the threads."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.background.close()


def start_in_thread(
    host: str, port: int, knowledge_path: Path, latency_s: float = 0.5, *,
    webhook_url: str | None = None, webhook_secret: str | None = None,
) -> SandboxHandle:
    """Serve the sandbox from a daemon thread (for tests and the embedded default)."""
    app = create_sandbox_app(knowledge_path, latency_s=latency_s, webhook_url=webhook_url,
                             webhook_secret=webhook_secret)
    server = make_server(host, port, app, threaded=True)
    serve: Callable[[], None] = server.serve_forever
    thread = threading.Thread(target=serve, name="sandbox", daemon=True)
    thread.start()
    return SandboxHandle(f"http://{host}:{server.server_port}/v1", server, thread,
                         app.extensions["sandbox_background"])
