"""Pure scheduling decisions for recurring jobs: cron fires, catch-up, overlap, retry backoff.

No I/O and no clock: every function takes `now`/`after` explicitly, so the scheduler's decisions
are reproducible in tests. All datetimes in and out are timezone-aware; results are UTC.

Cron expressions follow Vixie/Debian cron (docs/lifecycle.md, *Cron expressions*): this module
parses them itself (croniter accepts syntax and meanings standard cron does not have) and hands
croniter only a canonical expression of explicit values to iterate wall times. Across DST changes:

- a job whose minute or hour field starts with `*` (`@hourly` too) runs in real time: every
  instant whose local wall time matches, so both copies of a repeated hour and nothing in a
  skipped hour;
- any other job runs at fixed wall times: a time that occurs twice fires once, at its first
  occurrence; a time that does not exist fires at the first instant after the gap (several such
  fires collapse into that one instant).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

__all__ = [
    "CatchUp",
    "CronSpec",
    "DuePlan",
    "Overlap",
    "count_fires",
    "iter_fires",
    "latest_fire_at_or_before",
    "next_due_after_run",
    "next_fire",
    "parse_cron",
    "plan_due",
    "upcoming_fires",
    "validate_cron",
    "validate_timezone",
]

# Longer than any repeated (fall back) period in the tz database, so starting the wall-clock
# iteration this far back finds the second copies of repeated wall times after `after`.
_FOLD_LOOKBACK = timedelta(hours=3)

# Vixie cron's macros; `@reboot` is refused (a scheduled job has no boot to run at).
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February in leap years


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
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _DAYS),  # 0 and 7 are both Sunday
)

# Syntax other cron dialects accept and standard cron does not (element patterns, upper case).
_NON_STANDARD = (
    (r"\?", "'?' (no specific value, Quartz; use '*')"),
    (r"#", "'#' (nth weekday of the month, Quartz)"),
    (r"^(L|LW|\d+L|L-\d+)$|^L/", "'L' (last day, Quartz)"),
    (r"^\d+W$", "'W' (nearest weekday, Quartz)"),
    (r"^H($|[(/])", "'H' (hashed value, Jenkins)"),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed expression: the values each field allows, and how it crosses DST changes."""

    text: str  # normalized: single spaces, macros expanded
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6
    day_and: bool  # day-of-month or day-of-week starts with `*`: both must match, else either
    both_copies: bool  # a repeated wall time fires in both copies (else in the first only)
    skip_gap: bool  # a wall time in a skipped hour does not fire (else at the gap's end)

    @property
    def real_time(self) -> bool:
        """Vixie's "wildcard" job: its minute or hour field starts with `*`."""
        return self.both_copies and self.skip_gap

    def matches_day(self, day: int, weekday: int) -> bool:
        """Does a date with this day of month and weekday (0 = Sunday) match?"""
        in_days, in_weekdays = day in self.days, weekday in self.weekdays
        return in_days and in_weekdays if self.day_and else in_days or in_weekdays

    @cached_property
    def croniter_args(self) -> tuple[str, bool]:
        """(expression, day_or) that make croniter iterate exactly this spec's wall times."""
        days, weekdays = self.days, self.weekdays
        if not self.day_and and (len(days) == 31 or len(weekdays) == 7):
            days, weekdays = frozenset(range(1, 32)), frozenset(range(7))  # either: every day
        fields = zip((self.minutes, self.hours, days, self.months, weekdays), _FIELDS, strict=True)
        parts = [_canonical(values, field) for values, field in fields]
        return " ".join(parts), not self.day_and


def _canonical(values: frozenset[int], field: _Field) -> str:
    high = 6 if field.name == "day-of-week" else field.high
    if values == frozenset(range(field.low, high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


@dataclass(frozen=True)
class DuePlan:
    """Decision for a recurring job found due at `due_at`."""

    run_at: datetime | None  # scheduled time of the run to start now; None: run nothing now
    missed: int  # fires given up by this decision
    next_due: datetime  # first fire after now: when to look again if run_at is None


def validate_cron(expr: str) -> str:
    """Return the normalized 5-field expression; ValueError naming the expression otherwise."""
    return parse_cron(expr).text


@lru_cache(maxsize=1024)
def parse_cron(expr: str) -> CronSpec:
    """Parse a standard (Vixie/Debian) cron expression; ValueError naming the field otherwise."""
    if not isinstance(expr, str):
        raise ValueError(f"invalid cron expression {expr!r}: not a string")
    normalized = " ".join(expr.split())
    if normalized.startswith("@"):
        macro = normalized.lower()
        if macro == "@reboot":
            raise ValueError(
                f"invalid cron expression '{expr}': @reboot has no meaning for a scheduled job"
            )
        if macro not in _MACROS:
            known = ", ".join(_MACROS)
            raise ValueError(f"invalid cron expression '{expr}': unknown macro (known: {known})")
        normalized = _MACROS[macro]
    texts = normalized.split()
    if len(texts) != 5:
        raise ValueError(
            f"invalid cron expression '{expr}': expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(texts)}"
        )
    try:
        minutes, hours, days, months, weekdays = (
            _parse_field(text, field) for text, field in zip(texts, _FIELDS, strict=True)
        )
    except ValueError as exc:
        raise ValueError(f"invalid cron expression '{expr}': {exc}") from None
    weekdays = frozenset(d % 7 for d in weekdays)
    day_and = texts[2].startswith("*") or texts[4].startswith("*")
    if day_and and not any(day <= _MONTH_DAYS[month - 1] for day in days for month in months):
        raise ValueError(
            f"invalid cron expression '{expr}': day-of-month '{texts[2]}' never occurs "
            f"in month '{texts[3]}'"
        )
    real_time = texts[0].startswith("*") or texts[1].startswith("*")
    return CronSpec(
        text=normalized,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        day_and=day_and,
        both_copies=real_time,
        skip_gap=real_time,
    )


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    """Values of one field: a list of `*`, `n`, `a-b`, each of `*` and `a-b` with `/step`."""
    values: set[int] = set()
    for element in text.split(","):
        values.update(_parse_element(element, field))
    return frozenset(values)


def _parse_element(element: str, field: _Field) -> range:
    where = f"{field.name} field"
    for pattern, meaning in _NON_STANDARD:
        if re.search(pattern, element.upper()):
            raise ValueError(f"{where} '{element}': {meaning} is not standard cron syntax")
    if not element:
        raise ValueError(f"{where}: empty list element")
    span, slash, step_text = element.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or not step_text.isascii() or int(step_text) == 0:
            raise ValueError(f"{where} '{element}': the step must be a whole number >= 1")
        step = int(step_text)
    if span == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _value(first_text, field, element)
    if not dash:
        if slash:
            raise ValueError(
                f"{where} '{element}': a step needs a range or '*' "
                f"(write '{first}-{field.high}/{step}')"
            )
        return range(first, first + 1)
    last = _value(last_text, field, element)
    if first > last:
        fix = f"{first}-{field.high},{field.low}-{last}"
        if field.name == "day-of-week" and last == 0:
            fix = f"{first}-7"
        raise ValueError(
            f"{where} '{element}': reversed range ({first} is after {last}; "
            f"standard cron does not wrap around: write '{fix}')"
        )
    return range(first, last + 1, step)


def _value(text: str, field: _Field, element: str) -> int:
    where = f"{field.name} field '{element}'"
    if text.lower() in field.names:
        return field.low + field.names.index(text.lower())
    if not text:
        raise ValueError(f"{where}: a number is missing")
    if not text.isdigit() or not text.isascii():
        kind = f"a number or a {field.name} name" if field.names else "a number"
        raise ValueError(f"{where}: '{text}' is not {kind}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{where}: {value} is out of range {field.low}-{field.high}")
    return value


def validate_timezone(name: str) -> ZoneInfo:
    """Return the zone; ValueError with a readable message for names the tz database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone '{name}'") from None


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """First fire strictly after `after`."""
    return next(_iter_fires(parse_cron(expr), validate_timezone(tz), _as_utc(after, "after")))


def upcoming_fires(expr: str, tz: str, after: datetime, n: int) -> list[datetime]:
    """The next `n` fires strictly after `after`, strictly increasing."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    fires = _iter_fires(parse_cron(expr), validate_timezone(tz), _as_utc(after, "after"))
    return [next(fires) for _ in range(n)]


def latest_fire_at_or_before(expr: str, tz: str, start: datetime, now: datetime) -> datetime | None:
    """Last fire in [start, now], or None.

    Scans back from `now` over doubling spans, so a long downtime costs only the last few fires
    of a frequent expression.
    """
    spec, zone = parse_cron(expr), validate_timezone(tz)
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
    spec, zone = parse_cron(expr), validate_timezone(tz)
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


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def iter_fires(spec: CronSpec, tz: str, after: datetime) -> Iterator[datetime]:
    """Fires of a parsed expression strictly after `after`, strictly increasing, without end."""
    return _iter_fires(spec, validate_timezone(tz), _as_utc(after, "after"))


def _iter_fires(spec: CronSpec, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
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
    expression, day_or = spec.croniter_args
    walls = croniter(expression, start, day_or=day_or)
    pending: list[datetime] = []
    last = after
    while True:
        instants = _instants(walls.get_next(datetime), zone, spec)
        if not instants:  # a real-time job's wall time inside a skipped hour
            continue
        while pending and pending[0] <= instants[0]:
            fire = heapq.heappop(pending)
            if fire > last:
                last = fire
                yield fire
        for instant in instants:
            if instant > last:
                heapq.heappush(pending, instant)


def _instants(wall: datetime, zone: ZoneInfo, spec: CronSpec) -> tuple[datetime, ...]:
    """UTC instants at which the naive wall time `wall` in `zone` fires."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return (first,)
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        return () if spec.skip_gap else (_gap_end(second, first, zone),)
    return (first, second) if spec.both_copies else (first,)


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
