"""Webhooks on or off, and which poll schedule: added reply latency and API calls per turn.

Real stack (embedded Redis, a Celery worker, the web app under gunicorn, the sandbox sending
signed response events to it). Each conversation sends one message; the added latency is the
bot message's time in the transcript minus the moment the sandbox really finished the run.
Run lengths are drawn uniformly from --runs (seconds), as real runs vary.
Run: .venv/bin/python bench/webhook_schedule.py --conversations 40 --runs 2 8
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import percentile  # noqa: E402
from stack import free_port, wait_http  # noqa: E402

from supportflow import defaults  # noqa: E402
from supportflow.runtime.redis_server import EmbeddedRedis  # noqa: E402
from supportflow.sandbox.server import start_in_thread  # noqa: E402
from supportflow.webhooks.signing import new_secret  # noqa: E402

# name: (poll settings of the flow, share of webhooks dropped, or None: webhooks off)
CASES: dict[str, tuple[dict[str, Any], float | None]] = {
    "no webhooks, default schedule [1,2,4,8,10]": ({}, None),
    "webhooks, default schedule": ({"webhooks": True, "delays": [1, 2, 4, 8, 10]}, 0.0),
    "webhooks, [5, 10]": ({"webhooks": True, "delays": [5, 10]}, 0.0),
    "webhooks, webhook schedule [10]": ({"webhooks": True}, 0.0),
    "webhooks, [5, 10], 5 % dropped": ({"webhooks": True, "delays": [5, 10]}, 0.05),
    "webhooks, webhook schedule [10], 5 % dropped": ({"webhooks": True}, 0.05),
}


class CountingApp:
    """WSGI middleware: counts the sandbox's /v1 requests."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls, self.lock = app, Counter[str](), threading.Lock()

    def __call__(self, environ: dict[str, Any], start: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/v1/"):
            with self.lock:
                self.calls["all"] += 1
        return self.app(environ, start)


def one_turn(base: str, flow: str, index: int) -> tuple[str, str]:
    """Start a conversation on the flow, say one thing, wait for the reply; its id and token."""
    with httpx.Client(base_url=base, timeout=30) as http:
        started = http.post("/v1/conversations", json={"contact": {"id": f"wh-{flow}-{index}"},
                                                       "flow": flow}).json()
        conversation = started["conversation_id"]
        http.headers["Authorization"] = f"Bearer {started['visitor_token']}"
        http.post(f"/v1/conversations/{conversation}/messages",
                  json={"text": "How long does shipping take?"}).raise_for_status()
        while http.get(f"/v1/conversations/{conversation}").json()["state"] != "wait_for_user":
            time.sleep(0.5)
        return str(conversation), str(started["visitor_token"])


def added_latency(base: str, store: Any, conversation: tuple[str, str]) -> float:
    """Bot message time in the transcript minus the sandbox's finish time of the run."""
    conversation, token = conversation
    page = httpx.get(f"{base}/v1/conversations/{conversation}/messages?after=0",
                     headers={"Authorization": f"Bearer {token}"}).json()
    replied = [m["at"] for m in page["messages"] if m["author"] == "bot"][-1]
    with store.lock:
        runs = [r for r in store.runs.values()
                if (r.request.get("metadata") or {}).get("sf_conversation") == conversation]
    return float(replied - max(r.finished_at for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--runs", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"),
                        help="run lengths in seconds, drawn uniformly (default 2 8)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="sf-webhooks-"))
    flows = work / "flows"
    flows.mkdir()
    names = {}
    for index, (case, (poll, _)) in enumerate(CASES.items()):
        names[case] = "default" if index == 0 else f"case{index}"
        (flows / f"{names[case]}.yaml").write_text(yaml.safe_dump({
            "welcome": "Hi", "backend": {"kind": "responses", "model": "sandbox-model"},
            "poll": {**poll, "deadline": 60}}))
    secret, port = new_secret(), free_port()
    sandbox = start_in_thread("127.0.0.1", free_port(), defaults.KNOWLEDGE, args.runs[0])
    counting = CountingApp(sandbox.server.app)
    sandbox.server.app = counting  # type: ignore[assignment]
    store = sandbox.background.store
    schedule = store.scheduled

    def varied(run: Any) -> None:  # each run gets its own length before the timer takes it
        run.due = run.started + random.uniform(*args.runs)
        schedule(run)

    store.scheduled = varied
    with EmbeddedRedis(work / "redis") as redis_server:
        env = {**os.environ, "SUPPORTFLOW_REDIS_URL": redis_server.url,
               "SUPPORTFLOW_SANDBOX_URL": sandbox.url, "SUPPORTFLOW_FLOWS_DIR": str(flows),
               "OPENAI_WEBHOOK_SECRET": secret, "SUPPORTFLOW_SECRET_KEY": new_secret(),
               **{f"SUPPORTFLOW_RATE_LIMIT_{name}": "1000000 per minute"
                  for name in ("ADDRESS", "START", "READS", "MESSAGES")}}
        env.pop("OPENAI_API_KEY", None)
        bin_dir = Path(sys.executable).parent
        worker = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "workers.app", "worker", "--loglevel", "WARNING",
             "--concurrency", "2", "-O", "fair"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        web = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--threads", "8", "supportflow.web:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/healthz")
            time.sleep(3)  # let the worker finish booting
            print(f"{args.conversations} conversations at once per case, runs of "
                  f"{args.runs[0]:g}-{args.runs[1]:g} s, one message each")
            print("| case | added latency p50 / p95 / max | API calls per turn |")
            print("| --- | --- | --- |")
            for case, (_, drop) in CASES.items():
                with store.lock:
                    store.settings.webhook_url = (
                        None if drop is None else f"{base}/v1/integrations/openai/default")
                    store.settings.webhook_secret = secret
                    store.settings.webhook_drop_rate = drop or 0.0
                calls = counting.calls["all"]
                with ThreadPoolExecutor(args.conversations) as pool:
                    done = list(pool.map(lambda i, c=case: one_turn(base, names[c], i),
                                         range(args.conversations)))
                per_turn = (counting.calls["all"] - calls) / args.conversations
                added = [added_latency(base, store, c) for c in done]
                print(f"| {case} | {statistics.median(added):.2f} / {percentile(added, 0.95):.2f}"
                      f" / {max(added):.2f} s | {per_turn:.2f} |")
        finally:
            for process in (web, worker):
                process.terminate()
                process.wait(timeout=30)
            sandbox.stop()


if __name__ == "__main__":
    main()
