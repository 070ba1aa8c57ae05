"""Stored cron expressions whose meaning changed when cron became Vixie/Debian standard.

Before, croniter's own reading applied: its day-of-month/day-of-week rule, its ranges (`0-0`
meant every day, `5-1` wrapped around), Quartz/Jenkins syntax, and DST rules keyed on the hour
field being exactly `*`. `cron_changes` says, in one line per difference, why an expression fires
differently now (pure, for tests and `mmw jobs check-cron`); `review_stored_jobs` applies it to
the recurring jobs in `scheduled_jobs`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable
from typing import Any

from croniter import croniter

from worker.db import names
from worker.db.engine import Database
from worker.schedule import CronSpec, iter_fires, parse_cron, validate_timezone

__all__ = ["cron_changes", "review_stored_jobs"]

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FULL = (range(60), range(24), range(1, 32), range(1, 13), range(7))
# Fires are compared this long either side of each UTC offset change.
_DST_WINDOW = dt.timedelta(hours=3)
_HORIZON = dt.timedelta(days=366)


def cron_changes(expr: str, tz: str, now: dt.datetime) -> list[str]:
    """Why `expr` in zone `tz` fires differently than before; empty if it does not.

    DST differences are looked for at the zone's offset changes in the year after `now`.
    """
    try:
        spec = parse_cron(expr)
        validate_timezone(tz)
    except ValueError as exc:
        return [f"refused now: {exc}"]
    legacy = _legacy_spec(spec)
    if legacy is None:
        return []  # croniter refused it too: it never ran before
    texts = spec.text.split()
    reasons = [
        f"{name} '{text}' now means {_values(new)}, was {_values(old)}"
        for name, text, new, old in zip(
            _FIELD_NAMES, texts, _sets(spec), _sets(legacy), strict=True
        )
        if new != old
    ]
    if spec.day_and != legacy.day_and and _day_table(spec) != _day_table(legacy):
        rule = "AND (a field starting with '*' is unrestricted)"
        if not spec.day_and:
            rule = "OR (neither field starts with '*')"
        reasons.append(
            f"day-of-month '{texts[2]}' and day-of-week '{texts[4]}' now combine with {rule}, "
            f"was {'OR' if spec.day_and else 'AND'}"
        )
    # The old DST rules on the new field values: only the DST behaviour differs.
    old_dst = dataclasses.replace(spec, both_copies=legacy.both_copies, skip_gap=legacy.skip_gap)
    dst = _dst_change(spec, old_dst, tz, now) if old_dst != spec else None
    if dst:
        reasons.append(dst)
    return reasons


def review_stored_jobs(db: Database, now: dt.datetime) -> list[dict[str, Any]]:
    """Jobs with a cron expression that changed meaning, each with its one-line reasons."""
    jobs = db[names.SCHEDULED_JOBS].find(
        {"schedule.cron_expression": {"$exists": True}},
        {"job_id": 1, "user_id": 1, "status": 1, "schedule": 1},
        sort=[("job_id", 1)],
    )
    zones: dict[Any, str] = {}
    rows = []
    for job in jobs:
        schedule = job.get("schedule") or {}
        expr = schedule.get("cron_expression")
        tz = schedule.get("timezone") or _user_timezone(db, job.get("user_id"), zones)
        if isinstance(expr, str) and isinstance(tz, str):
            reasons = cron_changes(expr, tz, now)
        else:
            reasons = [f"refused now: cron_expression {expr!r} / timezone {tz!r} is not a string"]
        if reasons:
            rows.append(
                {
                    "job_id": job.get("job_id"),
                    "user_id": job.get("user_id"),
                    "status": job.get("status"),
                    "cron_expression": expr,
                    "timezone": tz,
                    "reasons": reasons,
                }
            )
    return rows


def _user_timezone(db: Database, user_id: Any, cache: dict[Any, str]) -> str:
    """The zone validation uses for a job without one: the user's, else UTC."""
    if user_id not in cache:
        user = db[names.USERS].find_one({"user_id": user_id}, {"preferences": 1}) or {}
        prefs = user.get("preferences")
        cache[user_id] = (prefs.get("timezone") if isinstance(prefs, dict) else None) or "UTC"
    return cache[user_id]


def _legacy_spec(spec: CronSpec) -> CronSpec | None:
    """How croniter alone read the expression, with the DST rules of before."""
    try:
        expanded = croniter(spec.text, dt.datetime(2000, 1, 1)).expanded
    except Exception:  # croniter's errors are several unrelated classes
        return None
    # croniter lists "*" for a field that covers its range, also beside other values.
    sets = [
        frozenset(full) if "*" in values else frozenset(int(v) for v in values)
        for values, full in zip(expanded, _FULL, strict=True)
    ]
    sets[4] = frozenset(v % 7 for v in sets[4])
    return CronSpec(
        text=spec.text,
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=sets[4],
        day_and="*" in (expanded[2][0], expanded[4][0]),
        both_copies=spec.text.split()[1] == "*",
        skip_gap=False,
    )


def _sets(spec: CronSpec) -> tuple[frozenset[int], ...]:
    return (spec.minutes, spec.hours, spec.days, spec.months, spec.weekdays)


def _day_table(spec: CronSpec) -> list[bool]:
    return [spec.matches_day(day, weekday) for day in range(1, 32) for weekday in range(7)]


def _values(values: Iterable[int]) -> str:
    ordered = sorted(values)
    return ",".join(map(str, ordered)) if ordered else "nothing"


def _dst_change(spec: CronSpec, legacy: CronSpec, tz: str, now: dt.datetime) -> str | None:
    """The first offset change of the coming year at which new and old DST rules differ."""
    zone = validate_timezone(tz)
    for change in _offset_changes(zone, now, now + _HORIZON):
        new, old = _fires_near(spec, tz, change), _fires_near(legacy, tz, change)
        if new != old:
            how = "in real time (its minute or hour field starts with '*')"
            if not spec.real_time:
                how = "at fixed wall times"
            diff = [
                f"{label} {_instants(sorted(fires))}"
                for label, fires in (("now also at", new - old), ("no longer at", old - new))
                if fires
            ]
            return (
                f"DST change of {change.astimezone(zone):%Y-%m-%d} in {tz}: runs {how}; "
                + ", ".join(diff)
            )
    return None


def _fires_near(spec: CronSpec, tz: str, change: dt.datetime) -> set[dt.datetime]:
    end = change + _DST_WINDOW
    return set(itertools.takewhile(lambda f: f <= end, iter_fires(spec, tz, change - _DST_WINDOW)))


def _instants(fires: list[dt.datetime], shown: int = 3) -> str:
    text = " ".join(f"{f:%H:%M}Z" for f in fires[:shown])
    return text + (f" (+{len(fires) - shown} more)" if len(fires) > shown else "")


def _offset_changes(zone: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Instants in [start, end] at which `zone`'s UTC offset changes (sampled every 12 h)."""
    step = dt.timedelta(hours=12)
    changes = []
    at = start
    while at < end:
        low, high = at, at + step
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > dt.timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            changes.append(high.replace(microsecond=0))
        at += step
    return changes
