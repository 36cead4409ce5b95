"""The run check's kept-alive stdlib path (adapters/http_gets.py), against real local sockets."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from supportflow.adapters.openai_http import make_openai_http
from supportflow.adapters.openai_responses import OpenAIResponsesClient
from supportflow.services.ports import AssistantError, ErrorKind, RunState

PENDING = json.dumps({"id": "resp_1", "object": "response", "status": "in_progress",
                      "output": []}).encode()

# What the server does with the nth request of a connection: the bytes it sends back, then
# whether it closes the connection.
Answer = Callable[[int], tuple[bytes, bool]]


class Server:
    """A loopback HTTP/1.1 server that keeps what it was sent, one thread per connection."""

    def __init__(self, answer: Answer) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            buffer, served = b"", 0
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests.append(head)
                reply, close = self.answer(served)
                served += 1
                connection.sendall(reply)
                if close:
                    return


def ok(body: bytes = PENDING, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s"
            b"\r\n%s" % (len(body), extra, body))


def chunked_gzip(body: bytes = PENDING) -> bytes:
    packed = gzip.compress(body)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
            b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed))


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], Server]]:
    servers: list[Server] = []

    def start(answer: Answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.socket.close()


def client(url: str, read_timeout_s: float = 5.0) -> OpenAIResponsesClient:
    http = make_openai_http(base_url=url, api_key="sk-1", organization="org_1", project=None,
                            connect_timeout_s=1, read_timeout_s=read_timeout_s)
    return OpenAIResponsesClient(http=http)


def test_checks_share_one_kept_alive_connection_and_send_the_clients_headers(
    serve: Callable[[Answer], Server],
) -> None:
    server = serve(lambda n: (ok(extra=b"openai-poll-after-ms: 1500\r\n") if n == 0
                              else chunked_gzip(), False))
    responses = client(server.url)
    first = responses.check_run("conv_1", "resp_1")
    second = responses.check_run("conv_1", "resp_1")
    assert first.state is RunState.PENDING and second.state is RunState.PENDING
    assert first.poll_after_s == 1.5
    assert server.connections == 1
    line, *fields = server.requests[0].decode().split("\r\n")
    assert line == "GET /v1/responses/resp_1 HTTP/1.1"
    headers = dict(field.lower().split(": ", 1) for field in fields)
    assert headers["authorization"] == "bearer sk-1" and headers["openai-organization"] == "org_1"
    assert headers["accept"] == "application/json" and headers["host"].startswith("127.0.0.1:")


def test_ids_with_spaces_or_non_ascii_go_percent_encoded_as_httpx_sends_them(
    serve: Callable[[Answer], Server],
) -> None:
    server = serve(lambda n: (ok(), False))
    assert client(server.url).check_run("conv_1", "resp 1\u00e9").state is RunState.PENDING
    sent = server.requests[0].split(b"\r\n", 1)[0]
    expected = httpx.URL("http://h/v1/responses/resp 1\u00e9").raw_path
    assert sent == b"GET " + expected + b" HTTP/1.1"


def test_a_check_on_a_connection_the_server_closed_goes_again_on_a_new_one(
    serve: Callable[[Answer], Server],
) -> None:
    server = serve(lambda n: (ok(), True))  # every connection closed after one answer
    responses = client(server.url)
    for _ in range(3):
        assert responses.check_run("conv_1", "resp_1").state is RunState.PENDING
    assert server.connections == 3 and len(server.requests) == 3


def test_a_server_that_does_not_answer_in_time_is_a_retryable_timeout(
    serve: Callable[[Answer], Server],
) -> None:
    server = serve(lambda n: (b"", False))  # reads the request, never answers
    with pytest.raises(AssistantError) as raised:
        client(server.url, read_timeout_s=0.2).check_run("conv_1", "resp_1")
    assert raised.value.kind is ErrorKind.TIMEOUT and raised.value.retryable


def test_a_refused_connection_and_a_broken_answer_are_retryable_network_errors(
    serve: Callable[[Answer], Server],
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    garbled = serve(lambda n: (b"NOT HTTP AT ALL\r\n\r\n", True))
    for url in (f"http://127.0.0.1:{port}/v1", garbled.url):
        with pytest.raises(AssistantError) as raised:
            client(url).check_run("conv_1", "resp_1")
        assert raised.value.kind is ErrorKind.NETWORK and raised.value.retryable
