"""Pure delivery decisions: what an answer means, when to try again, when to give up on a hook.

Following the Standard Webhooks guidance: any 2xx is delivered; 3xx is a failure (redirects are
not followed); 410 Gone disables the endpoint at once; everything else (timeouts, 4xx, 5xx) is
retried on a growing schedule, honouring ``Retry-After``. A webhook whose deliveries fail
``threshold`` times in a row is deactivated.
"""

from __future__ import annotations

import random
from enum import StrEnum

__all__ = [
    "DEACTIVATE_AFTER",
    "RETRY_SCHEDULE",
    "Verdict",
    "classify",
    "retry_delay",
    "should_deactivate",
]

RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000)
"""Seconds before retry n (1-based): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h; then 10 h again."""

DEACTIVATE_AFTER = 10
"""Consecutive failed attempts after which a webhook is switched off by default."""

MAX_RETRY_AFTER = 86400.0


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"


def classify(status: int | None) -> Verdict:
    """What one attempt's HTTP status means (None: no answer, e.g. a timeout)."""
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.RETRY


def retry_delay(
    retry_number: int, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry ``retry_number`` (1 = first retry), with ±10 % jitter.

    A receiver's ``Retry-After`` wins when it asks for longer (capped at a day).
    """
    index = min(max(retry_number, 1), len(RETRY_SCHEDULE)) - 1
    base = RETRY_SCHEDULE[index]
    jitter = (rng or random).uniform(-0.1, 0.1) * base
    delay = base + jitter
    if retry_after is not None and retry_after > delay:
        return min(retry_after, MAX_RETRY_AFTER)
    return delay


def should_deactivate(consecutive_failures: int, threshold: int = DEACTIVATE_AFTER) -> bool:
    """Has the webhook failed often enough in a row to be switched off?"""
    return consecutive_failures >= threshold
