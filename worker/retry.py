"""Retry or fail: what happens to a run after an error (pure).

Retries are owned by the job record, not by Dramatiq's in-memory Retries middleware, so they
survive a Redis flush and a worker restart; the delay is exponential with jitter, and a delay the
platform asked for (``Retry-After``) wins when it is longer.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

__all__ = ["RetryDecision", "decide_retry", "retry_delay"]


def retry_delay(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (1-based): exponential, capped, jittered in [d/2, d].

    The lower bound keeps a burst of failures from retrying almost at once; the jitter spreads
    retries of many jobs that failed together.
    """
    if attempt < 1:
        raise ValueError(f"attempt starts at 1, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must be >= 0, got base={base} cap={cap}")
    # 2**62 times any sensible base exceeds any sensible cap; bounding it avoids float overflow.
    delay = min(cap, base * 2 ** min(attempt - 1, 62))
    return (rand or random).uniform(delay / 2, delay)


@dataclass(frozen=True)
class RetryDecision:
    """``retry_at`` is None when the run is out of attempts (or retrying cannot help)."""

    retry_at: dt.datetime | None
    error: str


def decide_retry(
    *,
    attempts: int,
    max_attempts: int,
    now: dt.datetime,
    error: str,
    retryable: bool = True,
    requested_delay: float | None = None,
    base: float,
    cap: float,
    rand: random.Random | None = None,
) -> RetryDecision:
    """Decide the next step after attempt number ``attempts`` failed with ``error``."""
    if not retryable:
        return RetryDecision(None, error)
    if attempts >= max_attempts:
        return RetryDecision(None, f"{error} (gave up after {attempts} attempts)")
    delay = retry_delay(attempts, base, cap, rand)
    if requested_delay is not None:
        delay = max(delay, requested_delay)
    return RetryDecision(now + dt.timedelta(seconds=delay), error)
