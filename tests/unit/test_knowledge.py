"""Knowledge articles: what is accepted, how a search ranks them, what the sandbox's file
search matches."""

from __future__ import annotations

import pytest

from supportflow.domain.knowledge import Article, ArticleError, check_article, rank
from supportflow.sandbox.files import FileShelf


def article(id: str, title: str, text: str, tags: tuple[str, ...] = (), at: float = 0.0
            ) -> Article:
    return Article(id=id, title=title, text=text, author="sam", created_at=at, updated_at=at,
                   tags=tags)


def test_tags_are_normalised_and_bad_fields_are_named() -> None:
    assert check_article("Title", "Text", [" Gifts", "gifts", "", "wrap-ping"]) == (
        "gifts", "wrap-ping")
    with pytest.raises(ArticleError) as bad:
        check_article(" ", "x" * 20_001, ["no spaces allowed"])
    assert set(bad.value.fields) == {"title", "text", "tags"}


def test_search_ranks_title_and_tag_words_above_body_words() -> None:
    body = article("a", "Opening hours", "Wrapping is done at the desk.", at=2)
    titled = article("b", "Gift wrapping", "Choose it at checkout.", at=1)
    tagged = article("c", "Paper", "Recycled paper.", tags=("gifts",), at=3)
    other = article("d", "Returns", "Send it back.", at=4)
    found = rank([body, titled, tagged, other], "Do you do gift wrapping?")
    assert [a.id for a in found] == ["b", "c", "a"]
    assert [a.id for a in rank([body, titled, other], "")] == ["d", "a", "b"]


def test_sandbox_file_search_needs_half_of_the_question_words() -> None:
    shelf = FileShelf(["vs_1"])
    made = shelf.upload("a.md", b"# Gift wrapping\nTags: gifts\n\nWe gift-wrap any order.", "assistants")
    shelf.attach("vs_1", made.id, {})
    hit = shelf.search(["vs_1"], "Do you offer gift wrapping?")
    assert hit is not None and hit.text == "We gift-wrap any order." and hit.file.id == made.id
    assert shelf.search(["vs_1"], "How long does shipping take for a gift?") is None
    shelf.detach("vs_1", made.id)
    assert shelf.search(["vs_1"], "Do you offer gift wrapping?") is None
