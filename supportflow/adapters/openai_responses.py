"""AssistantClient for the OpenAI Responses API with the Conversations API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from supportflow.adapters.openai_http import (
    call_api,
    clean_reply,
    dicts,
    failure_reason,
    poll_after_s,
    require_str,
)
from supportflow.services.ports import AssistantError, ErrorKind, RunRequest, RunState, RunStatus, ToolCall

PENDING_STATUSES = frozenset({"queued", "in_progress"})
FAILED_STATUSES = frozenset({"failed", "cancelled", "incomplete"})
MAX_ITEMS_PER_CALL = 20


class OpenAIResponsesClient:
    """Threads are conversations; runs are background responses polled by id."""

    def __init__(self, *, http: httpx.Client) -> None:
        self._http = http

    def open_thread(self, *, metadata: Mapping[str, str]) -> str:
        """Create a conversation and return its id."""
        body, _ = call_api(self._http, "POST", "/conversations", json={"metadata": dict(metadata)})
        return require_str(body, "id")

    def post_messages(self, thread_id: str, texts: Sequence[str], *, turn_key: str) -> None:
        """Add the turn's user messages, unless they are already the newest unanswered items."""
        if not texts or self._pending_user_texts(thread_id)[-len(texts) :] == list(texts):
            return
        items = [_user_item(text) for text in texts]
        for start in range(0, len(items), MAX_ITEMS_PER_CALL):
            chunk = items[start : start + MAX_ITEMS_PER_CALL]
            call_api(
                self._http, "POST", f"/conversations/{thread_id}/items", json={"items": chunk}
            )

    def start_run(self, thread_id: str, request: RunRequest, *, turn_key: str) -> str:
        """Start a background response on the conversation; return the response id."""
        return self._create_response(thread_id, request, turn_key=turn_key, input_items=None)

    def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        outputs: Sequence[tuple[str, str]],
        request: RunRequest,
    ) -> str:
        """Send function call outputs as input of a new background response; return its id."""
        items = [
            {"type": "function_call_output", "call_id": call_id, "output": output}
            for call_id, output in outputs
        ]
        turn = request.metadata.get("sf_turn", run_id)
        return self._create_response(thread_id, request, turn_key=turn, input_items=items)

    def check_run(self, thread_id: str, run_id: str) -> RunStatus:
        """Look at the response once and say what it found."""
        body, response = call_api(self._http, "GET", f"/responses/{run_id}")
        return response_status(body, poll_after_s(response))

    def _create_response(
        self,
        thread_id: str,
        request: RunRequest,
        *,
        turn_key: str,
        input_items: list[dict[str, Any]] | None,
    ) -> str:
        payload = _response_payload(thread_id, request, turn_key)
        if input_items is not None:
            payload["input"] = input_items
        body, _ = call_api(self._http, "POST", "/responses", json=payload)
        return require_str(body, "id")

    def _pending_user_texts(self, thread_id: str) -> list[str]:
        """Texts of the newest user messages with no assistant item after them, oldest first."""
        body, _ = call_api(
            self._http,
            "GET",
            f"/conversations/{thread_id}/items",
            params={"order": "desc", "limit": 20},
        )
        texts: list[str] = []
        for item in dicts(body.get("data")):
            if item.get("type") != "message" or item.get("role") != "user":
                break
            texts.append(_item_text(item, "input_text"))
        texts.reverse()
        return texts


def _response_payload(thread_id: str, request: RunRequest, turn_key: str) -> dict[str, Any]:
    backend = request.backend
    metadata = dict(request.metadata)
    metadata.setdefault("sf_turn", turn_key)
    payload: dict[str, Any] = {
        "conversation": thread_id,
        "background": True,
        "store": True,
        "metadata": metadata,
    }
    if backend.prompt is not None:
        prompt: dict[str, Any] = {"id": backend.prompt.id}
        if backend.prompt.version:
            prompt["version"] = backend.prompt.version
        if backend.prompt.variables:
            prompt["variables"] = dict(backend.prompt.variables)
        payload["prompt"] = prompt
    if backend.model:
        payload["model"] = backend.model
    if backend.instructions:
        payload["instructions"] = backend.instructions
    tools: list[dict[str, Any]] = [
        {"type": "function", "name": tool.name, "description": tool.description,
         "parameters": tool.parameters, "strict": True}
        for tool in request.tools
    ]
    if backend.vector_store_id:
        tools.append({"type": "file_search", "vector_store_ids": [backend.vector_store_id]})
    if tools:
        payload["tools"] = tools
    if "prompt" not in payload and "model" not in payload:
        raise AssistantError(ErrorKind.CONFIG, "the responses backend needs a prompt or a model")
    return payload


def response_status(body: Mapping[str, Any], poll_after: float | None) -> RunStatus:
    """Map a Response object to a RunStatus."""
    status = body.get("status")
    if status in PENDING_STATUSES:
        return RunStatus(RunState.PENDING, poll_after_s=poll_after)
    if status in FAILED_STATUSES:
        return RunStatus(RunState.FAILED, reason=failure_reason(body, "error"))
    if status != "completed":
        return RunStatus(RunState.FAILED, reason=f"unexpected status {status!r}")
    output = list(dicts(body.get("output")))
    calls = tuple(
        ToolCall(
            id=str(item.get("call_id", "")),
            name=str(item.get("name", "")),
            arguments=str(item.get("arguments", "")),
        )
        for item in output
        if item.get("type") == "function_call"
    )
    if calls:
        return RunStatus(RunState.REQUIRES_ACTION, tool_calls=calls)
    reply = clean_reply(
        "".join(
            _item_text(item, "output_text")
            for item in output
            if item.get("type") == "message" and item.get("role", "assistant") == "assistant"
        )
    )
    if not reply:
        return RunStatus(RunState.FAILED, reason="empty reply")
    return RunStatus(RunState.COMPLETED, reply=reply)



def _user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _item_text(item: Mapping[str, Any], part_type: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", "")) for part in dicts(content) if part.get("type") == part_type
    )

