"""Reading and checking the sandbox's request bodies and query strings, as the API does."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from supportflow.sandbox.store import ApiError
from supportflow.webhooks.signing import is_secret

SETTINGS_KEYS = {"latency_s", "latency_range_s", "never_finish", "poll_after_ms", "tool_calls",
                 "next_tool_calls", "next_outcome", "next_reply", "faults", "webhook_url",
                 "webhook_secret", "webhook_delay_s", "webhook_jitter_s", "webhook_drop_rate",
                 "webhook_duplicates"}
# Webhook knobs that are numbers: (lowest, highest, integer only).
WEBHOOK_NUMBERS = {"webhook_delay_s": (0, 60, False), "webhook_jitter_s": (0, 60, False),
                   "webhook_drop_rate": (0, 1, False), "webhook_duplicates": (0, 10, True)}
OUTCOMES = {"failed", "cancelled", "expired", "incomplete"}
TEXT_PARTS = {"text", "input_text", "output_text"}


def body_object(*, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON object body; 400 when it is missing or not an object."""
    if allow_empty and not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. The body must "
                       "be a JSON object.")
    return body


def required_str(body: dict[str, Any], key: str) -> str:
    """A required non-empty string field."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"Missing required parameter: '{key}'.", param=key,
                       code="missing_required_parameter")
    return value


def metadata_of(body: dict[str, Any]) -> dict[str, str]:
    """The metadata map: at most 16 string values (keys ≤ 64, values ≤ 512 characters)."""
    raw = body.get("metadata")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > 16 or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
        for k, v in raw.items()
    ):
        raise ApiError(400, "Invalid 'metadata': expected a map of at most 16 string values.",
                       param="metadata")
    return dict(raw)


def _content_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        parts = [p for p in content if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(parts) == len(content):
            return "".join(_part_text(p) for p in parts)
    raise ApiError(400, f"Invalid '{param}': expected a string or a list of text parts.",
                   param=param)


def _part_text(part: dict[str, Any]) -> str:
    text = part.get("text")
    if isinstance(text, dict):
        text = text.get("value")
    return str(text or "")


def user_items(raw: Any, *, api: str, required: bool = False) -> list[tuple[str, str]]:
    """(text, role) of message items; 400 for anything the sandbox cannot take."""
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw) or len(raw) > 20:
        raise ApiError(400, "Invalid 'items': expected between 1 and 20 items.", param="items")
    roles = {"user", "assistant"} if api == "assistants" else {
        "user", "assistant", "system", "developer"}
    found: list[tuple[str, str]] = []
    for index, item in enumerate(raw):
        param = f"items[{index}]" if api == "responses" else "content"
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            raise ApiError(400, f"Invalid '{param}': only message items are supported.",
                           param=param)
        role = item.get("role")
        if role not in roles:
            raise ApiError(400, f"Invalid value for 'role': {role!r}.", param="role")
        if "content" not in item:
            raise ApiError(400, "Missing required parameter: 'content'.", param="content")
        found.append((_content_text(item["content"], param), str(role)))
    return found


Pairs = list[tuple[str, str]]


def response_input(body: dict[str, Any]) -> tuple[str, Pairs, Pairs]:
    """The conversation id, new messages and function call outputs of a create-response body."""
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if not isinstance(conversation, str) or not conversation:
        raise ApiError(400, "The sandbox needs 'conversation' on every response.",
                       param="conversation")
    if not body.get("model") and not isinstance(body.get("prompt"), dict):
        raise ApiError(400, "Missing required parameter: 'model'.", param="model",
                       code="missing_required_parameter")
    raw = body.get("input")
    if isinstance(raw, str):
        return conversation, [(raw, "user")], []
    raw = raw or []
    if not isinstance(raw, list):
        raise ApiError(400, "Invalid 'input': expected a string or a list.", param="input")
    outputs = [(str(i.get("call_id", "")), str(i.get("output", ""))) for i in raw
               if isinstance(i, dict) and i.get("type") == "function_call_output"]
    others = [
        i for i in raw if not (isinstance(i, dict) and i.get("type") == "function_call_output")
    ]
    return conversation, user_items(others, api="responses"), outputs


def list_params(default_order: str) -> tuple[int, str, str | None, str | None]:
    """limit (1-100, default 20), order (asc/desc), after and before of a list request."""
    args = request.args
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(400, "Invalid 'limit': expected an integer between 1 and 100.",
                       param="limit")
    order = args.get("order", default_order)
    if order not in {"asc", "desc"}:
        raise ApiError(400, "Invalid 'order': expected 'asc' or 'desc'.", param="order")
    return limit, order, args.get("after"), args.get("before")


def parse_settings(body: dict[str, Any]) -> dict[str, Any]:
    """Checked changes for /_sandbox/settings; 400 on unknown keys or bad values."""
    unknown = set(body) - SETTINGS_KEYS
    if unknown:
        raise ApiError(400, f"Unknown settings: {sorted(unknown)}; known: {sorted(SETTINGS_KEYS)}")
    changes: dict[str, Any] = {}
    if "latency_s" in body:
        value = body["latency_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
            raise ApiError(400, "latency_s must be a number between 0 and 3600.", param="latency_s")
        changes["latency_s"] = float(value)
    if "latency_range_s" in body:
        changes["latency_range_s"] = parse_latency_range(body["latency_range_s"])
    for key in ("never_finish", "tool_calls"):
        if key in body:
            if not isinstance(body[key], bool):
                raise ApiError(400, f"{key} must be true or false.", param=key)
            changes[key] = body[key]
    if "poll_after_ms" in body:
        value = body["poll_after_ms"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 600_000):
            raise ApiError(400, "poll_after_ms must be null or an integer between 0 and 600000.",
                           param="poll_after_ms")
        changes["poll_after_ms"] = value
    if "next_outcome" in body:
        if body["next_outcome"] not in OUTCOMES | {None}:
            raise ApiError(400, f"next_outcome must be one of {sorted(OUTCOMES)} or null.",
                           param="next_outcome")
        changes["next_outcome"] = body["next_outcome"]
    if "next_reply" in body:
        if not isinstance(body["next_reply"], str | None):
            raise ApiError(400, "next_reply must be a string or null.", param="next_reply")
        changes["next_reply"] = body["next_reply"]
    if "faults" in body:
        changes["faults"] = parse_faults(body["faults"])
    if "next_tool_calls" in body:
        changes["next_tool_calls"] = parse_tool_script(body["next_tool_calls"])
    changes.update(parse_webhook_settings(body))
    return changes


def parse_webhook_settings(body: dict[str, Any]) -> dict[str, Any]:
    """Checked webhook settings: URL, whsec_ secret, delay, jitter, drop rate, duplicates."""
    changes: dict[str, Any] = {}
    url = body.get("webhook_url")
    if "webhook_url" in body:
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ApiError(400, "webhook_url must be null or an http(s) URL.", param="webhook_url")
        changes["webhook_url"] = url
    if "webhook_secret" in body:
        secret = body["webhook_secret"]
        if secret is not None and not is_secret(secret):
            raise ApiError(400, "webhook_secret must be null or whsec_ followed by base64.",
                           param="webhook_secret")
        changes["webhook_secret"] = secret
    for key, (low, high, integer) in WEBHOOK_NUMBERS.items():
        if key not in body:
            continue
        value = body[key]
        kinds: Any = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            what = "an integer" if integer else "a number"
            raise ApiError(400, f"{key} must be {what} from {low} to {high}.", param=key)
        changes[key] = value if integer else float(value)
    return changes


def parse_latency_range(value: Any) -> tuple[float, float] | None:
    """null, or [low, high] seconds (0 <= low <= high <= 3600)."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] <= value[1] <= 3600):
        raise ApiError(400, "latency_range_s must be null or [low, high] seconds, 0 to 3600.",
                       param="latency_range_s")
    return float(value[0]), float(value[1])


def parse_tool_script(value: Any) -> list[tuple[str, str]]:
    """`[{"name": ..., "arguments": {...} or "raw text"}]`: calls the next finishing run makes."""
    if not isinstance(value, list):
        raise ApiError(400, "next_tool_calls must be a list.", param="next_tool_calls")
    calls: list[tuple[str, str]] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ApiError(400, "each tool call needs a name.", param="next_tool_calls")
        arguments = entry.get("arguments", {})
        calls.append((entry["name"],
                      arguments if isinstance(arguments, str) else json.dumps(arguments)))
    return calls


def parse_faults(value: Any) -> list[dict[str, Any]]:
    """`[{"path": "/responses", "method": "POST", "status": 429, "times": 2,
    "retry_after_ms": 300, "retry_after": "1", "delay_s": 2.0, "after": false}]`: answer
    matching requests so. With `after` (and no status), the request is carried out first and
    its answer is late by `delay_s`: the API did the work, the client has not heard yet."""
    if not isinstance(value, list):
        raise ApiError(400, "faults must be a list.", param="faults")
    faults: list[dict[str, Any]] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ApiError(400, "each fault needs a path (a substring of the request path).",
                           param="faults")
        status = entry.get("status")
        delay = entry.get("delay_s", 0)
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise ApiError(400, "a fault's status must be an HTTP error status.", param="faults")
        if not isinstance(delay, int | float) or not 0 <= delay <= 60:
            raise ApiError(400, "a fault's delay_s must be 0 to 60.", param="faults")
        faults.append({"path": entry["path"], "method": str(entry.get("method", "*")).upper(),
                       "status": status, "times": int(entry.get("times", 1)),
                       "retry_after_ms": entry.get("retry_after_ms"),
                       "retry_after": entry.get("retry_after"), "delay_s": float(delay),
                       "after": bool(entry.get("after", False))})
    return faults
