"""End-to-end turn benchmark: real Redis, Celery worker, gunicorn web app, the sandbox over HTTP.

Starts N conversations, sends one message in each (from several client threads), and measures
how fast the web layer accepts messages and how long each reply takes to reach the transcript.
Run: .venv/bin/python bench/bench_turns.py --conversations 200 --clients 8
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load import percentile  # noqa: E402
from stack import free_port, wait_http  # noqa: E402

from supportflow import defaults  # noqa: E402
from supportflow.runtime.redis_server import EmbeddedRedis  # noqa: E402
from supportflow.sandbox.server import start_in_thread  # noqa: E402


def one_turn(base: str, index: int) -> tuple[float, float]:
    """Start a conversation, send a message; (accept latency, reply latency) in seconds."""
    with httpx.Client(base_url=base, timeout=30) as http:
        started = http.post("/v1/conversations", json={"contact": {"id": f"bench-{index}"}}).json()
        conversation = started["conversation_id"]
        http.headers["Authorization"] = f"Bearer {started['visitor_token']}"
        sent = time.monotonic()
        http.post(f"/v1/conversations/{conversation}/messages",
                  json={"text": "How long does shipping take?"}).raise_for_status()
        accepted = time.monotonic() - sent
        while True:
            page = http.get(f"/v1/conversations/{conversation}/messages?after=2").json()
            if any(m["author"] == "bot" for m in page["messages"]):
                return accepted, time.monotonic() - sent
            time.sleep(0.02)


def rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.3, help="sandbox run latency (s)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    flows = work / "flows"
    flows.mkdir()
    (flows / "default.yaml").write_text(yaml.safe_dump({
        "welcome": "Hi", "backend": {"kind": "responses", "model": "sandbox-model"},
        "poll": {"delays": [0.1, 0.2, 0.4, 1.0], "deadline": 60}}))
    sandbox = start_in_thread("127.0.0.1", free_port(), defaults.KNOWLEDGE,
                              args.latency)
    port = free_port()
    with EmbeddedRedis(work / "redis") as redis_server:
        env = {**os.environ, "SUPPORTFLOW_REDIS_URL": redis_server.url,
               "SUPPORTFLOW_SANDBOX_URL": sandbox.url, "SUPPORTFLOW_FLOWS_DIR": str(flows),
               "SUPPORTFLOW_SECRET_KEY": secrets.token_urlsafe(48),
               # One address polls far faster than a person: limits on (their cost counts), high.
               **{f"SUPPORTFLOW_RATE_LIMIT_{name}": "1000000 per minute"
                  for name in ("ADDRESS", "START", "READS", "MESSAGES")}}
        env.pop("OPENAI_API_KEY", None)
        bin_dir = Path(sys.executable).parent
        worker = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "workers.app", "worker", "--loglevel", "WARNING",
             "--concurrency", str(args.concurrency), "-O", "fair"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        web = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--threads", "8", "supportflow.web:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz")
            time.sleep(3)  # let the worker finish booting
            began = time.monotonic()
            with ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(lambda i: one_turn(base, i), range(args.conversations)))
            elapsed = time.monotonic() - began
            accepted = [r[0] * 1000 for r in results]
            replies = [r[1] for r in results]
            print(f"conversations: {args.conversations}, clients: {args.clients}, "
                  f"sandbox latency: {args.latency} s, worker processes: {args.concurrency}")
            print(f"turns/s: {args.conversations / elapsed:.1f} (wall {elapsed:.1f} s)")
            print(f"message accepted (202): p50 {statistics.median(accepted):.1f} ms, "
                  f"p95 {percentile(accepted, 0.95):.1f} ms")
            print(f"reply in transcript: p50 {statistics.median(replies):.2f} s, "
                  f"p95 {percentile(replies, 0.95):.2f} s, max {max(replies):.2f} s")
            print(f"worker RSS (all processes): {rss_mb(worker.pid):.0f} MB; "
                  f"web RSS: {rss_mb(web.pid):.0f} MB")
        finally:
            for process in (web, worker):
                process.terminate()
                process.wait(timeout=30)
            sandbox.stop()


if __name__ == "__main__":
    main()
