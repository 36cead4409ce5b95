"""Every error leaves as JSON: {"error": {"code", "message", "fields"?}}.

4xx: the caller's mistake, nothing changed. 503 with Retry-After: Redis (or the broker) is
unreachable for a moment; try again. 500: a bug, logged with the request id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify
from kombu.exceptions import OperationalError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from supportflow.services.ports import NotReplicated

log = logging.getLogger("supportflow.web")
# Seconds a client should wait before retrying after a 503 (a failover takes a few seconds).
RETRY_AFTER_S = 1
# Redis answers these while it cannot serve writes for a moment (loading, failover, full memory).
TRANSIENT_REPLIES = ("OOM", "READONLY", "MASTERDOWN", "LOADING", "TRYAGAIN", "CLUSTERDOWN")


class ApiError(Exception):
    """An error the API reports to the caller with a status and a code."""

    def __init__(self, status: int, code: str, message: str, fields: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, fields: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    return response


def invalid(fields: dict[str, Any], message: str = "the request has invalid fields") -> ApiError:
    """A 422 naming the fields that are wrong and why."""
    return ApiError(422, "invalid_request", message, fields)


def unavailable(message: str, code: str = "unavailable") -> ApiError:
    """A 503 the caller can act on: try again after Retry-After seconds."""
    return ApiError(503, code, message, headers={"Retry-After": str(RETRY_AFTER_S)})


def become_unavailable(response: Response) -> None:
    """Turn a response already made into the 503 of an outage (its cookies dropped)."""
    body = json.dumps({"error": {"code": "unavailable", "message": "the service's store is "
                                 f"unavailable; try again in {RETRY_AFTER_S} s"}})
    response.set_data(body)
    response.status_code = 503
    response.mimetype = "application/json"
    response.headers.pop("Set-Cookie", None)
    response.headers.pop("Location", None)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)


def is_transient(error: Exception) -> bool:
    """True for store and broker failures that pass by themselves (not bugs)."""
    # ReadOnlyError: a demoted master still answering a client that was not told (no Sentinel).
    if isinstance(error, redis.ConnectionError | redis.TimeoutError | redis.ReadOnlyError
                  | OperationalError):
        return True
    return isinstance(error, redis.ResponseError) and str(error).startswith(TRANSIENT_REPLIES)


def register_error_handlers(app: Flask) -> None:
    """Turn API errors, validation errors, HTTP errors and outages into JSON responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message, error.fields)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(ValidationError)
    def invalid_fields(error: ValidationError) -> Response:
        return error_response(422, "invalid_request", "the request has invalid fields",
                              error.messages)

    @app.errorhandler(NotReplicated)
    def not_replicated(error: NotReplicated) -> Response:
        return api_error(unavailable(
            "the message is not confirmed by a Redis replica yet; send it again with the same "
            "client_message_id (or webhook-id): it will count once", code="not_replicated"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # An exception outside the view (opening or saving the session) arrives as a 500
        # wrapping it: an outage is still a 503.
        original = getattr(error, "original_exception", None)
        if isinstance(original, Exception):
            return unexpected(original)
        code = (error.name or "error").lower().replace(" ", "_")
        response = error_response(error.code or 500, code, error.description or code)
        # Keep what the error says besides its body, e.g. Allow on a 405.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        if is_transient(error):
            log.warning("store unavailable: %s", error)
            return api_error(unavailable(f"the service's store is unavailable ({type(error).__name__}); "
                                         f"try again in {RETRY_AFTER_S} s"))
        request_id = g.get("request_id", "-")
        log.exception("bug: unhandled %s (request %s)", type(error).__name__, request_id)
        return error_response(500, "internal_error", "an internal error; it was logged with "
                              f"request id {request_id}")
