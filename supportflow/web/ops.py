"""Ops endpoints: Prometheus /metrics, the overview and the time series (ops token)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from marshmallow import Schema, fields, validate
from prometheus_client import CONTENT_TYPE_LATEST

from supportflow.domain.access import Role
from supportflow.observability.logs import CONTEXT
from supportflow.observability.redis_metrics import LazyMetrics, render

from .auth import require_role
from .deps import services
from .errors import is_transient
from .inputs import query

bp = Blueprint("ops", __name__)
log = logging.getLogger("supportflow.web")
F = TypeVar("F", bound=Callable[..., Any])


@bp.get("/metrics")
@require_role(Role.OPS)
def metrics() -> Response:
    """Prometheus text: counters and histograms of every process, gauges read now."""
    body = render(services().ops_view.families)
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


@bp.get("/v1/ops/overview")
@require_role(Role.OPS)
def overview() -> Response:
    """Conversations by state, queues, workers, counters, reply latency and recent failures."""
    return jsonify(services().ops_view.overview())


class TimeseriesQuerySchema(Schema):
    minutes = fields.Float(load_default=60.0, validate=validate.Range(
        min=0, max=1440, min_inclusive=False))


@bp.get("/v1/ops/timeseries")
@require_role(Role.OPS)
def timeseries() -> Response:
    """Points sampled by beat over the last `minutes` (default 60, at most 1440), oldest first."""
    minutes = query(TimeseriesQuerySchema())["minutes"]
    return jsonify({"points": services().ops_view.timeseries(minutes)})


def lazy_metrics() -> LazyMetrics:
    """This app's metrics written about once a second (timings of hot routes)."""
    found = current_app.extensions.get("supportflow_lazy_metrics")
    if found is None:
        found = current_app.extensions["supportflow_lazy_metrics"] = LazyMetrics(
            services().metrics)
    return cast(LazyMetrics, found)


def timed(kind: str) -> Callable[[F], F]:
    """Record how long the view took in supportflow_webhook_seconds{kind}."""

    def decorate(view: F) -> F:
        @wraps(view)
        def measured(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return view(*args, **kwargs)
            finally:
                try:
                    lazy_metrics().observe("supportflow_webhook_seconds",
                                           time.perf_counter() - started, kind=kind)
                except Exception as error:  # a lost observation must not change the answer
                    if not is_transient(error):
                        raise
                    log.warning("webhook timing not recorded: %s", error)

        return cast(F, measured)

    return decorate


def install_request_ids(app: Flask) -> None:
    """Give every request an id (X-Request-Id, or a new one) on its log lines and its response."""

    @app.before_request
    def bind_request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        g.log_token = CONTEXT.set({"request_id": g.request_id})

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response

    @app.teardown_request
    def unbind_request_id(_: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            with contextlib.suppress(ValueError):  # set in another context: nothing to undo
                CONTEXT.reset(token)
