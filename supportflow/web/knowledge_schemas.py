"""Schemas of knowledge articles, shared by the agent console's API and the GPT's actions."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from supportflow.domain.knowledge import MAX_TAGS, TEXT_MAX, TITLE_MAX, Article

from .fields import Text


class ArticleInputSchema(Schema):
    title = Text(required=True, max_length=TITLE_MAX, not_blank=True,
                 metadata={"description": "A short title: the question it answers"})
    text = Text(required=True, max_length=TEXT_MAX, not_blank=True,
                metadata={"description": "The answer, as the bot should give it"})
    tags = fields.List(Text(max_length=40, not_blank=True),
                       load_default=list, validate=validate.Length(max=MAX_TAGS))


class ArticleSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    text = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    author = fields.String(required=True, metadata={"description": "The account that wrote it"})
    updated_by = fields.String(allow_none=True, required=True)
    created_at = fields.Float(required=True)
    updated_at = fields.Float(required=True)
    revision = fields.Integer(required=True)
    synced = fields.Boolean(required=True, metadata={
        "description": "True once the assistant's knowledge holds this revision"})


class ArticlesSchema(Schema):
    articles = fields.List(fields.Nested(ArticleSchema), required=True)


class SearchQuerySchema(Schema):
    q = Text(load_default="", max_length=500,
                      metadata={"description": "Words to look for (empty: the newest)"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


def article_dict(article: Article, unsynced: set[str]) -> dict[str, Any]:
    """An article as the API shows it."""
    return {"id": article.id, "title": article.title, "text": article.text,
            "tags": list(article.tags), "author": article.author,
            "updated_by": article.updated_by, "created_at": article.created_at,
            "updated_at": article.updated_at, "revision": article.revision,
            "synced": article.id not in unsynced}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_AGENT: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]
_ERRORS = {"400": "The body is not a JSON object",
           "401": "Not signed in, or no or an unknown token",
           "403": "Not an agent, or a change without the session's X-CSRFToken",
           "404": "Unknown article", "422": "Invalid fields"}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"description": _ERRORS[code], **_json("Error")} for code in ("401", "403",
                                                                                 *codes)}


_ONE = "/v1/agent/knowledge/{article_id}"
KNOWLEDGE_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/agent/knowledge": {
        "get": {"summary": "Articles matching q, best first (or the newest)", "security": _AGENT,
                "parameters": [{"in": "query", "schema": SearchQuerySchema}],
                "responses": {"200": {"description": "Articles", **_json("Articles")},
                              **_errors("422")}},
        "post": {"summary": "Write an article (the bot answers from it once synced)",
                 "security": _AGENT, "requestBody": {"required": True, **_json("ArticleInput")},
                 "responses": {"201": {"description": "Saved", **_json("Article")},
                               **_errors("400", "422")}}},
    _ONE: {
        "get": {"summary": "One article", "security": _AGENT,
                "responses": {"200": {"description": "The article", **_json("Article")},
                              **_errors("404")}},
        "put": {"summary": "A new revision of the article", "security": _AGENT,
                "requestBody": {"required": True, **_json("ArticleInput")},
                "responses": {"200": {"description": "Saved", **_json("Article")},
                              **_errors("400", "404", "422")}},
        "delete": {"summary": "Delete the article (and its file from the vector stores)",
                   "security": _AGENT,
                   "responses": {"204": {"description": "Deleted"}, **_errors("404")}}},
}
