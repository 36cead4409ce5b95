"""A tiny supervisor: start child processes, prefix their output, stop them all together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

COLOURS = ("36", "33", "35", "32", "34", "31")


@dataclass(frozen=True)
class ProcessSpec:
    """One child: a name for its output prefix, its command line, environment and folder."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    reader: threading.Thread | None = field(default=None)


class Supervisor:
    """Runs children in their own process groups; one dying or a signal stops all of them."""

    def __init__(self, out: IO[str] | None = None, *, stop_timeout_s: float = 10.0,
                 colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.stop_timeout_s = stop_timeout_s
        self.colour = self.out.isatty() if colour is None else colour
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.signal_name: str | None = None
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._width = 8
        self._old_handlers: dict[int, Any] = {}
        self._colours: dict[str, str] = {}

    # -- output ---------------------------------------------------------------------------
    def say(self, message: str, name: str = "supervisor") -> None:
        """Write one line with a name prefix, whole, even while children write too."""
        prefix = f"{name:<{self._width}} | "
        if self.colour:
            prefix = f"\033[{self._colours.get(name, '1')}m{prefix}\033[0m"
        with self._lock:
            self.out.write(prefix + message.rstrip("\n") + "\n")
            self.out.flush()

    def write_block(self, text: str) -> None:
        """Write several lines as they are, without a prefix."""
        with self._lock:
            self.out.write(text.rstrip("\n") + "\n")
            self.out.flush()

    def _forward(self, child: Child) -> None:
        stream = child.process.stdout
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            self.say(raw.decode("utf-8", errors="replace"), child.spec.name)
        stream.close()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        """Start one child in its own process group, with its output forwarded."""
        self._width = max(self._width, len(spec.name))
        self._colours[spec.name] = COLOURS[len(self.children) % len(COLOURS)]
        env = dict(os.environ if spec.env is None else spec.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        process = subprocess.Popen(
            list(spec.argv), env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        child = Child(spec, process)
        child.reader = threading.Thread(target=self._forward, args=(child,), daemon=True,
                                         name=f"output-{spec.name}")
        self.children.append(child)
        child.reader.start()
        return process

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop; a second one stops without waiting."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        """Put back whatever handled SIGINT/SIGTERM before."""
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_requested.is_set():
            self.stop_timeout_s = 0.0
        self.signal_name = signal.Signals(signum).name
        self.stop_requested.set()

    def check_children(self) -> bool:
        """False (and a message naming it) once any child has exited."""
        if self.failure is not None:
            return False
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                self.failure = f"{child.spec.name} exited with code {code}; stopping everything"
                self.say(self.failure)
                return False
        return True

    def wait_for(self, check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
        """Poll `check` while all children live and no stop was asked; True once it passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stop_requested.is_set() or not self.check_children():
                return False
            if check():
                return True
            self.stop_requested.wait(interval_s)
        return False

    def run(self) -> int:
        """Block until a signal (exit 0) or a child dies (exit 1); then stop them all."""
        try:
            while not self.stop_requested.is_set() and self.check_children():
                self.stop_requested.wait(0.2)
        finally:
            self.stop()
        if self.failure is not None:
            return 1
        return 0

    def stop(self) -> None:
        """SIGTERM every live child's group, wait, then SIGKILL whatever is left."""
        live = [c for c in self.children if c.process.poll() is None]
        if live:
            reason = f" ({self.signal_name})" if self.signal_name else ""
            self.say(f"stopping {', '.join(c.spec.name for c in live)}{reason}")
        for child in reversed(live):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for child in live:
            while child.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if child.process.poll() is None:
                self.say(f"{child.spec.name} did not stop in time; killing it")
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)

    def __enter__(self) -> Supervisor:
        self.install_signal_handlers()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.stop()
        finally:
            self.restore_signal_handlers()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
