"""Structured JSON logs: every line carries the conversation, turn and task it belongs to."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("supportflow_log_context", default=None)
CONTEXT_FIELDS = ("conversation_id", "turn", "task_id", "task", "request_id")


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (nested blocks add more)."""
    merged = {**(CONTEXT.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    token = CONTEXT.set(merged)
    try:
        yield
    finally:
        CONTEXT.reset(token)


def bind(**values: Any) -> None:
    """Add fields to the current context (e.g. the turn, once the record is read)."""
    CONTEXT.set({**(CONTEXT.get() or {}), **values})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = CONTEXT.get() or {}
        entry.update({key: context[key] for key in CONTEXT_FIELDS if key in context})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str | int = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # transitions narrates every state change at INFO; the conversation's own logs say enough.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # httpx writes a line per request at INFO: at a thousand run checks a second that is a
    # large share of the worker's time, and says nothing metrics do not. At DEBUG it stays.
    quiet_http = root.getEffectiveLevel() > logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.WARNING if quiet_http else logging.NOTSET)
