"""The one clock: every component takes the time from a clock it is given.

Production passes :func:`wall_clock`; tests pass a hand-driven clock (``tests/conftest.py``), and
the sandboxes take theirs from whoever starts them, so one test never mixes two times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock", "epoch_seconds", "wall_clock"]

#: A source of aware UTC datetimes.
Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    """The real time (UTC)."""
    return dt.datetime.now(dt.UTC)


def epoch_seconds(clock: Clock) -> Callable[[], float]:
    """The same clock as Unix seconds (rate limiters, Retry-After arithmetic)."""
    return lambda: clock().timestamp()
