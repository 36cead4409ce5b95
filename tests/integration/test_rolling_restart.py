"""A deploy: web, worker and beat restarted one at a time (SIGTERM, then a new one) while
conversations run. Nothing is lost or duplicated, every turn is answered, streams resume."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from supportflow.adapters.redis_connection import connect
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.runtime.redis_server import EmbeddedRedis
from supportflow.settings import load_settings
from tests.conftest import Processes, Sandbox, stack_env
from tests.helpers import free_port, wait_until

from .load import Customer, check_transcripts, http_api, run_all

pytestmark = pytest.mark.slow

CONVERSATIONS = 4
STOP_WITHIN_S = 30.0


class StreamReader(threading.Thread):
    """A widget's event stream: reconnects with Last-Event-ID whenever a response ends."""

    def __init__(self, bases: Callable[[], list[str]], customer: Customer) -> None:
        super().__init__(daemon=True)
        self.bases, self.customer = bases, customer
        self.seqs: list[int] = []
        self.ends: Counter[str] = Counter()
        self.on: str | None = None  # the web process whose stream is open now
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            up = self.bases()
            base = up[sum(self.ends.values()) % len(up)]
            last = str(self.seqs[-1]) if self.seqs else "0"
            try:
                with httpx.stream("GET", f"{base}/v1/conversations/{self.customer.conversation_id}"
                                  "/events", headers={
                                      "Last-Event-ID": last,
                                      "Authorization": f"Bearer {self.customer.visitor_token}"},
                                  timeout=httpx.Timeout(5, read=30)) as response:
                    self.on = base if response.status_code == 200 else None
                    end = self.read(response)
                    self.on = None
            except httpx.HTTPError:
                end = "refused"  # that web process is down or going: try another
            if not self.done.is_set():
                self.ends[end] += 1
            time.sleep(0.2)

    def read(self, response: httpx.Response) -> str:
        """Read one response to its end: "clean", or how an open stream was cut (must not be)."""
        try:
            for line in response.iter_lines():
                if line.startswith("id: "):
                    self.seqs.append(int(line[4:]))
        except httpx.HTTPError as error:
            return f"cut: {type(error).__name__}"
        return "clean"


def stop(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM to the main process, as a deploy does; how long it took to finish what it had."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=STOP_WITHIN_S)
    assert code == 0, f"exit code {code}"
    return time.monotonic() - started


def test_restarting_web_worker_and_beat_one_at_a_time_loses_and_repeats_nothing(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> None:
    sandbox.reset()
    sandbox.configure(latency_s=0.8)
    ports = [free_port(), free_port()]
    up = {port: True for port in ports}

    def bases() -> list[str]:  # the load balancer's view: web processes not being restarted
        return [f"http://127.0.0.1:{port}" for port, ok in up.items() if ok]

    with EmbeddedRedis(tmp_path / "redis") as server:
        env = stack_env(server.url, sandbox.url, flows_dir)
        # Customers here poll far faster than people: limits on (kept in the same Redis), high.
        env.update({f"SUPPORTFLOW_RATE_LIMIT_{name}": "1000000 per minute"
                    for name in ("ADDRESS", "START", "READS", "MESSAGES")})
        processes = Processes(env, tmp_path)
        restarting = threading.Event()
        try:
            webs = {port: processes.web(port) for port in ports}
            worker, beat = processes.worker(concurrency=2), processes.beat()
            customers = [Customer(http_api(bases), "responses", 2, more=restarting.is_set)
                         for _ in range(CONVERSATIONS)]
            restarting.set()
            threads = run_all(customers)
            wait_until(lambda: customers[0].visitor_token, timeout=30)
            reader = StreamReader(bases, customers[0])
            reader.start()

            def progress(since: int) -> bool:
                return sum(len(c.acknowledged) for c in customers) >= since + 2

            took: dict[str, float] = {}
            for port in ports:
                acked = sum(len(c.acknowledged) for c in customers)
                wait_until(lambda acked=acked: progress(acked), timeout=60)
                # A stream is open on the web process about to go (so its end is tested).
                wait_until(lambda port=port: reader.on == f"http://127.0.0.1:{port}", timeout=20)
                up[port] = False
                took[f"web:{port}"] = stop(webs[port])
                webs[port] = processes.web(port)
                up[port] = True
            for name in ("worker", "beat"):
                acked = sum(len(c.acknowledged) for c in customers)
                wait_until(lambda acked=acked: progress(acked), timeout=60)
                if name == "worker":
                    took[name] = stop(worker)
                    worker = processes.worker(concurrency=2)
                else:
                    took[name] = stop(beat)
                    beat = processes.beat()
            restarting.clear()
            for thread in threads:
                thread.join(timeout=90)
            store = RedisConversationStore(connect(load_settings({"redis_url": server.url})))
            check_transcripts(customers, lambda conversation: [
                message.to_dict() for _, message in store.transcript(conversation, 0, 500)])
            transcript = store.transcript(customers[0].conversation_id, 0, 500)
            wait_until(lambda: reader.seqs and reader.seqs[-1] >= len(transcript), timeout=20)
            reader.done.set()
        finally:
            processes.stop_all()

    outcomes = sum((c.outcomes for c in customers), Counter())
    print(f"rolling restart: stop times {({k: round(v, 2) for k, v in took.items()})}; "
          f"{sum(len(c.acknowledged) for c in customers)} turns; outcomes {dict(outcomes)}; "
          f"stream ends {dict(reader.ends)}")
    assert not {o for o in outcomes if o.startswith("5")}, outcomes
    # The stream followed the conversation across both web restarts, each message once.
    assert reader.seqs == list(range(1, len(transcript) + 1))
    assert reader.ends["clean"] >= 2 and set(reader.ends) <= {"clean", "refused"}, reader.ends
