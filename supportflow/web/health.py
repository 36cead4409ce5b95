"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from supportflow.runtime.redis_server import check_redis_durability

from .deps import services as current_services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Redis answers, keeps data across restarts and does not evict; a worker was seen recently."""
    services = current_services()
    store = services.store
    try:
        store.ping()
        warnings = check_redis_durability(store.redis)
        workers = services.ops_view.workers()
    except Exception as error:  # any Redis failure means not ready
        return jsonify({"status": "unavailable", "redis": str(error),
                        "reasons": [f"redis: {error}"]}), 503
    reasons = [f"redis: {warning}" for warning in warnings]
    if services.uses_workers and not workers:
        reasons.append(f"no worker seen in the last {services.settings.worker_online_s:g} s")
    status, code = ("unavailable", 503) if reasons else ("ready", 200)
    return jsonify({"status": status, "reasons": reasons, "warnings": warnings,
                    "workers": workers}), code
