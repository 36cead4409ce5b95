"""Nothing stays forever: closed and long-idle conversations leave, and a contact's data is
erased on request. Each conversation is erased under its lease, so no step writes after it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)
SWEEP_LOCK = "retention"


@dataclass(frozen=True)
class ConversationErased:
    """What erasing one conversation removed."""

    conversation_id: str
    contact_id: str | None
    messages: int
    notes: int
    deliveries: int


@dataclass
class Erasure:
    """What an erasure removed, in all."""

    conversations: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    messages: int = 0
    notes: int = 0
    deliveries: int = 0
    attributes: int = 0
    threads: int = 0
    handoff_announcements: int = 0
    failure_records: int = 0

    def add(self, erased: ConversationErased) -> None:
        self.conversations.append(erased.conversation_id)
        self.messages += erased.messages
        self.notes += erased.notes
        self.deliveries += erased.deliveries

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Eraser(Protocol):
    """Finds what has expired and erases it with every key and index entry that refers to it."""

    def idle_since(self, before: float, limit: int) -> list[str]: ...

    def closed_since(self, before: float, limit: int) -> list[str]: ...

    def idle_contacts(self, before: float, limit: int) -> list[str]: ...

    def contact_conversations(self, contact_id: str) -> list[str]: ...

    def contact_exists(self, contact_id: str) -> bool: ...

    def hold(self, conversation_id: str, ttl_s: float) -> str | None:
        """Take the conversation's lease, as a worker would; None while someone holds it."""
        ...

    def let_go(self, conversation_id: str, token: str) -> None: ...

    def erase_conversation(self, conversation_id: str, lease: str) -> ConversationErased | None:
        """Erase a conversation held under `lease`; None when the lease is not ours."""
        ...

    def erase_contact(self, contact_id: str, *, force: bool) -> tuple[bool, int, int]:
        """Erase a contact's attributes and threads: (erased?, attributes, threads)."""
        ...

    def forget_in_logs(self, conversation_ids: Collection[str]) -> tuple[int, int]:
        """Drop handoff announcements and failure records: (announcements, records)."""
        ...

    def try_lock(self, name: str, ttl_s: float) -> str | None: ...

    def unlock(self, name: str, token: str) -> None: ...


class ConversationsBusy(Exception):
    """A worker holds one of the conversations to erase; nothing was erased: try again."""


@dataclass(frozen=True)
class RetentionPolicy:
    idle_s: float = 30 * 86400.0
    closed_s: float = 86400.0
    batch: int = 200
    max_batches: int = 50
    lease_ttl_s: float = 45.0


class Retention:
    """The retention sweep (beat task) and the erasure of a contact on request."""

    def __init__(self, *, eraser: Eraser, clock: Callable[[], float],
                 policy: RetentionPolicy | None = None) -> None:
        self.eraser, self.clock = eraser, clock
        self.policy = policy or RetentionPolicy()

    def sweep(self) -> Erasure:
        """Erase, in batches, conversations closed or idle past their retention, then contacts
        none of whose conversations is left. One sweep at a time across machines."""
        erasure = Erasure()
        lock = self.eraser.try_lock(SWEEP_LOCK, ttl_s=self.policy.lease_ttl_s * 4)
        if lock is None:
            return erasure
        try:
            now = self.clock()
            self._sweep_conversations(now, erasure)
            self._forget_logs(erasure)
            self._sweep_contacts(now, erasure)
        finally:
            self.eraser.unlock(SWEEP_LOCK, lock)
        if erasure.conversations or erasure.contacts:
            log.info("retention erased %d conversations and %d contacts",
                     len(erasure.conversations), len(erasure.contacts))
        return erasure

    def _sweep_conversations(self, now: float, erasure: Erasure) -> None:
        policy = self.policy
        for find, before in ((self.eraser.closed_since, now - policy.closed_s),
                             (self.eraser.idle_since, now - policy.idle_s)):
            for _ in range(policy.max_batches):
                batch = find(before, policy.batch)  # what is erased leaves the index
                erased = self._erase_free(batch, erasure)
                if len(batch) < policy.batch or not erased:
                    break

    def _sweep_contacts(self, now: float, erasure: Erasure) -> None:
        for _ in range(self.policy.max_batches):
            contacts = self.eraser.idle_contacts(now - self.policy.idle_s, self.policy.batch)
            for contact_id in contacts:  # each leaves the index, erased or not
                self._erase_contact(contact_id, erasure, force=False)
            if len(contacts) < self.policy.batch:
                break

    def forget_contact(self, contact_id: str, wait_s: float = 3.0) -> Erasure | None:
        """Erase a contact and all its conversations; None when nothing of it is stored.
        ConversationsBusy (nothing erased) when a worker holds one of them past `wait_s`."""
        conversations = self.eraser.contact_conversations(contact_id)
        if not conversations and not self.eraser.contact_exists(contact_id):
            return None
        leases = self._hold_all(conversations, wait_s)
        erasure = Erasure()
        for conversation_id in conversations:
            erased = self.eraser.erase_conversation(conversation_id, leases[conversation_id])
            if erased is not None:
                erasure.add(erased)
        self._forget_logs(erasure)
        self._erase_contact(contact_id, erasure, force=True)
        return erasure

    def _erase_free(self, batch: list[str], erasure: Erasure) -> int:
        """Erase the conversations of `batch` no worker holds now (the others wait a round)."""
        erased = 0
        for conversation_id in batch:
            lease = self.eraser.hold(conversation_id, self.policy.lease_ttl_s)
            if lease is None:
                continue
            result = self.eraser.erase_conversation(conversation_id, lease)
            if result is not None:
                erasure.add(result)
                erased += 1
        return erased

    def _hold_all(self, conversations: list[str], wait_s: float) -> dict[str, str]:
        held: dict[str, str] = {}
        deadline = time.monotonic() + wait_s
        for conversation_id in conversations:
            while (lease := self.eraser.hold(conversation_id, self.policy.lease_ttl_s)) is None:
                if time.monotonic() >= deadline:
                    for cid, token in held.items():
                        self.eraser.let_go(cid, token)
                    raise ConversationsBusy(conversation_id)
                time.sleep(0.05)
            held[conversation_id] = lease
        return held

    def _forget_logs(self, erasure: Erasure) -> None:
        announcements, records = self.eraser.forget_in_logs(erasure.conversations)
        erasure.handoff_announcements += announcements
        erasure.failure_records += records

    def _erase_contact(self, contact_id: str, erasure: Erasure, *, force: bool) -> None:
        erased, attributes, threads = self.eraser.erase_contact(contact_id, force=force)
        if erased:
            erasure.contacts.append(contact_id)
            erasure.attributes += attributes
            erasure.threads += threads
