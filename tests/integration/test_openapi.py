"""The OpenAPI document is valid and documents every API route the app serves."""

from __future__ import annotations

import json
import re
from typing import Any

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from supportflow.web.openapi import build_spec
from tests.isolated import Isolated

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


def read_events(body: str) -> list[dict[str, str]]:
    """The events of a text/event-stream body (comments and retry-only frames skipped)."""
    found = []
    for frame in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines()
                      if line and not line.startswith(":") and ": " in line)
        if "data" in fields:
            found.append(fields)
    return found


def test_stream_events_carry_what_the_document_says(isolated: Isolated) -> None:
    document = isolated.api.get("/openapi.json").get_json()
    conversation = isolated.start()
    visitor = isolated.visitor[conversation]
    isolated.api.post(f"/v1/conversations/{conversation}/messages", json={"text": "hello"},
                      headers=visitor)
    body = isolated.api.get(f"/v1/conversations/{conversation}/events",
                            headers=visitor).get_data(as_text=True)
    stream = document["paths"]["/v1/conversations/{conversation_id}/events"]["get"]
    envelope = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    name = envelope["x-data-schema"]["$ref"].rsplit("/", 1)[1]
    resolver = {"components": document["components"]}
    data_schema = {**document["components"]["schemas"][name], **resolver}
    events = read_events(body)
    assert [event["id"] for event in events] == ["1", "2"]
    for event in events:
        OAS30Validator(envelope).validate(event)
        OAS30Validator(data_schema).validate(json.loads(event["data"]))
