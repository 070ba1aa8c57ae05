"""Pure scheduling decisions for recurring jobs: cron fires, catch-up, overlap, retry backoff.

No I/O and no clock: every function takes `now`/`after` explicitly, so the scheduler's decisions
are reproducible in tests. All datetimes in and out are timezone-aware; results are UTC.

Cron expressions are evaluated on the wall clock of the job's time zone, with Vixie cron's DST
rules (croniter alone, given aware datetimes, fires a fixed-time job twice in a repeated hour):

- a wall time that occurs twice (fall back) fires once, at its first occurrence, unless the hour
  field is `*`: such jobs follow elapsed time and fire in both copies;
- a wall time that does not exist (spring forward) fires at the first instant after the gap;
  several such fires collapse into that one instant.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

# Longer than any repeated (fall back) period in the tz database, so starting the wall-clock
# iteration this far back finds the second copies of repeated wall times after `after`.
_FOLD_LOOKBACK = timedelta(hours=3)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# Reference start for proving that an expression ever fires (e.g. rejects "0 0 31 2 *").
_PROBE_START = datetime(2000, 1, 1)


class CatchUp(StrEnum):
    """What to do with fires missed while the scheduler was down."""

    ONCE = "once"
    SKIP = "skip"
    ALL = "all"


class Overlap(StrEnum):
    """What to do with fires that come due while a run of the same job is still going."""

    SKIP = "skip"
    BUFFER = "buffer"
    ALLOW = "allow"


@dataclass(frozen=True)
class DuePlan:
    """Decision for a recurring job found due at `due_at`."""

    run_at: datetime | None  # scheduled time of the run to start now; None: run nothing now
    missed: int  # fires given up by this decision
    next_due: datetime  # first fire after now: when to look again if run_at is None


@dataclass(frozen=True)
class _Spec:
    expr: str
    wildcard_hour: bool  # hour field is `*`: the job follows elapsed time across DST changes


def validate_cron(expr: str) -> str:
    """Return the normalized 5-field expression; ValueError naming the expression otherwise."""
    return _spec(expr).expr


def validate_timezone(name: str) -> ZoneInfo:
    """Return the zone; ValueError with a readable message for names the tz database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone '{name}'") from None


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """First fire strictly after `after`."""
    return next(_iter_fires(_spec(expr), validate_timezone(tz), _as_utc(after, "after")))


def upcoming_fires(expr: str, tz: str, after: datetime, n: int) -> list[datetime]:
    """The next `n` fires strictly after `after`, strictly increasing."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    fires = _iter_fires(_spec(expr), validate_timezone(tz), _as_utc(after, "after"))
    return [next(fires) for _ in range(n)]


def latest_fire_at_or_before(expr: str, tz: str, start: datetime, now: datetime) -> datetime | None:
    """Last fire in [start, now], or None.

    Scans back from `now` over doubling spans, so a long downtime costs only the last few fires
    of a frequent expression.
    """
    spec, zone = _spec(expr), validate_timezone(tz)
    start, now = _as_utc(start, "start"), _as_utc(now, "now")
    if now < start:
        return None
    floor = start - timedelta(microseconds=1)
    span = timedelta(hours=1)
    while True:
        lower = max(floor, now - span)
        latest = None
        for fire in _iter_fires(spec, zone, lower):
            if fire > now:
                break
            latest = fire
        if latest is not None or lower == floor:
            return latest
        span *= 2


def count_fires(expr: str, tz: str, start: datetime, end: datetime, limit: int = 10_000) -> int:
    """Number of fires in (start, end], counting at most `limit`."""
    spec, zone = _spec(expr), validate_timezone(tz)
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    count = 0
    if end <= start:
        return count
    for fire in _iter_fires(spec, zone, start):
        if fire > end or count >= limit:
            break
        count += 1
    return count


def plan_due(
    expr: str,
    tz: str,
    due_at: datetime,
    now: datetime,
    catch_up: CatchUp,
    window: timedelta,
    grace: timedelta,
) -> DuePlan:
    """Decide what to run for a job due at `due_at`, found at `now`.

    `due_at` counts as a fire even if the expression does not match it (a first run placed by
    the app); later fires come from the expression. Within `grace` the run is simply on time.
    """
    due_at, now = _as_utc(due_at, "due_at"), _as_utc(now, "now")
    next_due = next_fire(expr, tz, now)
    if now - due_at <= grace:
        return DuePlan(run_at=due_at, missed=0, next_due=next_due)
    if catch_up is CatchUp.SKIP:
        return _skip_plan(expr, tz, due_at, now, next_due)
    if catch_up is CatchUp.ALL:
        oldest = now - window
        if oldest <= due_at:
            return DuePlan(run_at=due_at, missed=0, next_due=next_due)
        first = next_fire(expr, tz, oldest - timedelta(microseconds=1))
        if first > now:
            return _skip_plan(expr, tz, due_at, now, next_due)
        return DuePlan(run_at=first, missed=count_fires(expr, tz, due_at, first), next_due=next_due)
    latest = latest_fire_at_or_before(expr, tz, due_at, now) or due_at
    # Fires before `latest`: due_at itself plus those in (due_at, latest).
    return DuePlan(run_at=latest, missed=count_fires(expr, tz, due_at, latest), next_due=next_due)


def next_due_after_run(
    expr: str,
    tz: str,
    run_at: datetime,
    now: datetime,
    overlap: Overlap,
    catch_up: CatchUp,
    window: timedelta,
) -> tuple[datetime, int]:
    """(next_due, missed) for a job whose run scheduled at `run_at` finished at `now`.

    ALLOW behaves like SKIP here: the scheduler itself starts the overlapping runs.
    """
    run_at, now = _as_utc(run_at, "run_at"), _as_utc(now, "now")
    nxt = next_fire(expr, tz, run_at)
    if nxt > now:
        return nxt, 0
    if catch_up is CatchUp.ALL and nxt >= now - window:
        return nxt, 0
    if overlap is Overlap.BUFFER:
        latest = latest_fire_at_or_before(expr, tz, nxt, now) or nxt  # never None: nxt <= now
        return latest, count_fires(expr, tz, run_at, latest) - 1
    return next_fire(expr, tz, now), count_fires(expr, tz, run_at, now)


def _skip_plan(expr: str, tz: str, due_at: datetime, now: datetime, next_due: datetime) -> DuePlan:
    # Fires in [due_at, now]: due_at itself plus those in (due_at, now].
    return DuePlan(run_at=None, missed=1 + count_fires(expr, tz, due_at, now), next_due=next_due)


@lru_cache(maxsize=1024)
def _spec(expr: str) -> _Spec:
    normalized = " ".join(expr.split())
    normalized = _ALIASES.get(normalized.lower(), normalized)
    fields = normalized.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron expression '{expr}': expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        croniter(normalized, _PROBE_START).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid cron expression '{expr}': {exc}") from None
    return _Spec(expr=normalized, wildcard_hour=fields[1] == "*")


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _iter_fires(spec: _Spec, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Fires strictly after `after` (UTC), strictly increasing, without end.

    Iterates croniter over naive wall times and maps each to its instants. The first-copy
    instants are non-decreasing in wall-clock order; a second copy lies later than its first
    copy, so instants are buffered in a heap until the current wall time's first copy passes them.
    """
    after_wall = after.astimezone(zone).replace(tzinfo=None, fold=0)
    start = after_wall
    # Only near an offset change can an earlier wall time have an instant after `after`.
    offset_before = (after - _FOLD_LOOKBACK).astimezone(zone).utcoffset()
    if offset_before != (after + _FOLD_LOOKBACK).astimezone(zone).utcoffset():
        start -= _FOLD_LOOKBACK
    walls = croniter(spec.expr, start)
    pending: list[datetime] = []
    last = after
    while True:
        wall = walls.get_next(datetime)
        instants = _instants(wall, zone, spec.wildcard_hour)
        while pending and pending[0] <= instants[0]:
            fire = heapq.heappop(pending)
            if fire > last:
                last = fire
                yield fire
        for instant in instants:
            if instant > last:
                heapq.heappush(pending, instant)


def _instants(wall: datetime, zone: ZoneInfo, wildcard_hour: bool) -> tuple[datetime, ...]:
    """UTC instants at which the naive wall time `wall` in `zone` fires."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return (first,)
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        return (_gap_end(second, first, zone),)
    return (first, second) if wildcard_hour else (first,)


def _gap_end(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The offset change in (before, after]: the first valid instant after a DST gap.

    For a nonexistent wall time, fold=1 maps to an instant before the change and fold=0 to one
    after it (PEP 495); bisect whole seconds between them.
    """
    old_offset = before.astimezone(zone).utcoffset()
    low, high = 0, int((after - before).total_seconds())
    while high - low > 1:
        mid = (low + high) // 2
        if (before + timedelta(seconds=mid)).astimezone(zone).utcoffset() == old_offset:
            low = mid
        else:
            high = mid
    return before + timedelta(seconds=high)
