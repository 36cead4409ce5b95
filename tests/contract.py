"""The OpenAI API contract for tests: find operations, validate bodies, record HTTP traffic."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "openai-openapi.yaml"
if not CONTRACT_PATH.exists():
    CONTRACT_PATH = Path("/work/shared/contracts/openai-openapi.yaml")
CONTRACT_URI = "urn:openai-openapi"
METHODS = ("get", "post", "put", "patch", "delete")


class ContractError(AssertionError):
    """A request or response that the API description does not allow."""


def _nullable(node: Any) -> Any:
    """Turn OpenAPI 3.0 `nullable: true` (left in the 3.1 file) into JSON Schema `null`."""
    if isinstance(node, list):
        return [_nullable(entry) for entry in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable(value) for key, value in node.items()}
    if node.pop("nullable", False) is not True:
        return node
    return {"anyOf": [node, {"type": "null"}]}


def _allof_nullable(node: Any) -> Any:
    """`allOf: [$ref, {nullable: true}]` becomes `anyOf: [$ref, null]`; discriminated oneOf,
    whose branches may share a `type` value, becomes anyOf."""
    if isinstance(node, list):
        return [_allof_nullable(entry) for entry in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allof_nullable(value) for key, value in node.items()}
    if "discriminator" in node and "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    parts = node.get("allOf")
    if isinstance(parts, list) and any(p == {"nullable": True} for p in parts):
        rest = [p for p in parts if p != {"nullable": True}]
        node.pop("allOf")
        return {**node, "anyOf": [{"allOf": rest}, {"type": "null"}]}
    return node


@functools.cache
def contract() -> dict[str, Any]:
    """The API description, loaded once (CSafeLoader) with nullable normalised."""
    with CONTRACT_PATH.open(encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=yaml.CSafeLoader)
    return dict(_nullable(_allof_nullable(raw)))


@functools.cache
def registry() -> Registry[Any]:
    """A referencing registry holding the whole document under CONTRACT_URI."""
    resource = Resource.from_contents(contract(), default_specification=DRAFT202012)
    return Registry().with_resource(CONTRACT_URI, resource)


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{CONTRACT_URI}#{pointer}"}, registry=registry())


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    spec: Mapping[str, Any]

    @property
    def pointer(self) -> str:
        return f"/paths/{_escape(self.template)}/{self.method}"


@functools.cache
def _operations() -> list[tuple[re.Pattern[str], Operation]]:
    found: list[tuple[int, re.Pattern[str], Operation]] = []
    for template, item in contract()["paths"].items():
        if "?" in template:
            continue
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method in METHODS:
            if method in item:
                op = Operation(method, template, item[method].get("operationId", ""), item[method])
                found.append((template.count("{"), pattern, op))
    found.sort(key=lambda entry: entry[0])
    return [(pattern, op) for _, pattern, op in found]


def find_operation(method: str, path: str) -> Operation:
    """The operation for a method and a concrete path (a /v1 prefix and query are ignored)."""
    bare = urlsplit(path).path
    bare = bare[3:] if bare.startswith("/v1/") else bare
    for pattern, op in _operations():
        if op.method == method.lower() and pattern.match(bare):
            return op
    raise ContractError(f"no operation {method} {bare} in the API description")


def _check(pointer: str, body: Any, what: str) -> None:
    errors = sorted(_validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in errors[:5]
        )
        raise ContractError(f"{what}: {detail}")


def _parameter_names(op: Operation) -> set[str]:
    names: set[str] = set()
    for param in op.spec.get("parameters", []):
        if "$ref" in param:
            param = contract()["components"]["parameters"][param["$ref"].rsplit("/", 1)[-1]]
        if param.get("in") == "query":
            names.add(param["name"])
    return names


def validate_request(method: str, path: str, body: Any, content_type: str | None = None
                     ) -> Operation:
    """Check a request's query names and body (JSON, or multipart form fields) against the
    operation; return it."""
    op = find_operation(method, path)
    unknown = {k for k, _ in parse_qsl(urlsplit(path).query)} - _parameter_names(op)
    if unknown:
        raise ContractError(f"{method} {path}: unknown query parameters {sorted(unknown)}")
    request_body = op.spec.get("requestBody")
    if request_body is None:
        if body is not None:
            raise ContractError(f"{method} {path}: the operation takes no body")
        return op
    if body is None:
        if request_body.get("required"):
            raise ContractError(f"{method} {path}: a body is required")
        return op
    media = "application/json"
    if content_type and content_type.startswith("multipart/form-data"):
        media, body = "multipart/form-data", multipart_fields(content_type, body)
    if media not in request_body.get("content", {}):
        raise ContractError(f"{method} {path}: the operation takes no {media} body")
    pointer = f"{op.pointer}/requestBody/content/{_escape(media)}/schema"
    _check(pointer, body, f"request {method} {path}")
    return op


def multipart_fields(content_type: str, body: Any) -> dict[str, str]:
    """The form fields of a multipart body (a file part's value is its content as text)."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    found: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        found[str(name)] = payload.decode("utf-8", "replace")
    return found


def validate_response(method: str, path: str, status: int, body: Any) -> Operation:
    """Check a response body against the operation's schema for that status (or ErrorResponse)."""
    op = find_operation(method, path)
    described = op.spec.get("responses", {}).get(str(status), {})
    schema = described.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        pointer = f"{op.pointer}/responses/{status}/content/application~1json/schema"
    elif status >= 400:
        pointer = "/components/schemas/ErrorResponse"
    else:
        raise ContractError(f"{method} {path}: status {status} is not described")
    _check(pointer, body, f"response {status} {method} {path}")
    return op


@dataclass(frozen=True)
class Exchange:
    """One request and its response, as seen on the wire."""

    method: str
    path: str
    request_headers: httpx.Headers
    request_body: Any
    status: int
    response_headers: httpx.Headers
    response_body: Any


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport and records every request/response pair through it."""

    inner: httpx.BaseTransport = field(default_factory=httpx.HTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request, record both sides, and hand back a readable response."""
        request.read()
        response = self.inner.handle_request(request)
        content = response.read()
        response.close()
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.raw_path.decode("ascii"),
                request_headers=request.headers,
                request_body=_json_or_none(request.content),
                status=response.status_code,
                response_headers=response.headers,
                response_body=_json_or_none(content),
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def close(self) -> None:
        """Close the wrapped transport."""
        self.inner.close()


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def validate_webhook_event(body: Any) -> None:
    """Check a webhook event against the description's `webhooks:` entry for its type."""
    name = str(body.get("type", "")).replace(".", "_") if isinstance(body, dict) else ""
    if name not in contract().get("webhooks", {}):
        raise ContractError(f"no webhook event {name!r} in the API description")
    _check(f"/webhooks/{_escape(name)}/post/requestBody/content/application~1json/schema", body,
           f"webhook {name}")
