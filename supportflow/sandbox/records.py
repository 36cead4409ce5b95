"""Per-run records the benchmarks read (bench/scale.py): when each response was made and
completed, every check of it, and API calls per conversation, served compactly."""

from __future__ import annotations

from typing import Any

from .store import SandboxStore

RUN_FIELDS = ("conversation", "turn", "response", "created", "completed", "checks")


def run_records(store: SandboxStore, since: float) -> dict[str, Any]:
    """Per-run records for benchmarks, compactly: one row per run made since `since` (keyed by
    its sf_conversation and sf_turn metadata), when it was made and completed (time.time()),
    and when each check of it came in; and API calls per conversation."""
    rows = []
    for run in store.runs.values():
        if run.created_wall < since:
            continue
        metadata = run.request.get("metadata") or {}
        # When it finished, or when it will (its moment, on the wall clock).
        completed = run.finished_at or (None if store.settings.never_finish
                                        else run.created_wall + run.due - run.started)
        rows.append([metadata.get("sf_conversation"), metadata.get("sf_turn"), run.id,
                     run.created_wall, completed, run.checks])
    calls: dict[str, int] = {}
    for thread_id, count in store.calls_by_thread.items():
        thread = store.threads[thread_id]
        owner = thread.metadata.get("sf_conversation")
        if owner:
            calls[owner] = calls.get(owner, 0) + count
    return {"fields": RUN_FIELDS, "runs": rows, "calls": calls}
