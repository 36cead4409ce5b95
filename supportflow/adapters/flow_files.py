"""Flow files: YAML validated by marshmallow into the domain's Flow, which holds every default.

The schemas only check what a file says; a field the file leaves out takes the dataclass's
default, so the defaults live in one place (supportflow/domain/flow.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from supportflow.domain.flow import (
    MAX_POLL_DELAY_S,
    WEBHOOK_DELAYS,
    Backend,
    BackendKind,
    Fallback,
    FallbackAction,
    Flow,
    Handoff,
    HandoffTimeoutAction,
    IdentityMode,
    PollSchedule,
    PromptRef,
    ThreadScope,
    WidgetAccess,
)
from supportflow.domain.tools import TOOLS

ATTRIBUTE_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class FlowError(Exception):
    """A flow file that cannot be used; the message names the file and the fields."""


class PromptSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.String()
    variables = fields.Dict(keys=fields.String(), values=fields.String())

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PromptRef:
        return PromptRef(**data)


class BackendSchema(Schema):
    kind = fields.Enum(BackendKind, by_value=True, required=True)
    assistant_id = fields.String()
    prompt = fields.Nested(PromptSchema)
    model = fields.String()
    instructions = fields.String()
    connector = fields.String()
    vector_store_id = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_\-]{1,128}$"))

    @validates_schema
    def check_reference(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind")
        if data.get("vector_store_id") and kind is not BackendKind.RESPONSES:
            raise ValidationError("file search needs the responses backend", "vector_store_id")
        if kind is BackendKind.ASSISTANTS and not data.get("assistant_id"):
            raise ValidationError("the assistants backend needs an assistant_id", "assistant_id")
        if kind is BackendKind.RESPONSES and not (data.get("prompt") or data.get("model")):
            raise ValidationError("the responses backend needs a prompt or a model", "prompt")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Backend:
        return Backend(**data)


class ThreadSchema(Schema):
    scope = fields.Enum(ThreadScope, by_value=True)
    id = fields.String()

    @validates_schema
    def check_static(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope") is ThreadScope.STATIC and not data.get("id"):
            raise ValidationError("a static thread scope needs the thread id", "id")


class HandoffSchema(Schema):
    markers = fields.List(fields.String(validate=validate.Length(min=1)))
    message = fields.String()
    timeout = fields.Float(validate=validate.Range(min=0.5, max=7 * 86400), attribute="timeout_s")
    on_timeout = fields.Enum(HandoffTimeoutAction, by_value=True)
    timeout_message = fields.String(validate=validate.Length(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Handoff:
        if "markers" in data:
            data["markers"] = tuple(data["markers"])
        return Handoff(**data)


class PollSchema(Schema):
    delays = fields.List(fields.Float(validate=validate.Range(min=0.05, max=MAX_POLL_DELAY_S)),
                         validate=validate.Length(min=1))
    deadline = fields.Float(validate=validate.Range(min=0.1, max=3600), attribute="deadline_s")
    webhooks = fields.Boolean()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PollSchedule:
        if "delays" in data:
            data["delays"] = tuple(data["delays"])
        elif data.get("webhooks"):
            data["delays"] = WEBHOOK_DELAYS
        return PollSchedule(**data)


class FallbackSchema(Schema):
    action = fields.Enum(FallbackAction, by_value=True)
    message = fields.String()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Fallback:
        return Fallback(**data)


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_problem(text: str) -> str | None:
    """Why `text` is not an exact web origin as browsers send it (None when it is one)."""
    if "*" in text:
        return f"{text!r}: exact origins only, no wildcards (e.g. https://shop.example)"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return f"{text!r}: not an origin (e.g. https://shop.example)"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return f"{text!r}: an origin is https:// or http:// and a host (e.g. https://shop.example)"
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return f"{text!r}: an origin has no path, query or user (e.g. https://shop.example)"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if not host.isascii():  # browsers send international names in their xn-- form
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{text!r}: not a valid host name"
    exact = f"{parts.scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")
    if text != exact:
        return f"{text!r}: write it as browsers send it: {exact!r}"
    return None


def check_origin(text: str) -> None:
    problem = origin_problem(text)
    if problem:
        raise ValidationError(problem)


class WidgetSchema(Schema):
    allowed_origins = fields.List(fields.String(validate=check_origin))
    identity = fields.Enum(IdentityMode, by_value=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> WidgetAccess:
        if "allowed_origins" in data:
            data["allowed_origins"] = tuple(dict.fromkeys(data["allowed_origins"]))
        return WidgetAccess(**data)


class FlowSchema(Schema):
    welcome = fields.String(required=True, validate=validate.Length(min=1))
    attribute = fields.String(validate=ATTRIBUTE_NAME)
    thread = fields.Nested(ThreadSchema)
    backend = fields.Nested(BackendSchema, required=True)
    handoff = fields.Nested(HandoffSchema)
    poll = fields.Nested(PollSchema)
    fallback = fields.Nested(FallbackSchema)
    max_step_retries = fields.Integer(validate=validate.Range(min=0, max=20))
    tools = fields.List(fields.String(validate=validate.OneOf(sorted(TOOLS))))
    widget = fields.Nested(WidgetSchema)

    @validates_schema
    def check_webhooks(self, data: dict[str, Any], **_: Any) -> None:
        poll, backend = data.get("poll"), data.get("backend")
        if poll is not None and poll.webhooks and backend is not None \
                and backend.kind is BackendKind.ASSISTANTS:
            raise ValidationError("the Assistants API sends no webhooks: webhooks need the "
                                  "responses backend", "poll")


def load_flow(name: str, data: Mapping[str, Any]) -> Flow:
    """Validate one flow's data; raises ValidationError with field paths."""
    loaded = FlowSchema().load(data)
    thread = loaded.pop("thread", {})
    if "scope" in thread:
        loaded["thread_scope"] = thread["scope"]
    if "id" in thread:
        loaded["static_thread_id"] = thread["id"]
    if "tools" in loaded:
        loaded["tools"] = tuple(loaded["tools"])
    return Flow(name=name, **loaded)


def load_flow_file(path: Path) -> Flow:
    """Read and validate one YAML flow file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise FlowError(f"{path}: cannot read: {error}") from error
    if not isinstance(data, dict):
        raise FlowError(f"{path}: a flow file must hold a mapping at the top")
    try:
        return load_flow(path.stem, data)
    except ValidationError as error:
        raise FlowError(f"{path}: {format_errors(error.messages)}") from error


def format_errors(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested messages into `field.sub: message` parts."""
    if isinstance(messages, dict):
        parts = [
            format_errors(value, f"{prefix}.{key}" if prefix else str(key))
            for key, value in messages.items()
        ]
        return "; ".join(parts)
    if isinstance(messages, list):
        texts = [m if isinstance(m, str) else format_errors(m, prefix) for m in messages]
        return f"{prefix}: {' '.join(texts)}" if prefix else " ".join(texts)
    return f"{prefix}: {messages}"


@dataclass
class FlowDirectory:
    """All flows of a folder, loaded once; `default` names the one new conversations get."""

    flows: dict[str, Flow]
    default: str

    def get(self, name: str) -> Flow:
        """The named flow; KeyError when there is none."""
        return self.flows[name]

    def names(self) -> list[str]:
        """The flows' names, sorted."""
        return sorted(self.flows)

    @classmethod
    def load(cls, folder: Path, default: str = "default") -> FlowDirectory:
        """Load every `*.yaml` flow in the folder; raise FlowError listing every bad file."""
        flows: dict[str, Flow] = {}
        errors: list[str] = []
        for path in sorted(folder.glob("*.yaml")):
            try:
                flows[path.stem] = load_flow_file(path)
            except FlowError as error:
                errors.append(str(error))
        if errors:
            raise FlowError("\n".join(errors))
        if default not in flows:
            raise FlowError(f"{folder}: no flow named {default!r} (found: {sorted(flows)})")
        return cls(flows=flows, default=default)
