"""The web app under its real server (granian, the Procfile's options): event streams flow frame
by frame and end at once on SIGTERM, and the client's address is the peer's (or the proxy's
X-Forwarded-For when trusted)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import httpx
import pytest

from tests.conftest import Sandbox, private_stack
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow


class Stream(threading.Thread):
    """Reads one event stream; notes each line with when it came, and how the response ended."""

    def __init__(self, url: str, token: str, local_address: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.local_address = url, token, local_address
        self.lines: list[tuple[float, str]] = []
        self.ended: str | None = None
        self.hang_up = threading.Event()
        self.start()

    def run(self) -> None:
        transport = httpx.HTTPTransport(local_address=self.local_address)
        try:
            with httpx.Client(transport=transport, timeout=httpx.Timeout(5, read=60)) as http, \
                    http.stream("GET", self.url,
                                headers={"Authorization": f"Bearer {self.token}"}) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    self.lines.append((time.monotonic(), line))
                    if self.hang_up.is_set():
                        break
            self.ended = "clean"
        except httpx.HTTPError as error:
            self.ended = f"cut: {type(error).__name__}"

    def comments(self, text: str) -> int:
        return sum(1 for _, line in self.lines if line.startswith(":") and text in line)


def start_conversation(base: str, local_address: str | None = None,
                       forwarded_for: str | None = None) -> httpx.Response:
    """POST /v1/conversations from this local address, naming this client as a proxy would."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(base_url=base, timeout=10,
                      transport=httpx.HTTPTransport(local_address=local_address)) as http:
        return http.post("/v1/conversations", json={"contact": {"id": "server"}}, headers=headers)


@contextmanager
def served_web(tmp_path: Path, sandbox: Sandbox, flows_dir: Path,
               settings: dict[str, str]) -> Iterator[tuple[Popen[bytes], str]]:
    """The web process alone on a private stack with these settings: it, and its base URL."""
    with private_stack(tmp_path, sandbox, flows_dir, settings=settings) as (_, processes, _):
        port = free_port()
        yield processes.web(port), f"http://127.0.0.1:{port}"


def test_sigterm_ends_open_streams_at_once_and_the_server_exits(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> None:
    # Streams would run two minutes: well past granian's 30 s kill timeout, unless told to end.
    with served_web(tmp_path, sandbox, flows_dir, {
        "SUPPORTFLOW_STREAM_MAX_S": "120", "SUPPORTFLOW_STREAM_KEEPALIVE_S": "0.3",
    }) as (web, base):
        started = start_conversation(base).json()
        streams = [Stream(f"{base}/v1/conversations/{started['conversation_id']}/events",
                          started["visitor_token"]) for _ in range(3)]
        # Frame by frame, not buffered: keep-alives arrive while every response is still open.
        wait_until(lambda: all(s.comments("keep-alive") >= 2 for s in streams), timeout=20)
        assert all(s.ended is None for s in streams)
        first, second = [t for t, line in streams[0].lines if "keep-alive" in line][:2]
        assert second - first < 2

        stopped = time.monotonic()
        web.send_signal(signal.SIGTERM)
        wait_until(lambda: all(s.ended for s in streams), timeout=5)
        assert [s.ended for s in streams] == ["clean"] * 3
        assert all(s.comments("stream ends; reconnect with Last-Event-ID") == 1 for s in streams)
        assert web.wait(timeout=10) == 0
        took = time.monotonic() - stopped
        print(f"SIGTERM to exit, with 3 open streams: {took:.2f} s")
        assert took < 5


def test_the_client_address_is_the_peers_or_the_trusted_proxys_forwarded_one(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> None:
    # One start per address: a second start from an address shows whom the limit counted.
    with served_web(tmp_path, sandbox, flows_dir, {
        "SUPPORTFLOW_RATE_LIMIT_START": "1 per minute", "SUPPORTFLOW_TRUSTED_PROXIES": "1",
    }) as (_, base):
        assert start_conversation(base).status_code == 201
        assert start_conversation(base).status_code == 429
        # Another peer address (all of 127/8 is loopback) is another client: REMOTE_ADDR is set.
        assert start_conversation(base, local_address="127.0.0.2").status_code == 201
        # Behind one trusted proxy, the address it forwards is the client's (ProxyFix).
        assert start_conversation(base, forwarded_for="203.0.113.7").status_code == 201
        assert start_conversation(base, forwarded_for="203.0.113.7").status_code == 429


def test_streams_past_a_clients_share_or_the_processs_are_refused_and_posts_still_go_through(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> None:
    # One web process of 4 threads: 2 may hold streams, 1 per client, so 2 stay for the rest.
    with served_web(tmp_path, sandbox, flows_dir, {
        "SUPPORTFLOW_STREAM_MAX_OPEN": "2", "SUPPORTFLOW_STREAM_MAX_OPEN_PER_CLIENT": "1",
        "SUPPORTFLOW_STREAM_KEEPALIVE_S": "0.3", "SUPPORTFLOW_STREAM_MAX_S": "120",
    }) as (_, base):
        started = start_conversation(base).json()
        url = f"{base}/v1/conversations/{started['conversation_id']}/events"
        auth = {"Authorization": f"Bearer {started['visitor_token']}"}

        def try_open(local_address: str) -> tuple[int, str, str]:
            """Open a stream and hang up at once: status, error code, Retry-After."""
            with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address),
                              timeout=5) as http, \
                    http.stream("GET", url, headers=auth) as response:
                if response.status_code == 200:
                    return 200, "", ""
                response.read()
                return (response.status_code, response.json()["error"]["code"],
                        response.headers.get("Retry-After", ""))

        first = Stream(url, started["visitor_token"], local_address="127.0.0.1")
        wait_until(lambda: first.comments("keep-alive") >= 1, timeout=20)
        assert try_open("127.0.0.1") == (429, "too_many_streams", "5")

        other = Stream(url, started["visitor_token"], local_address="127.0.0.2")
        wait_until(lambda: other.comments("keep-alive") >= 1, timeout=20)
        assert try_open("127.0.0.3") == (503, "streams_full", "5")

        posted = httpx.post(f"{base}/v1/conversations/{started['conversation_id']}/messages",
                            json={"text": "still heard?", "client_message_id": "m-1"},
                            headers=auth, timeout=10)
        assert posted.status_code == 202, posted.text

        # A client that hangs up gives its slot back: the third client gets in.
        first.hang_up.set()
        wait_until(lambda: first.ended == "clean", timeout=10)
        wait_until(lambda: try_open("127.0.0.3")[0] == 200, timeout=20)
        assert other.ended is None
