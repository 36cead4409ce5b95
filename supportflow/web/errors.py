"""Every error leaves as JSON: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException


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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or code)
