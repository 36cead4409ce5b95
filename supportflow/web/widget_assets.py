"""The chat widget's files at versioned URLs: /static/widget/<version>/widget.js and widget.css.

The version is a hash of both files, so one URL always means the same bytes: browsers and CDNs
may keep them for a year, and the script's Subresource Integrity hash (in the README's embed
snippet, and on /demo) stays true for as long as the URL does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request

from .errors import ApiError

STATIC = Path(__file__).parent / "static"
TYPES = {"widget.js": "text/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8"}
ONE_YEAR_S = 365 * 86400

bp = Blueprint("widget_assets", __name__)


@dataclass(frozen=True)
class WidgetAssets:
    """The widget's files as served, and the version that names them."""

    files: dict[str, bytes]
    version: str

    @classmethod
    def load(cls, folder: Path = STATIC) -> WidgetAssets:
        files = {name: (folder / name).read_bytes() for name in TYPES}
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        return cls(files=files, version=digest.hexdigest()[:16])

    def path(self, name: str) -> str:
        return f"/static/widget/{self.version}/{name}"

    def integrity(self, name: str) -> str:
        """The Subresource Integrity value of a file (sha384)."""
        return "sha384-" + base64.b64encode(hashlib.sha384(self.files[name]).digest()).decode()

    def snippet(self, base_url: str, flow: str) -> str:
        """The tag a helpdesk owner puts on their site to embed this widget for `flow`."""
        return (f'<script src="{base_url.rstrip("/")}{self.path("widget.js")}"\n'
                f'        integrity="{self.integrity("widget.js")}"\n'
                f'        crossorigin="anonymous" data-flow="{flow}" defer></script>')


def widget_assets() -> WidgetAssets:
    found: WidgetAssets = current_app.extensions["supportflow_widget"]
    return found


@bp.get("/static/widget/<version>/<name>")
def asset(version: str, name: str) -> Response:
    """A widget file; immutable, and readable by any site (SRI needs CORS)."""
    assets = widget_assets()
    if version != assets.version or name not in assets.files:
        raise ApiError(404, "not_found", f"no widget file {version}/{name}; the current one is "
                       f"{assets.path('widget.js')}")
    response = Response(assets.files[name], content_type=TYPES[name])
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_S}, immutable"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(assets.version)
    response.make_conditional(request)
    return response


def install_widget_assets(app: Flask) -> None:
    """Read the widget's files once and serve them under their version."""
    assets = WidgetAssets.load()
    app.extensions["supportflow_widget"] = assets
    app.jinja_env.globals["widget_assets"] = assets
    app.register_blueprint(bp)
