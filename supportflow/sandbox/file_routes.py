"""The sandbox's Files and Vector Store Files routes, shaped as the API description says."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from supportflow.sandbox.errors import ApiError
from supportflow.sandbox.files import File, StoreFile, VectorStore
from supportflow.sandbox.render import list_object
from supportflow.sandbox.requests import body_object, list_params
from supportflow.sandbox.store import SandboxStore

PURPOSES = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


def file_object(found: File) -> dict[str, Any]:
    return {"id": found.id, "object": "file", "bytes": len(found.content.encode()),
            "created_at": found.created_at, "filename": found.filename,
            "purpose": found.purpose, "status": "processed"}


def store_object(store: VectorStore, shelf: Any) -> dict[str, Any]:
    total = len(store.files)
    usage = sum(len(shelf.files[f].content.encode()) for f in store.files)
    return {"id": store.id, "object": "vector_store", "created_at": store.created_at,
            "name": store.name, "usage_bytes": usage, "status": "completed",
            "file_counts": {"in_progress": 0, "completed": total, "failed": 0, "cancelled": 0,
                            "total": total},
            "last_active_at": store.created_at, "metadata": {}, "expires_at": None}


def store_file_object(store_id: str, entry: StoreFile, shelf: Any) -> dict[str, Any]:
    return {"id": entry.file_id, "object": "vector_store.file",
            "usage_bytes": len(shelf.files[entry.file_id].content.encode()),
            "created_at": entry.created_at, "vector_store_id": store_id, "status": "completed",
            "last_error": None, "chunking_strategy": CHUNKING, "attributes": entry.attributes}


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    limit, order, after, _ = list_params("desc")
    if order == "desc":
        items = list(reversed(items))
    ids = [item["id"] for item in items]
    if after in ids:
        items = items[ids.index(after) + 1:]
    return list_object(items[:limit], len(items) > limit)


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("attributes") or {}
    if not isinstance(raw, dict) or len(raw) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str | int | float | bool)
            for k, v in raw.items()):
        raise ApiError(400, "Invalid 'attributes': at most 16 keys with string, number or "
                       "boolean values.", param="attributes")
    return dict(raw)


def register_file_routes(app: Flask, store: SandboxStore) -> None:
    """Files, vector stores and vector store files under /v1."""
    shelf = store.files

    @app.post("/v1/files")
    def upload_file() -> Response:
        upload = request.files.get("file")
        purpose = request.form.get("purpose")
        if upload is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in PURPOSES:
            raise ApiError(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        with store.lock:
            return jsonify(file_object(shelf.upload(upload.filename or "file", upload.read(),
                                                    purpose)))

    @app.get("/v1/files")
    def list_files() -> Response:
        with store.lock:
            return jsonify(_page([file_object(f) for f in shelf.files.values()]))

    @app.get("/v1/files/<file_id>")
    def get_file(file_id: str) -> Response:
        with store.lock:
            return jsonify(file_object(shelf.file(file_id)))

    @app.delete("/v1/files/<file_id>")
    def delete_file(file_id: str) -> Response:
        with store.lock:
            shelf.delete_file(file_id)
            return jsonify({"id": file_id, "object": "file", "deleted": True})

    @app.post("/v1/vector_stores")
    def create_store() -> Response:
        body = body_object(allow_empty=True)
        with store.lock:
            made = shelf.create_store(str(body.get("name") or "vector store"))
            return jsonify(store_object(made, shelf))

    @app.get("/v1/vector_stores/<store_id>")
    def get_store(store_id: str) -> Response:
        with store.lock:
            return jsonify(store_object(shelf.store(store_id), shelf))

    @app.post("/v1/vector_stores/<store_id>/files")
    def attach_file(store_id: str) -> Response:
        body = body_object()
        file_id = body.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise ApiError(400, "Missing required parameter: 'file_id'.", param="file_id")
        with store.lock:
            entry = shelf.attach(store_id, file_id, _attributes(body))
            return jsonify(store_file_object(store_id, entry, shelf))

    @app.get("/v1/vector_stores/<store_id>/files")
    def list_store_files(store_id: str) -> Response:
        with store.lock:
            entries = list(shelf.store(store_id).files.values())
            return jsonify(_page([store_file_object(store_id, e, shelf) for e in entries]))

    @app.get("/v1/vector_stores/<store_id>/files/<file_id>")
    def get_store_file(store_id: str, file_id: str) -> Response:
        with store.lock:
            return jsonify(store_file_object(store_id, shelf.store_file(store_id, file_id), shelf))

    @app.delete("/v1/vector_stores/<store_id>/files/<file_id>")
    def detach_file(store_id: str, file_id: str) -> Response:
        with store.lock:
            shelf.detach(store_id, file_id)
            return jsonify({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})
