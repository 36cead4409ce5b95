"""The knowledge base in the agent console: list, search, write, edit and delete articles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, jsonify, request

from supportflow.domain.access import Role
from supportflow.domain.knowledge import Article, ArticleError
from supportflow.services.knowledge import UnknownArticle

from .auth import current_principal, require_role
from .deps import json_body, services
from .errors import ApiError
from .knowledge_schemas import (
    ArticleInputSchema,
    ArticleSchema,
    ArticlesSchema,
    SearchQuerySchema,
    article_dict,
)

bp = Blueprint("knowledge", __name__, url_prefix="/v1/agent/knowledge")


@contextmanager
def article_errors(article_id: str | None = None) -> Iterator[None]:
    """Unknown articles → 404, bad fields → 422 (nothing changed)."""
    try:
        yield
    except UnknownArticle as error:
        raise ApiError(404, "article_not_found", f"no article {article_id!r}") from error
    except ArticleError as error:
        raise ApiError(422, "invalid_request", "the request has invalid fields",
                       error.fields) from error


def dump(article: Article) -> dict[str, Any]:
    unsynced = services().knowledge.unsynced([article.id])
    result: dict[str, Any] = ArticleSchema().dump(article_dict(article, unsynced))
    return result


def dump_many(articles: list[Article]) -> dict[str, Any]:
    unsynced = services().knowledge.unsynced([a.id for a in articles])
    result: dict[str, Any] = ArticlesSchema().dump(
        {"articles": [article_dict(a, unsynced) for a in articles]})
    return result


def save_article(article_id: str | None = None) -> Article:
    """Create or update an article from the request's JSON body, signed by the caller."""
    data = ArticleInputSchema().load(json_body())
    with article_errors(article_id):
        return services().knowledge.save(current_principal().name, data["title"], data["text"],
                                         data["tags"], article_id=article_id)


@bp.get("")
@require_role(Role.AGENT)
def list_articles() -> Response:
    """Articles matching `q` (best first), or the newest."""
    query = SearchQuerySchema().load(request.args.to_dict())
    return jsonify(dump_many(services().knowledge.search(query["q"], query["limit"])))


@bp.post("")
@require_role(Role.AGENT)
def create_article() -> tuple[Response, int]:
    """A new article; the bot knows it once it is synced to the assistant."""
    return jsonify(dump(save_article())), 201


@bp.get("/<article_id>")
@require_role(Role.AGENT)
def get_article(article_id: str) -> Response:
    with article_errors(article_id):
        return jsonify(dump(services().knowledge.get(article_id)))


@bp.put("/<article_id>")
@require_role(Role.AGENT)
def update_article(article_id: str) -> Response:
    """A new revision of the article (the assistant's copy is replaced)."""
    return jsonify(dump(save_article(article_id)))


@bp.delete("/<article_id>")
@require_role(Role.AGENT)
def delete_article(article_id: str) -> tuple[str, int]:
    """Delete the article; its file leaves the assistant's vector stores."""
    with article_errors(article_id):
        services().knowledge.delete(article_id)
    return "", 204
