"""Every error leaves as JSON: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify
from kombu.exceptions import OperationalError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from supportflow.services.ports import NotReplicated

log = logging.getLogger("supportflow.web")
# Seconds a client should wait before retrying after a 503 (a failover takes a few seconds).
RETRY_AFTER_S = 1
# Redis (or the broker on it) out of reach: a failover under way, or an outage. ReadOnlyError is
# a demoted master still answering a client that was not told (plain URL, no Sentinel).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.ReadOnlyError, OperationalError)


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


def register_error_handlers(app: Flask) -> None:
    """Turn API errors, validation errors and HTTP errors into JSON responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message, error.fields)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(ValidationError)
    def invalid(error: ValidationError) -> Response:
        return error_response(422, "invalid_request", "the request has invalid fields",
                              error.messages)

    @app.errorhandler(NotReplicated)
    def not_replicated(error: NotReplicated) -> Response:
        response = error_response(
            503, "not_replicated", "the message is not confirmed by a Redis replica yet; send it "
            "again with the same client_message_id (or webhook-id): it will count once")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def unavailable(error: Exception) -> Response:
        log.warning("answered 503: Redis unavailable: %s", error)
        response = error_response(503, "unavailable", "storage is unavailable for a moment "
                                  "(a failover or an outage); retry after Retry-After")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    for kind in UNAVAILABLE:
        app.register_error_handler(kind, unavailable)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or code)
