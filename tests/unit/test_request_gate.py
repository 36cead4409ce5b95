"""Ordinary requests pass a gate of so many at once; streams and health probes pass freely."""

from __future__ import annotations

import threading

from flask import Blueprint, Flask, request

from supportflow.web.gate import install_request_gate
from tests.helpers import wait_until


def gated_app(release: threading.Event, log: list[str]) -> Flask:
    app = Flask(__name__)

    @app.before_request
    def arrive() -> None:  # registered before the gate: runs before it
        log.append(f"arrived {request.path}")

    install_request_gate(app, 1)
    health = Blueprint("health", __name__)

    @app.get("/slow/<name>")
    def slow(name: str) -> str:
        log.append(f"in {name}")
        release.wait(10)
        log.append(f"out {name}")
        return name

    @health.get("/healthz")
    def healthz() -> str:
        return "ok"

    app.register_blueprint(health)
    return app


def test_a_request_past_the_gate_waits_for_a_permit_while_health_passes() -> None:
    release, log = threading.Event(), []
    client = gated_app(release, log).test_client()
    first = threading.Thread(target=client.get, args=("/slow/first",))
    second = threading.Thread(target=client.get, args=("/slow/second",))
    first.start()
    wait_until(lambda: "in first" in log)
    second.start()
    wait_until(lambda: "arrived /slow/second" in log)
    assert client.get("/healthz").status_code == 200  # while the one permit is taken
    release.set()
    first.join(10)
    second.join(10)
    slow_steps = [line for line in log if not line.startswith("arrived")]
    assert slow_steps == ["in first", "out first", "in second", "out second"]
