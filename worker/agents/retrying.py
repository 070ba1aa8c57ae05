"""How long to wait before asking an LLM server again, and when to stop waiting (pure).

An LLM call retries 429/5xx/timeouts in-process only while the total wait stays short
(``max_wait``); a longer ``Retry-After`` or an exhausted attempt budget is handed back to the job
scheduler as :class:`~worker.errors.RetryLater`, so no worker thread sleeps for minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RetryStep", "next_retry_step", "retry_after_seconds"]


def retry_after_seconds(headers: Mapping[str, str], now: dt.datetime) -> float | None:
    """The delay a response asks for: ``retry-after-ms``, then ``retry-after`` as seconds or as
    an HTTP date (relative to ``now``); None when absent or unparsable. Keys are lower-case."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryStep:
    """``give_up``: stop and raise RetryLater(delay); else sleep ``delay`` and try again."""

    delay: float
    give_up: bool


def next_retry_step(
    *,
    attempt: int,
    max_attempts: int,
    waited: float,
    max_wait: float,
    retry_after: float | None,
    base: float = 0.5,
    cap: float = 8.0,
) -> RetryStep:
    """Decide after failed attempt number ``attempt`` (1-based) with ``waited`` seconds slept so
    far: the server's ``retry_after`` wins over exponential backoff (``base * 2**(attempt-1)``,
    capped at ``cap``)."""
    delay = retry_after if retry_after is not None else min(cap, base * 2 ** (attempt - 1))
    if attempt >= max_attempts or waited + delay > max_wait:
        return RetryStep(delay=delay, give_up=True)
    return RetryStep(delay=delay, give_up=False)
