"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from supportflow.runtime.redis_server import check_redis_durability

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Redis answers, keeps data across restarts and does not evict."""
    store = current_app.extensions["supportflow"].store
    try:
        store.ping()
        warnings = check_redis_durability(store.redis)
    except Exception as error:  # any Redis failure means not ready
        return jsonify({"status": "unavailable", "redis": str(error)}), 503
    return jsonify({"status": "ready", "warnings": warnings}), 200
