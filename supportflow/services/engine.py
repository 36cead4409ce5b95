"""The turn engine: runs the step table (domain/fsm.py STEPS) on a unit of work.

A task carries one or more wake-ups: their takes are one Redis round trip, then each
conversation runs on its own (side by side, on the StepRunner) with a commit after each step
that changed the assistant's side, folding in the steps that did not; the last commit of a
session also lets go of the lease, writes the next wake-up (the scheduler publishes it when
due: the engine publishes nothing) and hands back customer messages that arrived meanwhile,
which the engine then takes as the next turn. The quiet last commits of a task (nothing for a
person in them: a check that found the run still going) wait for the batch and go together,
in one round trip; a commit with a reply in it goes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from supportflow.domain.flow import Backend, BackendKind, Flow
from supportflow.domain.fsm import (
    ASSISTANT_STEPS,
    STEPS,
    TAKES_TURNS,
    WORKING_STATES,
    Step,
    Wake,
    fire,
)
from supportflow.domain.model import State
from supportflow.observability.logs import bind as bind_log
from supportflow.observability.logs import log_context

from .ports import (
    AssistantDirectory,
    AssistantError,
    Due,
    EventPublisher,
    FailureLog,
    FlowCatalog,
    InTurn,
    Metrics,
    NullFailureLog,
    NullMetrics,
    NullPublisher,
    Schedule,
    StepRunner,
)
from .steps import Steps
from .unit_of_work import (
    Commit,
    Purpose,
    StaleWrite,
    Taken,
    TakeRequest,
    UnitOfWork,
    Work,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    # A step that fails for a reason retrying the assistant cannot fix (a bug, bad data) is
    # tried this many times, then the flow's fallback runs: nothing jams a conversation.
    max_faults: int = 3
    # Errors of the infrastructure (Redis down): the task is retried as a whole, not counted.
    transient: tuple[type[BaseException], ...] = field(default_factory=tuple)


class TurnEngine:
    """Drives conversations through the step table; one writer per conversation (the lease)."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        flows: FlowCatalog,
        assistants: AssistantDirectory,
        schedule: Schedule,
        clock: Callable[[], float],
        config: EngineConfig | None = None,
        publisher: EventPublisher | None = None,
        metrics: Metrics | None = None,
        failures: FailureLog | None = None,
        runner: StepRunner | None = None,
    ) -> None:
        self.uow = uow
        self.runner = runner or InTurn()
        self.flows = flows
        self.schedule = schedule
        self.clock = clock
        self.config = config or EngineConfig()
        self.publisher = publisher or NullPublisher()
        self.metrics = metrics or NullMetrics()
        self.steps = Steps(assistants=assistants, uow=uow, clock=clock,
                           failures=failures or NullFailureLog())

    # ----- entry points (Celery tasks) -----

    def wake(self, due: Sequence[Due]) -> None:
        """Run the scheduler's wake-ups of a task: all taken in one round trip, then each
        conversation's steps side by side; a stale or idle one is dropped in that trip."""
        requests = [TakeRequest(d.conversation_id, Purpose.POLL if d.kind == "poll"
                                else Purpose.DRAIN, d.poll_id if d.kind == "poll" else None,
                                d.token) for d in due]
        settling: list[tuple[Work, float]] = []
        jobs = [partial(self._go_on, request, taken, work, settling)
                for request, (taken, work) in zip(requests, self.uow.take_many(requests),
                                                   strict=True)]
        try:
            self.runner.run(jobs)
        except BaseException:
            self._let_go([work for work, _ in settling])
            raise
        self._settle_together(settling)

    def drain(self, conversation_id: str, dispatch: str = "") -> None:
        """Take waiting customer messages as a turn, or go on with a step under way."""
        self._run(TakeRequest(conversation_id, Purpose.DRAIN, None, dispatch))

    def poll(self, conversation_id: str, poll_id: int, dispatch: str = "") -> None:
        """Check the conversation's run once; a poll that is no longer current does nothing."""
        self._run(TakeRequest(conversation_id, Purpose.POLL, poll_id, dispatch))

    # ----- the loop -----

    def _run(self, request: TakeRequest) -> None:
        taken, work = self.uow.take(request.conversation_id, request.purpose, request.poll_id,
                                    request.dispatch)
        self._go_on(request, taken, work)

    def _go_on(self, request: TakeRequest, taken: Taken, work: Work | None,
               settling: list[tuple[Work, float]] | None = None) -> None:
        """Run a taken conversation's steps (in its own logging context); drop the others."""
        with log_context(conversation_id=request.conversation_id):
            if work is None:
                if taken is Taken.STALE:
                    log.info("stale poll %s of %s dropped", request.poll_id,
                             request.conversation_id)
                return
            bind_log(turn=work.conversation.turn)
            self._carry(work, polled=request.purpose is Purpose.POLL, settling=settling)

    def _carry(self, work: Work, *, polled: bool,
               settling: list[tuple[Work, float]] | None) -> None:
        """Advance a held conversation; a fault is counted, and the lease always goes (or, when
        its last commit waits in `settling`, stays for that commit)."""
        left = False
        try:
            left = self._advance(work, polled=polled, settling=settling)
        except StaleWrite as error:
            log.warning("stopped: %s", error)
        except self.config.transient:
            raise
        except Exception as error:
            self._fault(work, error)
        finally:
            if work.held and not left:
                self.uow.release(work)

    def _advance(self, work: Work, *, polled: bool,
                 settling: list[tuple[Work, float]] | None) -> bool:
        """Run steps until the conversation waits for someone (customer, run, agent, retry);
        True when its last commit was left to `settling` (with the time it would have run)."""
        flow = self.flows.get(work.conversation.flow)
        due, unsaved = polled, False
        while True:
            step = STEPS.get(work.conversation.state)
            if step is None or not self._runnable(work, step, due):
                if settling is not None and not work.events and not work.transcript:
                    settling.append((work, self.clock()))
                    return True
                if self._settle(work):
                    continue
                return False
            if unsaved:
                self._save(work)
            due = False
            self._step(work, flow, step)
            unsaved = self.steps.changed_outside(step, flow)

    def _runnable(self, work: Work, step: Step, due: bool) -> bool:
        if work.wakeup is not None:
            return False
        if step.wake is Wake.CUSTOMER:
            return bool(work.mailbox)
        return step.wake is Wake.NOW or (step.wake is Wake.RUN_CHECK and due)

    def _step(self, work: Work, flow: Flow, step: Step) -> None:
        """Run the step's effect and fire its exit trigger (unless the effect moved it)."""
        try:
            if not self.steps.run(step.effect, work, flow):
                fire(work.conversation, step.done)
        except AssistantError as error:
            self._assistant_failed(work, flow, error)

    def _save(self, work: Work) -> None:
        """Commit mid-session: what changed outside is never redone."""
        now = self.clock()
        work.conversation.updated_at = now
        wake_at = now if work.conversation.state in WORKING_STATES else None
        self.uow.commit(work, release=False, wake_at=wake_at, now=now)
        self._after_commit(work)

    def _settle(self, work: Work, *, keep_going: bool = True) -> bool:
        """The session's last commit: the next wake-up, and let go (True: messages came in)."""
        last = self._settling(work, self.clock(), keep_going=keep_going)
        committed = self.uow.commit(work, release=True, keep_if_waiting=keep_going,
                                    wake_at=last.wake_at, now=last.now)
        self._after_commit(work)
        return bool(committed.handed_back)

    def _settle_together(self, settling: list[tuple[Work, float]]) -> None:
        """The quiet last commits of a task in one round trip, each with its next wake-up
        counted from its own step; a conversation whose customer wrote meanwhile goes on with
        those messages as its next turn."""
        if not settling:
            return
        works = [work for work, _ in settling]
        commits = [self._settling(work, at) for work, at in settling]
        try:
            outcomes = self.uow.commit_many(commits)
        except BaseException:
            self._let_go(works)
            raise
        going_on = []
        for work, outcome in zip(works, outcomes, strict=True):
            if isinstance(outcome, Exception):
                with log_context(conversation_id=work.conversation.id):
                    self._not_settled(work, outcome)
                continue
            self._after_commit(work)
            if outcome.handed_back:
                going_on.append(partial(self._resume, work))
        self.runner.run(going_on)

    def _not_settled(self, work: Work, error: Exception) -> None:
        """A batch's commit that failed goes the way a commit of its own would have."""
        if isinstance(error, StaleWrite):
            log.warning("stopped: %s", error)
            self._let_go([work])
        else:
            self._fault(work, error)

    @staticmethod
    def _settling(work: Work, now: float, *, keep_going: bool = True) -> Commit:
        """A session's last commit: the record's next poll id and wake-up, the lease let go."""
        conversation, wakeup = work.conversation, work.wakeup
        conversation.updated_at = now
        if wakeup is not None and wakeup.poll:
            conversation.poll_id += 1
        wake_at = now + wakeup.delay_s if wakeup is not None else None
        return Commit(work, keep_if_waiting=keep_going, wake_at=wake_at, now=now)

    def _resume(self, work: Work) -> None:
        """Go on with messages a batch's commit handed back."""
        with log_context(conversation_id=work.conversation.id, turn=work.conversation.turn):
            self._carry(work, polled=False, settling=None)

    def _let_go(self, works: Sequence[Work]) -> None:
        """Release what is still held, whatever else fails (the lease would expire anyway)."""
        for work in works:
            if work.held:
                try:
                    self.uow.release(work)
                except Exception as error:
                    log.warning("lease of %s not released: %s", work.conversation.id, error)

    def _after_commit(self, work: Work) -> None:
        work.wakeup = None
        if work.events:
            events, work.events = work.events, []
            self.publisher.publish(events)

    # ----- failures -----

    def _assistant_failed(self, work: Work, flow: Flow, error: AssistantError) -> None:
        """A retryable error is tried again later, with backoff; then the fallback runs."""
        conversation = work.conversation
        work.metrics.inc("supportflow_assistant_errors", status=error.label)
        if not error.retryable or conversation.step_attempt >= flow.max_step_retries:
            self.steps.fail(work, flow, error.describe(), outcome="error")
            return
        conversation.step_attempt += 1
        backoff = self.config.retry_base_s * 2 ** (conversation.step_attempt - 1)
        delay = min(max(backoff, error.retry_after_s or 0.0), self.config.retry_max_s)
        log.info("retrying %s of %s in %.1f s: %s",
                 conversation.state.value, conversation.id, delay, error.message)
        work.wake_in(delay, poll=conversation.state is State.POLL)

    def _fault(self, work: Work, error: Exception) -> None:
        """A step failed for another reason: try it again a few times, then the fallback."""
        conversation_id = work.conversation.id
        turn, state, _ = work.committed
        log.error("step %s of %s (turn %s) failed", state.value, conversation_id, turn,
                  exc_info=error)
        self.metrics.inc("supportflow_step_errors", state=state.value)
        if work.held:
            self.uow.release(work)
        attempts = self.uow.count_fault(conversation_id, f"{turn}:{state.value}")
        if attempts < self.config.max_faults:
            delay = min(self.config.retry_base_s * 2 ** (attempts - 1), self.config.retry_max_s)
            # The same poll (its id unchanged) or the same step, after the backoff.
            self.schedule.wake_at(conversation_id, self.clock() + delay)
            return
        reason = f"internal error in {state.value}: {type(error).__name__}: {error}"
        self._fall_back(conversation_id, printable(reason))

    def _fall_back(self, conversation_id: str, reason: str) -> None:
        """Run the flow's fallback on the record as last committed; the turn's messages stay
        in the transcript for agents, and never go back into the record."""
        _, work = self.uow.take(conversation_id, Purpose.ANY)
        if work is None:
            return
        try:
            conversation = work.conversation
            if conversation.state in TAKES_TURNS and work.take_mailbox():
                conversation.turn += 1
                fire(conversation, "user_message")
            if conversation.state in ASSISTANT_STEPS:
                try:
                    flow = self.flows.get(conversation.flow)
                except KeyError:  # the flow is gone from the configuration: its defaults
                    flow = Flow(name=conversation.flow, welcome="",
                                backend=Backend(kind=BackendKind.RESPONSES))
                self.steps.fail(work, flow, reason, outcome="error")
            self._settle(work, keep_going=False)
        except Exception:
            log.exception("the fallback of %s failed too", conversation_id)
        finally:
            if work.held:
                self.uow.release(work)


def printable(text: str, limit: int = 300) -> str:
    """Text that is valid Unicode whatever the error held (lone surrogates escaped), shortened."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]

