"""KnowledgeFiles on the OpenAI Files and Vector Store Files APIs (or the sandbox's)."""

from __future__ import annotations

from supportflow.services.ports import AssistantError

from .openai_http import OpenAIHttp, call_api, require_str


class OpenAIKnowledgeFiles:
    """Uploads article files (purpose `assistants`) and attaches them to vector stores."""

    def __init__(self, *, http: OpenAIHttp) -> None:
        self._http = http

    def upload(self, file_name: str, content: str) -> str:
        """POST /files as multipart form data; the new file's id."""
        body, _ = call_api(self._http, "POST", "/files", form={"purpose": "assistants"},
                           files={"file": (file_name, content.encode("utf-8"), "text/markdown")})
        return require_str(body, "id")

    def attach(self, vector_store_id: str, file_id: str, attributes: dict[str, str]) -> None:
        """POST /vector_stores/{id}/files: the store indexes the file for file_search."""
        call_api(self._http, "POST", f"/vector_stores/{vector_store_id}/files",
                 json={"file_id": file_id, "attributes": attributes})

    def detach(self, vector_store_id: str, file_id: str) -> None:
        """DELETE /vector_stores/{id}/files/{file_id}; already gone counts as done."""
        self._delete(f"/vector_stores/{vector_store_id}/files/{file_id}")

    def delete(self, file_id: str) -> None:
        """DELETE /files/{file_id}; already gone counts as done."""
        self._delete(f"/files/{file_id}")

    def _delete(self, path: str) -> None:
        try:
            call_api(self._http, "DELETE", path)
        except AssistantError as error:
            if error.status != 404:
                raise
