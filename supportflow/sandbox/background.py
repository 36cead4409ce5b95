"""The sandbox's background threads: runs finish at their moment, and their events go out."""

from __future__ import annotations

from functools import partial

from .store import Run, SandboxSettings, SandboxStore
from .timer import Timer
from .webhooks import WebhookSender, WebhookTarget


def webhook_target(settings: SandboxSettings) -> WebhookTarget | None:
    """Where the settings send response events; None while no URL or secret is set."""
    if not settings.webhook_url or not settings.webhook_secret:
        return None
    return WebhookTarget(url=settings.webhook_url, secret=settings.webhook_secret,
                         delay_s=settings.webhook_delay_s, jitter_s=settings.webhook_jitter_s,
                         drop_rate=settings.webhook_drop_rate,
                         duplicates=settings.webhook_duplicates)


class Background:
    """Hooks a timer and a webhook sender to the store; close() stops their threads."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.timer = Timer()
        self.sender = WebhookSender(self.timer)
        store.scheduled = self._schedule
        store.finished = self._finished

    def _schedule(self, run: Run) -> None:
        self.timer.call_at(run.due, partial(self.store.finish_due, run.id))

    def _finished(self, run: Run) -> None:
        # Only background responses have webhooks; the Assistants API has none.
        if run.api == "responses" and run.finished_at is not None:
            self.sender.response_finished(run.id, run.status, run.finished_at,
                                          webhook_target(self.store.settings))

    def close(self) -> None:
        """Stop the timer first (no new deliveries), then the senders."""
        self.timer.close()
        self.sender.close()
