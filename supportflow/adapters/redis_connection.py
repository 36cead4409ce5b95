"""Every Redis client SupportFlow makes: one plain server, or whichever master Sentinel elects.

The state store, the Celery broker, redbeat, the worker hooks, the CLI and /readyz all get their
clients (or the broker's URL) here, so every part follows a failover the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from supportflow.settings import Settings, mask_url_password

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
CONNECT_TIMEOUT_S = 2.0
# Must outlast the replica wait: WAIT holds its connection for up to its timeout.
SOCKET_TIMEOUT_S = 10.0
SENTINEL_TIMEOUT_S = 1.0
HEALTH_CHECK_S = 30


class RedisConfigError(ValueError):
    """The Redis settings name neither a server nor a Sentinel group."""


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is: a URL, or the sentinels that know which server is `master`."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def describe(self) -> str:
        """Where Redis is, for logs and banners: never a password."""
        if not self.uses_sentinel:
            return mask_url_password(self.url)
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"Sentinel master {self.master!r} (db {self.db}) via {hosts}"


def parse_hosts(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (port 26379 when left out) as pairs; an error names the bad one."""
    hosts: list[tuple[str, int]] = []
    for part in filter(None, (item.strip() for item in text.split(","))):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        if not host or (port and not port.isdigit()):
            raise RedisConfigError(f"sentinel {part!r} is not host:port")
        hosts.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
    if not hosts:
        raise RedisConfigError("no sentinel given")
    return tuple(hosts)


def redis_target(settings: Settings) -> RedisTarget:
    """The Redis the settings name; SUPPORTFLOW_REDIS_SENTINELS wins over SUPPORTFLOW_REDIS_URL."""
    if settings.redis_sentinels.strip():
        if not settings.redis_master:
            raise RedisConfigError("SUPPORTFLOW_REDIS_MASTER must name the monitored master")
        return RedisTarget(sentinels=parse_hosts(settings.redis_sentinels),
                           master=settings.redis_master, password=settings.redis_password,
                           sentinel_password=settings.redis_sentinel_password)
    if settings.redis_url.startswith(f"{SENTINEL_SCHEME}://"):
        return _sentinel_url_target(settings)
    return RedisTarget(url=_with_password(settings.redis_url, settings.redis_password))


def _sentinel_url_target(settings: Settings) -> RedisTarget:
    """redis+sentinel://[[user]:password@]host:port[,host:port]/<master>[/<db>]."""
    parts = urlsplit(settings.redis_url)
    hosts = parts.netloc.rpartition("@")[2]
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisConfigError(f"{SENTINEL_SCHEME} URL must end in /<master name>[/<db>]")
    return RedisTarget(
        sentinels=parse_hosts(hosts), master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else settings.redis_password,
        sentinel_password=settings.redis_sentinel_password,
    )


def _with_password(url: str, password: str | None) -> str:
    """Put SUPPORTFLOW_REDIS_PASSWORD into a URL that carries none."""
    if not password or "@" in url.partition("://")[2]:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://:{quote(password, safe='')}@{rest}"


def sentinel_manager(target: RedisTarget) -> Sentinel:
    """A Sentinel client for the target's sentinels (with their password, if any)."""
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S,
                                       "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return Sentinel(list(target.sentinels),  # type: ignore[no-untyped-call]
                    sentinel_kwargs=sentinel_kwargs)


def connect(settings: Settings, *, decode_responses: bool = False) -> redis.Redis:
    """A pooled client on the master; with Sentinel, it finds the new one after a failover."""
    target = redis_target(settings)
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_keepalive": True, "health_check_interval": HEALTH_CHECK_S,
        "decode_responses": decode_responses,
    }
    if not target.uses_sentinel:
        return redis.Redis.from_url(target.url, **options)
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    manager = sentinel_manager(target)
    return cast(redis.Redis, manager.master_for(  # type: ignore[no-untyped-call]
        target.master, redis_class=redis.Redis, db=target.db, **options))


def celery_broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options that go with it (kombu's sentinel://)."""
    target = redis_target(settings)
    if not target.uses_sentinel:
        return target.url, {}
    auth = ""
    if target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    url = ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S,
                                       "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return url, {"master_name": target.master, "sentinel_kwargs": sentinel_kwargs,
                 "socket_connect_timeout": CONNECT_TIMEOUT_S}


def replicas_to_wait(settings: Settings) -> int:
    """How many replicas must confirm a customer message before it is acknowledged."""
    if settings.redis_wait_replicas == "auto":
        return 1 if redis_target(settings).uses_sentinel else 0
    return int(settings.redis_wait_replicas)


def topology(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """What /readyz shows: the master, the replicas it sees, the sentinels, the replica wait."""
    target = redis_target(settings)
    info: dict[str, Any] = client.info("replication")
    replicas = [
        {"address": f"{value['ip']}:{value['port']}", "state": value.get("state"),
         "lag_s": value.get("lag")}
        for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)
    ]
    wait = replicas_to_wait(settings)
    found: dict[str, Any] = {
        "mode": "sentinel" if target.uses_sentinel else "direct",
        "master": _master_address(client, target),
        "role": info.get("role"),
        "replicas": replicas,
        "replica_wait": {"on": wait > 0, "replicas": wait,
                         "timeout_ms": settings.redis_wait_timeout_ms},
    }
    if target.uses_sentinel:
        found["master_name"] = target.master
        found["sentinels"] = _sentinels(target)
    return found


def _master_address(client: redis.Redis, target: RedisTarget) -> str:
    if target.uses_sentinel:
        host, port = _manager(client, target).discover_master(  # type: ignore[no-untyped-call]
            target.master)
        return f"{host}:{port}"
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def _manager(client: redis.Redis, target: RedisTarget) -> Sentinel:
    """The client's own Sentinel manager (its pooled sentinel connections), else a new one."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    return manager if isinstance(manager, Sentinel) else sentinel_manager(target)


def _sentinels(target: RedisTarget) -> list[dict[str, Any]]:
    """Each configured sentinel: does it answer, and which master does it name.

    Clients of their own: the master client's Sentinel manager reorders its list while other
    threads look the master up."""
    seen: list[dict[str, Any]] = []
    for sentinel in sentinel_manager(target).sentinels:
        host, port = _address(sentinel)
        entry: dict[str, Any] = {"address": f"{host}:{port}"}
        try:
            named = cast(tuple[Any, int] | None,
                         sentinel.sentinel_get_master_addr_by_name(target.master))
        except redis.RedisError as error:
            entry.update(reachable=False, error=type(error).__name__)
        else:
            entry.update(reachable=True,
                         master=f"{_text(named[0])}:{named[1]}" if named else None)
        finally:
            sentinel.close()
        seen.append(entry)
    return seen


def _address(client: redis.Redis) -> tuple[str, int]:
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("host")), int(kwargs.get("port", 0))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
