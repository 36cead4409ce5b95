"""Fakes of the ports, in one place: a recording task queue, a scripted assistant, a clock."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from supportflow.domain.flow import Backend
from supportflow.services.ports import Due, RunRequest, RunState, RunStatus


class RecordingQueue:
    """A TaskQueue fake that only records what would have been published."""

    needs_workers = False

    def __init__(self) -> None:
        # The broker list the scheduler watches (tests push to it to fake a backlog).
        self.name = f"fake-queue-{uuid.uuid4().hex[:8]}"
        # Each published task: its wake-ups, and their conversations, in order.
        self.batches: list[list[Due]] = []
        self.tasks: list[list[str]] = []
        self.drains: list[str] = []
        self.polls: list[tuple[str, int]] = []
        # The dispatch token of each published task, by conversation (the latest).
        self.tokens: dict[str, str] = {}
        self.deliveries: list[tuple[str, int, float]] = []
        self.syncs: list[str] = []

    def wake(self, due: Sequence[Due]) -> None:
        self.batches.append(list(due))
        self.tasks.append([d.conversation_id for d in due])
        for d in due:
            if d.kind == "poll":
                self.polls.append((d.conversation_id, d.poll_id))
            else:
                self.drains.append(d.conversation_id)
            self.tokens[d.conversation_id] = d.token

    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        self.deliveries.append((delivery_id, attempt, delay_s))

    def sync_article(self, article_id: str) -> None:
        self.syncs.append(article_id)


def scheduled_batch(services: Any, queue: RecordingQueue, clock: Clock,
                    conversation_ids: list[str]) -> Any:
    """Move the fake clock to the last of the conversations' wake-ups and run a scheduler
    round; the one task it published carrying all of them."""
    clock.now = max(services.store.wake_of(cid) or 0.0 for cid in conversation_ids)
    services.scheduler.run_once()
    (task,) = [due for due in queue.batches
               if {d.conversation_id for d in due} == set(conversation_ids)]
    return task


def scheduled_poll(services: Any, queue: RecordingQueue, clock: Clock,
                   conversation_id: str) -> tuple[int, str]:
    """Move the fake clock to the conversation's wake-up and run a scheduler round; the poll id
    and dispatch token of the task it published (a worker passes both to the engine)."""
    wake = services.store.wake_of(conversation_id)
    assert wake is not None, "no wake-up is planned"
    clock.now = max(clock.now, wake)
    before = len(queue.polls)
    services.scheduler.run_once()
    found = [poll_id for cid, poll_id in queue.polls[before:] if cid == conversation_id]
    assert len(found) == 1, "the scheduler published no poll of this conversation"
    return found[0], queue.tokens[conversation_id]


@dataclass
class FakeAssistant:
    """An assistant (and its directory) whose next answers and failures the test sets."""

    statuses: list[RunStatus] = field(default_factory=list)
    # Exceptions raised by the next calls of an operation, in order (any exception type).
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    posted: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    # Something that happens once while a run is started or checked, given the run id (an
    # OpenAI event arriving meanwhile, say).
    during: dict[str, Callable[[str], object]] = field(default_factory=dict)
    # Like the responses backend: the turn's messages go with start_run (no post_messages).
    messages_with_run: bool = False
    # The `recovering` flag of each post_messages and start_run call, in order.
    recovering: list[bool] = field(default_factory=list)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if self.failures.get(operation):
            raise self.failures[operation].pop(0)

    def open_thread(self, *, metadata: Mapping[str, str]) -> str:
        self._call("open_thread")
        return f"thread-{next(self.ids)}"

    def post_messages(self, thread_id: str, texts: Sequence[str], *, turn_key: str,
                      recovering: bool = False) -> None:
        self._call("post_messages")
        self.recovering.append(recovering)
        self.posted.append((thread_id, tuple(texts)))

    def start_run(self, thread_id: str, request: RunRequest, *, turn_key: str,
                  texts: Sequence[str] = (), recovering: bool = False) -> str:
        self._call("start_run")
        self.recovering.append(recovering)
        if texts:
            self.posted.append((thread_id, tuple(texts)))
        run_id = f"run-{next(self.ids)}"
        if "start_run" in self.during:
            self.during.pop("start_run")(run_id)
        return run_id

    def check_run(self, thread_id: str, run_id: str) -> RunStatus:
        self._call("check_run")
        if "check_run" in self.during:
            self.during.pop("check_run")(run_id)
        return self.statuses.pop(0) if self.statuses else RunStatus(RunState.PENDING)

    def submit_tool_outputs(self, thread_id: str, run_id: str,
                            outputs: Sequence[tuple[str, str]], request: RunRequest) -> str:
        self._call("submit_tool_outputs")
        return f"run-{next(self.ids)}"

    def client_for(self, backend: Backend) -> FakeAssistant:
        return self


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingRedis(redis.Redis):
    """A real Redis client that counts its round trips (a command, a script or a pipeline)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> redis.client.Pipeline:
        owner = self

        class CountedPipeline(redis.client.Pipeline):
            def execute(self, raise_on_error: bool = True) -> list[Any]:
                owner.commands.append("PIPELINE")
                return super().execute(raise_on_error)

        return CountedPipeline(self.connection_pool, self.response_callbacks, transaction,
                               shard_hint)

    def trips(self) -> list[str]:
        """The round trips since the last call (EVALSHA for a script), one entry each."""
        made, self.commands = self.commands, []
        return made
