"""The sandbox's deterministic assistant: answers from a knowledge file, or hands off."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KnowledgeError(Exception):
    """A knowledge file that cannot be used."""


@dataclass(frozen=True)
class Entry:
    topic: str
    patterns: tuple[re.Pattern[str], ...]
    answer: str


def _word_pattern(phrase: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"\b{words}\b", re.IGNORECASE)


@dataclass(frozen=True)
class Brain:
    """Matches customer text against the knowledge entries, case-insensitively, on whole words."""

    handoff_text: str
    human: tuple[re.Pattern[str], ...]
    entries: tuple[Entry, ...]
    # Vector stores that exist from the start (ids), for flows that name one.
    vector_stores: tuple[str, ...] = ()

    def wants_person(self, text: str) -> bool:
        """True when the text asks for a person."""
        return any(pattern.search(text) for pattern in self.human)

    def reply(self, texts: Sequence[str]) -> str:
        """The answers of every matched entry in message order, or the handoff text."""
        if any(self.wants_person(text) for text in texts):
            return self.handoff_text
        return "\n\n".join(self.answers(texts)) or self.handoff_text

    def answers(self, texts: Sequence[str]) -> list[str]:
        """The answers of every entry the texts match, in message order, without repeats."""
        answers: list[str] = []
        for text in texts:
            hits = sorted(
                (min(m.start() for p in e.patterns if (m := p.search(text))), index)
                for index, e in enumerate(self.entries)
                if any(p.search(text) for p in e.patterns)
            )
            for _, index in hits:
                answer = self.entries[index].answer
                if answer not in answers:
                    answers.append(answer)
        return answers


def load_brain(path: Path) -> Brain:
    """Read and check a knowledge YAML file."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise KnowledgeError(f"{path}: cannot read: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("handoff_text"), str):
        raise KnowledgeError(f"{path}: needs a mapping with handoff_text")
    entries = []
    for raw in data.get("entries") or []:
        if not isinstance(raw, dict) or not raw.get("keywords") or not raw.get("answer"):
            raise KnowledgeError(f"{path}: each entry needs keywords and an answer")
        patterns = tuple(_word_pattern(str(k)) for k in raw["keywords"])
        entries.append(Entry(str(raw.get("topic", "")), patterns, str(raw["answer"]).strip()))
    human = tuple(_word_pattern(str(w)) for w in data.get("human_words") or [])
    stores = tuple(str(v) for v in data.get("vector_stores") or [])
    return Brain(handoff_text=data["handoff_text"].strip(), human=human, entries=tuple(entries),
                 vector_stores=stores)
