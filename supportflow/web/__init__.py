"""The web layer: `create_app(config=None)` builds the Flask app; nothing is built at import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from supportflow.settings import load_settings

from .errors import register_error_handlers


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then overrides, then blueprints.

    `config` may hold `SUPPORTFLOW_SETTINGS` (overrides of Settings fields) and
    `SUPPORTFLOW_SERVICES` (prebuilt services, as tests pass them).
    """
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=256 * 1024)
    if config:
        app.config.update(config)
    services = app.config.get("SUPPORTFLOW_SERVICES") or _default_services(
        app.config.get("SUPPORTFLOW_SETTINGS")
    )
    app.extensions["supportflow"] = services
    register_error_handlers(app)
    from . import agents, health, openapi, streams, widget

    app.register_blueprint(health.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(agents.bp)
    app.register_blueprint(streams.bp)
    from . import webhooks

    app.register_blueprint(webhooks.bp)
    from . import ops

    app.register_blueprint(ops.bp)
    from . import pages

    app.register_blueprint(pages.bp)
    ops.install_request_ids(app)
    # JSON log lines, unless the config says otherwise (tests keep pytest's log capture).
    if app.config.get("SUPPORTFLOW_JSON_LOGS", not app.testing):
        from supportflow.observability.logs import configure_logging

        configure_logging(services.settings.log_level)
    return app


def _default_services(overrides: Mapping[str, Any] | None) -> Any:
    from supportflow.bootstrap import bootstrap

    return bootstrap(load_settings(overrides))
