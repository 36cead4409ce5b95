"""The sandbox's Files, Vector Stores and Vector Store Files, and its file_search tool.

File search here is deterministic: a question matches the attached file sharing the most
significant words with it (title words count double), if it shares at least half of them;
the answer is that file's text without its title and tag lines.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from supportflow.sandbox.errors import ApiError, new_id

_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset("""a an and are as at be by can could do does for from get has have how i if in
is it its me my of on or our please should so that the their them there this to was we what
when where which who why will with would you your""".split())  # noqa: SIM905


def significant(text: str) -> set[str]:
    """Lower-case words that say what a text is about (a plural's trailing s dropped)."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word not in _STOP and len(word) > 1:
            found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found


@dataclass
class File:
    id: str
    filename: str
    content: str
    purpose: str
    created_at: int

    def parts(self) -> tuple[str, str]:
        """(title, body) of a markdown file: its `# ` line, and the rest without `Tags:`."""
        title, body = "", []
        for line in self.content.splitlines():
            if line.startswith("# ") and not title:
                title = line[2:].strip()
            elif not line.startswith("Tags:"):
                body.append(line)
        return title, "\n".join(body).strip()


@dataclass
class StoreFile:
    file_id: str
    created_at: int
    attributes: dict[str, Any]


@dataclass
class VectorStore:
    id: str
    name: str
    created_at: int
    files: dict[str, StoreFile] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    file: File
    text: str
    score: float


class FileShelf:
    """Files and vector stores (the caller holds the sandbox's lock)."""

    def __init__(self, vector_stores: Sequence[str] = ()) -> None:
        self.files: dict[str, File] = {}
        self.stores: dict[str, VectorStore] = {}
        for store_id in vector_stores:
            self.stores[store_id] = VectorStore(store_id, store_id, int(time.time()))

    def upload(self, filename: str, content: bytes, purpose: str) -> File:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(400, "The sandbox takes UTF-8 text files only.", param="file") from error
        made = File(new_id("file"), filename, text, purpose, int(time.time()))
        self.files[made.id] = made
        return made

    def file(self, file_id: str) -> File:
        found = self.files.get(file_id)
        if found is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id", code="not_found")
        return found

    def delete_file(self, file_id: str) -> None:
        """Delete the file and take it out of every vector store (as the API does)."""
        self.file(file_id)
        del self.files[file_id]
        for store in self.stores.values():
            store.files.pop(file_id, None)

    def create_store(self, name: str) -> VectorStore:
        made = VectorStore(new_id("vs"), name, int(time.time()))
        self.stores[made.id] = made
        return made

    def store(self, store_id: str) -> VectorStore:
        found = self.stores.get(store_id)
        if found is None:
            raise ApiError(404, f"No vector store found with id '{store_id}'.", code="not_found")
        return found

    def attach(self, store_id: str, file_id: str, attributes: dict[str, Any]) -> StoreFile:
        store = self.store(store_id)
        self.file(file_id)
        entry = store.files.get(file_id) or StoreFile(file_id, int(time.time()), attributes)
        store.files[file_id] = entry
        return entry

    def store_file(self, store_id: str, file_id: str) -> StoreFile:
        entry = self.store(store_id).files.get(file_id)
        if entry is None:
            raise ApiError(404, f"No file found with id '{file_id}' in vector store "
                           f"'{store_id}'.", code="not_found")
        return entry

    def detach(self, store_id: str, file_id: str) -> None:
        self.store_file(store_id, file_id)
        del self.stores[store_id].files[file_id]

    def search(self, store_ids: Sequence[str], text: str) -> Hit | None:
        """The best file of these stores for a question, if it matches well enough."""
        asked = significant(text)
        if not asked:
            return None
        best: Hit | None = None
        for store_id in store_ids:
            for file_id in self.stores[store_id].files:
                found = self.files[file_id]
                title, body = found.parts()
                head, rest = significant(title), significant(body)
                shared = len(asked & (head | rest))
                if shared < math.ceil(len(asked) / 2):
                    continue
                score = (shared + len(asked & head)) / (2 * len(asked))
                if best is None or score > best.score:
                    best = Hit(found, body, min(1.0, score))
        return best
