"""AssistantClient for the OpenAI Responses API with the Conversations API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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

PENDING_STATUSES = frozenset({"queued", "in_progress"})
FAILED_STATUSES = frozenset({"failed", "cancelled", "incomplete"})
MAX_ITEMS_PER_CALL = 20
# The run id of an adopted response: followed through the conversation's items after this one.
ADOPTED = "items:"


class OpenAIResponsesClient:
    """Threads are conversations; runs are background responses polled by id.

    A turn's customer messages go in the response request (`conversation` + `input`), so a
    turn is one request plus its checks. The API has no idempotency key and no listing of
    responses, so a request repeated after a crash (between the API's answer and the commit
    that records the response id) is recognised from the conversation's items, on that
    recovery path only: when the turn's messages are already its newest user items, the
    response they went with is followed through the items after them ("adopted") instead of
    being started twice.
    """

    messages_with_run = True

    def __init__(self, *, http: OpenAIHttp) -> None:
        self._http = http

    def open_thread(self, *, metadata: Mapping[str, str]) -> str:
        """Create a conversation and return its id."""
        body, _ = call_api(self._http, "POST", "/conversations", json={"metadata": dict(metadata)})
        return require_str(body, "id")

    def post_messages(self, thread_id: str, texts: Sequence[str], *, turn_key: str,
                      recovering: bool = False) -> None:
        """Add user messages as conversation items (the engine sends them with the run instead);
        when recovering, not if they are already the newest user items."""
        if not texts or (recovering and self._posted_item(thread_id, texts) is not None):
            return
        items = [_user_item(text) for text in texts]
        for start in range(0, len(items), MAX_ITEMS_PER_CALL):
            chunk = items[start : start + MAX_ITEMS_PER_CALL]
            call_api(
                self._http, "POST", f"/conversations/{thread_id}/items", json={"items": chunk}
            )

    def start_run(self, thread_id: str, request: RunRequest, *, turn_key: str,
                  texts: Sequence[str] = (), recovering: bool = False) -> str:
        """Start a background response with the turn's messages as input; its id. When
        recovering, a response that already took these messages is adopted (ADOPTED + the id
        of their first item) instead of started twice."""
        if texts and recovering:
            first = self._posted_item(thread_id, texts)
            if first is not None:
                return ADOPTED + first
        items = [_user_item(text) for text in texts] or None
        return self._create_response(thread_id, request, turn_key=turn_key, input_items=items)

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
        if run_id.startswith(ADOPTED):
            return self._check_items(thread_id, run_id.removeprefix(ADOPTED))
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

    def _posted_item(self, thread_id: str, texts: Sequence[str]) -> str | None:
        """The id of the first of `texts` when they are the conversation's newest user
        messages (only the output of the response they went with after them); else None."""
        body, _ = call_api(self._http, "GET", f"/conversations/{thread_id}/items",
                           params={"order": "desc", "limit": 20})
        users: list[dict[str, Any]] = []
        for item in dicts(body.get("data")):
            if item.get("type") == "message" and item.get("role") == "user":
                users.append(item)
            elif users:
                break
        users.reverse()
        if [_item_text(item, "input_text") for item in users] != list(texts):
            return None
        return str(users[0].get("id") or "") or None

    def _check_items(self, thread_id: str, first_item: str) -> RunStatus:
        """An adopted response, followed through the items after its input: tool calls not
        answered yet, or the assistant's messages; nothing yet: still going."""
        body, _ = call_api(self._http, "GET", f"/conversations/{thread_id}/items",
                           params={"order": "asc", "after": first_item, "limit": 100})
        after = [item for item in dicts(body.get("data"))
                 if not (item.get("type") == "message" and item.get("role") == "user")]
        answered = {item.get("call_id") for item in after
                    if item.get("type") == "function_call_output"}
        calls = tuple(_tool_call(item) for item in after
                      if item.get("type") == "function_call" and item.get("call_id") not in answered)
        if calls:
            return RunStatus(RunState.REQUIRES_ACTION, tool_calls=calls)
        replies = [item for item in after if item.get("type") == "message"]
        if not replies:
            return RunStatus(RunState.PENDING)
        return response_status({"status": "completed", "output": replies}, None)


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
    calls = tuple(_tool_call(item) for item in output if item.get("type") == "function_call")
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



def _tool_call(item: Mapping[str, Any]) -> ToolCall:
    return ToolCall(id=str(item.get("call_id", "")), name=str(item.get("name", "")),
                    arguments=str(item.get("arguments", "")))


def _user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _item_text(item: Mapping[str, Any], part_type: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", "")) for part in dicts(content) if part.get("type") == part_type
    )

