"""What an operator writes in REDIS_* settings becomes the right Redis shape (the
servers themselves are exercised in chat/tests/test_redis_topologies.py and
tests-e2e/test_sentinel_fleet.py)."""

from switchboard import redisconn


def test_one_url_by_default(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    monkeypatch.delenv("CHANNEL_LAYER_URLS", raising=False)
    assert redisconn.layer_hosts() == ["redis://cache:6379/2"]
    assert redisconn.celery_broker() == ("redis://cache:6379/2", {})


def test_sentinels_with_default_port_tls_password_and_db_from_redis_url(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "rediss://:s3cret@ignored:6380/3")
    monkeypatch.setenv("REDIS_SENTINELS", "s1:26380, s2")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "main,layer-b")
    hosts = redisconn.layer_hosts()
    assert [h["master_name"] for h in hosts] == ["main", "layer-b"]  # two channel-layer shards
    assert hosts[0]["sentinels"] == [("s1", 26380), ("s2", 26379)]
    assert (hosts[0]["password"], hosts[0]["db"]) == ("s3cret", 3)
    assert hosts[0]["connection_class"].__name__ == "_AsyncMasterSSLConnection"
    broker, options = redisconn.celery_broker()
    assert broker == "sentinel://:s3cret@s1:26380/3;sentinel://:s3cret@s2:26379/3"
    assert options["master_name"] == "main"  # presence, rate limits and Celery: the first


def test_shards_without_sentinel(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://main:6379/0")
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    monkeypatch.setenv("CHANNEL_LAYER_URLS", "redis://a:6379/0,redis://b:6379/0")
    assert redisconn.layer_hosts() == ["redis://a:6379/0", "redis://b:6379/0"]
    assert redisconn.celery_broker()[0] == "redis://main:6379/0"
