"""Liveness and readiness (with the Redis topology and the active beat)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from supportflow.adapters.redis_connection import topology
from supportflow.runtime.redis_server import check_redis_durability

from .deps import services as current_services
from .errors import RETRY_AFTER_S

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]]:
    """Redis answers as master, durable, with the replicas the replica wait needs; a worker was
    seen recently. Also shows where Redis is (master, replicas, sentinels) and the active beat."""
    services = current_services()
    store = services.store
    try:
        store.ping()
        warnings = check_redis_durability(store.redis)
        workers = services.ops_view.workers()
        redis_topology = topology(store.redis, services.settings)
        beat = _beat(services.ops)
    except Exception as error:  # any Redis failure means not ready
        return jsonify({"status": "unavailable", "redis": {"error": str(error)},
                        "reasons": [f"redis: {error}"]}), 503, {"Retry-After": str(RETRY_AFTER_S)}
    reasons = [f"redis: {warning}" for warning in warnings] + _topology_reasons(redis_topology)
    warnings += [f"sentinel {s['address']} does not answer"
                 for s in redis_topology.get("sentinels", []) if not s["reachable"]]
    if services.uses_workers and not workers:
        reasons.append(f"no worker seen in the last {services.settings.worker_online_s:g} s")
    status, code = ("unavailable", 503) if reasons else ("ready", 200)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if reasons else {}
    return jsonify({"status": status, "reasons": reasons, "warnings": warnings,
                    "workers": workers, "redis": redis_topology, "beat": beat}), code, headers


def _topology_reasons(found: dict[str, Any]) -> list[str]:
    """Why this Redis cannot take customer messages now."""
    reasons = []
    if found["role"] != "master":
        reasons.append(f"redis: {found['master']} is a {found['role']}, not the master")
    wait = found["replica_wait"]
    online = [r for r in found["replicas"] if r["state"] == "online"]
    if wait["on"] and len(online) < wait["replicas"]:
        reasons.append(f"redis: {len(online)} of the {wait['replicas']} replica(s) the replica "
                       "wait needs are online: customer messages get 503 until one is back")
    return reasons


def _beat(ops: Any) -> dict[str, Any]:
    """Which beat sent the last periodic task, and how long ago each periodic task last ran."""
    now = time.time()
    latest = ops.dispatches(1)
    return {
        "active": latest[-1]["beat"] if latest else None,
        "last_dispatch_s_ago": round(now - latest[-1]["at"], 3) if latest else None,
        "last_runs_s_ago": {task: round(now - at, 3) for task, at in ops.last_runs().items()},
    }
