"""Table tests for worker.schedule: cron fires across DST changes, catch-up, overlap, backoff."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.retry import retry_delay
from worker.schedule import (
    CatchUp,
    DuePlan,
    Overlap,
    count_fires,
    latest_fire_at_or_before,
    next_due_after_run,
    next_fire,
    plan_due,
    upcoming_fires,
    validate_cron,
    validate_timezone,
)

NY = "America/New_York"
BERLIN = "Europe/Berlin"
SYDNEY = "Australia/Sydney"


def u(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DD HH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2026 changes: New York Mar 8 02:00 EST -> 03:00 EDT (07:00Z), Nov 1 02:00 EDT -> 01:00 EST
# (06:00Z); Berlin Mar 29 02:00 CET -> 03:00 CEST (01:00Z), Oct 25 03:00 CEST -> 02:00 CET
# (01:00Z); Sydney Apr 5 03:00 AEDT -> 02:00 AEST (Apr 4 16:00Z), Oct 4 02:00 AEST -> 03:00 AEDT
# (Oct 3 16:00Z).
NEXT_FIRE_CASES = [
    # ordinary days
    ("0 0 * * *", NY, u("2026-06-01 03:59"), u("2026-06-01 04:00")),
    ("0 0 * * *", NY, u("2026-06-01 04:00"), u("2026-06-02 04:00")),
    ("0 0 * * *", NY, u("2026-01-15 12:00"), u("2026-01-16 05:00")),
    ("30 9 * * 1-5", BERLIN, u("2026-07-03 08:00"), u("2026-07-06 07:30")),  # Fri -> Mon
    ("0 0 * * *", "UTC", u("2026-12-31 23:59:59"), u("2027-01-01 00:00")),
    ("30 6 * * *", "Asia/Kolkata", u("2026-05-01 00:00"), u("2026-05-01 01:00")),
    ("@hourly", BERLIN, u("2026-07-01 10:00"), u("2026-07-01 11:00")),
    # midnight around the changes
    ("0 0 * * *", NY, u("2026-10-31 12:00"), u("2026-11-01 04:00")),
    ("0 0 * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00")),
    ("0 0 * * *", NY, u("2026-03-07 12:00"), u("2026-03-08 05:00")),
    ("0 0 * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00")),
    # New York fall back: fixed time in the repeated hour fires once, in the first copy
    ("30 1 * * *", NY, u("2026-11-01 04:00"), u("2026-11-01 05:30")),
    ("30 1 * * *", NY, u("2026-11-01 05:30"), u("2026-11-02 06:30")),
    ("30 1 * * *", NY, u("2026-11-01 06:10"), u("2026-11-02 06:30")),  # after in 2nd copy
    ("0 1 * * *", NY, u("2026-11-01 05:00"), u("2026-11-02 06:00")),
    ("0 2 * * *", NY, u("2026-11-01 05:00"), u("2026-11-01 07:00")),
    # New York fall back: hour `*` follows elapsed time, fires in both copies
    ("0 * * * *", NY, u("2026-11-01 05:00"), u("2026-11-01 06:00")),
    ("0 * * * *", NY, u("2026-11-01 06:00"), u("2026-11-01 07:00")),
    ("*/15 * * * *", NY, u("2026-11-01 05:50"), u("2026-11-01 06:00")),
    ("*/15 * * * *", NY, u("2026-11-01 06:05"), u("2026-11-01 06:15")),
    ("30 * * * *", NY, u("2026-11-01 05:45"), u("2026-11-01 06:30")),
    # New York spring forward: gap fires at the first instant after it (03:00 EDT = 07:00Z)
    ("30 2 * * *", NY, u("2026-03-08 05:00"), u("2026-03-08 07:00")),
    ("30 2 * * *", NY, u("2026-03-08 07:00"), u("2026-03-09 06:30")),
    ("30 2 * * *", NY, u("2026-03-07 07:30"), u("2026-03-08 07:00")),
    ("0 3 * * *", NY, u("2026-03-08 05:00"), u("2026-03-08 07:00")),
    ("*/15 * * * *", NY, u("2026-03-08 06:50"), u("2026-03-08 07:00")),
    ("*/15 * * * *", NY, u("2026-03-08 07:00"), u("2026-03-08 07:15")),
    ("0 * * * *", NY, u("2026-03-08 06:00"), u("2026-03-08 07:00")),
    ("0 * * * *", NY, u("2026-03-08 07:00"), u("2026-03-08 08:00")),
    # Berlin
    ("30 2 * * *", BERLIN, u("2026-10-24 12:00"), u("2026-10-25 00:30")),
    ("30 2 * * *", BERLIN, u("2026-10-25 00:30"), u("2026-10-26 01:30")),
    ("30 2 * * *", BERLIN, u("2026-10-25 01:10"), u("2026-10-26 01:30")),
    ("30 * * * *", BERLIN, u("2026-10-25 00:30"), u("2026-10-25 01:30")),
    ("30 2 * * *", BERLIN, u("2026-03-28 12:00"), u("2026-03-29 01:00")),
    ("59 2 * * *", BERLIN, u("2026-03-28 12:00"), u("2026-03-29 01:00")),
    ("0 3 * * *", BERLIN, u("2026-03-29 00:00"), u("2026-03-29 01:00")),
    ("0 4 * * *", BERLIN, u("2026-03-29 01:00"), u("2026-03-29 02:00")),
    # Sydney (southern hemisphere: falls back in April, springs forward in October)
    ("30 2 * * *", SYDNEY, u("2026-04-04 12:00"), u("2026-04-04 15:30")),
    ("30 2 * * *", SYDNEY, u("2026-04-04 15:30"), u("2026-04-05 16:30")),
    ("30 2 * * *", SYDNEY, u("2026-04-04 16:45"), u("2026-04-05 16:30")),
    ("30 * * * *", SYDNEY, u("2026-04-04 15:30"), u("2026-04-04 16:30")),
    ("30 2 * * *", SYDNEY, u("2026-10-03 12:00"), u("2026-10-03 16:00")),
    ("30 2 * * *", SYDNEY, u("2026-10-03 16:00"), u("2026-10-04 15:30")),
    # hour `*` runs in real time: 02:15 does not exist, so no fire at the end of the gap
    ("15 * * * *", SYDNEY, u("2026-10-03 15:15"), u("2026-10-03 16:15")),
    ("15 * * * *", SYDNEY, u("2026-10-03 16:00"), u("2026-10-03 16:15")),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), NEXT_FIRE_CASES)
def test_next_fire(expr: str, tz: str, after: datetime, expected: datetime) -> None:
    fire = next_fire(expr, tz, after)
    assert fire == expected
    assert fire.tzinfo is UTC


def test_next_fire_accepts_aware_non_utc_input() -> None:
    after = datetime(2026, 11, 1, 1, 10, tzinfo=ZoneInfo(NY), fold=1)  # 06:10Z
    assert next_fire("*/15 * * * *", NY, after) == u("2026-11-01 06:15")


# (expr, tz, start, end, fires in (start, end]): local days around each change.
COUNT_CASES = [
    ("0 * * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00"), 25),
    ("0 * * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00"), 23),
    ("0 * * * *", NY, u("2026-06-01 04:00"), u("2026-06-02 04:00"), 24),
    ("*/15 * * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00"), 100),
    ("*/15 * * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00"), 92),
    ("30 1 * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00"), 1),
    ("30 2 * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00"), 1),
    # minute `*` runs in real time: both copies of 01:xx, no 02:xx on the spring day
    ("* 1 * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00"), 120),
    ("* 2 * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00"), 0),
    # a fixed hour with a minute range is a fixed-time job: first copy only, gap collapses
    ("0-59 1 * * *", NY, u("2026-11-01 04:00"), u("2026-11-02 05:00"), 60),
    ("0-59 2 * * *", NY, u("2026-03-08 05:00"), u("2026-03-09 04:00"), 1),
    ("0 * * * *", BERLIN, u("2026-10-24 22:00"), u("2026-10-25 23:00"), 25),
    ("0 * * * *", BERLIN, u("2026-03-28 23:00"), u("2026-03-29 22:00"), 23),
    ("*/15 * * * *", BERLIN, u("2026-10-24 22:00"), u("2026-10-25 23:00"), 100),
    ("*/15 * * * *", BERLIN, u("2026-03-28 23:00"), u("2026-03-29 22:00"), 92),
    ("0 * * * *", SYDNEY, u("2026-04-04 13:00"), u("2026-04-05 14:00"), 25),
    ("0 * * * *", SYDNEY, u("2026-10-03 14:00"), u("2026-10-04 13:00"), 23),
    ("*/15 * * * *", SYDNEY, u("2026-04-04 13:00"), u("2026-04-05 14:00"), 100),
    ("*/15 * * * *", SYDNEY, u("2026-10-03 14:00"), u("2026-10-04 13:00"), 92),
    ("30 2 * * *", SYDNEY, u("2026-04-04 13:00"), u("2026-04-05 14:00"), 1),
    ("30 2 * * *", SYDNEY, u("2026-10-03 14:00"), u("2026-10-04 13:00"), 1),
    ("0 0 * * *", NY, u("2026-01-01 05:00"), u("2027-01-01 05:00"), 365),
    ("0 * * * *", "UTC", u("2026-01-01 00:00"), u("2026-01-01 00:00"), 0),
]


@pytest.mark.parametrize(("expr", "tz", "start", "end", "expected"), COUNT_CASES)
def test_count_fires(expr: str, tz: str, start: datetime, end: datetime, expected: int) -> None:
    assert count_fires(expr, tz, start, end) == expected


def test_count_fires_stops_at_limit() -> None:
    assert count_fires("* * * * *", "UTC", u("2026-01-01 00:00"), u("2026-02-01 00:00"), 50) == 50


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        (
            "*/30 * * * *",
            NY,
            u("2026-11-01 05:00"),
            [
                u("2026-11-01 05:30"),
                u("2026-11-01 06:00"),
                u("2026-11-01 06:30"),
                u("2026-11-01 07:00"),
                u("2026-11-01 07:30"),
            ],
        ),
        (
            "*/30 * * * *",
            NY,
            u("2026-03-08 06:00"),
            [
                u("2026-03-08 06:30"),
                u("2026-03-08 07:00"),
                u("2026-03-08 07:30"),
                u("2026-03-08 08:00"),
                u("2026-03-08 08:30"),
            ],
        ),
        (
            "30 1,2 * * *",
            NY,
            u("2026-11-01 04:00"),
            [
                u("2026-11-01 05:30"),
                u("2026-11-01 07:30"),
                u("2026-11-02 06:30"),
                u("2026-11-02 07:30"),
                u("2026-11-03 06:30"),
            ],
        ),
    ],
)
def test_upcoming_fires(expr: str, tz: str, after: datetime, expected: list[datetime]) -> None:
    assert upcoming_fires(expr, tz, after, len(expected)) == expected


@pytest.mark.parametrize("tz", [NY, BERLIN, SYDNEY])
@pytest.mark.parametrize("expr", ["*/15 * * * *", "0 * * * *", "30 2 * * *", "* 2 * * *"])
def test_upcoming_fires_strictly_increasing_across_2026(expr: str, tz: str) -> None:
    rng = random.Random(f"{expr}|{tz}")
    changes = [u("2026-03-08 04:00"), u("2026-10-31 23:00"), u("2026-03-28 22:00")]
    changes += [u("2026-10-24 22:00"), u("2026-04-04 12:00"), u("2026-10-03 12:00")]
    starts = [*changes, u("2026-01-01 00:00") + timedelta(seconds=rng.randrange(365 * 86400))]
    for after in starts:
        fires = upcoming_fires(expr, tz, after, 120)
        assert fires[0] > after
        assert all(a < b for a, b in itertools.pairwise(fires))


def test_latest_fire_at_or_before() -> None:
    assert latest_fire_at_or_before(
        "0 * * * *", "UTC", u("2026-01-01 10:00"), u("2026-01-01 13:30")
    ) == u("2026-01-01 13:00")
    # Both ends are inclusive.
    assert latest_fire_at_or_before(
        "0 * * * *", "UTC", u("2026-01-01 10:00"), u("2026-01-01 10:00")
    ) == u("2026-01-01 10:00")
    assert (
        latest_fire_at_or_before("0 * * * *", "UTC", u("2026-01-01 10:01"), u("2026-01-01 10:59"))
        is None
    )
    # A long downtime with a rare expression: the scan widens until it finds the fire.
    assert latest_fire_at_or_before(
        "0 0 1 1 *", "UTC", u("2020-06-01 00:00"), u("2026-12-31 00:00")
    ) == u("2026-01-01 00:00")
    assert (
        latest_fire_at_or_before("0 0 1 1 *", "UTC", u("2026-01-01 00:01"), u("2026-12-31 00:00"))
        is None
    )
    # The second copy of the repeated hour is a fire for hourly jobs.
    assert latest_fire_at_or_before(
        "0 * * * *", NY, u("2026-11-01 04:00"), u("2026-11-01 06:59")
    ) == u("2026-11-01 06:00")


H = timedelta(hours=1)
M = timedelta(minutes=1)
HOURLY = "0 * * * *"
DUE = u("2026-01-01 10:00")


@pytest.mark.parametrize(
    ("due_at", "now", "catch_up", "window", "grace", "expected"),
    [
        # on time, or late within grace: run the due fire
        (DUE, DUE, CatchUp.ONCE, H, 5 * M, DuePlan(DUE, 0, u("2026-01-01 11:00"))),
        (DUE, DUE + 5 * M, CatchUp.SKIP, H, 5 * M, DuePlan(DUE, 0, u("2026-01-01 11:00"))),
        (DUE, DUE + 5 * M, CatchUp.ALL, H, 5 * M, DuePlan(DUE, 0, u("2026-01-01 11:00"))),
        # ONCE: the latest fire <= now, the earlier ones missed
        (DUE, u("2026-01-01 10:05:01"), CatchUp.ONCE, H, 5 * M, DuePlan(DUE, 0, DUE + H)),
        (DUE, u("2026-01-01 13:30"), CatchUp.ONCE, H, 5 * M, DuePlan(DUE + 3 * H, 3, DUE + 4 * H)),
        (DUE, u("2026-01-01 13:00"), CatchUp.ONCE, H, 5 * M, DuePlan(DUE + 3 * H, 3, DUE + 4 * H)),
        # ONCE with a first run the app placed off the expression: it counts as a missed fire
        (
            u("2026-01-01 10:17"),
            u("2026-01-01 12:30"),
            CatchUp.ONCE,
            H,
            5 * M,
            DuePlan(DUE + 2 * H, 2, DUE + 3 * H),
        ),
        (
            u("2026-01-01 10:17"),
            u("2026-01-01 10:30"),
            CatchUp.ONCE,
            H,
            5 * M,
            DuePlan(u("2026-01-01 10:17"), 0, DUE + H),
        ),
        # SKIP: run nothing, everything in [due_at, now] missed
        (DUE, u("2026-01-01 10:05:01"), CatchUp.SKIP, H, 5 * M, DuePlan(None, 1, DUE + H)),
        (DUE, u("2026-01-01 13:30"), CatchUp.SKIP, H, 5 * M, DuePlan(None, 4, DUE + 4 * H)),
        (DUE, u("2026-01-01 13:00"), CatchUp.SKIP, H, 5 * M, DuePlan(None, 4, DUE + 4 * H)),
        # ALL: the first fire inside the window, older ones missed
        (
            DUE,
            u("2026-01-01 13:30"),
            CatchUp.ALL,
            2 * H,
            5 * M,
            DuePlan(DUE + 2 * H, 2, DUE + 4 * H),
        ),
        (DUE, u("2026-01-01 13:30"), CatchUp.ALL, 3.5 * H, 5 * M, DuePlan(DUE, 0, DUE + 4 * H)),
        (DUE, u("2026-01-01 13:30"), CatchUp.ALL, 4 * H, 5 * M, DuePlan(DUE, 0, DUE + 4 * H)),
        (
            DUE,
            u("2026-01-01 13:30"),
            CatchUp.ALL,
            3.5 * H - M,
            5 * M,
            DuePlan(DUE + H, 1, DUE + 4 * H),
        ),
        (
            DUE,
            u("2026-01-01 13:30"),
            CatchUp.ALL,
            30 * M,
            5 * M,
            DuePlan(DUE + 3 * H, 3, DUE + 4 * H),
        ),
        # ALL with no fire inside the window: like SKIP
        (DUE, u("2026-01-01 13:30"), CatchUp.ALL, 20 * M, 5 * M, DuePlan(None, 4, DUE + 4 * H)),
    ],
)
def test_plan_due(
    due_at: datetime,
    now: datetime,
    catch_up: CatchUp,
    window: timedelta,
    grace: timedelta,
    expected: DuePlan,
) -> None:
    assert plan_due(HOURLY, "UTC", due_at, now, catch_up, window, grace) == expected


def test_plan_due_fixed_time_job_across_fall_back() -> None:
    # Scheduler down from Oct 31 to Nov 2 midday: the 01:30 job fired once on Nov 1.
    plan = plan_due(
        "30 1 * * *", NY, u("2026-10-31 05:30"), u("2026-11-02 17:00"), CatchUp.SKIP, H, 5 * M
    )
    assert plan == DuePlan(None, 3, u("2026-11-03 06:30"))
    plan = plan_due(
        "30 1 * * *", NY, u("2026-10-31 05:30"), u("2026-11-02 17:00"), CatchUp.ONCE, H, 5 * M
    )
    assert plan == DuePlan(u("2026-11-02 06:30"), 2, u("2026-11-03 06:30"))


RUN = u("2026-01-01 10:00")


@pytest.mark.parametrize(
    ("now", "overlap", "catch_up", "window", "expected"),
    [
        # finished before the next fire: no overlap whatever the policy
        (u("2026-01-01 10:40"), Overlap.SKIP, CatchUp.ONCE, H, (RUN + H, 0)),
        (u("2026-01-01 10:40"), Overlap.BUFFER, CatchUp.ONCE, H, (RUN + H, 0)),
        (u("2026-01-01 10:40"), Overlap.ALLOW, CatchUp.ALL, H, (RUN + H, 0)),
        # SKIP and ALLOW: fires during the run are missed, next after now
        (u("2026-01-01 13:30"), Overlap.SKIP, CatchUp.ONCE, H, (RUN + 4 * H, 3)),
        (u("2026-01-01 13:30"), Overlap.ALLOW, CatchUp.ONCE, H, (RUN + 4 * H, 3)),
        (u("2026-01-01 11:00"), Overlap.SKIP, CatchUp.ONCE, H, (RUN + 2 * H, 1)),
        (u("2026-01-01 11:30"), Overlap.SKIP, CatchUp.SKIP, H, (RUN + 2 * H, 1)),
        # BUFFER: the latest fire during the run runs now, earlier ones missed
        (u("2026-01-01 13:30"), Overlap.BUFFER, CatchUp.ONCE, H, (RUN + 3 * H, 2)),
        (u("2026-01-01 11:30"), Overlap.BUFFER, CatchUp.ONCE, H, (RUN + H, 0)),
        (u("2026-01-01 13:00"), Overlap.BUFFER, CatchUp.SKIP, H, (RUN + 3 * H, 2)),
        # ALL: the next fire in order while it is inside the window
        (u("2026-01-01 11:30"), Overlap.SKIP, CatchUp.ALL, H, (RUN + H, 0)),
        (u("2026-01-01 13:00"), Overlap.SKIP, CatchUp.ALL, 2 * H, (RUN + H, 0)),
        (u("2026-01-01 13:30"), Overlap.SKIP, CatchUp.ALL, H, (RUN + 4 * H, 3)),
        (u("2026-01-01 13:30"), Overlap.BUFFER, CatchUp.ALL, H, (RUN + 3 * H, 2)),
    ],
)
def test_next_due_after_run(
    now: datetime,
    overlap: Overlap,
    catch_up: CatchUp,
    window: timedelta,
    expected: tuple[datetime, int],
) -> None:
    assert next_due_after_run(HOURLY, "UTC", RUN, now, overlap, catch_up, window) == expected


def test_next_due_after_run_counts_both_copies_of_repeated_hour() -> None:
    # Hourly run at 00:00 EDT that lasted until 01:30 EST: 01:00 EDT, 01:00 EST (and 02:00) due.
    result = next_due_after_run(
        HOURLY, NY, u("2026-11-01 04:00"), u("2026-11-01 06:30"), Overlap.SKIP, CatchUp.ONCE, H
    )
    assert result == (u("2026-11-01 07:00"), 2)
    result = next_due_after_run(
        HOURLY, NY, u("2026-11-01 04:00"), u("2026-11-01 06:30"), Overlap.BUFFER, CatchUp.ONCE, H
    )
    assert result == (u("2026-11-01 06:00"), 1)


class _Fixed(random.Random):
    """A Random whose uniform() lands on a fixed fraction of the interval."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


@pytest.mark.parametrize("attempt", range(1, 21))
def test_retry_delay_bounds(attempt: int) -> None:
    base, cap = 2.0, 600.0
    delay = min(cap, base * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    samples = [retry_delay(attempt, base, cap, rng) for _ in range(200)]
    assert all(delay / 2 <= s <= delay for s in samples)
    assert min(samples) < delay * 0.6 and max(samples) > delay * 0.9  # jitter spans the range
    assert retry_delay(attempt, base, cap, _Fixed(0.0)) == delay / 2


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 0.5, 1.0),
        (2, 1.0, 2.0),
        (5, 8.0, 16.0),
        (9, 128.0, 256.0),
        (10, 150.0, 300.0),
        (10_000, 150.0, 300.0),
    ],
)
def test_retry_delay_values(attempt: int, low: float, high: float) -> None:
    assert retry_delay(attempt, 1.0, 300.0, _Fixed(0.0)) == low
    assert retry_delay(attempt, 1.0, 300.0, _Fixed(0.5)) == (low + high) / 2
    assert low <= retry_delay(attempt, 1.0, 300.0) <= high


@pytest.mark.parametrize(("attempt", "base", "cap"), [(0, 1.0, 10.0), (1, -1.0, 10.0)])
def test_retry_delay_rejects(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        retry_delay(attempt, base, cap)


@pytest.mark.parametrize(
    ("expr", "normalized"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("  0   9 *  * 1-5 ", "0 9 * * 1-5"),
        ("@daily", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
        ("\t*/15\t* * * MON-fri", "*/15 * * * MON-fri"),
    ],
)
def test_validate_cron_normalizes(expr: str, normalized: str) -> None:
    assert validate_cron(expr) == normalized


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", r"^invalid cron expression '61 \* \* \* \*': .*out of range"),
        ("* * * *", r"^invalid cron expression '\* \* \* \*': expected 5 fields .* got 4$"),
        ("0 0 * * * *", r"expected 5 fields .* got 6$"),
        ("0 0 31 2 *", r"^invalid cron expression '0 0 31 2 \*': "),
        ("*/0 * * * *", r"^invalid cron expression"),
        ("", r"got 0$"),
    ],
)
def test_validate_cron_rejects(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_cron(expr)


def test_validate_timezone() -> None:
    assert validate_timezone(BERLIN) == ZoneInfo(BERLIN)
    for name in ("Mars/Base", "", "../etc/passwd"):
        with pytest.raises(ValueError, match=rf"^unknown time zone '{name}'$"):
            validate_timezone(name)


@pytest.mark.parametrize(
    "call",
    [
        lambda: next_fire(HOURLY, "UTC", datetime(2026, 1, 1)),
        lambda: count_fires(HOURLY, "UTC", DUE, datetime(2026, 1, 2)),
        lambda: plan_due(HOURLY, "UTC", datetime(2026, 1, 1), DUE, CatchUp.ONCE, H, M),
        lambda: next_due_after_run(
            HOURLY, "UTC", DUE, datetime(2026, 1, 2), Overlap.SKIP, CatchUp.ONCE, H
        ),
        lambda: next_fire(HOURLY, "Mars/Base", DUE),
        lambda: next_fire("61 * * * *", "UTC", DUE),
    ],
)
def test_rejects_naive_datetimes_and_bad_specs(call) -> None:
    with pytest.raises(ValueError):
        call()


def _field(spec: str, low: int, high: int) -> set[int]:
    """Values of one cron field, for the brute-force oracle (`*`, `*/n`, `a-b`, `a,b`, n)."""
    values: set[int] = set()
    for part in spec.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            first, last = low, high
        elif "-" in rng:
            first, last = (int(x) for x in rng.split("-"))
        else:
            first = last = int(rng)
        values.update(range(first, last + 1, int(step or 1)))
    return values


def _matches(expr: str, local: datetime) -> bool:
    minute, hour, dom, month, dow = expr.split()
    day_ok = local.day in _field(dom, 1, 31)
    weekday_ok = (local.weekday() + 1) % 7 in _field(dow, 0, 6)
    days = day_ok or weekday_ok if "*" not in (dom, dow) else day_ok and weekday_ok
    return (
        local.minute in _field(minute, 0, 59)
        and local.hour in _field(hour, 0, 23)
        and local.month in _field(month, 1, 12)
        and days
    )


@pytest.mark.parametrize("tz", [NY, BERLIN, SYDNEY, "Asia/Kolkata"])
@pytest.mark.parametrize(
    "expr", ["*/15 * * * *", "5 */3 * * *", "30 9 * * *", "45 23 * * 1-5", "0 12 1,15 * 3"]
)
def test_fires_match_minute_scan_on_ordinary_days(expr: str, tz: str) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"{expr}|{tz}")
    horizon = timedelta(days=1)
    checked = 0
    while checked < 6:
        after = u("2026-01-01 00:00") + timedelta(seconds=rng.randrange(364 * 86400))
        before_offset = (after - horizon).astimezone(zone).utcoffset()
        if before_offset != (after + 2 * horizon).astimezone(zone).utcoffset():
            continue  # a DST change nearby: the plain scan does not apply
        checked += 1
        minute = after.replace(second=0, microsecond=0) + M
        expected = []
        while minute <= after + horizon:
            if _matches(expr, minute.astimezone(zone)):
                expected.append(minute)
            minute += M
        fires = upcoming_fires(expr, tz, after, len(expected) + 1)
        assert fires[0] > after
        assert fires[:-1] == expected
        assert fires[-1] > after + horizon
        if expected:
            assert next_fire(expr, tz, after) == expected[0]
