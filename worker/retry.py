"""Retry or fail: what happens to a run after an error (pure).

Retries are owned by the job record, not by Dramatiq's in-memory Retries middleware, so they
survive a Redis flush and a worker restart; the delay is exponential with jitter, and a delay the
platform asked for (``Retry-After``) wins when it is longer.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

__all__ = ["RetryDecision", "backoff_delay", "decide_retry"]


def backoff_delay(
    attempt: int, *, base: float, cap: float, rand: random.Random | None = None
) -> float:
    """Seconds before retry number ``attempt`` (1-based): ``min(cap, base * 2**(attempt-1))``,
    jittered uniformly into its upper half so that a burst of failures spreads out."""
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    return (rand or random).uniform(ceiling / 2, ceiling)


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
    delay = backoff_delay(attempts, base=base, cap=cap, rand=rand)
    if requested_delay is not None:
        delay = max(delay, requested_delay)
    return RetryDecision(now + dt.timedelta(seconds=delay), error)
