"""Reading a request's body and query: every malformed input becomes a clear 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flask import request
from marshmallow import Schema

from .errors import ApiError

# Deeper nesting than this is refused before any schema sees it (every body we take is shallow).
MAX_DEPTH = 32


def _not_json(message: str) -> ApiError:
    return ApiError(400, "invalid_json", message)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying what is wrong with it (413 when too large)."""
    if not request.is_json:
        raise _not_json("the body must be a JSON object (Content-Type: application/json)")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except RecursionError as error:
        raise _not_json(f"the body nests deeper than {MAX_DEPTH} levels") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, NaN and Infinity
        raise _not_json(f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise _not_json(f"the body must be a JSON object, not {type(body).__name__}")
    if nesting_depth(body) > MAX_DEPTH:
        raise _not_json(f"the body nests deeper than {MAX_DEPTH} levels")
    return body


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def query(schema: Schema) -> dict[str, Any]:
    """The query string loaded by `schema`; a 422 names the bad parameters.

    Parameters the schema does not know are ignored (as caches' cache-busters expect).
    """
    names = {field.data_key or name for name, field in schema.load_fields.items()}
    known = {name: value for name, value in request.args.items() if name in names}
    loaded: dict[str, Any] = schema.load(known)
    return loaded
