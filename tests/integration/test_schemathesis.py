"""Schemathesis over the whole served OpenAPI document, in-process on the real Redis.

Every operation, every phase (examples, coverage, fuzzing, stateful), tokens of each role, a
fixed seed and a time budget: any server error, any status, content type, header or body the
document does not describe, any schema-invalid request accepted, or any 405 without Allow fails
the suite. To cover a new route: document it (web/openapi.py); to give requests a credential
of a new kind (a visitor token, a session), add a function to HEADER_SOURCES.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from supportflow.adapters.oauth_store import TokenRecord
from supportflow.domain.access import Role
from supportflow.domain.accounts import AccountRole, Scope
from supportflow.domain.inbox import InboxKind
from supportflow.web.openapi import PATH_PATTERNS
from tests.conftest import Sandbox
from tests.isolated import Isolated

pytestmark = pytest.mark.slow
SEED = 20261123
BUDGET_S = 90
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance",
          "negative_data_rejection", "unsupported_method", "allow_header_conformance")
CONFIG = {
    "seed": SEED,
    # No max-time: with one, the engine repeats fuzzing and stateful runs until it is spent.
    "generation": {"mode": "all", "max-examples": 100, "deterministic": True,
                   "with-security-parameters": False, "database": "none"},
    "phases": {"stateful": {"max-steps": 10, "generation": {"max-examples": 30}},
               "fuzzing": {"error-feedback": {"enabled": False}}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    "request-timeout": 5,
    "cache": {"enabled": False},  # nothing written into the work tree
}


@dataclass
class World:
    """What the requests may name for real: tokens per role, conversations, inboxes."""

    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    path_values: dict[str, list[str]] = field(default_factory=dict)
    roles_used: Counter[str] = field(default_factory=Counter)
    visitors: dict[str, dict[str, str]] = field(default_factory=dict)


def pick(case: Any, options: list[Any], salt: str) -> Any:
    """One of `options`, the same for the same case (so a failure replays the same way)."""
    data = json.dumps([salt, case.operation.label, case.path_parameters, case.query,
                       repr(case.body)], sort_keys=True, default=repr)
    return options[int(hashlib.sha256(data.encode()).hexdigest(), 16) % len(options)]


def bearer_token(case: Any, world: World) -> dict[str, str]:
    """A token of some role, or none."""
    role = pick(case, sorted(world.tokens), "role")
    world.roles_used[role] += 1
    return dict(world.tokens[role])


def visitor_token(case: Any, world: World) -> dict[str, str]:
    """For half the cases naming a real conversation, its visitor token (the widget routes')."""
    conversation = (case.path_parameters or {}).get("conversation_id")
    if conversation in world.visitors and pick(case, [True, False], "visitor"):
        world.roles_used["visitor"] += 1
        return dict(world.visitors[conversation])
    return {}


# Functions that give a case more headers, later ones winning (other credentials plug in here).
HEADER_SOURCES: list[Callable[[Any, World], dict[str, str]]] = [bearer_token, visitor_token]


def oauth_token(iso: Isolated) -> dict[str, str]:
    """An OAuth access token with every scope, for an agent account (the GPT's actions)."""
    iso.services.accounts.create("fuzz-agent", "fuzz-agent@example.test", AccountRole.AGENT,
                                 secrets.token_urlsafe(16))
    token, now = secrets.token_urlsafe(32), time.time()
    iso.services.oauth.save_tokens([(token, TokenRecord(
        kind="access", grant_id="fuzz", client_id="fuzz", account="fuzz-agent",
        scope=" ".join(scope.value for scope in Scope), issued_at=now, expires_at=now + 3600))])
    return {"Authorization": f"Bearer {token}"}


def build_world(iso: Isolated) -> World:
    world = World(tokens={"none": {}, **{role.value: iso.token(role) for role in Role},
                          "oauth agent": oauth_token(iso)})
    asking = iso.start("fuzz-ask", name="Fuzz", email="fuzz@example.com")
    handed = iso.start("fuzz-handoff")
    iso.api.post(f"/v1/conversations/{handed}/messages", headers=iso.visitor[handed],
                 json={"text": "I want to talk to a human please"})
    iso.drive(handed, "handed_off")
    world.visitors = dict(iso.visitor)
    world.path_values = {
        "conversation_id": [asking, handed],
        "inbox_name": [iso.inbox(InboxKind.CHATWOOT, hmac_secret=None).name,
                       iso.inbox(InboxKind.WEBHOOK).name],
    }
    return world


def load(iso: Isolated, world: World) -> Any:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", iso.app,
                                            config=schemathesis.Config.from_dict(CONFIG))

    @schema.hook("map_path_parameters")  # type: ignore[misc]
    def real_ids(context: Any, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if not parameters:
            return parameters
        # Some valid-looking ids become ones that exist, so more than the 404 path gets tested
        # (invalid ones stay: they are what a negative case is about).
        for name, values in world.path_values.items():
            value = parameters.get(name)
            pattern = PATH_PATTERNS.get(name)
            if not isinstance(value, str) or not pattern or not re.fullmatch(pattern, value):
                continue
            parameters[name] = pick_value(value, [value, *values])
        return parameters

    @schema.auth(refresh_interval=None)  # type: ignore[misc]
    class Credentials:
        def get(self, case: Any, context: Any) -> dict[str, str]:
            headers: dict[str, str] = {}
            for source in HEADER_SOURCES:
                headers.update(source(case, world))
            return headers

        def set(self, case: Any, data: dict[str, str], context: Any) -> None:
            case.headers = {**(case.headers or {}), **data}

    return schema


def pick_value(seed: Any, options: list[str]) -> str:
    digest = hashlib.sha256(repr(seed).encode()).hexdigest()
    return options[int(digest, 16) % len(options)]


@dataclass
class Findings:
    """What the engine's events say: failed checks, errors, operations tested, time per phase."""

    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    tested: set[str] = field(default_factory=set)
    phases: dict[str, float] = field(default_factory=dict)
    requests: int = 0

    def record(self, event: Any) -> None:
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            phase = event.phase.value
            self.phases[phase] = self.phases.get(phase, 0.0) + event.elapsed_time
            self.requests += len(recorder.interactions)
            if recorder.interactions:
                self.tested.add(recorder.label)
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        key = (recorder.label, check.name)
                        self.failures[key] += 1
                        info = check.failure_info
                        self.examples.setdefault(
                            key, f"{info.failure.title}: {info.failure.message}\n{info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            self.errors.append(f"{event.label}: " + "".join(traceback.format_exception(event.value)))
        elif isinstance(event, events.FatalError):
            self.errors.append("".join(traceback.format_exception(event.exception)))

    def report(self) -> str:
        lines = [f"{count} x {label} {check}\n{self.examples[(label, check)]}"
                 for (label, check), count in sorted(self.failures.items())]
        return "\n\n".join([*lines, *self.errors])


def test_the_served_document_tells_the_truth(redis_url: str, flows_dir: Path,
                                             sandbox: Sandbox) -> None:
    sandbox.reset()
    # Streams end at once (each stream request would otherwise take stream_max_s).
    iso = Isolated(redis_url, flows_dir, sandbox_url=sandbox.url, stream_max_s=0.02,
                   stream_poll_s=0.01)
    world = build_world(iso)
    schema = load(iso, world)
    started = time.monotonic()
    findings = Findings()
    for event in from_schema(schema).execute():
        findings.record(event)
    elapsed = time.monotonic() - started
    phases = ", ".join(f"{name} {spent:.1f} s" for name, spent in findings.phases.items())
    print(f"schemathesis: {findings.requests} requests in {elapsed:.1f} s ({phases})")
    assert not findings.failures and not findings.errors, findings.report()
    assert elapsed <= BUDGET_S
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items()
                  for method in item if method != "parameters"}
    assert documented <= findings.tested, sorted(documented - findings.tested)
    assert set(world.roles_used) == {*world.tokens, "visitor"}, world.roles_used
