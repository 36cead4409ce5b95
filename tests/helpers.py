"""Small helpers shared by tests of every kind."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def readme_snippet() -> str:
    """The widget's embed snippet in the README: what a helpdesk owner copies onto their site."""
    from supportflow.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- embed-snippet -->\s*```html\n(.*?)```", readme, re.S)
    assert found, "the README has no embed snippet"
    return found.group(1).strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve a WSGI app on a local port (a free one by default) in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    http = make_server("127.0.0.1", port or free_port(), app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=5)


def wait_idle(redis_url: str, conversation_ids: list[str], timeout: float = 20.0,
              prefix: str = "sf") -> None:
    """Wait until these conversations have nothing left to do: no task naming them waits in
    the broker's queue, no worker holds them, no poll or retry is planned (wake_at), and no
    customer message waits for a turn; seen twice in a row, so a task passing from the broker
    to a worker is not missed. Use it, not a sleep, to show that nothing more happens.
    """
    import json

    import redis

    client = redis.Redis.from_url(redis_url)

    def busy(conversation_id: str) -> bool:
        base = f"{prefix}:conv:{conversation_id}"
        raw = client.get(base)
        record = json.loads(raw) if raw else {}
        waiting = record.get("state") in ("ask", "wait_for_user") and client.llen(f"{base}:mailbox")
        return bool(client.exists(f"{base}:lease") or record.get("wake_at") is not None or waiting)

    def idle() -> bool:
        queued = client.lrange("supportflow", 0, -1)
        return not any(cid.encode() in message for message in queued for cid in conversation_ids) \
            and not any(busy(cid) for cid in conversation_ids)

    _twice(idle, timeout)
    client.close()


def wait_no_tasks(redis_url: str, task_name: str, timeout: float = 20.0) -> None:
    """Wait until no task of this name is queued or held by a worker (countdowns included)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    needle = f'"{task_name}"'.encode()

    def none_left() -> bool:
        pending = [*client.lrange("supportflow", 0, -1), *client.hvals("unacked")]
        return not any(needle in message for message in pending)

    _twice(none_left, timeout)
    client.close()


def _twice(check: Callable[[], bool], timeout: float) -> None:
    streak = [0]

    def twice() -> bool:
        streak[0] = streak[0] + 1 if check() else 0
        return streak[0] >= 2

    wait_until(twice, timeout=timeout, interval=0.1)


def wait_settled(redis_url: str, flows_dir: Any, timeout: float = 30.0, prefix: str = "sf") -> None:
    """Wait until nothing left by earlier tests on this Redis can still move a stack-wide count:
    every conversation is idle (wait_idle) and no unclaimed handoff of a flow that gives it back
    to the bot on timeout is still in the queue. Use it before reading counts of the whole stack.
    """
    import json
    from pathlib import Path

    import redis
    import yaml

    client = redis.Redis.from_url(redis_url)
    every = [cid.decode() for cid in client.zrange(f"{prefix}:conversations", 0, -1)]
    wait_idle(redis_url, every, timeout=timeout, prefix=prefix)

    def returns_on_timeout(flow: str) -> bool:
        path = Path(flows_dir) / f"{flow}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return bool((data.get("handoff") or {}).get("on_timeout") == "return")

    def none_to_return() -> bool:
        queued = [cid.decode() for cid in client.zrange(f"{prefix}:handoffs", 0, -1)]
        claimed = client.hmget(f"{prefix}:handoffs:claims", queued) if queued else []
        for cid, claimant in zip(queued, claimed, strict=True):
            raw = client.get(f"{prefix}:conv:{cid}")
            record = json.loads(raw) if raw else {}
            if not claimant and returns_on_timeout(record.get("flow", "")):
                return False
        return True

    _twice(none_to_return, timeout)
    client.close()
