"""A local HTTP server standing in for a helpdesk's callback or Chatwoot's API: records requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers each request with the next planned status (then `default`), and records it.

    It is served by the standard library's HTTP server, which keeps header names as sent
    (Chatwoot's `api_access_token` has underscores, which werkzeug's server drops).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plan: list[int] = []
        self.default = 200
        self.required_headers: dict[str, str] = {}
        self.requests: list[Received] = []
        self.lock = threading.Lock()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """Record one request and pick its status."""
        with self.lock:
            status = self.plan.pop(0) if self.plan else self.default
            if any(headers.get(k) != v for k, v in self.required_headers.items()):
                status = 401
            self.requests.append(Received(path, headers, body, status))
        return status

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {**{k: v for k, v in self.headers.items()},
                   **{k.title(): v for k, v in self.headers.items()}}
        status = self.receiver.answer(self.path, headers, body)
        payload = json.dumps({"ok": status < 300}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    """Serve the receiver in a thread for the duration of the block."""
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def spec_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks v1 signature, written from the spec (independent of SupportFlow's code)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def spec_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """True when one of the request's signatures is the spec's signature under `secret`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    expected = spec_signature(secret, lowered["webhook-id"], lowered["webhook-timestamp"], body)
    return any(hmac.compare_digest(expected, s) for s in lowered["webhook-signature"].split(" "))
