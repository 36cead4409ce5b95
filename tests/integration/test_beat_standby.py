"""Two beats, one active: SIGKILL the active one and the standby takes over, sending nothing twice."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from supportflow.adapters.celery_queue import HANDOFF_TIMEOUTS_TASK as PERIODIC
from supportflow.adapters.redis_connection import connect
from supportflow.observability.ops import OpsStore
from supportflow.observability.redis_metrics import RedisMetrics
from supportflow.runtime.redis_server import EmbeddedRedis
from supportflow.settings import load_settings
from tests.conftest import Processes, Sandbox, stack_env
from tests.helpers import wait_until

pytestmark = pytest.mark.slow

TAKEOVER_BUDGET_S = 10.0
# stack_env runs every periodic task each 0.5 s; a second active beat would halve the gaps.
INTERVAL_S = 0.5


def test_standby_beat_takes_over_within_ten_seconds_and_never_sends_a_task_twice(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server:
        processes = Processes(stack_env(server.url, sandbox.url, flows_dir), tmp_path)
        client = connect(load_settings({"redis_url": server.url}))
        ops = OpsStore(client, prefix="sf", metrics=RedisMetrics(client, prefix="sf"))
        try:
            processes.worker(concurrency=1)
            beats = {str(beat.pid): beat for beat in (processes.beat(), processes.beat())}
            wait_until(lambda: len(ops.dispatches()) >= 6, timeout=30)
            senders = {entry["beat"].rpartition(":")[2] for entry in ops.dispatches()}
            assert len(senders) == 1, f"two beats sent tasks at once: {senders}"
            active = beats.pop(senders.pop())
            standby = next(iter(beats.values()))
            assert standby.poll() is None, "the standby must be running, waiting for the lock"

            killed_at = time.time()
            os.killpg(active.pid, signal.SIGKILL)
            first = wait_until(lambda: next(
                (e for e in ops.dispatches() if e["at"] > killed_at and e["task"] == PERIODIC),
                None), timeout=TAKEOVER_BUDGET_S + 5)
            acted_at = wait_until(lambda: (at := ops.last_runs().get(PERIODIC, 0.0)) > first["at"]
                                  and at, timeout=10)
            took_over_s = acted_at - killed_at
            print(f"standby's handoff check ran {took_over_s:.2f} s after the active beat was killed")
            assert took_over_s <= TAKEOVER_BUDGET_S
            assert first["beat"].endswith(f":{standby.pid}")

            wait_until(lambda: len([e for e in ops.dispatches() if e["at"] > killed_at]) >= 6)
            trail = ops.dispatches(1000)
            before = {e["beat"] for e in trail if e["at"] < killed_at}
            after = {e["beat"] for e in trail if e["at"] > killed_at}
            assert len(before) == 1 and after == {first["beat"]} and before != after
            sent: dict[str, list[float]] = defaultdict(list)
            for entry in trail:
                sent[entry["task"]].append(entry["at"])
            for task, times in sent.items():
                gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
                assert min(gaps, default=INTERVAL_S) >= 0.9 * INTERVAL_S, (task, gaps)
        finally:
            processes.stop_all()
