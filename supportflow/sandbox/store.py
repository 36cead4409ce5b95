"""The sandbox's in-memory state: threads/conversations, their messages, runs/responses.

Over 300 lines on purpose: every piece of this state changes under the one lock below, and
the counters tests read are kept beside what they count.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supportflow.sandbox.brain import Brain
from supportflow.sandbox.errors import ApiError, bearer_fingerprint, new_id
from supportflow.sandbox.files import FileShelf, Hit

__all__ = ["ApiError", "bearer_fingerprint", "new_id"]

ACTIVE = frozenset({"queued", "in_progress", "requires_action"})
HANDOFF_TOOL = "handoff_to_human"
AFTER_TOOLS_REPLY = "Done. Is there anything else I can help you with?"


@dataclass
class SandboxSettings:
    """Behaviour knobs tests can change through /_sandbox/settings."""

    latency_s: float = 0.5
    # When set, each run lasts a time drawn uniformly from [low, high] instead of latency_s.
    latency_range_s: tuple[float, float] | None = None
    never_finish: bool = False
    poll_after_ms: int | None = None
    tool_calls: bool = False
    # Calls the next finishing run makes, once: (name, JSON arguments).
    next_tool_calls: list[tuple[str, str]] = field(default_factory=list)
    # How the next finishing run ends instead of completing: failed, cancelled, expired, incomplete.
    next_outcome: str | None = None
    # The text the next completing run answers with instead of the brain's.
    next_reply: str | None = None
    # Injected HTTP faults: see requests.parse_faults.
    faults: list[dict[str, Any]] = field(default_factory=list)
    # Signed response events (sandbox/webhooks.py): where they go and how deliveries behave.
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_delay_s: float = 0.0
    webhook_jitter_s: float = 0.0
    webhook_drop_rate: float = 0.0
    webhook_duplicates: int = 0

    def public(self) -> dict[str, Any]:
        """The settings as the control API shows them: the webhook secret masked."""
        shown = dict(vars(self))
        shown["webhook_secret"] = "***" if self.webhook_secret else None
        return shown


@dataclass
class Message:
    """A thread message or a conversation item (kind: message, function_call, ...)."""

    id: str
    role: str
    text: str
    created_at: int
    kind: str = "message"
    run_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    call_id: str | None = None
    name: str | None = None


@dataclass
class Thread:
    """An Assistants thread (api='assistants') or a Responses conversation (api='responses')."""

    id: str
    api: str
    created_at: int
    metadata: dict[str, str]
    messages: list[Message] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


@dataclass
class Run:
    """A run or a background response; finishes at `due` (time.monotonic), or when checked later."""

    id: str
    thread_id: str
    api: str
    created_at: int
    started: float
    request: dict[str, Any]
    texts: list[str]
    due: float = 0.0
    # When it really finished (time.time()): what a reply's added latency is measured from.
    finished_at: float | None = None
    # When it was made (time.time(), for the per-run records) and when each check came in.
    created_wall: float = 0.0
    checks: list[float] = field(default_factory=list)
    status: str = "queued"
    completed_at: int | None = None
    output: list[Message] = field(default_factory=list)
    tool_calls: list[Message] = field(default_factory=list)
    after_tools: bool = False
    # Files the file_search tool found for this run's answer.
    file_hits: list[Hit] = field(default_factory=list)


def _no_hook(run: Run) -> None:
    return None


class SandboxStore:
    """All sandbox state behind one lock.

    Two hooks, called under the lock, let the server act on time: `scheduled(run)` when a run
    gets a moment to finish (`run.due`), and `finished(run)` when it has ended.
    """

    def __init__(self, brain: Brain, settings: SandboxSettings) -> None:
        self.scheduled: Callable[[Run], None] = _no_hook
        self.finished: Callable[[Run], None] = _no_hook
        self.brain = brain
        self.defaults = settings
        self.settings = SandboxSettings(**vars(settings))
        self.lock = threading.RLock()
        self.files = FileShelf(brain.vector_stores)
        self.threads: dict[str, Thread] = {}
        self.runs: dict[str, Run] = {}
        self.counts: Counter[str] = Counter()
        self.runs_by_thread: Counter[str] = Counter()
        self.checks_by_thread: Counter[str] = Counter()
        # When each check came in (time.time()), so tests can see the poll schedule.
        self.check_times_by_thread: dict[str, list[float]] = {}
        self.tool_outputs_by_thread: dict[str, list[str]] = {}
        # When each injected fault was served (time.time()), so tests can see retry waits.
        self.fault_times: list[float] = []
        # Fingerprints (never the keys) of the bearer tokens seen, so tests can tell which was used.
        self.bearer_fingerprints: set[str] = set()
        # API requests per thread (every request naming a thread or a response of one).
        self.calls_by_thread: Counter[str] = Counter()
        # Metadata of the objects made in each thread: (kind, metadata), in order.
        self.metadata_by_thread: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def create_thread(self, api: str, metadata: dict[str, str]) -> Thread:
        """A new, empty thread or conversation."""
        prefix = "thread" if api == "assistants" else "conv"
        thread = Thread(new_id(prefix), api, int(time.time()), metadata)
        self.threads[thread.id] = thread
        self.calls_by_thread[thread.id] += 1
        self.counts["threads_total" if api == "assistants" else "conversations_total"] += 1
        self.metadata_by_thread[thread.id] = [("thread", dict(metadata))]
        return thread

    def thread(self, thread_id: str, api: str) -> Thread:
        """The thread, with its runs brought up to date; 404 when unknown."""
        thread = self.threads.get(thread_id)
        if thread is None or thread.api != api:
            what = "thread" if api == "assistants" else "conversation"
            raise ApiError(404, f"No {what} found with id '{thread_id}'.", code="not_found")
        self.calls_by_thread[thread.id] += 1
        for run_id in thread.runs:
            self.advance(self.runs[run_id])
        return thread

    def add_user_message(
        self, thread: Thread, text: str, metadata: dict[str, str], role: str = "user"
    ) -> Message:
        """Append a message; the Assistants API refuses while a run is active."""
        active = [r for r in thread.runs if self.runs[r].status in ACTIVE]
        if thread.api == "assistants" and active:
            raise ApiError(
                400, f"Can't add messages to {thread.id} while a run {active[-1]} is active.")
        message = Message(new_id("msg"), role, text, int(time.time()), metadata=metadata)
        thread.messages.append(message)
        self.counts["user_messages_total"] += role == "user"
        if thread.api == "assistants":
            self.metadata_by_thread[thread.id].append(("message", dict(metadata)))
        return message

    def add_function_outputs(self, thread: Thread, outputs: list[tuple[str, str]]) -> None:
        """Record function call outputs; each must answer a call of the conversation."""
        calls = {m.call_id for m in thread.messages if m.kind == "function_call"}
        for call_id, output in outputs:
            if call_id not in calls:
                raise ApiError(400, f"No tool call found for function call output with call_id "
                               f"{call_id}.", param="input")
            thread.messages.append(Message(new_id("fco"), "tool", output, int(time.time()),
                                           kind="function_call_output", call_id=call_id))
        self.record_tool_outputs(thread.id, outputs)

    def pending_texts(self, thread: Thread) -> list[str]:
        """User messages added since the last assistant message: the next turn's input."""
        texts: list[str] = []
        for message in thread.messages:
            if message.role == "assistant":
                texts = []
            elif message.role == "user" and message.kind == "message":
                texts.append(message.text)
        return texts

    def create_run(self, thread: Thread, request: dict[str, Any]) -> Run:
        """A queued run (or background response) over the thread's pending user messages."""
        if thread.api == "assistants" and any(self.runs[r].status in ACTIVE for r in thread.runs):
            raise ApiError(400, f"Thread {thread.id} already has an active run.")
        for store_id in file_search_stores(request):
            self.files.store(store_id)
        prefix = "run" if thread.api == "assistants" else "resp"
        run = Run(new_id(prefix), thread.id, thread.api, int(time.time()), time.monotonic(),
                  request, self.pending_texts(thread))
        run.after_tools = bool(thread.messages) and thread.messages[-1].kind == "function_call_output"
        run.due, run.created_wall = run.started + self.run_latency(), time.time()
        self.runs[run.id] = run
        thread.runs.append(run.id)
        self.counts["runs_total"] += 1
        self.runs_by_thread[thread.id] += 1
        self.metadata_by_thread[thread.id].append(("run", dict(request.get("metadata") or {})))
        self.scheduled(run)
        return run

    def run(self, run_id: str, thread_id: str | None = None) -> Run:
        """The run, brought up to date; 404 when unknown."""
        run = self.runs.get(run_id)
        if run is None or (thread_id is not None and run.thread_id != thread_id):
            what = "run" if thread_id is not None else "response"
            raise ApiError(404, f"No {what} found with id '{run_id}'.", code="not_found")
        if thread_id is None:  # a response read by its id alone
            self.calls_by_thread[run.thread_id] += 1
        self.advance(run)
        return run

    def run_latency(self) -> float:
        """How long a new run takes: latency_s, or a draw from latency_range_s."""
        if self.settings.latency_range_s is not None:
            return random.uniform(*self.settings.latency_range_s)
        return self.settings.latency_s

    def check(self, run: Run) -> None:
        """Count one status check of the run."""
        now = time.time()
        self.checks_by_thread[run.thread_id] += 1
        self.check_times_by_thread.setdefault(run.thread_id, []).append(now)
        run.checks.append(now)

    def advance(self, run: Run) -> None:
        """Move a run on by the clock: queued, then in progress, then finished once due."""
        if run.status not in {"queued", "in_progress"} or self.settings.never_finish:
            if run.status == "queued":
                run.status = "in_progress"
            return
        if time.monotonic() < run.due:
            run.status = "in_progress" if run.status == "queued" else run.status
            return
        self._finish(run)

    def finish_due(self, run_id: str) -> None:
        """The timer's call at a run's moment: finish it unless it is no longer due."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is not None:
                self.advance(run)

    def submit_tool_outputs(self, run: Run, outputs: list[tuple[str, str]]) -> None:
        """Accept outputs for every pending tool call; the run then goes on from the queue."""
        expected = {call.call_id for call in run.tool_calls}
        if run.status != "requires_action" or {c for c, _ in outputs} != expected:
            raise ApiError(400, "Tool outputs must answer every pending tool call of the run.")
        run.status, run.started, run.texts = "queued", time.monotonic(), []
        run.due, run.created_wall = run.started + self.run_latency(), time.time()
        run.after_tools = True
        self.record_tool_outputs(run.thread_id, outputs)
        self.scheduled(run)

    def note_bearer(self, authorization: str) -> None:
        """Remember a fingerprint of the request's bearer token."""
        token = authorization.removeprefix("Bearer ").strip()
        if token:
            self.bearer_fingerprints.add(bearer_fingerprint(token))

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        """The first injected fault matching this request, used up once."""
        for fault in self.settings.faults:
            if fault["times"] > 0 and fault["method"] in {method, "*"} and fault["path"] in path:
                fault["times"] -= 1
                self.counts["faults_served"] += 1
                self.fault_times.append(time.time())
                return fault
        return None

    def record_tool_outputs(self, thread_id: str, outputs: list[tuple[str, str]]) -> None:
        """Count tool outputs and keep their texts for tests."""
        self.counts["tool_outputs_total"] += len(outputs)
        self.tool_outputs_by_thread.setdefault(thread_id, []).extend(o for _, o in outputs)

    def _finish(self, run: Run) -> None:
        self._end(run)
        run.finished_at = time.time()
        self.finished(run)

    def _end(self, run: Run) -> None:
        thread = self.threads[run.thread_id]
        if self.settings.next_outcome:
            run.status, self.settings.next_outcome = self.settings.next_outcome, None
            run.completed_at = int(time.time())
            return
        calls = self._calls_to_make(run)
        if calls:
            run.tool_calls = [
                Message(new_id("fc"), "assistant", arguments, int(time.time()),
                        kind="function_call", run_id=run.id, call_id=new_id("call"), name=name)
                for name, arguments in calls
            ]
            if run.api == "assistants":
                run.status = "requires_action"
                return
            thread.messages.extend(run.tool_calls)
            run.output = list(run.tool_calls)
        else:
            message = Message(new_id("msg"), "assistant", self._reply(run), int(time.time()),
                              run_id=run.id)
            thread.messages.append(message)
            run.output = [message]
        run.status, run.completed_at = "completed", int(time.time())

    def _calls_to_make(self, run: Run) -> list[tuple[str, str]]:
        """Scripted calls first (once); else a handoff call when asked to use tools for it."""
        if run.after_tools:
            return []
        if self.settings.next_tool_calls:
            calls, self.settings.next_tool_calls = self.settings.next_tool_calls, []
            return calls
        if self.settings.tool_calls and any(self.brain.wants_person(t) for t in run.texts):
            return [(HANDOFF_TOOL, '{"reason": "customer asked for a person"}')]
        return []

    def _reply(self, run: Run) -> str:
        if self.settings.next_reply is not None:
            reply, self.settings.next_reply = self.settings.next_reply, None
            return reply
        if run.after_tools:
            return AFTER_TOOLS_REPLY
        if not run.texts or any(self.brain.wants_person(text) for text in run.texts):
            return self.brain.handoff_text
        answers = self.brain.answers(run.texts)
        stores = file_search_stores(run.request)
        for text in run.texts if stores else []:
            hit = self.files.search(stores, text)
            if hit is not None and hit.text not in answers:
                run.file_hits.append(hit)
                answers.append(hit.text)
        return "\n\n".join(answers) or self.brain.handoff_text

    def stats(self) -> dict[str, Any]:
        """Counters for tests and demos."""
        return {
            **{key: self.counts[key] for key in (
                "threads_total", "conversations_total", "user_messages_total", "runs_total",
                "tool_outputs_total", "faults_served")},
            "runs_by_thread": dict(self.runs_by_thread),
            "checks_by_thread": dict(self.checks_by_thread),
            "check_times_by_thread": {k: list(v) for k, v in self.check_times_by_thread.items()},
            "fault_times": list(self.fault_times),
            "bearer_fingerprints": sorted(self.bearer_fingerprints),
            "metadata_by_thread": {k: list(v) for k, v in self.metadata_by_thread.items()},
            "tool_outputs_by_thread": {k: list(v) for k, v in self.tool_outputs_by_thread.items()},
        }


def file_search_stores(request: dict[str, Any]) -> list[str]:
    """The vector stores a response's file_search tool searches (none without the tool)."""
    found: list[str] = []
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "file_search":
            ids = tool.get("vector_store_ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ApiError(400, "Invalid 'tools': file_search needs vector_store_ids.",
                               param="tools")
            found.extend(ids)
    return found
