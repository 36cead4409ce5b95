"""Shared HTTP plumbing for the OpenAI clients: the pooled httpx client and error mapping."""

from __future__ import annotations

import re
import ssl
import time
import urllib.request
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from supportflow.services.ports import AssistantError, ErrorKind

from .http_gets import KeptAliveGets

_CITATION = re.compile(r"【[^】]*】")


class OpenAIHttp(httpx.Client):
    """The pooled client of one OpenAI-style API, with a lean path for body-less GETs.

    A waiting conversation costs one run check every poll, and httpx's client layer (merging
    the URL, headers and cookies, the auth and redirect flows, the cookie jar on every
    response) was half of a check's CPU. `lean_get` sends the same request on the wire
    without cookies (the API authenticates by key) and without redirects (the client follows
    none either): on kept-alive stdlib connections (`gets`, http_gets.py) when the client
    talks to the API itself, else straight to an injected transport. Without a transport of
    its own (httpx then honours the proxies the environment names), every request takes the
    client's path.
    """

    def __init__(self, *, transport: httpx.BaseTransport | None,
                 gets: KeptAliveGets | None = None, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self._direct = transport
        self._gets = gets
        self._base = str(self.base_url)
        self._timeouts = self.timeout.as_dict()
        self._plain_headers = {name.lower(): value for name, value in self.headers.items()}

    def lean_get(self, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """GET `path` under the base URL, read in full, as `get` would send it."""
        merged = self._plain_headers
        if headers:
            merged = {**merged, **{name.lower(): value for name, value in headers.items()}}
        if self._gets is not None:
            return self._gets.get(path, merged)
        if self._direct is None:
            return self.get(path.lstrip("/"), headers=headers)
        request = httpx.Request("GET", self._base + path.lstrip("/"), headers=merged,
                                extensions={"timeout": self._timeouts})
        response = self._direct.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        return response

    def close(self) -> None:
        """Close the pool and the kept-alive GET connections."""
        if self._gets is not None:
            self._gets.close()
        super().close()


def make_openai_http(
    *,
    base_url: str,
    api_key: str | None,
    organization: str | None,
    project: str | None,
    connect_timeout_s: float,
    read_timeout_s: float,
    connections: int = 50,
    transport: httpx.BaseTransport | None = None,
    tls: ssl.SSLContext | None = None,
) -> OpenAIHttp:
    """Build the one pooled client a process uses to talk to an OpenAI-style API.

    Every one of its `connections` is kept alive between requests: a pool that keeps fewer
    than the threads calling it opens and closes a connection on most requests under load.
    """
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if organization:
        headers["OpenAI-Organization"] = organization
    if project:
        headers["OpenAI-Project"] = project
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    # A context shared by the process's clients (building one reads the CA store: ~20 ms).
    verify: ssl.SSLContext | bool = tls if tls is not None else True
    gets = None
    # httpx reads proxies from the environment only for a transport it builds itself.
    if transport is None and not urllib.request.getproxies():
        transport = httpx.HTTPTransport(verify=verify, limits=limits)
        gets = KeptAliveGets(base_url, connect_timeout_s=connect_timeout_s,
                             read_timeout_s=read_timeout_s, tls=tls, keep=connections)
    return OpenAIHttp(
        base_url=base_url.rstrip("/") + "/",
        headers=headers,
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        transport=transport,
        gets=gets,
        limits=limits,
        verify=verify,
    )


def retry_after_s(headers: httpx.Headers, now: float | None = None) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `retry-after` (seconds or date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def poll_after_s(response: httpx.Response) -> float | None:
    """The API's hint for the next poll, from the `openai-poll-after-ms` header."""
    raw = response.headers.get("openai-poll-after-ms")
    if not raw:
        return None
    try:
        return max(0.0, float(raw) / 1000.0)
    except ValueError:
        return None


def api_error_message(response: httpx.Response) -> str:
    """The API's `error.message`, or the start of the body (the status is reported apart)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return response.text.strip()[:200] or "the API sent no error message"


def raise_for_api_error(response: httpx.Response) -> None:
    """Raise AssistantError (kind STATUS) for a non-2xx response."""
    if response.status_code < 400:
        return
    error = AssistantError(ErrorKind.STATUS, api_error_message(response),
                           status=response.status_code)
    if error.retryable:
        error.retry_after_s = retry_after_s(response.headers)
    raise error


def call_api(
    http: OpenAIHttp,
    method: str,
    path: str,
    *,
    json: Mapping[str, Any] | None = None,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
) -> tuple[dict[str, Any], httpx.Response]:
    """Send one request (a JSON body, or `form` and `files` as multipart form data); return the
    JSON object and the response, or raise AssistantError."""
    try:
        if method == "GET" and params is None:
            response = http.lean_get(path, headers)
        else:
            response = http.request(
                method, path.lstrip("/"), json=json, params=params, headers=headers, data=form,
                files=files,
            )
    except httpx.TimeoutException as error:
        raise AssistantError(ErrorKind.TIMEOUT, f"timeout: {method} {path}: {error}") from error
    except httpx.TransportError as error:
        raise AssistantError(ErrorKind.NETWORK, f"network: {method} {path}: {error}") from error
    raise_for_api_error(response)
    try:
        body = response.json()
    except ValueError as error:
        raise AssistantError(ErrorKind.NOT_JSON, f"{method} {path}: the API sent no JSON "
                             f"(HTTP {response.status_code})") from error
    if not isinstance(body, dict):
        raise AssistantError(ErrorKind.INVALID, f"{method} {path}: unexpected body")
    return body, response


def clean_reply(text: str) -> str:
    """Remove citation marks such as 【12:3†source】 and surrounding blanks."""
    return _CITATION.sub("", text).strip()


def require_str(body: Mapping[str, Any], key: str) -> str:
    """A string field the API must send; AssistantError when it is missing."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise AssistantError(ErrorKind.INVALID, f"the API response has no {key!r}")
    return value


def failure_reason(body: Mapping[str, Any], error_key: str) -> str:
    """Why a run or response ended badly: its error message, incomplete reason, or status."""
    error = body.get(error_key)
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    details = body.get("incomplete_details")
    if isinstance(details, dict) and details.get("reason"):
        return str(details["reason"])
    return str(body.get("status") or "failed")


def dicts(value: Any) -> Iterable[dict[str, Any]]:
    """The dict entries of a JSON list (nothing when it is not a list)."""
    if isinstance(value, list):
        yield from (entry for entry in value if isinstance(entry, dict))
