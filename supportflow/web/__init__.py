"""The web layer: `create_app(config=None)` builds the Flask app; nothing is built at import."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from supportflow.settings import load_settings

from .cors import install_cors
from .errors import register_error_handlers
from .gate import install_request_gate
from .stream_slots import StreamSlots


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
    _sessions(app, services)
    # Set when the process is asked to stop (granian's SIGTERM, see serve.py): open event
    # streams end at once, and their clients reconnect elsewhere with Last-Event-ID.
    app.extensions["supportflow_stopping"] = threading.Event()
    app.extensions["supportflow_stream_slots"] = StreamSlots(
        total=services.settings.stream_max_open,
        per_client=services.settings.stream_max_open_per_client)
    register_error_handlers(app)
    # First of the request hooks: nothing runs before a request is let in.
    install_request_gate(app, services.settings.web_requests_at_once)
    from . import agents, health, openapi, streams, widget

    app.register_blueprint(health.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(agents.bp)
    app.register_blueprint(streams.bp)
    from . import openai_webhooks, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(openai_webhooks.bp)
    from . import ops

    app.register_blueprint(ops.bp)
    from . import pages

    app.register_blueprint(pages.bp)
    from . import actions, contacts, knowledge, oauth, signin

    app.register_blueprint(contacts.bp)

    app.register_blueprint(signin.bp)
    app.register_blueprint(knowledge.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(actions.bp)
    oauth.init_oauth(app, services)
    ops.install_request_ids(app)
    install_cors(app)  # before the rate limits: a refused origin costs no Redis round trip
    from .limits import install_rate_limits
    from .widget_assets import install_widget_assets

    install_rate_limits(app, services)
    install_widget_assets(app)
    hops = services.settings.trusted_proxies
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    # JSON log lines, unless the config says otherwise (tests keep pytest's log capture).
    if app.config.get("SUPPORTFLOW_JSON_LOGS", not app.testing):
        from supportflow.observability.logs import configure_logging

        configure_logging(services.settings.log_level)
    return app


def _sessions(app: Flask, services: Any) -> None:
    """Accounts' sessions in Redis and CSRF tokens signed with the secret key.

    SUPPORTFLOW_SECRET_KEY is required, except in tests, which may run on a key made for the
    process (sessions then live as long as the process).
    """
    from .sessions import RedisSessionInterface

    secret = services.settings.secret_key
    if not secret:
        if not app.testing:
            raise RuntimeError("SUPPORTFLOW_SECRET_KEY is not set: the web app needs it to "
                               "sign CSRF tokens (make one: python3 -c 'import secrets; "
                               "print(secrets.token_urlsafe(48))')")
        secret = secrets.token_urlsafe(48)
    app.secret_key = secret
    app.session_interface = RedisSessionInterface(services.web_sessions,
                                                  secure=services.settings.secure_cookies)
    # CSRF is checked where a browser's cookie could act (forms, session-authenticated API
    # calls), not on bearer-token or OAuth client calls, which carry no ambient credential.
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    CSRFProtect(app)


def _default_services(overrides: Mapping[str, Any] | None) -> Any:
    from supportflow.bootstrap import bootstrap

    return bootstrap(load_settings(overrides))
