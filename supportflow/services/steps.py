"""The effects of the step table (supportflow/domain/fsm.py STEPS), by the names it gives them.

Each effect does its step's work on the unit of work and returns False when the engine should
fire the step's exit trigger, True when it moved the conversation itself (a run still pending,
a failure). Writes are staged on the Work; the engine commits them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from supportflow.domain.events import ConversationEvent, EventType, event_id
from supportflow.domain.flow import FallbackAction, Flow, ThreadScope
from supportflow.domain.fsm import Step, fire
from supportflow.domain.ids import service_id
from supportflow.domain.model import Author, Conversation, State, TranscriptMessage
from supportflow.domain.tools import TOOLS
from supportflow.observability.logs import bind as bind_log

from .ports import (
    AssistantClient,
    AssistantDirectory,
    FailureLog,
    RunRequest,
    RunState,
    RunStatus,
)
from .tools import ToolRunner
from .unit_of_work import UnitOfWork, Work

log = logging.getLogger("supportflow.services.engine")


class Steps:
    """What the worker does in each state; `run(name, ...)` calls the effect the table names."""

    def __init__(self, *, assistants: AssistantDirectory, uow: UnitOfWork,
                 clock: Callable[[], float], failures: FailureLog) -> None:
        self.assistants = assistants
        self.uow = uow
        self.clock = clock
        self.failures = failures
        self.tools = ToolRunner(clock)

    def run(self, effect: str, work: Work, flow: Flow) -> bool:
        """Run the named effect; True when it fired its own trigger."""
        found: Callable[[Work, Flow], bool] = getattr(self, effect)
        return found(work, flow)

    def changed_outside(self, step: Step, flow: Flow) -> bool:
        """Whether the step changed the assistant's side (then it is committed at once)."""
        if step.effect == "post_message" and self._client(flow).messages_with_run:
            return False  # the messages go with start_run's request
        return step.outside

    # ----- the effects, in the table's order -----

    def take_turn(self, work: Work, flow: Flow) -> bool:
        """The waiting customer messages become this turn (a burst is one turn)."""
        conversation = work.conversation
        conversation.turn += 1
        bind_log(turn=conversation.turn)
        conversation.turn_messages = work.take_mailbox()
        conversation.step_attempt = 0
        conversation.handoff_reason = None
        return False

    def store_attribute(self, work: Work, flow: Flow) -> bool:
        """The customer's answer goes into the flow's contact attribute (with the next commit)."""
        work.set_attribute(flow.attribute, work.conversation.turn_text)
        return False

    def open_thread(self, work: Work, flow: Flow) -> bool:
        """The thread the flow's scope names: new, the contact's, or the flow's fixed one."""
        conversation = work.conversation
        if flow.thread_scope is ThreadScope.STATIC:
            conversation.thread_id = flow.static_thread_id
        elif flow.thread_scope is ThreadScope.CONTACT:
            conversation.thread_id = self._contact_thread(conversation, flow)
        else:
            conversation.thread_id = self._client(flow).open_thread(metadata=metadata(conversation))
        return False

    def post_message(self, work: Work, flow: Flow) -> bool:
        """The turn's customer messages join the thread (once per turn); on a backend whose
        run request carries them (responses), they go with start_run: no call here."""
        conversation, client = work.conversation, self._client(flow)
        assert conversation.thread_id is not None
        if not client.messages_with_run:
            client.post_messages(conversation.thread_id, _texts(conversation),
                                 turn_key=conversation.turn_key, recovering=work.recovering)
        return False

    def start_run(self, work: Work, flow: Flow) -> bool:
        """Ask the assistant to answer; the first check follows the flow's schedule."""
        conversation, client = work.conversation, self._client(flow)
        assert conversation.thread_id is not None
        conversation.run_id = client.start_run(
            conversation.thread_id, self._run_request(conversation, flow),
            turn_key=conversation.turn_key,
            texts=_texts(conversation) if client.messages_with_run else (),
            recovering=work.recovering)
        conversation.run_started_at = self.clock()
        conversation.poll_attempt = 0
        conversation.step_attempt = 0
        work.wake_in(flow.poll.delay(0), poll=True)
        return False

    def check_run(self, work: Work, flow: Flow) -> bool:
        """Look at the run once: still going, tools to run, a reply, or a failure."""
        conversation = work.conversation
        assert conversation.thread_id is not None and conversation.run_id is not None
        now = self.clock()
        work.metrics.inc("supportflow_polls", backend=flow.backend.kind.value)
        work.metrics.observe("supportflow_poll_lateness_seconds",
                             max(0.0, now - (conversation.wake_at or now)))
        status = self._client(flow).check_run(conversation.thread_id, conversation.run_id)
        conversation.step_attempt = 0
        if status.state is RunState.PENDING:
            return self._run_pending(work, flow, status)
        if status.state is RunState.REQUIRES_ACTION:
            return self._answer_tool_calls(work, flow, status)
        work.metrics.inc("supportflow_runs_ended", via="webhook" if work.woken else "poll")
        if status.state is RunState.COMPLETED and status.reply:
            conversation.reply = status.reply
            cause = "tool" if conversation.handoff_reason is not None else "marker"
            if conversation.handoff_reason is None and flow.is_handoff(status.reply):
                conversation.handoff_reason = "the assistant handed the conversation to a person"
            handoff = conversation.handoff_reason is not None
            work.metrics.inc("supportflow_runs", backend=flow.backend.kind.value,
                             outcome="handoff" if handoff else "completed")
            if handoff:
                work.metrics.inc("supportflow_handoffs", cause=cause)
            return False
        return self.fail(work, flow, status.reason or f"the run ended as {status.state.value}")

    def decide(self, work: Work, flow: Flow) -> bool:
        """Send the reply and wait for the customer, or tell them a person takes over."""
        conversation = work.conversation
        handoff = conversation.wants_handoff()
        text = flow.handoff.message if handoff else (conversation.reply or "")
        started = finish_turn(conversation)
        message = self._bot_message(work, "handoff" if handoff else "reply", text)
        self._replied(work, started)
        # The exit trigger (reply_decided) hands off on the same condition.
        self._announce(work, message, handoff=handoff)
        return False

    # ----- the fallback -----

    def fail(self, work: Work, flow: Flow, reason: str, outcome: str = "failed") -> bool:
        """Run the flow's fallback: tell the customer, then hand off (default) or wait."""
        conversation = work.conversation
        log.warning("conversation %s turn %s failed: %s", conversation.id, conversation.turn, reason)
        conversation.failure_reason = reason
        handoff = flow.fallback.action is FallbackAction.HANDOFF
        conversation.handoff_reason = f"assistant failure: {reason}" if handoff else None
        started = finish_turn(conversation)
        fire(conversation, "failed")
        message = self._bot_message(work, "fallback", flow.fallback.message)
        self._replied(work, started)
        work.metrics.inc("supportflow_runs", backend=flow.backend.kind.value, outcome=outcome)
        self.failures.record_failure(conversation.id, reason, self.clock())
        if conversation.state is State.HANDED_OFF:
            work.metrics.inc("supportflow_handoffs", cause="failure")
        self._announce(work, message, handoff=conversation.state is State.HANDED_OFF)
        return True

    # ----- helpers -----

    def _run_pending(self, work: Work, flow: Flow, status: RunStatus) -> bool:
        conversation, schedule = work.conversation, flow.poll
        assert conversation.run_started_at is not None
        elapsed = self.clock() - conversation.run_started_at
        if elapsed >= schedule.deadline_s:
            return self.fail(work, flow, f"the assistant did not answer within "
                             f"{schedule.deadline_s:g} s", outcome="deadline")
        conversation.poll_attempt += 1
        delay = schedule.delay(conversation.poll_attempt, status.poll_after_s)
        fire(conversation, "run_pending")
        work.wake_in(min(delay, schedule.deadline_s - elapsed), poll=True)
        return True

    def _answer_tool_calls(self, work: Work, flow: Flow, status: RunStatus) -> bool:
        """Run each tool, return the outputs, and poll the run that goes on."""
        conversation = work.conversation
        assert conversation.thread_id is not None and conversation.run_id is not None
        outputs = [(call.id, self.tools.run(work, flow, call)) for call in status.tool_calls]
        conversation.run_id = self._client(flow).submit_tool_outputs(
            conversation.thread_id, conversation.run_id, outputs,
            self._run_request(conversation, flow))
        conversation.poll_attempt = 0
        fire(conversation, "run_pending")
        work.wake_in(flow.poll.delay(0), poll=True)
        return True

    def _contact_thread(self, conversation: Conversation, flow: Flow) -> str:
        scope_key = f"{flow.name}:{flow.backend.kind.value}"
        existing = self.uow.contact_thread(conversation.contact_id, scope_key, None)
        if existing:
            return existing
        created = self._client(flow).open_thread(metadata={"sf_contact": conversation.contact_id})
        winner = self.uow.contact_thread(conversation.contact_id, scope_key, created)
        return winner or created

    def _run_request(self, conversation: Conversation, flow: Flow) -> RunRequest:
        return RunRequest(backend=flow.backend, metadata=metadata(conversation),
                          tools=tuple(TOOLS[name] for name in flow.tools))

    def _client(self, flow: Flow) -> AssistantClient:
        return self.assistants.client_for(flow.backend)

    def _bot_message(self, work: Work, kind: str, text: str) -> TranscriptMessage:
        conversation = work.conversation
        conversation.updated_at = self.clock()
        message = TranscriptMessage(id=service_id(conversation.turn, kind), author=Author.BOT,
                                    text=text, at=conversation.updated_at, turn=conversation.turn)
        work.add_message(message)
        return message

    def _replied(self, work: Work, started: float | None) -> None:
        """Count the bot's message of a turn, and the customer's wait for it."""
        work.metrics.inc("supportflow_messages_out", author="bot")
        if started is not None:
            work.metrics.observe("supportflow_reply_latency_seconds",
                                 max(0.0, self.clock() - started))

    def _announce(self, work: Work, message: TranscriptMessage, *, handoff: bool) -> None:
        """Publish the bot's message, and the handoff when the turn ends in one (after commit)."""
        conversation = work.conversation
        work.events.append(conversation_event(conversation, EventType.MESSAGE_CREATED, message.id,
                                              {"message": message.to_dict()}))
        if handoff:
            work.events.append(conversation_event(
                conversation, EventType.HANDED_OFF, f"handoff:{conversation.turn}",
                {"reason": conversation.handoff_reason, "turn": conversation.turn}))


def _texts(conversation: Conversation) -> list[str]:
    return [message.text for message in conversation.turn_messages]


def finish_turn(conversation: Conversation) -> float | None:
    """Clear the turn; when its first customer message arrived (None if there was none)."""
    started = conversation.turn_messages[0].received_at if conversation.turn_messages else None
    conversation.turn_messages = []
    conversation.run_id = None
    conversation.reply = None
    conversation.run_started_at = None
    return started


def metadata(conversation: Conversation) -> dict[str, str]:
    """What every request that takes metadata carries: the conversation and the turn key."""
    # sf_turn is the turn key (conversation:turn) the clients also use to recognise their runs.
    return {"sf_conversation": conversation.id, "sf_turn": conversation.turn_key}


def conversation_event(conversation: Conversation, kind: EventType, what: str,
                       data: dict[str, Any]) -> ConversationEvent:
    """An event of the conversation whose id is stable for the same `what`."""
    return ConversationEvent(
        id=event_id(conversation.id, what), type=kind, conversation_id=conversation.id,
        channel=conversation.channel, external_id=conversation.external_id,
        at=conversation.updated_at, data=data,
    )
