"""The web process's granian glue: the Procfile's options, and the stop signal reaching the app."""

from __future__ import annotations

import os
import re
import select
import shlex
import signal
import threading
from collections.abc import Iterator

import pytest

from supportflow.settings import PROJECT_ROOT, Settings
from supportflow.web.serve import granian_argv, stream_bound, watch_stop_signals
from tests.helpers import wait_until


def test_the_procfile_runs_the_options_dev_and_the_tests_run() -> None:
    [line] = [line for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
              if line.startswith("web:")]
    # The Procfile's defaults stand in for ${NAME:-default}, as its shell expands them.
    expanded = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line.removeprefix("web:"))
    # `env`: the line also runs as `exec <line>` (bench/stack.py), where VAR=value cannot lead.
    runner, env, *argv = shlex.split(expanded)
    assert (runner, env) == ("env", "GRANIAN_LOG_ACCESS_ENABLED=0")  # opt-in: WEB_ACCESS_LOG=1
    assert argv == ["granian", *granian_argv("0.0.0.0", 5000, 2, 32)]
    assert "--access-log" in granian_argv("127.0.0.1", 5000, 2, 8, access_log=True)


def test_streams_may_hold_three_quarters_of_the_threads_unless_told_otherwise() -> None:
    # The Procfile's default: 32 threads, so the settings' default of 24 streams.
    assert Settings().stream_max_open == 32 * 3 // 4
    assert stream_bound({"WEB_THREADS": "8"}) == {"stream_max_open": 6}
    assert stream_bound({"WEB_THREADS": "1"}) == {"stream_max_open": 1}
    assert stream_bound({"WEB_THREADS": "8", "SUPPORTFLOW_STREAM_MAX_OPEN": "7"}) == {}
    assert stream_bound({}) == {}


@pytest.fixture
def restored_signals() -> Iterator[None]:
    """Put back the wakeup fd and the handlers the test replaces."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        yield
    finally:
        signal.set_wakeup_fd(wakeup)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_a_caught_sigterm_sets_the_stop_event_whoever_handles_it(restored_signals: None) -> None:
    caught: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGUSR1):  # as granian's worker does, after the factory
        signal.signal(signum, lambda number, frame: caught.append(number))
    previous_read, previous_write = os.pipe()
    os.set_blocking(previous_write, False)
    signal.set_wakeup_fd(previous_write)
    stopping = threading.Event()
    watch_stop_signals(stopping)

    def forwarded() -> bytes:  # the wakeup fd set before still hears of every signal
        ready, _, _ = select.select([previous_read], [], [], 5)
        return os.read(previous_read, 16) if ready else b""

    os.kill(os.getpid(), signal.SIGUSR1)
    assert forwarded() == bytes([signal.SIGUSR1])
    assert not stopping.is_set()
    os.kill(os.getpid(), signal.SIGTERM)
    wait_until(stopping.is_set, timeout=5)
    assert forwarded() == bytes([signal.SIGTERM])
    wait_until(lambda: caught == [signal.SIGUSR1, signal.SIGTERM], timeout=5)  # handlers still run
    os.close(previous_read)
    os.close(previous_write)
