"""Broker wiring: URL → broker kind, Redis eviction warning, batched dispatch."""

from __future__ import annotations

import json

from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from worker.broker import Dispatch, build_broker, check_eviction_policy, dispatch_many


class FakeConfig:
    def __init__(self, policy: str | Exception) -> None:
        self.policy = policy

    def config_get(self, name: str) -> dict[str, str]:
        if isinstance(self.policy, Exception):
            raise self.policy
        return {name: self.policy}


def middleware_names(broker) -> set[str]:
    return {type(m).__name__ for m in broker.middleware}


def redis_with(policy: str | Exception) -> RedisBroker:
    broker = RedisBroker(url="redis://127.0.0.1:1/0")
    broker.client = FakeConfig(policy)  # type: ignore[assignment]
    return broker


def test_eviction_policy_warning():
    assert check_eviction_policy(redis_with("noeviction")) is None
    warning = check_eviction_policy(redis_with("allkeys-lru"))
    assert warning and "'allkeys-lru'" in warning and "noeviction" in warning
    assert "could not read" in check_eviction_policy(redis_with(PermissionError("CONFIG off")))


def test_url_selects_the_broker(settings):
    amqp = build_broker(settings.model_copy(update={"broker_url": "amqp://guest:guest@x:5672/"}))
    assert isinstance(amqp, RabbitmqBroker)
    redis_broker = build_broker(settings)
    assert isinstance(redis_broker, RedisBroker)
    assert redis_broker.namespace == settings.broker_namespace
    assert "Retries" not in middleware_names(redis_broker)  # retries belong to the job record
    assert "TimeLimit" in middleware_names(redis_broker)


def test_dispatch_many_sends_a_batch_in_one_pipeline(redis_broker):
    batch = [Dispatch("noop", "default", f"j{i}", f"j{i}@t", 1) for i in range(3)]
    dispatch_many(redis_broker, batch)
    ns = redis_broker.namespace
    ids = [i.decode() for i in redis_broker.client.lrange(f"{ns}:default", 0, -1)]
    assert ids == ["j0@t#1", "j1@t#1", "j2@t#1"]
    body = json.loads(redis_broker.client.hget(f"{ns}:default.msgs", "j0@t#1"))
    assert body["args"] == ["j0", "j0@t", 1] and body["message_id"] == "j0@t"
