"""A replicated Redis with Sentinel from the embedded binary: master, replicas, three sentinels.

For the failover tests and the replica-wait benchmark: every node is a real redis-server on a
loopback port, so failover, promotion and WAIT behave as they do between machines.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

import redis

from .redis_server import EmbeddedRedis, RedisServerError, find_redis_server


class EmbeddedSentinel(EmbeddedRedis):
    """redis-server in Sentinel mode, watching one master; its config file lives in data_dir."""

    def __init__(self, data_dir: Path, master_name: str, master: tuple[str, int], *,
                 quorum: int = 2, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        super().__init__(data_dir, appendonly=False)
        self.master_name, self.master = master_name, master
        self.quorum, self.down_after_ms, self.failover_timeout_ms = quorum, down_after_ms, failover_timeout_ms

    @property
    def config_path(self) -> Path:
        return self.data_dir / "sentinel.conf"

    def command(self) -> list[str]:
        """Sentinel rewrites its config file as it learns the group, so it gets one of its own."""
        name, (host, port) = self.master_name, self.master
        self.config_path.write_text("\n".join([
            f"port {self.port}", f"bind {self.host}", f"dir {self.data_dir}",
            f"logfile {self.log_path}", "daemonize no",
            f"sentinel monitor {name} {host} {port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1", "",
        ]), encoding="utf-8")
        return [find_redis_server(), str(self.config_path), "--sentinel"]


class SentinelGroup:
    """A master, its replicas and three sentinels on 127.0.0.1; a context manager."""

    def __init__(self, data_dir: Path, *, master_name: str = "supportflow", replicas: int = 1,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.data_dir = Path(data_dir)
        self.master_name = master_name
        self.master = EmbeddedRedis(self.data_dir / "node-0")
        self.nodes = [self.master]
        self.replica_count = replicas
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.sentinels: list[EmbeddedSentinel] = []

    @property
    def sentinel_hosts(self) -> str:
        """SUPPORTFLOW_REDIS_SENTINELS for this group."""
        return ",".join(f"{s.host}:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        """Start the master, its replicas (in sync before this returns), then the sentinels."""
        self.master.start()
        address = (self.master.host, self.master.port)
        for number in range(1, self.replica_count + 1):
            replica = EmbeddedRedis(self.data_dir / f"node-{number}", replica_of=address)
            self.nodes.append(replica.start())
        self.wait_for_replicas(self.replica_count)
        for number in range(3):
            sentinel = EmbeddedSentinel(self.data_dir / f"sentinel-{number}", self.master_name, address,
                                        down_after_ms=self.down_after_ms,
                                        failover_timeout_ms=self.failover_timeout_ms)
            sentinel.start()
            self.sentinels.append(sentinel)
        return self

    def elected(self) -> tuple[str, int] | None:
        """The master the sentinels name (the first that answers), or None."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    found = client.sentinel_get_master_addr_by_name(self.master_name)
            except redis.RedisError:
                continue
            if found:
                host, port = found  # type: ignore[misc]
                return (host.decode() if isinstance(host, bytes) else str(host)), int(port)
        return None

    def node_at(self, address: tuple[str, int]) -> EmbeddedRedis:
        return next(node for node in self.nodes if (node.host, node.port) == address)

    def wait_for_replicas(self, count: int, timeout_s: float = 30.0) -> None:
        """Until the current master has `count` replicas online and in sync."""
        master = self.node_at(self.elected() or (self.master.host, self.master.port))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with master.client() as client:
                    info = client.info("replication")
                    online = [v for k, v in info.items() if k.startswith("slave")
                              and isinstance(v, dict) and v.get("state") == "online"]
                    if len(online) >= count and client.wait(count, 100) >= count:
                        return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RedisServerError(f"fewer than {count} replicas in sync after {timeout_s} s")

    def rejoin(self, node: EmbeddedRedis) -> EmbeddedRedis:
        """Bring a dead node back as a replica of the elected master (a replaced machine)."""
        master = self.elected()
        if master is None or master == (node.host, node.port):
            raise RedisServerError("no other master to follow")
        node.replica_of = master
        return node.start()

    def stop(self) -> None:
        for server in [*self.sentinels, *self.nodes]:
            server.stop()

    def __enter__(self) -> SentinelGroup:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
