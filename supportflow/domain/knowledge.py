"""Knowledge articles agents save for the bot, and how a search ranks them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TITLE_MAX = 200
TEXT_MAX = 20_000
TAG = re.compile(r"^[\w\-]{1,40}$")
MAX_TAGS = 10
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words that say nothing about what a question is about.
STOPWORDS = frozenset("""
a an and are as at be by can do does for from has have how i in is it its me my of on or our
please should so that the their them there this to was we what when where which who why will
with you your
""".split())  # noqa: SIM905


@dataclass(frozen=True)
class Article:
    """One answer in the knowledge base; `revision` grows with every edit."""

    id: str
    title: str
    text: str
    author: str
    created_at: float
    updated_at: float
    tags: tuple[str, ...] = ()
    revision: int = 1
    updated_by: str | None = None

    def document(self) -> str:
        """The article as the text file the assistant's file search reads."""
        tags = f"\nTags: {', '.join(self.tags)}" if self.tags else ""
        return f"# {self.title}{tags}\n\n{self.text}\n"

    def file_name(self) -> str:
        return f"sf-article-{self.id}-r{self.revision}.md"


@dataclass(frozen=True)
class VectorStoreTarget:
    """A vector store some flow's responses search, reached through a connector."""

    vector_store_id: str
    connector: str | None = None

    @property
    def key(self) -> str:
        return f"{self.connector or '-'}|{self.vector_store_id}"


@dataclass
class SyncState:
    """Which file of an article each vector store holds, and files still to take away."""

    attached: dict[str, dict[str, object]] = field(default_factory=dict)
    retired: list[dict[str, object]] = field(default_factory=list)


class ArticleError(ValueError):
    """An article that cannot be saved; `fields` says which fields are wrong."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


def check_article(title: str, text: str, tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The tags, normalised, when the fields are acceptable; ArticleError otherwise."""
    problems: dict[str, list[str]] = {}
    if not title.strip() or len(title) > TITLE_MAX:
        problems["title"] = [f"1-{TITLE_MAX} characters, not blank"]
    if not text.strip() or len(text) > TEXT_MAX:
        problems["text"] = [f"1-{TEXT_MAX} characters, not blank"]
    cleaned = tuple(dict.fromkeys(tag.strip().lower() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS or not all(TAG.fullmatch(tag) for tag in cleaned):
        problems["tags"] = [f"at most {MAX_TAGS} tags of letters, digits, _ and -"]
    if problems:
        raise ArticleError(problems)
    return cleaned


def words(text: str) -> set[str]:
    """The text's significant words, lower-cased, a plural's trailing s dropped."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS or len(word) < 2:
            continue
        found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found


def rank(articles: list[Article], query: str) -> list[Article]:
    """Articles sharing words with the query, best first (title and tags count double)."""
    wanted = words(query)
    if not wanted:
        return sorted(articles, key=lambda a: -a.updated_at)
    scored = []
    for article in articles:
        head = words(article.title + " " + " ".join(article.tags))
        body = words(article.text)
        score = 2 * len(wanted & head) + len(wanted & body)
        if score:
            scored.append((-score, -article.updated_at, article.id, article))
    return [entry[-1] for entry in sorted(scored)]
