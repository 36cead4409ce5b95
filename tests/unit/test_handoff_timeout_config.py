"""The flow's handoff timeout settings: defaults, per-action messages, validation."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from supportflow.domain.flow import TIMEOUT_MESSAGES, HandoffTimeoutAction
from supportflow.flowconfig import load_flow

BASE = {"welcome": "Hi", "backend": {"kind": "assistants", "assistant_id": "asst_1"}}


def test_defaults_tell_after_five_minutes() -> None:
    handoff = load_flow("f", BASE).handoff
    assert handoff.timeout_s == 300.0
    assert handoff.on_timeout is HandoffTimeoutAction.TELL
    assert handoff.timeout_message == TIMEOUT_MESSAGES[HandoffTimeoutAction.TELL]


def test_return_gets_its_own_default_message_or_the_flows() -> None:
    flow = load_flow("f", {**BASE, "handoff": {"on_timeout": "return", "timeout": 60}})
    assert flow.handoff.on_timeout is HandoffTimeoutAction.RETURN
    assert flow.handoff.timeout_message == TIMEOUT_MESSAGES[HandoffTimeoutAction.RETURN]
    custom = load_flow("f", {**BASE, "handoff": {"timeout_message": "Hold on"}})
    assert custom.handoff.timeout_message == "Hold on"


@pytest.mark.parametrize("handoff", [{"on_timeout": "ignore"}, {"timeout": 0},
                                     {"timeout_message": ""}])
def test_bad_timeout_settings_are_refused(handoff: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        load_flow("f", {**BASE, "handoff": handoff})
