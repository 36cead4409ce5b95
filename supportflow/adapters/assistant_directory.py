"""Picks the assistant client for a flow's backend: pooled HTTP clients per connector and thread."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable

import httpx

from supportflow.domain.connector import Connector
from supportflow.domain.flow import Backend, BackendKind
from supportflow.services.ports import AssistantClient, AssistantError, ErrorKind
from supportflow.settings import Settings

from .openai_assistants import OpenAIAssistantsClient
from .openai_http import OpenAIHttp, make_openai_http
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
        # One client per thread and connector: httpcore's pool looks at every connection it
        # holds on each request (a readiness check each), so one pool shared by 64 threads
        # spent more time choosing a connection than using it (bench/README.md).
        self._local = threading.local()
        self._every: list[OpenAIHttp] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def client_for(self, backend: Backend) -> AssistantClient:
        """The client speaking the backend's API through the backend's connector."""
        http = self.http(backend.connector)
        if backend.kind is BackendKind.ASSISTANTS:
            return OpenAIAssistantsClient(http=http)
        return OpenAIResponsesClient(http=http)

    def http(self, connector: str | None) -> OpenAIHttp:
        """This thread's pooled HTTP client of a connector (None: the default)."""
        mine: dict[str | None, tuple[float, OpenAIHttp]] = self._local.__dict__.setdefault(
            "http", {})
        cached = mine.get(connector)
        if cached and (connector is None or time.monotonic() - cached[0] < CONNECTOR_TTL_S):
            return cached[1]
        client = self._build(self._connector(connector))
        with self._lock:
            if cached:
                cached[1].close()
                self._every.remove(cached[1])
            self._every.append(client)
        mine[connector] = (time.monotonic(), client)
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

    def _build(self, connector: Connector) -> OpenAIHttp:
        return make_openai_http(
            base_url=connector.base_url,
            api_key=connector.api_key or None,
            organization=connector.organization,
            project=connector.project,
            connect_timeout_s=self.settings.http_connect_timeout_s,
            read_timeout_s=self.settings.http_read_timeout_s,
            # A thread makes one request at a time; a second for a call made meanwhile.
            connections=2,
            transport=self.transport,
            tls=self._shared_tls(),
        )

    def _shared_tls(self) -> ssl.SSLContext:
        """One TLS context for every thread's clients (each would read the CA store again)."""
        with self._lock:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            return self._tls

    def close(self) -> None:
        with self._lock:
            every, self._every = self._every, []
        for client in every:
            client.close()
