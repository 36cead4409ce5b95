"""One connection factory: a plain URL, or Sentinel by parts or by URL, for every Redis client."""

from __future__ import annotations

import pytest

from supportflow.adapters.redis_connection import (
    RedisConfigError,
    celery_broker,
    connect,
    redis_target,
    replicas_to_wait,
)
from supportflow.settings import load_settings
from workers.app import celery_config

SENTINELS = {"SUPPORTFLOW_REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380,10.0.0.3",
             "SUPPORTFLOW_REDIS_MASTER": "main",
             "SUPPORTFLOW_REDIS_PASSWORD": "data-secret",
             "SUPPORTFLOW_REDIS_SENTINEL_PASSWORD": "sentinel-secret"}


def test_a_plain_url_is_used_as_it_is_and_waits_for_no_replica() -> None:
    settings = load_settings(environ={"SUPPORTFLOW_REDIS_URL": "redis://cache:6380/3"})
    target = redis_target(settings)
    assert not target.uses_sentinel and target.url == "redis://cache:6380/3"
    assert celery_broker(settings) == ("redis://cache:6380/3", {})
    assert replicas_to_wait(settings) == 0


def test_sentinels_by_parts_name_the_master_and_keep_each_password_in_its_place() -> None:
    settings = load_settings(environ=SENTINELS)
    target = redis_target(settings)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert (target.master, target.db, target.password) == ("main", 0, "data-secret")
    url, options = celery_broker(settings)
    assert url.split(";") == ["sentinel://:data-secret@10.0.0.1:26379/0",
                              "sentinel://:data-secret@10.0.0.2:26380/0",
                              "sentinel://:data-secret@10.0.0.3:26379/0"]
    assert options["master_name"] == "main"
    assert options["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert replicas_to_wait(settings) == 1


def test_the_sentinel_url_form_carries_the_master_the_db_and_the_data_password() -> None:
    settings = load_settings(environ={
        "SUPPORTFLOW_REDIS_URL": "redis+sentinel://:p%40ss@s1:26379,s2:26379/orders/2"})
    target = redis_target(settings)
    assert target.sentinels == (("s1", 26379), ("s2", 26379))
    assert (target.master, target.db, target.password) == ("orders", 2, "p@ss")
    assert "p@ss" not in target.describe() and "orders" in target.describe()


def test_the_celery_app_and_redbeat_follow_the_same_sentinels() -> None:
    config = celery_config(load_settings(environ=SENTINELS))
    assert config["broker_url"].startswith("sentinel://")
    assert config["broker_transport_options"]["master_name"] == "main"
    assert config["broker_transport_options"]["visibility_timeout"] == 3600
    assert config["beat_scheduler"] == "workers.beat:SupportFlowScheduler"
    assert "secret" not in config["redbeat_redis_url"]


def test_a_sentinel_client_asks_the_sentinels_for_the_master() -> None:
    client = connect(load_settings(environ=SENTINELS))
    pool = client.connection_pool
    assert pool.service_name == "main"  # type: ignore[attr-defined]
    assert pool.connection_kwargs["password"] == "data-secret"


@pytest.mark.parametrize("environ, message", [
    ({"SUPPORTFLOW_REDIS_SENTINELS": "s1:port"}, "not host:port"),
    ({"SUPPORTFLOW_REDIS_SENTINELS": " , "}, "no sentinel"),
    ({"SUPPORTFLOW_REDIS_URL": "redis+sentinel://s1:26379"}, "master name"),
    ({"SUPPORTFLOW_REDIS_URL": "redis+sentinel://s1/main/zero"}, "master name"),
])
def test_a_malformed_sentinel_setting_is_refused_with_what_is_wrong(
        environ: dict[str, str], message: str) -> None:
    with pytest.raises(RedisConfigError, match=message):
        redis_target(load_settings(environ=environ))


@pytest.mark.parametrize("environ", [
    {"SUPPORTFLOW_REDIS_WAIT_REPLICAS": "some"},
    {"SUPPORTFLOW_BEAT_LOCK_TIMEOUT_S": "1", "SUPPORTFLOW_BEAT_MAX_LOOP_INTERVAL_S": "2"},
])
def test_settings_that_cannot_work_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        load_settings(environ=environ)


def test_the_replica_wait_can_be_set_or_turned_off_by_hand() -> None:
    assert replicas_to_wait(load_settings(environ={"SUPPORTFLOW_REDIS_WAIT_REPLICAS": "2"})) == 2
    assert replicas_to_wait(load_settings(environ={**SENTINELS,
                                                   "SUPPORTFLOW_REDIS_WAIT_REPLICAS": "0"})) == 0


def test_redis_passwords_never_show_in_the_redacted_settings() -> None:
    values = load_settings(environ={**SENTINELS,
                                    "SUPPORTFLOW_REDIS_URL": "redis://user:hunter2@cache:6379/0"}
                           ).redacted()
    text = repr(values)
    assert "hunter2" not in text and "data-secret" not in text and "sentinel-secret" not in text
    assert values["redis_url"] == "redis://user:***@cache:6379/0"
