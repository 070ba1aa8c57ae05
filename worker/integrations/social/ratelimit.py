"""Per-account publishing limits shared by every worker process, kept in Redis.

Why not Dramatiq's ``WindowRateLimiter``: it keeps one key per second of the window and reads
all of them on every acquire (86,400 keys for Instagram's 24-hour window), and it cannot say
*when* a slot frees up, which a :class:`~worker.errors.RetryLater` needs. This limiter keeps a
sliding log per account in one sorted set (score = time of the post) and changes it with the
same WATCH/MULTI optimistic transaction as Dramatiq's Redis rate-limit backend, so it works on
any Redis (and fakeredis) without Lua.

A platform's own "back off until T" (429 with reset headers, Graph throttling codes) is stored
next to it, so every process pauses that account, not only the one that was told.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from worker.errors import RetryLater

__all__ = ["DEFAULT_LIMITS", "PostLimit", "PublishLimiter"]


@dataclass(frozen=True)
class PostLimit:
    """At most ``limit`` posts per ``window_seconds`` per account."""

    limit: int
    window_seconds: float


#: Conservative defaults (api-contracts §5.3, §6.4, §7.4; Facebook publishes no per-Page cap).
DEFAULT_LIMITS: dict[str, PostLimit] = {
    "instagram": PostLimit(50, 86_400),
    "twitter": PostLimit(100, 900),
    "facebook": PostLimit(100, 3_600),
    "linkedin": PostLimit(150, 86_400),
}


class PublishLimiter:
    """Slots per (platform, account); ``acquire`` raises RetryLater with the wait when full.

    ``margin_seconds`` widens every window a little, so that the jitter between our clock and
    the moment the platform receives the request cannot squeeze one post too many into its
    window.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Mapping[str, PostLimit] | None = None,
        *,
        prefix: str = "mmw:social",
        clock: Callable[[], float] = time.time,
        margin_seconds: float = 0.0,
    ) -> None:
        self.client = client
        self.margin = margin_seconds
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.prefix = prefix
        self.clock = clock

    def _key(self, kind: str, platform: str, account_id: str) -> str:
        return f"{self.prefix}:{kind}:{platform}:{account_id}"

    def acquire(self, platform: str, account_id: str) -> str | None:
        """Take one slot and return its id (None: the platform has no limit).

        Raises RetryLater while the account is backing off or its window is full.
        """
        wait = self.backoff_remaining(platform, account_id)
        if wait > 0:
            raise RetryLater(f"{platform}: account backing off", delay=wait)
        limit = self.limits.get(platform)
        if limit is None:
            return None
        key = self._key("posts", platform, account_id)
        slot = uuid.uuid4().hex
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    now = self.clock()
                    window = limit.window_seconds + self.margin
                    start = now - window
                    live = pipe.zrangebyscore(key, f"({start}", "+inf", withscores=True)
                    if len(live) >= limit.limit:
                        oldest = live[-limit.limit][1]
                        raise RetryLater(
                            f"{platform}: {limit.limit} posts per "
                            f"{limit.window_seconds:g} s reached for this account",
                            delay=max(oldest + window - now, 0.01),
                        )
                    pipe.multi()
                    pipe.zremrangebyscore(key, "-inf", start)
                    pipe.zadd(key, {slot: now})
                    pipe.pexpire(key, int(window * 1000) + 1000)
                    pipe.execute()
                    return slot
                except redis.WatchError:
                    continue

    def restamp(self, platform: str, account_id: str, slot: str | None) -> None:
        """Move a slot to now, right before the request goes out.

        The platform counts posts when they arrive; work done between ``acquire`` and the send
        (recording the intent) must not make two windows overlap on its side.
        """
        if slot is not None:
            self.client.zadd(
                self._key("posts", platform, account_id), {slot: self.clock()}, xx=True
            )

    def release(self, platform: str, account_id: str, slot: str | None) -> None:
        """Give a slot back: the platform certainly did not take the post."""
        if slot is not None:
            self.client.zrem(self._key("posts", platform, account_id), slot)

    def back_off(self, platform: str, account_id: str, seconds: float) -> None:
        """Pause the account for ``seconds`` in every process (an earlier, later pause wins)."""
        if seconds <= 0:
            return
        key = self._key("backoff", platform, account_id)
        until = self.clock() + seconds
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = float(pipe.get(key) or 0)
                    if current >= until:
                        return
                    pipe.multi()
                    pipe.set(key, repr(until), px=int(seconds * 1000) + 1)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def backoff_remaining(self, platform: str, account_id: str) -> float:
        """Seconds the account still has to wait (0: free to post)."""
        until = self.client.get(self._key("backoff", platform, account_id))
        return max(float(until or 0) - self.clock(), 0.0)
