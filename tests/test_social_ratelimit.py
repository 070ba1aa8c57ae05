"""The per-account publish limiter, on fakeredis (unit) and on the real Redis (threads)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from worker.errors import RetryLater
from worker.integrations.social.ratelimit import PostLimit, PublishLimiter

REDIS_URL = "redis://127.0.0.1:6379/12"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def limiter(clock: FakeTime) -> PublishLimiter:
    limits = {"instagram": PostLimit(3, 86_400), "twitter": PostLimit(2, 900)}
    return PublishLimiter(fakeredis.FakeRedis(), limits, prefix="t", clock=clock)


def test_window_full_raises_retry_later_until_the_oldest_slot_expires(limiter, clock):
    for _ in range(3):
        assert limiter.acquire("instagram", "acct")
        clock.now += 60
    with pytest.raises(RetryLater) as caught:
        limiter.acquire("instagram", "acct")
    assert caught.value.delay == pytest.approx(86_400 - 180)
    clock.now += 86_400 - 180 + 0.5  # the first post leaves the window
    assert limiter.acquire("instagram", "acct")


def test_limits_are_per_account_and_per_platform(limiter):
    limiter.acquire("twitter", "a")
    limiter.acquire("twitter", "a")
    with pytest.raises(RetryLater):
        limiter.acquire("twitter", "a")
    assert limiter.acquire("twitter", "b")
    assert limiter.acquire("instagram", "a")


def test_unlimited_platform_gets_no_slot(limiter):
    assert limiter.acquire("linkedin", "a") is None


def test_released_slot_is_free_again(limiter):
    first = limiter.acquire("twitter", "a")
    limiter.acquire("twitter", "a")
    limiter.release("twitter", "a", first)
    assert limiter.acquire("twitter", "a")


def test_back_off_pauses_the_account_and_the_longer_pause_wins(limiter, clock):
    limiter.back_off("twitter", "a", 120)
    limiter.back_off("twitter", "a", 30)  # shorter: ignored
    with pytest.raises(RetryLater) as caught:
        limiter.acquire("twitter", "a")
    assert caught.value.delay == pytest.approx(120)
    assert limiter.acquire("twitter", "other")
    clock.now += 121
    assert limiter.backoff_remaining("twitter", "a") == 0
    assert limiter.acquire("twitter", "a")


@pytest.fixture
def real_redis() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"mmwtest-social-{uuid.uuid4().hex[:8]}"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_four_threads_never_exceed_the_limit_in_any_window(real_redis):
    client, prefix = real_redis
    window, limit = 1.0, 5
    key = f"{prefix}:posts:twitter:acct"
    taken: list[float] = []
    lock = threading.Lock()
    deadline = time.time() + 2.5

    def work() -> None:
        limiter = PublishLimiter(
            redis.Redis.from_url(REDIS_URL), {"twitter": PostLimit(limit, window)}, prefix=prefix
        )
        while time.time() < deadline:
            try:
                slot = limiter.acquire("twitter", "acct")
            except RetryLater as exc:
                time.sleep(min(exc.delay or 0.01, 0.05))
                continue
            with lock:  # the time the limiter counted the post at
                taken.append(float(client.zscore(key, slot)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken.sort()
    assert len(taken) >= 2 * limit  # the window slid at least twice
    for i, start in enumerate(taken):
        in_window = [t for t in taken[i:] if t < start + window]
        assert len(in_window) <= limit
