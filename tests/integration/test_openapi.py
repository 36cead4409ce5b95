"""The OpenAPI document is valid and documents every API route the app serves."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from supportflow.web.openapi import build_spec

# HTML pages (sign-in, the OAuth consent page), static files and the documents themselves are
# not API operations.
NOT_API = ("pages.", "static", "openapi.", "signin.", "oauth.authorize", "oauth.decide",
           "actions.document", "widget_assets.")


def test_the_document_is_valid_openapi() -> None:
    validate(build_spec())


def test_every_api_route_is_documented_with_its_methods(client: Any) -> None:
    paths = build_spec()["paths"]
    app = client.application
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_API):
            continue
        # A trailing slash is an alias of the documented path.
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).rstrip("/") or "/"
        assert path in paths, f"{path} is served but not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {path} is not documented"
