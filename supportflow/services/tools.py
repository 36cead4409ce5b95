"""Runs the tools an assistant calls; bad calls become error outputs for the assistant."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from supportflow.domain.flow import Flow
from supportflow.domain.tools import TOOLS

from .ports import ToolCall
from .unit_of_work import Note, Work

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ToolRunner:
    """Executes one tool call on the unit of work and says what happened, as JSON.

    Its writes (attributes, notes) go out with the step's commit, like every other change.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    def run(self, work: Work, flow: Flow, call: ToolCall) -> str:
        """The tool's output; never raises for the assistant's mistakes."""
        conversation = work.conversation
        spec = TOOLS.get(call.name)
        if spec is None or call.name not in flow.tools:
            return _error(f"unknown tool {call.name!r}; available: {', '.join(flow.tools) or 'none'}")
        try:
            arguments = spec.check_arguments(call.arguments)
        except ValueError as error:
            return _error(str(error))
        if call.name == "handoff_to_human":
            conversation.handoff_reason = arguments["reason"]
            return json.dumps({"ok": True, "result": "a person will take over the conversation"})
        if call.name == "set_contact_attribute":
            if not ATTRIBUTE_NAME.fullmatch(arguments["name"]):
                return _error("attribute names use letters, digits and underscores (max 64)")
            work.set_attribute(arguments["name"], arguments["value"])
            return json.dumps({"ok": True, "result": f"saved {arguments['name']}"})
        work.add_note(Note(call.id, arguments["text"], self.clock()))
        return json.dumps({"ok": True, "result": "note saved"})


def _error(message: str) -> str:
    return json.dumps({"ok": False, "error": message})
