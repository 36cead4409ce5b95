"""The tools an assistant may call, declared once: name, description, JSON schema of arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def check_arguments(self, raw: str) -> dict[str, str]:
        """Parse and check the call's JSON arguments; ValueError says what is wrong."""
        try:
            arguments = json.loads(raw or "{}")
        except json.JSONDecodeError as error:
            raise ValueError(f"arguments are not valid JSON: {error.msg}") from error
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
        properties: dict[str, Any] = self.parameters["properties"]
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            raise ValueError(f"unknown arguments: {', '.join(unknown)}")
        for name in self.parameters["required"]:
            value = arguments.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"argument {name!r} must be a non-empty string")
        return {key: str(value) for key, value in arguments.items()}


def _strings(**descriptions: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text}
                       for name, text in descriptions.items()},
        "required": list(descriptions),
        "additionalProperties": False,
    }


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("handoff_to_human",
                 "Hand the conversation to a human support agent.",
                 _strings(reason="Why a person should take over.")),
        ToolSpec("set_contact_attribute",
                 "Save a fact about the customer as a contact attribute.",
                 _strings(name="Attribute name: letters, digits and underscores.",
                          value="The value to store.")),
        ToolSpec("save_note",
                 "Leave a private note on the conversation for the support team.",
                 _strings(text="The note.")),
    )
}
