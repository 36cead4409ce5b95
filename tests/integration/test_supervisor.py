"""The process supervisor behind `supportflow dev`."""

from __future__ import annotations

import io
import sys
import threading
import time

from supportflow.runtime.processes import ProcessSpec, Supervisor


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEPER = python("import time\nprint('up', flush=True)\ntime.sleep(60)")
STUBBORN = python("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('up', flush=True)\ntime.sleep(60)")


def test_output_is_forwarded_with_the_process_name() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out, colour=False)
    supervisor.start(ProcessSpec("echoer", python("print('hello'); print('world')")))
    assert supervisor.run() == 1  # it exited on its own: unexpected for a service
    lines = out.getvalue().splitlines()
    assert "echoer   | hello" in lines
    assert any(line.startswith("echoer") and line.endswith("| world") for line in lines)


def test_one_child_dying_stops_all_the_others_with_a_message() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out, colour=False)
    sleeper = supervisor.start(ProcessSpec("sleeper", SLEEPER))
    supervisor.start(ProcessSpec("crasher", python("import sys, time; time.sleep(0.3); sys.exit(3)")))
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < 10
    assert sleeper.poll() is not None
    assert "crasher exited with code 3; stopping everything" in out.getvalue()


def test_a_stop_request_terminates_every_child_and_exits_0() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out, colour=False)
    children = [supervisor.start(ProcessSpec(f"s{i}", SLEEPER)) for i in range(3)]
    assert supervisor.wait_for(lambda: out.getvalue().count("| up") == 3, timeout_s=10)
    threading.Timer(0.2, supervisor.stop_requested.set).start()
    assert supervisor.run() == 0
    assert all(child.poll() is not None for child in children)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out, colour=False, stop_timeout_s=0.5)
    stubborn = supervisor.start(ProcessSpec("stubborn", STUBBORN))
    assert supervisor.wait_for(lambda: "| up" in out.getvalue(), timeout_s=10)
    supervisor.stop()
    assert stubborn.poll() == -9
    assert "stubborn did not stop in time; killing it" in out.getvalue()


def test_wait_for_gives_up_when_a_child_dies() -> None:
    supervisor = Supervisor(io.StringIO(), colour=False)
    supervisor.start(ProcessSpec("quitter", python("pass")))
    assert not supervisor.wait_for(lambda: False, timeout_s=10)
    assert supervisor.failure is not None
    supervisor.stop()
