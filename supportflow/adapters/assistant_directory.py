"""Picks the assistant client for a flow's backend; one pooled HTTP client per process."""

from __future__ import annotations

import httpx

from supportflow.domain.flow import Backend, BackendKind
from supportflow.services.ports import AssistantClient
from supportflow.settings import Settings

from .openai_assistants import OpenAIAssistantsClient
from .openai_http import make_openai_http
from .openai_responses import OpenAIResponsesClient


class AssistantClients:
    """Implements AssistantDirectory: the sandbox when no API key is set, else OpenAI."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        self._http: httpx.Client | None = None
        self._clients: dict[BackendKind, AssistantClient] = {}

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            s = self.settings
            self._http = make_openai_http(
                base_url=s.assistant_base_url,
                api_key=s.openai_api_key,
                organization=s.openai_organization,
                project=s.openai_project,
                connect_timeout_s=s.http_connect_timeout_s,
                read_timeout_s=s.http_read_timeout_s,
                transport=self.transport,
            )
        return self._http

    def client_for(self, backend: Backend) -> AssistantClient:
        """The client speaking the backend's API (Responses or Assistants v2)."""
        if backend.kind not in self._clients:
            if backend.kind is BackendKind.ASSISTANTS:
                self._clients[backend.kind] = OpenAIAssistantsClient(http=self.http)
            else:
                self._clients[backend.kind] = OpenAIResponsesClient(http=self.http)
        return self._clients[backend.kind]

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
