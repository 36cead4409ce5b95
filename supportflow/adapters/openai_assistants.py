"""AssistantClient for the OpenAI Assistants API v2 (threads, messages, runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from supportflow.adapters.openai_http import (
    OpenAIHttp,
    call_api,
    clean_reply,
    dicts,
    failure_reason,
    poll_after_s,
    require_str,
)
from supportflow.services.ports import AssistantError, ErrorKind, RunRequest, RunState, RunStatus, ToolCall

BETA_HEADERS = {"OpenAI-Beta": "assistants=v2"}
PENDING_STATUSES = frozenset({"queued", "in_progress", "cancelling"})
FAILED_STATUSES = frozenset({"failed", "cancelled", "expired", "incomplete"})


class OpenAIAssistantsClient:
    """Threads, messages and runs of the Assistants API, with `OpenAI-Beta: assistants=v2`.

    Messages and runs carry the turn key (`sf_turn`), so a step repeated after a crash or a
    timeout finds what it did before: the listing is made on that recovery path only.
    """

    messages_with_run = False

    def __init__(self, *, http: OpenAIHttp) -> None:
        self._http = http

    def open_thread(self, *, metadata: Mapping[str, str]) -> str:
        """Create a thread and return its id."""
        body, _ = self._call("POST", "/threads", json={"metadata": dict(metadata)})
        return require_str(body, "id")

    def post_messages(self, thread_id: str, texts: Sequence[str], *, turn_key: str,
                      recovering: bool = False) -> None:
        """Add the turn's texts as one user message tagged sf_turn; when recovering (the step
        may have run before), not if a message of this turn is there already."""
        if not texts:
            return
        if recovering:
            recent, _ = self._call(
                "GET", f"/threads/{thread_id}/messages", params={"order": "desc", "limit": 20})
            if any(_metadata(m).get("sf_turn") == turn_key for m in dicts(recent.get("data"))):
                return
        message = {"role": "user", "content": "\n".join(texts), "metadata": {"sf_turn": turn_key}}
        self._call("POST", f"/threads/{thread_id}/messages", json=message)

    def start_run(self, thread_id: str, request: RunRequest, *, turn_key: str,
                  texts: Sequence[str] = (), recovering: bool = False) -> str:
        """Start a run for the turn; when recovering, return the one already started for it."""
        assistant_id = request.backend.assistant_id
        if not assistant_id:
            raise AssistantError(ErrorKind.CONFIG, "the assistants backend needs an assistant_id")
        if recovering:
            latest, _ = self._call(
                "GET", f"/threads/{thread_id}/runs", params={"limit": 1, "order": "desc"})
            for run in dicts(latest.get("data")):
                if _metadata(run).get("sf_turn") == turn_key:
                    return require_str(run, "id")
        metadata = dict(request.metadata)
        metadata["sf_turn"] = turn_key
        payload: dict[str, Any] = {"assistant_id": assistant_id, "metadata": metadata}
        if request.tools:
            payload["tools"] = [
                {"type": "function", "function": {"name": tool.name,
                                                  "description": tool.description,
                                                  "parameters": tool.parameters}}
                for tool in request.tools
            ]
        body, _ = self._call("POST", f"/threads/{thread_id}/runs", json=payload)
        return require_str(body, "id")

    def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        outputs: Sequence[tuple[str, str]],
        request: RunRequest,
    ) -> str:
        """Return the outputs of the run's tool calls; the run goes on under the same id."""
        tool_outputs = [{"tool_call_id": call_id, "output": output} for call_id, output in outputs]
        body, _ = self._call(
            "POST",
            f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
            json={"tool_outputs": tool_outputs},
        )
        return require_str(body, "id")

    def check_run(self, thread_id: str, run_id: str) -> RunStatus:
        """Look at the run once; on completion read this run's assistant messages."""
        run, response = self._call("GET", f"/threads/{thread_id}/runs/{run_id}")
        status = run.get("status")
        if status in PENDING_STATUSES:
            return RunStatus(RunState.PENDING, poll_after_s=poll_after_s(response))
        if status == "requires_action":
            return RunStatus(RunState.REQUIRES_ACTION, tool_calls=_tool_calls(run))
        if status in FAILED_STATUSES:
            return RunStatus(RunState.FAILED, reason=failure_reason(run, "last_error"))
        if status != "completed":
            return RunStatus(RunState.FAILED, reason=f"unexpected status {status!r}")
        reply = clean_reply(self._run_reply(thread_id, run_id))
        if not reply:
            return RunStatus(RunState.FAILED, reason="empty reply")
        return RunStatus(RunState.COMPLETED, reply=reply)

    def _run_reply(self, thread_id: str, run_id: str) -> str:
        body, _ = self._call(
            "GET",
            f"/threads/{thread_id}/messages",
            params={"run_id": run_id, "order": "asc", "limit": 100},
        )
        texts = [
            _message_text(message)
            for message in dicts(body.get("data"))
            if message.get("role") == "assistant"
        ]
        return "\n\n".join(text for text in texts if text.strip())

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[dict[str, Any], httpx.Response]:
        return call_api(self._http, method, path, json=json, params=params, headers=BETA_HEADERS)


def _tool_calls(run: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    action = run.get("required_action")
    submit = action.get("submit_tool_outputs") if isinstance(action, dict) else None
    calls = submit.get("tool_calls") if isinstance(submit, dict) else None
    result: list[ToolCall] = []
    for call in dicts(calls):
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        result.append(
            ToolCall(
                id=str(call.get("id", "")),
                name=str(function.get("name", "")),
                arguments=str(function.get("arguments", "")),
            )
        )
    return tuple(result)



def _message_text(message: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for part in dicts(message.get("content")):
        text = part.get("text")
        if part.get("type") == "text" and isinstance(text, dict):
            parts.append(str(text.get("value", "")))
    return "".join(parts)


def _metadata(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    value = entry.get("metadata")
    return value if isinstance(value, dict) else {}

