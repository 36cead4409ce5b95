"""Flow files: the default flow loads; every bad field is named with its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from marshmallow import ValidationError

from supportflow import defaults
from supportflow.adapters.flow_files import FlowDirectory, FlowError, load_flow, load_flow_file
from supportflow.domain.flow import (
    TIMEOUT_MESSAGES,
    WEBHOOK_DELAYS,
    Backend,
    BackendKind,
    FallbackAction,
    Flow,
    Handoff,
    HandoffTimeoutAction,
    IdentityMode,
    ThreadScope,
)

VALID: dict[str, Any] = {
    "welcome": "Hi! How can I help?",
    "backend": {"kind": "responses", "model": "gpt-4.1-mini"},
}


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def error_of(tmp_path: Path, data: Any, name: str = "broken") -> str:
    path = write(tmp_path, name, data)
    with pytest.raises(FlowError) as caught:
        load_flow_file(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_the_shipped_default_flow_loads_as_the_canonical_flow() -> None:
    flows = FlowDirectory.load(defaults.FLOWS)
    flow = flows.get(flows.default)
    assert flows.default == "default"
    assert flow.attribute == "gpt_response"
    assert flow.thread_scope is ThreadScope.CONVERSATION
    assert flow.backend.kind is BackendKind.RESPONSES
    assert flow.poll.ceiling == 10.0
    assert flow.fallback.action is FallbackAction.HANDOFF
    assert "I'll connect you with a member of our team." in flow.handoff.markers
    assert flow.handoff.message == Handoff().message


def test_a_minimal_flow_is_the_domains_flow_with_its_defaults(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "minimal", VALID))
    assert flow == Flow(name="minimal", welcome=VALID["welcome"],
                        backend=Backend(kind=BackendKind.RESPONSES, model="gpt-4.1-mini"))


def test_a_minimal_flow_gets_the_documented_defaults(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "minimal", VALID))
    assert flow.name == "minimal"
    assert flow.attribute == "gpt_response"
    assert flow.thread_scope is ThreadScope.CONVERSATION
    assert flow.poll.delays == (1.5,) * 8 + (2.0, 3.0, 5.0, 10.0)
    assert flow.fallback.action is FallbackAction.HANDOFF


def test_the_seed_schedule_of_a_fixed_ten_second_delay_is_accepted(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "seed", {**VALID, "poll": {"delays": [10]}}))
    assert flow.poll.delays == (10.0,)
    assert flow.poll.delay(5) == 10.0


def test_webhooks_on_take_the_webhook_schedule_unless_the_flow_gives_delays(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "hooked", {**VALID, "poll": {"webhooks": True}}))
    assert flow.poll.webhooks and flow.poll.delays == WEBHOOK_DELAYS
    assert max(WEBHOOK_DELAYS) <= 10.0
    given = {**VALID, "poll": {"webhooks": True, "delays": [2, 10]}}
    assert load_flow_file(write(tmp_path, "given", given)).poll.delays == (2.0, 10.0)
    assert not load_flow_file(write(tmp_path, "plain", VALID)).poll.webhooks


def test_webhooks_on_the_assistants_backend_are_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, {**VALID, "backend": {"kind": "assistants", "assistant_id": "a"},
                                  "poll": {"webhooks": True}})
    assert "poll:" in message and "no webhooks" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"welcome": ""}, "welcome"),
        ({"attribute": "not a name"}, "attribute"),
        ({"backend": {"kind": "chat"}}, "backend.kind"),
        ({"thread": {"scope": "forever"}}, "thread.scope"),
        ({"poll": {"delays": []}}, "poll.delays"),
        ({"poll": {"deadline": 0}}, "poll.deadline"),
        ({"fallback": {"action": "shrug"}}, "fallback.action"),
        ({"max_step_retries": 99}, "max_step_retries"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_field_is_reported_with_the_file_and_the_field(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    message = error_of(tmp_path, {**VALID, **change})
    assert f"{field}:" in message


def test_a_missing_welcome_and_backend_are_both_reported(tmp_path: Path) -> None:
    message = error_of(tmp_path, {"attribute": "x"})
    assert "welcome:" in message
    assert "backend:" in message


def test_a_poll_delay_over_ten_seconds_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, {**VALID, "poll": {"delays": [1, 2, 11]}})
    assert "poll.delays.2:" in message


def test_a_static_thread_scope_needs_the_thread_id(tmp_path: Path) -> None:
    message = error_of(tmp_path, {**VALID, "thread": {"scope": "static"}})
    assert "thread.id:" in message


def test_a_static_thread_scope_with_an_id_keeps_it(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "static", {**VALID, "thread": {"scope": "static",
                                                                          "id": "thread_abc"}}))
    assert flow.thread_scope is ThreadScope.STATIC
    assert flow.static_thread_id == "thread_abc"


def test_the_assistants_backend_needs_an_assistant_id(tmp_path: Path) -> None:
    message = error_of(tmp_path, {**VALID, "backend": {"kind": "assistants"}})
    assert "backend.assistant_id:" in message


def test_the_responses_backend_needs_a_prompt_or_a_model(tmp_path: Path) -> None:
    message = error_of(tmp_path, {**VALID, "backend": {"kind": "responses"}})
    assert "backend.prompt:" in message


def test_the_responses_backend_accepts_a_stored_prompt(tmp_path: Path) -> None:
    backend = {"kind": "responses", "prompt": {"id": "pmpt_1", "version": "2"}}
    flow = load_flow_file(write(tmp_path, "prompted", {**VALID, "backend": backend}))
    assert flow.backend.prompt is not None
    assert flow.backend.prompt.id == "pmpt_1"


def test_a_file_that_is_not_yaml_is_reported(tmp_path: Path) -> None:
    assert "cannot read" in error_of(tmp_path, "welcome: [unclosed")


def test_a_file_without_a_mapping_at_the_top_is_reported(tmp_path: Path) -> None:
    assert "mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_a_directory_reports_every_bad_file_at_once(tmp_path: Path) -> None:
    write(tmp_path, "default", VALID)
    write(tmp_path, "one", {**VALID, "welcome": ""})
    write(tmp_path, "two", {**VALID, "backend": {"kind": "assistants"}})
    with pytest.raises(FlowError) as caught:
        FlowDirectory.load(tmp_path)
    assert "one.yaml" in str(caught.value)
    assert "two.yaml" in str(caught.value)


def test_a_directory_without_the_default_flow_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "other", VALID)
    with pytest.raises(FlowError, match="no flow named 'default'"):
        FlowDirectory.load(tmp_path)


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


def test_widget_allowed_origins_load_as_exact_origins(tmp_path: Path) -> None:
    origins = ["https://shop.example", "http://127.0.0.1:8080", "https://shop.example"]
    flow = load_flow_file(write(tmp_path, "site", {**VALID, "widget": {"allowed_origins": origins}}))
    assert flow.widget.allowed_origins == ("https://shop.example", "http://127.0.0.1:8080")
    assert flow.widget.allows("https://shop.example")
    assert not flow.widget.allows("https://shop.example.evil")
    assert load_flow_file(write(tmp_path, "plain", VALID)).widget.allowed_origins == ()


@pytest.mark.parametrize(("origin", "says"), [
    ("*", "no wildcards"),
    ("https://*.shop.example", "no wildcards"),
    ("shop.example", "https:// or http://"),
    ("ftp://shop.example", "https:// or http://"),
    ("https://shop.example/", "no path"),
    ("https://shop.example/chat?x=1", "no path"),
    ("https://Shop.Example", "'https://shop.example'"),
    ("https://shop.example:443", "'https://shop.example'"),
    ("https://bücher.example", "'https://xn--bcher-kva.example'"),
    ("http://shop.example:99999", "not an origin"),
])
def test_a_malformed_widget_origin_is_named_with_how_to_write_it(
    tmp_path: Path, origin: str, says: str
) -> None:
    message = error_of(tmp_path, {**VALID, "widget": {"allowed_origins": ["https://ok.example", origin]}})
    assert "widget.allowed_origins.1:" in message
    assert says in message


def test_widget_identity_is_optional_unless_the_flow_requires_it(tmp_path: Path) -> None:
    assert load_flow_file(write(tmp_path, "plain", VALID)).widget.identity is IdentityMode.OPTIONAL
    required = load_flow_file(write(tmp_path, "members", {**VALID, "widget": {"identity": "required"}}))
    assert required.widget.identity is IdentityMode.REQUIRED
    message = error_of(tmp_path, {**VALID, "widget": {"identity": "verified"}})
    assert "widget.identity:" in message and "optional, required" in message
