"""Use cases of the knowledge base: agents save and search articles; a sync keeps the vector
stores that flows' responses search (`backend.vector_store_id`) holding each article's file."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from supportflow.domain.knowledge import (
    Article,
    SyncState,
    VectorStoreTarget,
    check_article,
    rank,
)

from .ports import FlowCatalog

log = logging.getLogger(__name__)
# Longest time one sync may hold its article (a crashed worker's lock lapses after it).
SYNC_LOCK_S = 120.0


class ArticleStore(Protocol):
    """Articles, their sync state per vector store, and articles whose sync is pending."""

    def put(self, article: Article, *, sync_due_at: float) -> None:
        """Store the article and mark its sync pending (one write)."""
        ...

    def get(self, article_id: str) -> Article | None: ...

    def all(self) -> list[Article]: ...

    def remove(self, article_id: str, *, sync_due_at: float) -> bool:
        """Delete the article (its sync state stays until its files are gone)."""
        ...

    def sync_state(self, article_id: str) -> SyncState: ...

    def save_sync_state(self, article_id: str, state: SyncState) -> None: ...

    def sync_done(self, article_id: str, revision: int | None) -> bool:
        """No longer pending, unless the article changed since `revision` (None: deleted)."""
        ...

    def lock(self, article_id: str, ttl_s: float) -> str | None:
        """One sync of an article at a time: a token, or None when another holds it."""
        ...

    def unlock(self, article_id: str, token: str) -> None: ...

    def pending(self, article_ids: Sequence[str]) -> set[str]: ...

    def due(self, now: float, limit: int, next_due_at: float) -> list[str]:
        """Pending articles whose sync is overdue, postponed to `next_due_at` (atomically)."""
        ...


class KnowledgeFiles(Protocol):
    """The Files and Vector Store Files APIs of one connector."""

    def upload(self, file_name: str, content: str) -> str:
        """Upload a file (purpose `assistants`); its file id."""
        ...

    def attach(self, vector_store_id: str, file_id: str, attributes: dict[str, str]) -> None: ...

    def detach(self, vector_store_id: str, file_id: str) -> None:
        """Take the file out of the store (nothing when it is not there)."""
        ...

    def delete(self, file_id: str) -> None:
        """Delete the file (nothing when it is already gone)."""
        ...


class SyncQueue(Protocol):
    """Schedules an article's sync (a task, retried until it succeeds)."""

    def sync_article(self, article_id: str) -> None: ...


class SyncBusy(Exception):
    """Another worker is syncing this article; try again shortly."""


class UnknownArticle(Exception):
    """No article with that id."""


@dataclass
class KnowledgeBase:
    """Agents' articles; every change schedules a sync of the vector stores."""

    store: ArticleStore
    queue: SyncQueue
    clock: Callable[[], float]
    # A sync not confirmed by then is sent again by the sweep (beat).
    sync_grace_s: float = 60.0

    def save(self, author: str, title: str, text: str, tags: Sequence[str] = (),
             article_id: str | None = None) -> Article:
        """Create an article, or a new revision of one; ArticleError for bad fields."""
        cleaned = check_article(title, text, list(tags))
        now = self.clock()
        if article_id is None:
            article = Article(id=f"kb_{secrets.token_hex(8)}", title=title.strip(),
                              text=text.strip(), author=author, created_at=now,
                              updated_at=now, tags=cleaned)
        else:
            old = self.get(article_id)
            article = replace(old, title=title.strip(), text=text.strip(), tags=cleaned,
                              updated_at=now, revision=old.revision + 1, updated_by=author)
        self.store.put(article, sync_due_at=now + self.sync_grace_s)
        self.queue.sync_article(article.id)
        return article

    def get(self, article_id: str) -> Article:
        found = self.store.get(article_id)
        if found is None:
            raise UnknownArticle(article_id)
        return found

    def delete(self, article_id: str) -> None:
        """Delete an article; its files leave the vector stores through the sync."""
        if not self.store.remove(article_id, sync_due_at=self.clock() + self.sync_grace_s):
            raise UnknownArticle(article_id)
        self.queue.sync_article(article_id)

    def search(self, query: str = "", limit: int = 20) -> list[Article]:
        """Articles matching the query's words, best first (all, newest first, without one)."""
        return rank(self.store.all(), query)[:limit]

    def unsynced(self, article_ids: Sequence[str]) -> set[str]:
        """Which of these articles are not yet in every vector store."""
        return self.store.pending(article_ids)


@dataclass
class KnowledgeSync:
    """Brings one article's files in the vector stores up to date, step by step, recording
    each step so a retry (after any failure) goes on where the last attempt stopped."""

    store: ArticleStore
    flows: FlowCatalog
    files: Callable[[str | None], KnowledgeFiles]
    queue: SyncQueue
    clock: Callable[[], float]
    sweep_interval_s: float = 60.0

    def targets(self) -> list[VectorStoreTarget]:
        """The vector stores some flow's responses search."""
        found: dict[str, VectorStoreTarget] = {}
        for name in self.flows.names():
            backend = self.flows.get(name).backend
            if backend.vector_store_id:
                target = VectorStoreTarget(backend.vector_store_id, backend.connector)
                found[target.key] = target
        return list(found.values())

    def sync(self, article_id: str) -> None:
        """Upload, attach, detach and delete until the stores hold exactly the current file."""
        token = self.store.lock(article_id, SYNC_LOCK_S)
        if token is None:
            raise SyncBusy(article_id)
        try:
            self._sync(article_id)
        finally:
            self.store.unlock(article_id, token)

    def _sync(self, article_id: str) -> None:
        article = self.store.get(article_id)
        state = self.store.sync_state(article_id)
        targets = {target.key: target for target in self.targets()}
        for key in list(state.attached):
            entry = state.attached[key]
            if key not in targets or article is None or entry["revision"] != article.revision:
                state.retired.append({"store": key, "file_id": entry["file_id"]})
                del state.attached[key]
                self.store.save_sync_state(article_id, state)
        if article is not None:
            for target in targets.values():
                self._place(article, target, state)
        while state.retired:
            self._retire(state.retired[0])
            state.retired.pop(0)
            self.store.save_sync_state(article_id, state)
        self.store.sync_done(article_id, article.revision if article else None)

    def _place(self, article: Article, target: VectorStoreTarget, state: SyncState) -> None:
        entry = state.attached.get(target.key)
        files = self.files(target.connector)
        if entry is None:
            file_id = files.upload(article.file_name(), article.document())
            entry = {"file_id": file_id, "revision": article.revision, "attached": False}
            state.attached[target.key] = entry
            self.store.save_sync_state(article.id, state)
        if not entry["attached"]:
            files.attach(target.vector_store_id, str(entry["file_id"]),
                         {"sf_article": article.id, "title": article.title[:500]})
            entry["attached"] = True
            self.store.save_sync_state(article.id, state)

    def _retire(self, entry: dict[str, object]) -> None:
        key = str(entry["store"])
        connector_part, _, store_id = key.partition("|")
        connector = None if connector_part == "-" else connector_part
        files = self.files(connector)
        files.detach(store_id, str(entry["file_id"]))
        files.delete(str(entry["file_id"]))

    def resync_all(self) -> int:
        """Upload every article again, as to stores that hold none of them (a fresh sandbox)."""
        articles = self.store.all()
        for article in articles:
            self.store.save_sync_state(article.id, SyncState())
            self.store.put(article, sync_due_at=self.clock() + self.sweep_interval_s)
            self.queue.sync_article(article.id)
        return len(articles)

    def sweep(self, limit: int = 100) -> list[str]:
        """Send again the syncs that did not finish in time (beat); bounded per round."""
        now = self.clock()
        due = self.store.due(now, limit, now + self.sweep_interval_s)
        for article_id in due:
            self.queue.sync_article(article_id)
        if due:
            log.info("knowledge sync sent again for %d article(s)", len(due))
        return due
