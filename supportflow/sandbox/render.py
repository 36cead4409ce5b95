"""JSON shapes of the sandbox's objects, as the OpenAI API description defines them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supportflow.sandbox.store import HANDOFF_TOOL, Message, Run, Thread, file_search_stores

SANDBOX_MODEL = "sandbox-model"


def error_body(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    """The API's error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def thread_object(thread: Thread) -> dict[str, Any]:
    """A ThreadObject or a ConversationResource."""
    if thread.api == "responses":
        return {"id": thread.id, "object": "conversation", "metadata": thread.metadata,
                "created_at": thread.created_at}
    return {"id": thread.id, "object": "thread", "created_at": thread.created_at,
            "tool_resources": None, "metadata": thread.metadata}


def message_object(thread: Thread, message: Message) -> dict[str, Any]:
    """A MessageObject of the Assistants API."""
    return {
        "id": message.id, "object": "thread.message", "created_at": message.created_at,
        "thread_id": thread.id, "status": "completed", "incomplete_details": None,
        "completed_at": message.created_at, "incomplete_at": None, "role": message.role,
        "content": [{"type": "text", "text": {"value": message.text, "annotations": []}}],
        "assistant_id": None if message.run_id is None else _assistant_of(message),
        "run_id": message.run_id, "attachments": [], "metadata": message.metadata,
    }


def _assistant_of(message: Message) -> str:
    return message.metadata.get("_assistant_id", "asst_sandbox")


def item_object(message: Message) -> dict[str, Any]:
    """A conversation item / response output item of the Responses API."""
    if message.kind == "function_call":
        return {"type": "function_call", "id": message.id, "call_id": message.call_id,
                "name": message.name, "arguments": message.text, "status": "completed"}
    if message.kind == "function_call_output":
        return {"type": "function_call_output", "id": message.id, "call_id": message.call_id,
                "output": message.text, "status": "completed"}
    if message.role == "assistant":
        content = [{"type": "output_text", "text": message.text, "annotations": [],
                    "logprobs": []}]
    else:
        content = [{"type": "input_text", "text": message.text}]
    return {"type": "message", "id": message.id, "status": "completed", "role": message.role,
            "content": content}


def list_object(data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A cursor page: object list, data, first_id, last_id, has_more."""
    return {"object": "list", "data": list(data),
            "first_id": data[0]["id"] if data else "", "last_id": data[-1]["id"] if data else "",
            "has_more": has_more}


def run_object(run: Run) -> dict[str, Any]:
    """A RunObject of the Assistants API."""
    request = run.request
    done = run.status == "completed"
    action = None
    if run.status == "requires_action":
        calls = [{"id": c.call_id, "type": "function",
                  "function": {"name": c.name, "arguments": c.text}} for c in run.tool_calls]
        action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
    return {
        "id": run.id, "object": "thread.run", "created_at": run.created_at,
        "thread_id": run.thread_id, "assistant_id": request["assistant_id"],
        "status": run.status, "required_action": action,
        "last_error": {"code": "server_error", "message": "The sandbox failed this run."}
        if run.status == "failed" else None,
        "expires_at": None if done else run.created_at + 600,
        "started_at": None if run.status == "queued" else run.created_at,
        "cancelled_at": run.completed_at if run.status == "cancelled" else None,
        "failed_at": run.completed_at if run.status == "failed" else None,
        "completed_at": run.completed_at if done else None,
        "incomplete_details": {"reason": "max_completion_tokens"}
        if run.status == "incomplete" else None, "model": request.get("model") or SANDBOX_MODEL,
        "instructions": request.get("instructions") or "", "tools": _function_tools(),
        "metadata": request.get("metadata") or {},
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} if done else None,
        "temperature": 1.0, "top_p": 1.0, "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto", "parallel_tool_calls": True, "response_format": "auto",
    }


def _function_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": {
        "name": HANDOFF_TOOL, "description": "Hand the conversation to a human agent.",
        "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}]


def response_object(run: Run) -> dict[str, Any]:
    """A Response object of the Responses API."""
    request = run.request
    done = run.status == "completed"
    output = [item_object(m) for m in run.output] if done else []
    if done and file_search_stores(request) and output and output[0]["type"] == "message":
        output[0]["content"][0]["annotations"] = [
            {"type": "file_citation", "file_id": hit.file.id, "filename": hit.file.filename,
             "index": index} for index, hit in enumerate(run.file_hits)]
        output.insert(0, {"type": "file_search_call", "id": "fs_" + run.id.removeprefix("resp_"),
                          "status": "completed", "queries": list(run.texts), "results": None})
    text = "".join(m.text for m in run.output if m.kind == "message") if done else None
    return {
        "id": run.id, "object": "response", "created_at": run.created_at,
        "status": run.status, "completed_at": run.completed_at if done else None,
        "background": True,
        "error": {"code": "server_error", "message": "The sandbox failed this response."}
        if run.status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"}
        if run.status == "incomplete" else None,
        "instructions": request.get("instructions"),
        "model": request.get("model") or SANDBOX_MODEL, "output": output,
        "output_text": text, "parallel_tool_calls": True,
        "metadata": request.get("metadata") or {}, "tool_choice": "auto", "tools": [],
        "temperature": 1.0, "top_p": 1.0, "store": True,
        "conversation": {"id": run.thread_id}, "prompt": request.get("prompt"),
        "previous_response_id": None, "max_output_tokens": None, "truncation": "disabled",
    }
