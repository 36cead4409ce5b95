"""Picks the assistant client for a flow's backend: one pooled HTTP client per connector."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from supportflow.domain.connector import Connector
from supportflow.domain.flow import Backend, BackendKind
from supportflow.services.ports import AssistantClient, AssistantError, ErrorKind
from supportflow.settings import Settings

from .openai_assistants import OpenAIAssistantsClient
from .openai_http import make_openai_http
from .openai_responses import OpenAIResponsesClient

# A connector changed in the vault is picked up by running workers within this time.
CONNECTOR_TTL_S = 60.0


class AssistantClients:
    """Implements AssistantDirectory: a flow's connector from the vault, else the default.

    The default is OpenAI when OPENAI_API_KEY is set, and the sandbox when it is not.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connectors: Callable[[str], Connector] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.connectors = connectors
        self.transport = transport
        self._http: dict[str | None, tuple[float, httpx.Client]] = {}

    def client_for(self, backend: Backend) -> AssistantClient:
        """The client speaking the backend's API through the backend's connector."""
        http = self.http(backend.connector)
        if backend.kind is BackendKind.ASSISTANTS:
            return OpenAIAssistantsClient(http=http)
        return OpenAIResponsesClient(http=http)

    def http(self, connector: str | None) -> httpx.Client:
        """The pooled HTTP client of a connector (None: the default)."""
        cached = self._http.get(connector)
        if cached and (connector is None or time.monotonic() - cached[0] < CONNECTOR_TTL_S):
            return cached[1]
        if cached:
            cached[1].close()
        client = self._build(self._connector(connector))
        self._http[connector] = (time.monotonic(), client)
        return client

    def _connector(self, name: str | None) -> Connector:
        s = self.settings
        if name is None:
            return Connector("default", s.openai_api_key or "", s.assistant_base_url,
                             s.openai_organization, s.openai_project)
        if self.connectors is None:
            raise AssistantError(ErrorKind.CONFIG, f"connector {name!r} needs the vault")
        try:
            return self.connectors(name)
        except Exception as error:  # the vault's message names the problem, never the key
            raise AssistantError(ErrorKind.CONFIG, f"connector {name!r}: {error}") from error

    def _build(self, connector: Connector) -> httpx.Client:
        return make_openai_http(
            base_url=connector.base_url,
            api_key=connector.api_key or None,
            organization=connector.organization,
            project=connector.project,
            connect_timeout_s=self.settings.http_connect_timeout_s,
            read_timeout_s=self.settings.http_read_timeout_s,
            # The step threads, and the wake tasks' own threads that run a conversation each.
            connections=2 * self.settings.step_threads,
            transport=self.transport,
        )

    def close(self) -> None:
        for _, client in self._http.values():
            client.close()
