"""Use cases of the worker: run a conversation's turn step by step, poll runs, watch for stalls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from supportflow.domain.events import EventType
from supportflow.domain.flow import FallbackAction, Flow, ThreadScope
from supportflow.domain.fsm import WORKING_STATES
from supportflow.domain.model import Author, Conversation, State, TranscriptMessage
from supportflow.domain.tools import TOOLS
from supportflow.observability.logs import bind

from .ports import (
    AssistantClient,
    AssistantDirectory,
    AssistantError,
    Commit,
    ConversationStore,
    EventPublisher,
    FailureLog,
    FlowCatalog,
    Metrics,
    NullFailureLog,
    NullMetrics,
    NullPublisher,
    RunRequest,
    RunState,
    RunStatus,
    StaleWrite,
    TaskQueue,
)
from .session import EngineConfig, Session, conversation_event
from .tools import ToolRunner

log = logging.getLogger(__name__)

TAKES_TURNS = frozenset({State.ASK, State.WAIT_FOR_USER})


class TurnEngine:
    """Drives conversations through the FSM; one writer per conversation via a lease."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        flows: FlowCatalog,
        assistants: AssistantDirectory,
        queue: TaskQueue,
        clock: Callable[[], float],
        config: EngineConfig | None = None,
        publisher: EventPublisher | None = None,
        metrics: Metrics | None = None,
        failures: FailureLog | None = None,
    ) -> None:
        self.metrics = metrics or NullMetrics()
        self.failures = failures or NullFailureLog()
        self.store = store
        self.publisher = publisher or NullPublisher()
        self.flows = flows
        self.assistants = assistants
        self.queue = queue
        self.clock = clock
        self.config = config or EngineConfig()
        self.tools = ToolRunner(store, clock)
        self.steps: dict[State, Callable[[Session], bool]] = {
            State.STORE_ATTRIBUTE: self._store_attribute,
            State.OPEN_THREAD: self._open_thread,
            State.POST_MESSAGE: self._post_message,
            State.START_RUN: self._start_run,
            State.DECIDE: self._decide,
        }

    # ----- entry points (one per Celery task) -----

    def drain(self, conversation_id: str) -> None:
        """Take waiting customer messages as a turn and run the steps that follow."""
        with self._session(conversation_id) as session:
            if session is not None:
                self._advance(session)

    def poll(self, conversation_id: str, poll_id: int) -> None:
        """Check the conversation's run once; ignores polls that are no longer current."""
        with self._session(conversation_id) as session:
            if session is None:
                return
            conversation = session.conversation
            if conversation.state is not State.POLL or conversation.poll_id != poll_id:
                log.info("stale poll %s of %s ignored", poll_id, conversation_id)
                return
            self.metrics.inc("supportflow_polls", backend=session.flow.backend.kind.value)
            self.metrics.observe("supportflow_poll_lateness_seconds",
                                 max(0.0, self.clock() - (conversation.wake_at or self.clock())))
            if self._guarded(session, self._check_run):
                self._advance(session)

    # ----- the loop -----

    @contextmanager
    def _session(self, conversation_id: str) -> Iterator[Session | None]:
        lease = self.store.acquire_lease(conversation_id, self.config.lease_ttl_s)
        if lease is None:
            # The owner re-checks the mailbox after releasing, so nothing is stranded.
            yield None
            return
        conversation = self.store.get(conversation_id)
        try:
            if conversation is None:
                yield None
                return
            bind(turn=conversation.turn)
            yield Session(conversation, self.flows.get(conversation.flow), lease)
        except StaleWrite as error:
            log.warning("stopped: %s", error)
        finally:
            self.store.release_lease(conversation_id, lease)
        if conversation is not None and self._has_waiting_turn(conversation_id):
            self.queue.drain(conversation_id)

    def _has_waiting_turn(self, conversation_id: str) -> bool:
        latest = self.store.get(conversation_id)
        return (
            latest is not None
            and latest.state in TAKES_TURNS
            and bool(self.store.mailbox(conversation_id))
        )

    def _advance(self, session: Session) -> None:
        """Run steps until the conversation waits for someone (customer, run, agent, retry)."""
        while True:
            state = session.conversation.state
            if state in TAKES_TURNS:
                if not self._begin_turn(session):
                    return
            elif state in WORKING_STATES:
                if not self._guarded(session, self.steps[state]):
                    return
            else:
                return

    def _guarded(self, session: Session, step: Callable[[Session], bool]) -> bool:
        """Run a step; an assistant error becomes a retry later or the flow's fallback."""
        try:
            return step(session)
        except AssistantError as error:
            return self._step_failed(session, error)

    def _commit(self, session: Session, change: Commit | None = None,
                wake_at: float | None = None) -> None:
        conversation = session.conversation
        now = self.clock()
        conversation.updated_at = now
        if wake_at is None and conversation.state in WORKING_STATES:
            wake_at = now
        conversation.wake_at = wake_at
        self.store.commit(conversation, session.lease, change or Commit())

    # ----- steps: each performs its effect, fires its trigger and commits -----

    def _begin_turn(self, session: Session) -> bool:
        pending = self.store.mailbox(session.conversation.id)
        if not pending:
            return False
        conversation = session.conversation
        conversation.turn += 1
        bind(turn=conversation.turn)
        conversation.turn_messages = pending
        conversation.step_attempt = 0
        conversation.handoff_reason = None
        session.machine.fire("user_message")
        self._commit(session, Commit(consumed=len(pending)))
        return True

    def _store_attribute(self, session: Session) -> bool:
        conversation = session.conversation
        self.store.set_attribute(
            conversation.contact_id, session.flow.attribute, conversation.turn_text
        )
        session.machine.fire("attribute_stored")
        self._commit(session)
        return True

    def _open_thread(self, session: Session) -> bool:
        conversation, flow = session.conversation, session.flow
        if flow.thread_scope is ThreadScope.STATIC:
            conversation.thread_id = flow.static_thread_id
        elif flow.thread_scope is ThreadScope.CONTACT:
            conversation.thread_id = self._contact_thread(conversation, flow)
        else:
            conversation.thread_id = self._client(flow).open_thread(metadata=_metadata(conversation))
        session.machine.fire("thread_opened")
        self._commit(session)
        return True

    def _contact_thread(self, conversation: Conversation, flow: Flow) -> str:
        scope_key = f"{flow.name}:{flow.backend.kind.value}"
        existing = self.store.contact_thread(conversation.contact_id, scope_key, None)
        if existing:
            return existing
        created = self._client(flow).open_thread(metadata={"sf_contact": conversation.contact_id})
        winner = self.store.contact_thread(conversation.contact_id, scope_key, created)
        return winner or created

    def _post_message(self, session: Session) -> bool:
        conversation = session.conversation
        assert conversation.thread_id is not None
        texts = [message.text for message in conversation.turn_messages]
        self._client(session.flow).post_messages(
            conversation.thread_id, texts, turn_key=conversation.turn_key
        )
        session.machine.fire("message_posted")
        self._commit(session)
        return True

    def _start_run(self, session: Session) -> bool:
        conversation, flow = session.conversation, session.flow
        assert conversation.thread_id is not None
        conversation.run_id = self._client(flow).start_run(
            conversation.thread_id, self._run_request(session), turn_key=conversation.turn_key
        )
        conversation.run_started_at = self.clock()
        conversation.poll_attempt = 0
        conversation.step_attempt = 0
        session.machine.fire("run_started")
        self._schedule_poll(session, flow.poll.delay(0))
        return False

    def _check_run(self, session: Session) -> bool:
        conversation, flow = session.conversation, session.flow
        assert conversation.thread_id is not None and conversation.run_id is not None
        status = self._client(flow).check_run(conversation.thread_id, conversation.run_id)
        conversation.step_attempt = 0
        if status.state is RunState.PENDING:
            return self._run_pending(session, status)
        if status.state is RunState.REQUIRES_ACTION:
            return self._answer_tool_calls(session, status)
        if status.state is RunState.COMPLETED and status.reply:
            conversation.reply = status.reply
            cause = "tool" if conversation.handoff_reason is not None else "marker"
            if conversation.handoff_reason is None and flow.is_handoff(status.reply):
                conversation.handoff_reason = "the assistant handed the conversation to a person"
            session.machine.fire("run_completed")
            self._commit(session)
            outcome = "completed" if conversation.handoff_reason is None else "handoff"
            self.metrics.inc("supportflow_runs", backend=flow.backend.kind.value, outcome=outcome)
            if conversation.handoff_reason is not None:
                self.metrics.inc("supportflow_handoffs", cause=cause)
            return True
        reason = status.reason or f"the run ended as {status.state.value}"
        return self._fail(session, reason)

    def _run_pending(self, session: Session, status: RunStatus) -> bool:
        conversation, schedule = session.conversation, session.flow.poll
        assert conversation.run_started_at is not None
        elapsed = self.clock() - conversation.run_started_at
        if elapsed >= schedule.deadline_s:
            return self._fail(
                session, f"the assistant did not answer within {schedule.deadline_s:g} s",
                outcome="deadline",
            )
        conversation.poll_attempt += 1
        delay = schedule.delay(conversation.poll_attempt, status.poll_after_s)
        session.machine.fire("run_pending")
        self._schedule_poll(session, min(delay, schedule.deadline_s - elapsed))
        return False

    def _answer_tool_calls(self, session: Session, status: RunStatus) -> bool:
        """Run each tool, return the outputs, and poll the run that goes on."""
        conversation, flow = session.conversation, session.flow
        assert conversation.thread_id is not None and conversation.run_id is not None
        outputs = [(call.id, self.tools.run(conversation, flow, call)) for call in status.tool_calls]
        conversation.run_id = self._client(flow).submit_tool_outputs(
            conversation.thread_id, conversation.run_id, outputs, self._run_request(session)
        )
        conversation.poll_attempt = 0
        session.machine.fire("run_pending")
        self._schedule_poll(session, flow.poll.delay(0))
        return False

    def _schedule_poll(self, session: Session, delay_s: float) -> None:
        conversation = session.conversation
        conversation.poll_id += 1
        self._commit(session, wake_at=self.clock() + delay_s)
        self.queue.poll(conversation.id, conversation.poll_id, delay_s)

    def _decide(self, session: Session) -> bool:
        conversation, flow = session.conversation, session.flow
        handoff = conversation.handoff_reason is not None
        text = flow.handoff.message if handoff else (conversation.reply or "")
        kind = "handoff" if handoff else "reply"
        started = self._finish_turn(conversation)
        session.machine.fire("reply_decided")
        message = self._bot_message(conversation, kind, text)
        self._commit(session, Commit(transcript=[message]))
        self._replied(started)
        self._announce(conversation, message)
        return True

    def _fail(self, session: Session, reason: str, outcome: str = "failed") -> bool:
        """Run the flow's fallback: tell the customer, then hand off (default) or wait."""
        conversation, flow = session.conversation, session.flow
        log.warning("conversation %s turn %s failed: %s", conversation.id, conversation.turn, reason)
        conversation.failure_reason = reason
        if flow.fallback.action is FallbackAction.HANDOFF:
            conversation.handoff_reason = f"assistant failure: {reason}"
        started = self._finish_turn(conversation)
        session.machine.fire("failed")
        message = self._bot_message(conversation, "fallback", flow.fallback.message)
        self._commit(session, Commit(transcript=[message]))
        self._replied(started)
        self.metrics.inc("supportflow_runs", backend=flow.backend.kind.value, outcome=outcome)
        self.failures.record_failure(conversation.id, reason, self.clock())
        if conversation.state is State.HANDED_OFF:
            self.metrics.inc("supportflow_handoffs", cause="failure")
        self._announce(conversation, message)
        return True

    def _step_failed(self, session: Session, error: AssistantError) -> bool:
        conversation = session.conversation
        self.metrics.inc("supportflow_assistant_errors", status=error.label)
        if not error.retryable or conversation.step_attempt >= session.flow.max_step_retries:
            return self._fail(session, error.describe(), outcome="error")
        conversation.step_attempt += 1
        backoff = self.config.retry_base_s * 2 ** (conversation.step_attempt - 1)
        delay = min(max(backoff, error.retry_after_s or 0.0), self.config.retry_max_s)
        log.info("retrying %s of %s in %.1f s: %s",
                 conversation.state.value, conversation.id, delay, error.message)
        if conversation.state is State.POLL:
            self._schedule_poll(session, delay)
        else:
            self._commit(session, wake_at=self.clock() + delay)
            self.queue.drain(conversation.id, delay)
        return False

    # ----- helpers -----

    def _announce(self, conversation: Conversation, message: TranscriptMessage) -> None:
        """Publish the bot's message, and the handoff when the turn ended in one."""
        events = [conversation_event(conversation, EventType.MESSAGE_CREATED, message.id,
                                     {"message": message.to_dict()})]
        if conversation.state is State.HANDED_OFF:
            events.append(conversation_event(
                conversation, EventType.HANDED_OFF, f"handoff:{conversation.turn}",
                {"reason": conversation.handoff_reason, "turn": conversation.turn}))
        self.publisher.publish(events)

    def _run_request(self, session: Session) -> RunRequest:
        flow = session.flow
        return RunRequest(backend=flow.backend, metadata=_metadata(session.conversation),
                          tools=tuple(TOOLS[name] for name in flow.tools))

    def _client(self, flow: Flow) -> AssistantClient:
        return self.assistants.client_for(flow.backend)

    def _finish_turn(self, conversation: Conversation) -> float | None:
        """Clear the turn; when its first customer message arrived (None if there was none)."""
        started = conversation.turn_messages[0].received_at if conversation.turn_messages else None
        conversation.turn_messages = []
        conversation.run_id = None
        conversation.reply = None
        conversation.run_started_at = None
        return started

    def _replied(self, started: float | None) -> None:
        """Count the bot's message of a turn, and the customer's wait for it."""
        self.metrics.inc("supportflow_messages_out", author="bot")
        if started is not None:
            self.metrics.observe("supportflow_reply_latency_seconds", max(0.0, self.clock() - started))

    def _bot_message(self, conversation: Conversation, kind: str, text: str) -> TranscriptMessage:
        return TranscriptMessage(
            id=f"{conversation.turn}:{kind}", author=Author.BOT, text=text,
            at=self.clock(), turn=conversation.turn,
        )


def _metadata(conversation: Conversation) -> dict[str, str]:
    # sf_turn is the turn key (conversation:turn) the clients also use to recognise their runs.
    return {"sf_conversation": conversation.id, "sf_turn": conversation.turn_key}
