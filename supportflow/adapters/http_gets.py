"""Body-less GETs (the run check) on kept-alive stdlib connections, without httpx's transport.

A waiting conversation costs one run check every poll. Through httpx's transport (httpcore's
pool with its per-request readiness probe, h11's event machinery, request and response
models) a check cost 0.26-0.32 ms of the client's CPU against a local server; the same
request on an `http.client` connection kept alive, answered as an `httpx.Response`, 0.13 ms
(`bench/check_cpu.py`; bench/README.md, "A stdlib run check"). Only body-less GETs come
here: they are idempotent, so one sent on a kept-alive connection that the server had closed
meanwhile is sent once more, on a new connection. Failures are httpx's exceptions, as the
transport would raise.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Mapping

import httpx

# Characters a path keeps as they are (RFC 3986 pchar and "/"; "%" keeps escapes escaped).
_PATH_SAFE = "/%!$&'()*+,;=:@~"
# What a request on a connection the server closed while it sat idle runs into.
_GONE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
         ConnectionAbortedError)


class KeptAliveGets:
    """GETs under one base URL, on up to `keep` idle connections kept for the next ones."""

    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float,
                 tls: ssl.SSLContext | None = None, keep: int = 2) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._tls = tls if tls is not None or not self._https else httpx.create_ssl_context()
        self._connect_s, self._read_s = connect_timeout_s, read_timeout_s
        self._keep = keep
        self._idle: list[http.client.HTTPConnection] = []

    def get(self, path: str, headers: Mapping[str, str]) -> httpx.Response:
        """GET `path` under the base URL with exactly these headers, read in full."""
        # As httpx would: ids with a space or non-ASCII go percent-encoded, never rejected.
        target = urllib.parse.quote(f"{self._prefix}/{path.lstrip('/')}", safe=_PATH_SAFE)
        try:
            connection, reused = self._idle.pop(), True
        except IndexError:
            connection, reused = self._connect(), False
        try:
            try:
                response = self._exchange(connection, target, headers)
            except _GONE:
                connection.close()
                if not reused:
                    raise
                connection = self._connect()
                response = self._exchange(connection, target, headers)
        except TimeoutError as error:
            connection.close()
            raise httpx.ReadTimeout(f"GET {target}: {error}") from error
        except http.client.HTTPException as error:
            connection.close()
            raise httpx.RemoteProtocolError(f"GET {target}: {error!r}") from error
        except OSError as error:
            connection.close()
            raise httpx.ReadError(f"GET {target}: {error}") from error
        status, fields, body, will_close = response
        if will_close:
            connection.close()
        elif len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            connection.close()
        return httpx.Response(status, headers=fields, content=body)

    def close(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port,
                                                     timeout=self._connect_s, context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port,
                                                    timeout=self._connect_s)
        try:
            connection.connect()
        except TimeoutError as error:
            connection.close()
            raise httpx.ConnectTimeout(f"connect {self._host}:{self._port}: {error}") from error
        except OSError as error:  # refused, unreachable, name not found, TLS refused
            connection.close()
            raise httpx.ConnectError(f"connect {self._host}:{self._port}: {error}") from error
        assert connection.sock is not None
        connection.sock.settimeout(self._read_s)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    @staticmethod
    def _exchange(connection: http.client.HTTPConnection, target: str,
                  headers: Mapping[str, str]
                  ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        connection.request("GET", target, headers=dict(headers))
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheaders(), body, response.will_close
