"""The real stack a scale benchmark runs against, started as the Procfile runs it.

The code under test (`--code`, default this checkout) runs its own Procfile's `web`, `worker`
and `beat` commands; the embedded Redis (AOF on), the sandbox and the load come from this
checkout, so two trees are measured by the same instruments.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
VAULT_KEY = "pGkUy1m8vI3yQk3Uu0k2T1oXkz6a5oKc3mWkz0c7c2E="
# The flows every part may use: the poll schedules of part (a), each with a long deadline.
FLOWS: dict[str, dict[str, Any]] = {
    "fixed10": {"delays": [10]},
    "default": {},
    "poll1": {"delays": [1]},
}


def new_secret() -> str:
    """A Standard Webhooks secret (whsec_ and base64 of 32 random bytes)."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile(code: Path) -> dict[str, str]:
    """The Procfile's processes: name -> command."""
    found = {}
    for line in (code / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = command.strip()
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024  # type: ignore[union-attr]
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, AttributeError):
            continue
        pending.extend(int(child) for child in children)
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    total, pending = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError):
            continue
        pending.extend(int(child) for child in children)
    return total


class Stack:
    """Redis, the sandbox, and the code's web, worker and beat; `close()` stops them all."""

    def __init__(self, code: Path, work: Path, *, extra_env: dict[str, str] | None = None,
                 webhooks: bool = False, workers: int = 1) -> None:
        from supportflow.runtime.redis_server import EmbeddedRedis

        self.code, self.work = code, work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.redis_server = EmbeddedRedis(work / "redis")
        self.redis_server.__enter__()
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.sandbox_port, self.web_port = free_port(), free_port()
        self.sandbox_root = f"http://127.0.0.1:{self.sandbox_port}"
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.flows_dir = self._write_flows(work / "flows", webhooks)
        # With webhooks, the sandbox signs its response events with the default connector's
        # secret (OPENAI_WEBHOOK_SECRET) and sends them to the web app.
        self.webhook_secret = new_secret() if webhooks else None
        extra = {**(extra_env or {}),
                 **({"OPENAI_WEBHOOK_SECRET": self.webhook_secret} if self.webhook_secret else {})}
        self.env = self._env(extra)
        try:
            self._start_all(code, workers)
        except BaseException:
            self.close()  # a process that did not come up leaves none running
            raise
        self.sandbox = httpx.Client(base_url=self.sandbox_root, timeout=120)

    def _start_all(self, code: Path, workers: int) -> None:
        self._start_sandbox()
        commands = procfile(code)
        self._start("web", commands["web"])
        self._start("beat", commands["beat"])
        # More than one worker: the Procfile's worker process scaled out (each its own node).
        self.workers = ["worker"] + [f"worker{n}" for n in range(2, workers + 1)]
        for name in self.workers:
            self._start(name, commands["worker"] + (f" -n {name}@%h" if workers > 1 else ""))
        wait_http(f"{self.base}/healthz")
        for name in self.workers:
            self._wait_worker(name)

    # ----- processes -----

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SUPPORTFLOW_"))}
        env.update({
            "SUPPORTFLOW_REDIS_URL": self.redis_server.url,
            "SUPPORTFLOW_SANDBOX_URL": f"{self.sandbox_root}/v1",
            "SUPPORTFLOW_FLOWS_DIR": str(self.flows_dir),
            "SUPPORTFLOW_VAULT_KEY": VAULT_KEY,
            "SUPPORTFLOW_SECRET_KEY": secrets.token_urlsafe(32),
            "PORT": str(self.web_port),
            # The widget's rate limits stay on (their Redis round trips are part of the cost),
            # far above the load, which comes from one address.
            "SUPPORTFLOW_RATE_LIMIT_ADDRESS": "100000000 per minute",
            "SUPPORTFLOW_RATE_LIMIT_START": "100000000 per minute",
            "SUPPORTFLOW_RATE_LIMIT_READS": "100000000 per minute",
            "SUPPORTFLOW_RATE_LIMIT_MESSAGES": "100000000 per minute",
            "BEAT_SCHEDULE": str(self.work / "celerybeat-schedule"),
            # The code under test first; the interpreter and tools of this checkout's venv.
            "PYTHONPATH": str(self.code),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            **extra,
        })
        return env

    def _start(self, name: str, command: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.code, env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def _start_sandbox(self) -> None:
        script = ("import logging, sys; logging.getLogger('werkzeug').setLevel(logging.ERROR); "
                  "from supportflow import defaults; from supportflow.sandbox.served import serve; "
                  f"serve('127.0.0.1', {self.sandbox_port}, defaults.KNOWLEDGE, 1.0)")
        env = {**self.env, "PYTHONPATH": str(ROOT)}
        log = (self.logs / "sandbox.log").open("wb")
        self.processes["sandbox"] = subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.sandbox_root}/_sandbox/runs?since=9e18")

    def _wait_worker(self, name: str) -> None:
        log = self.logs / f"{name}.log"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if "ready." in log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise SystemExit(f"the worker did not start: see {log}")

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.redis_server.__exit__(None, None, None)

    # ----- configuration -----

    def _write_flows(self, folder: Path, webhooks: bool) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        flows = dict(FLOWS)
        if webhooks:
            flows["webhooks"] = {"webhooks": True}
        for name, poll in flows.items():
            (folder / f"{name}.yaml").write_text(yaml.safe_dump({
                "welcome": "Hi! What can I do for you?",
                "backend": {"kind": "responses", "model": "sandbox-model"},
                "poll": {**poll, "deadline": 900}}))
        return folder

    def configure_sandbox(self, **settings: Any) -> None:
        self.sandbox.delete("/_sandbox/settings").raise_for_status()
        self.sandbox.put("/_sandbox/settings", json=settings).raise_for_status()

    def run_records(self, since: float) -> dict[str, Any]:
        data: dict[str, Any] = self.sandbox.get("/_sandbox/runs", params={"since": since}).json()
        return data

    def cli(self, *args: str, stdin: str = "") -> str:
        """Run `supportflow ...` of the code under test; its output."""
        done = subprocess.run([sys.executable, "-m", "supportflow.cli", *args], cwd=self.code,
                              env=self.env, input=stdin.encode(), capture_output=True,
                              check=True)
        return done.stdout.decode()

    # ----- what the broker and Redis show -----

    def queue_depth(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen("supportflow")
        pipe.hlen("unacked")
        pipe.zcount("sf:wakeups", "-inf", time.time())
        ready, reserved, due = pipe.execute()
        return {"ready": int(ready), "reserved": int(reserved), "due": int(due)}

    def states(self, ids: list[str]) -> list[str | None]:
        """Each conversation's state, read in one pipeline."""
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.get(f"sf:conv:{cid}")
        return [json.loads(raw)["state"] if raw else None for raw in pipe.execute()]

    def turn_done(self, ids: list[str], turn: int) -> list[bool]:
        """Whether each conversation has answered its `turn` (or handed it to a person)."""
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.get(f"sf:conv:{cid}")
        done = []
        for raw in pipe.execute():
            record = json.loads(raw) if raw else {}
            done.append(record.get("turn", 0) >= turn
                        and record.get("state") in ("wait_for_user", "handed_off"))
        return done

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds used so far by web, the workers (together), the sandbox and Redis."""
        used = {name: cpu_seconds(self.pid(name)) for name in ("web", "sandbox")}
        used["worker"] = sum(cpu_seconds(self.pid(name)) for name in self.workers)
        used["redis"] = cpu_seconds(int(self.redis.info("server")["process_id"]))
        return used

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")
