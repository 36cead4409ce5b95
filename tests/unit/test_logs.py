"""Structured logs carry the conversation, turn and task of the work they describe."""

from __future__ import annotations

import json
import logging

from supportflow.observability.logs import JsonFormatter, bind, log_context


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("supportflow.test", logging.INFO, __file__, 1, message, None, None)


def test_a_line_inside_a_context_carries_its_fields_and_nested_blocks_add_more() -> None:
    formatter = JsonFormatter()
    with log_context(conversation_id="conv-1", task_id="t-9"):
        bind(turn=3)
        with log_context(task="supportflow.poll"):
            inner = json.loads(formatter.format(record("checked")))
        outer = json.loads(formatter.format(record("done")))
    after = json.loads(formatter.format(record("idle")))
    assert inner["conversation_id"] == "conv-1" and inner["turn"] == 3
    assert inner["task"] == "supportflow.poll" and inner["message"] == "checked"
    assert "task" not in outer and outer["task_id"] == "t-9"
    assert "conversation_id" not in after and after["level"] == "info"
