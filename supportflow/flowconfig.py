"""Flow files: YAML in config/flows/, validated by marshmallow into domain Flows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from supportflow.domain.flow import (
    MAX_POLL_DELAY_S,
    TIMEOUT_MESSAGES,
    Backend,
    BackendKind,
    Fallback,
    FallbackAction,
    Flow,
    Handoff,
    HandoffTimeoutAction,
    PollSchedule,
    PromptRef,
    ThreadScope,
)
from supportflow.domain.tools import TOOLS

DEFAULT_HANDOFF_MARKER = "I'll connect you with a member of our team."


class FlowError(Exception):
    """A flow file that cannot be used; the message names the file and the fields."""


class PromptSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.String(load_default=None)
    variables = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PromptRef:
        return PromptRef(**data)


class BackendSchema(Schema):
    kind = fields.Enum(BackendKind, by_value=True, required=True)
    assistant_id = fields.String(load_default=None)
    prompt = fields.Nested(PromptSchema, load_default=None)
    model = fields.String(load_default=None)
    instructions = fields.String(load_default=None)
    connector = fields.String(load_default=None)

    @validates_schema
    def check_reference(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind")
        if kind is BackendKind.ASSISTANTS and not data.get("assistant_id"):
            raise ValidationError("the assistants backend needs an assistant_id", "assistant_id")
        if kind is BackendKind.RESPONSES and not (data.get("prompt") or data.get("model")):
            raise ValidationError("the responses backend needs a prompt or a model", "prompt")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Backend:
        return Backend(**data)


class ThreadSchema(Schema):
    scope = fields.Enum(ThreadScope, by_value=True, load_default=ThreadScope.CONVERSATION)
    id = fields.String(load_default=None)

    @validates_schema
    def check_static(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope") is ThreadScope.STATIC and not data.get("id"):
            raise ValidationError("a static thread scope needs the thread id", "id")


class HandoffSchema(Schema):
    markers = fields.List(
        fields.String(validate=validate.Length(min=1)),
        load_default=lambda: [DEFAULT_HANDOFF_MARKER],
    )
    message = fields.String(
        load_default="You're being transferred to a person from our team. They'll answer here."
    )
    timeout = fields.Float(load_default=300.0, validate=validate.Range(min=0.5, max=7 * 86400))
    on_timeout = fields.Enum(HandoffTimeoutAction, by_value=True,
                             load_default=HandoffTimeoutAction.TELL)
    timeout_message = fields.String(load_default=None, validate=validate.Length(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Handoff:
        action = data["on_timeout"]
        return Handoff(markers=tuple(data["markers"]), message=data["message"],
                       timeout_s=data["timeout"], on_timeout=action,
                       timeout_message=data["timeout_message"] or TIMEOUT_MESSAGES[action])


class PollSchema(Schema):
    delays = fields.List(
        fields.Float(validate=validate.Range(min=0.05, max=MAX_POLL_DELAY_S)),
        validate=validate.Length(min=1),
        load_default=lambda: [1.0, 2.0, 4.0, 8.0, 10.0],
    )
    deadline = fields.Float(validate=validate.Range(min=0.1, max=3600), load_default=120.0)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PollSchedule:
        return PollSchedule(delays=tuple(data["delays"]), deadline_s=data["deadline"])


class FallbackSchema(Schema):
    action = fields.Enum(FallbackAction, by_value=True, load_default=FallbackAction.HANDOFF)
    message = fields.String(load_default=Fallback().message)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Fallback:
        return Fallback(**data)


class FlowSchema(Schema):
    welcome = fields.String(required=True, validate=validate.Length(min=1))
    attribute = fields.String(
        load_default="gpt_response",
        validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"),
    )
    thread = fields.Nested(ThreadSchema, load_default=lambda: {"scope": ThreadScope.CONVERSATION})
    backend = fields.Nested(BackendSchema, required=True)
    handoff = fields.Nested(HandoffSchema, load_default=lambda: HandoffSchema().load({}))
    poll = fields.Nested(PollSchema, load_default=PollSchedule)
    fallback = fields.Nested(FallbackSchema, load_default=Fallback)
    max_step_retries = fields.Integer(load_default=5, validate=validate.Range(min=0, max=20))
    tools = fields.List(fields.String(validate=validate.OneOf(sorted(TOOLS))), load_default=list)


def load_flow(name: str, data: Mapping[str, Any]) -> Flow:
    """Validate one flow's data; raises ValidationError with field paths."""
    loaded = FlowSchema().load(data)
    thread = loaded.pop("thread")
    loaded["tools"] = tuple(loaded["tools"])
    return Flow(
        name=name,
        thread_scope=thread["scope"],
        static_thread_id=thread.get("id"),
        **loaded,
    )


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
        return self.flows[name]

    def names(self) -> list[str]:
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
