"""CPU per accepted message of the web app itself, on the two ingest routes, with no server.

The WSGI app (`create_app()`, as the Procfile's web process builds it) is called in this process
on prepared requests, one after another, against an embedded Redis: what the kernel counts as
this process's CPU time (user and system), divided by the requests, is the app's own cost per
message, apart from the HTTP server's and from the other processes on the cores. It is the
figure to compare when changing the request path; `scale.py --parts b` measures the whole stack.

  .venv/bin/python bench/ingest_cpu.py                          # this checkout
  .venv/bin/python bench/ingest_cpu.py --code /tmp/sf-before    # another tree, same instrument
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
Environ = dict[str, Any]


def environ(path: str, body: str, headers: dict[str, str]) -> Environ:
    """A WSGI environ of a JSON POST from 127.0.0.1."""
    raw = body.encode()
    env: Environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:5000", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0), "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw))}
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def measure(app: Any, requests: list[Environ], warm: int) -> tuple[float, float, Counter[str]]:
    """(user, system) CPU ms per request after `warm` requests, and the statuses seen."""
    statuses: Counter[str] = Counter()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses[status] += 1

    for env in requests[:warm]:
        b"".join(app(env, start_response))
    statuses.clear()
    before = os.times()
    for env in requests[warm:]:
        b"".join(app(env, start_response))
    after = os.times()
    n = len(requests) - warm
    return (1000 * (after.user - before.user) / n, 1000 * (after.system - before.system) / n,
            statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the tree under test")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT / "bench"))
    from load import QUESTIONS, sign  # the scale benchmark's bodies and signatures

    from supportflow.runtime.redis_server import EmbeddedRedis

    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="sf-ingest-cpu-")) / "redis") as server:
        os.environ.update({
            "SUPPORTFLOW_REDIS_URL": server.url, "SUPPORTFLOW_SECRET_KEY": "bench-" + "k" * 40,
            "SUPPORTFLOW_VAULT_KEY": base64.urlsafe_b64encode(b"v" * 32).decode(),
            "SUPPORTFLOW_LOG_LEVEL": "WARNING",
            # On, as shipped (their cost counts), far above what one address sends here.
            **{f"SUPPORTFLOW_RATE_LIMIT_{name}": "100000000 per minute"
               for name in ("ADDRESS", "START", "READS", "MESSAGES")}})
        from supportflow.web import create_app

        app = create_app()
        client = app.test_client()
        started = [client.post("/v1/conversations", json={"contact": {"name": "A"}}).get_json()
                   for _ in range(args.conversations)]
        out = subprocess.run([sys.executable, "-m", "supportflow.cli", "inboxes", "create", "bench",
                              "--flow", "default", "--callback-url", "http://127.0.0.1:9/sink"],
                             capture_output=True, text=True, check=True, cwd=args.code).stdout
        secret = re.search(r"inbound secret[^:]*: (whsec_\S+)", out).group(1)  # type: ignore[union-attr]
        now = int(time.time())

        def widget(n: int) -> Environ:
            conv = started[n % len(started)]
            body = json.dumps({"text": QUESTIONS[n % len(QUESTIONS)], "client_message_id": f"w{n}"})
            return environ(f"/v1/conversations/{conv['conversation_id']}/messages", body,
                           {"Authorization": f"Bearer {conv['visitor_token']}"})

        def webhook(n: int) -> Environ:
            body = json.dumps({"conversation": {"id": f"hd-{n % args.conversations}"},
                               "contact": {"id": f"cust-{n % args.conversations}"},
                               "message": {"id": f"hm{n}", "text": QUESTIONS[n % len(QUESTIONS)]}})
            webhook_id = f"msg_{n}"
            return environ("/v1/webhooks/bench", body, {
                "webhook-id": webhook_id, "webhook-timestamp": str(now),
                "webhook-signature": sign(secret, webhook_id, now, body)})

        routes: list[tuple[str, Callable[[int], Environ]]] = [("widget", widget),
                                                               ("webhook", webhook)]
        print(f"code: {args.code}; {args.requests} requests a route after 500 to warm up")
        for name, make in routes:
            user, system, statuses = measure(app, [make(n) for n in range(args.requests + 500)],
                                             warm=500)
            print(f"{name:8} {user + system:.3f} ms CPU per request (user {user:.3f}, "
                  f"system {system:.3f}); {dict(statuses)}")


if __name__ == "__main__":
    main()
