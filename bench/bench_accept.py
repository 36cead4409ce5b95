"""What "acknowledged means replicated" costs: accept latency with and without the replica wait.

Starts a Redis master and one replica (the embedded binary), then the web app under gunicorn as
the Procfile runs it (2 workers x 8 threads), once with SUPPORTFLOW_REDIS_WAIT_REPLICAS=0 and
once with 1 (WAIT 1 after each accept), alternating `--rounds` times; each time `--clients`
threads post `--messages` customer messages in all. No worker runs: only accepting is measured.
Run: .venv/bin/python bench/bench_accept.py --messages 3000 --clients 16
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load import percentile  # noqa: E402
from stack import free_port  # noqa: E402

from supportflow.runtime.redis_server import EmbeddedRedis  # noqa: E402


def serve(redis_url: str, wait_replicas: int, logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn with the Procfile's shape; returns it and its base URL once /healthz answers."""
    port = free_port()
    env = {**os.environ, "SUPPORTFLOW_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT),
           "SUPPORTFLOW_REDIS_WAIT_REPLICAS": str(wait_replicas), "SUPPORTFLOW_LOG_LEVEL": "WARNING",
           "SUPPORTFLOW_SECRET_KEY": secrets.token_urlsafe(48),
           # Each client posts far faster than a person: limits on (their cost counts), high.
           **{f"SUPPORTFLOW_RATE_LIMIT_{name}": "1000000 per minute"
              for name in ("ADDRESS", "START", "READS", "MESSAGES")}}
    with (logs / f"web-{wait_replicas}.log").open("wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--threads", "8", "supportflow.web:create_app()"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return web, base
        except httpx.HTTPError:
            time.sleep(0.2)
    web.kill()
    raise SystemExit("the web app did not come up")


def post_messages(base: str, conversation: tuple[str, str], count: int, tag: str) -> list[float]:
    """Post `count` messages to one conversation (its id and visitor token); each one's accept
    latency in seconds."""
    latencies = []
    conversation_id, token = conversation
    with httpx.Client(base_url=base, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        for number in range(count):
            started = time.perf_counter()
            response = http.post(f"/v1/conversations/{conversation_id}/messages",
                                 json={"text": "Where is my parcel?",
                                       "client_message_id": f"{tag}-{number}"})
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise SystemExit(f"{response.status_code}: {response.text}")
    return latencies


def run(base: str, messages: int, clients: int, tag: str) -> dict[str, float]:
    with httpx.Client(base_url=base, timeout=30) as http:
        started_ = [http.post("/v1/conversations", json={"contact": {"id": f"{tag}-{n}"}}).json()
                    for n in range(clients)]
        conversations = [(s["conversation_id"], s["visitor_token"]) for s in started_]
    post_messages(base, conversations[0], 50, f"{tag}-warm")  # warm the pools and the scripts
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = pool.map(lambda n: post_messages(base, conversations[n], messages // clients,
                                                 f"{tag}-{n}"), range(clients))
        latencies = [value for part in parts for value in part]
    elapsed = time.perf_counter() - started
    return {"per_s": len(latencies) / elapsed, "p50_ms": 1000 * percentile(latencies, 0.5),
            "p99_ms": 1000 * percentile(latencies, 0.99), "count": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate off/on this many times (the machine's noise shows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with EmbeddedRedis(root / "master") as master, \
                EmbeddedRedis(root / "replica", replica_of=(master.host, master.port)):
            print("| replica wait | messages | accepted/s | 202 p50 | 202 p99 |")
            print("| --- | --- | --- | --- | --- |")
            for round_, wait in [(r, w) for r in range(args.rounds) for w in (0, 1)]:
                web, base = serve(master.url, wait, root)
                try:
                    found = run(base, args.messages, args.clients, f"r{round_}w{wait}")
                finally:
                    web.terminate()
                    web.wait()
                label = "off" if wait == 0 else "on (WAIT 1)"
                print(f"| {label} | {found['count']:.0f} | {found['per_s']:.0f} | "
                      f"{found['p50_ms']:.1f} ms | {found['p99_ms']:.1f} ms |")


if __name__ == "__main__":
    main()
