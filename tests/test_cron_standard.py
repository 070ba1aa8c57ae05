"""Standard (Vixie/Debian) cron: syntax, the day rule, Sunday, DST across 2026, and cronsim.

Expected instants are UTC. 2026 offset changes used below (local wall clock):
  Europe/London        Mar 29 01:00Z (01:00 GMT -> 02:00 BST), Oct 25 01:00Z (02:00 BST -> 01:00)
  America/New_York     Mar 8 07:00Z (02:00 EST -> 03:00 EDT),  Nov 1 06:00Z (02:00 EDT -> 01:00)
  Australia/Sydney     Oct 3 16:00Z (02:00 -> 03:00 AEDT),     Apr 4 16:00Z (03:00 AEDT -> 02:00)
  Australia/Lord_Howe  Oct 3 15:30Z (02:00 -> 02:30 +11),      Apr 4 15:00Z (02:00 +11 -> 01:30)
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.schedule import parse_cron, upcoming_fires, validate_cron

LONDON = "Europe/London"
NY = "America/New_York"
SYDNEY = "Australia/Sydney"
LORD_HOWE = "Australia/Lord_Howe"


def u(text: str) -> dt.datetime:
    """A UTC instant from 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def cronsim_fires(expr: str, tz: str, after: dt.datetime, n: int) -> list[dt.datetime]:
    """The next `n` fires after `after` by cronsim (which follows Debian cron), in UTC.

    cronsim starts 3 hours early (longer than any repeated hour): from inside a repeated hour it
    can answer a fixed-time fire that lies before its start.
    """
    zone = ZoneInfo(tz)
    fires = []
    for fire in CronSim(expr, (after - dt.timedelta(hours=3)).astimezone(zone)):
        instant = fire.astimezone(dt.UTC)
        if instant > after:
            fires.append(instant)
        if len(fires) == n:
            return fires
    return fires


# (expr, tz, after, the fires that follow): every DST rule at each 2026 change, 4 zones.
DST_CASES = [
    # the vector: hour `*` runs in real time, nothing at the end of the gap (01:00Z)
    ("7 * * * *", LONDON, u("2025-03-29 23:59"), [u("2025-03-30 00:07"), u("2025-03-30 01:07")]),
    # London spring forward
    ("7 * * * *", LONDON, u("2026-03-29 00:00"), [u("2026-03-29 00:07"), u("2026-03-29 01:07")]),
    ("30 1 * * *", LONDON, u("2026-03-28 12:00"), [u("2026-03-29 01:00"), u("2026-03-30 00:30")]),
    (
        "* 0-6 * * *",
        LONDON,
        u("2026-03-29 00:58"),
        [u("2026-03-29 00:59"), u("2026-03-29 01:00"), u("2026-03-29 01:01")],
    ),
    (  # fixed hours: 01:00 is moved to 02:00 BST and collapses with it
        "0 1-3 * * *",
        LONDON,
        u("2026-03-29 00:00"),
        [u("2026-03-29 01:00"), u("2026-03-29 02:00"), u("2026-03-30 00:00")],
    ),
    (
        "30 */2 * * *",
        LONDON,
        u("2026-03-28 23:45"),
        [u("2026-03-29 00:30"), u("2026-03-29 01:30"), u("2026-03-29 03:30")],
    ),
    # London fall back: repeated 01:xx is 00:xxZ (BST) then 01:xxZ (GMT)
    ("30 1 * * *", LONDON, u("2026-10-24 12:00"), [u("2026-10-25 00:30"), u("2026-10-26 01:30")]),
    (
        "30 * * * *",
        LONDON,
        u("2026-10-24 23:00"),
        [
            u("2026-10-24 23:30"),
            u("2026-10-25 00:30"),
            u("2026-10-25 01:30"),
            u("2026-10-25 02:30"),
        ],
    ),
    (  # the vector: a job more often than hourly fires in both copies
        "* 1-6 * * *",
        LONDON,
        u("2026-10-25 00:58"),
        [u("2026-10-25 00:59"), u("2026-10-25 01:00"), u("2026-10-25 01:01")],
    ),
    (
        "0 1-3 * * *",
        LONDON,
        u("2026-10-24 23:30"),
        [u("2026-10-25 00:00"), u("2026-10-25 02:00"), u("2026-10-25 03:00")],
    ),
    (  # a minute range without `*` is a fixed-time job: first copy only
        "0-59/30 1 * * *",
        LONDON,
        u("2026-10-24 23:30"),
        [u("2026-10-25 00:00"), u("2026-10-25 00:30"), u("2026-10-26 01:00")],
    ),
    # New York spring forward
    ("30 2 * * *", NY, u("2026-03-08 05:00"), [u("2026-03-08 07:00"), u("2026-03-09 06:30")]),
    (
        "*/20 2 * * *",
        NY,
        u("2026-03-08 06:00"),
        [u("2026-03-09 06:00"), u("2026-03-09 06:20"), u("2026-03-09 06:40")],
    ),
    (
        "20,40 2 * * *",
        NY,
        u("2026-03-08 06:00"),
        [u("2026-03-08 07:00"), u("2026-03-09 06:20"), u("2026-03-09 06:40")],
    ),
    ("15 * * * *", NY, u("2026-03-08 06:00"), [u("2026-03-08 06:15"), u("2026-03-08 07:15")]),
    # New York fall back: repeated 01:xx is 05:xxZ (EDT) then 06:xxZ (EST)
    ("15 1 * * *", NY, u("2026-11-01 04:00"), [u("2026-11-01 05:15"), u("2026-11-02 06:15")]),
    (
        "15 * * * *",
        NY,
        u("2026-11-01 05:00"),
        [u("2026-11-01 05:15"), u("2026-11-01 06:15"), u("2026-11-01 07:15")],
    ),
    (
        "*/30 1 * * *",
        NY,
        u("2026-11-01 04:59"),
        [
            u("2026-11-01 05:00"),
            u("2026-11-01 05:30"),
            u("2026-11-01 06:00"),
            u("2026-11-01 06:30"),
            u("2026-11-02 06:00"),
        ],
    ),
    (
        "0,30 1 * * *",
        NY,
        u("2026-11-01 04:59"),
        [u("2026-11-01 05:00"), u("2026-11-01 05:30"), u("2026-11-02 06:00")],
    ),
    # Sydney fall back (April): repeated 02:xx is 15:xxZ (AEDT) then 16:xxZ (AEST)
    ("30 2 * * *", SYDNEY, u("2026-04-04 12:00"), [u("2026-04-04 15:30"), u("2026-04-05 16:30")]),
    (
        "30 * * * *",
        SYDNEY,
        u("2026-04-04 14:00"),
        [
            u("2026-04-04 14:30"),
            u("2026-04-04 15:30"),
            u("2026-04-04 16:30"),
            u("2026-04-04 17:30"),
        ],
    ),
    # Sydney spring forward (October): 02:xx does not exist
    ("30 2 * * *", SYDNEY, u("2026-10-03 12:00"), [u("2026-10-03 16:00"), u("2026-10-04 15:30")]),
    (
        "30 * * * *",
        SYDNEY,
        u("2026-10-03 14:00"),
        [u("2026-10-03 14:30"), u("2026-10-03 15:30"), u("2026-10-03 16:30")],
    ),
    ("* 2 * * *", SYDNEY, u("2026-10-03 14:00"), [u("2026-10-04 15:00"), u("2026-10-04 15:01")]),
    # Lord Howe: 30-minute changes. April repeats 01:30-02:00 (14:30Z +11, then 15:00Z +10:30)
    (
        "45 1 * * *",
        LORD_HOWE,
        u("2026-04-04 12:00"),
        [u("2026-04-04 14:45"), u("2026-04-05 15:15")],
    ),
    (
        "*/15 * * * *",
        LORD_HOWE,
        u("2026-04-04 14:40"),
        [
            u("2026-04-04 14:45"),
            u("2026-04-04 15:00"),
            u("2026-04-04 15:15"),
            u("2026-04-04 15:30"),
        ],
    ),
    # Lord Howe October skips 02:00-02:30 (the change is 15:30Z)
    (
        "15 2 * * *",
        LORD_HOWE,
        u("2026-10-03 12:00"),
        [u("2026-10-03 15:30"), u("2026-10-04 15:15")],
    ),
    ("0 * * * *", LORD_HOWE, u("2026-10-03 14:00"), [u("2026-10-03 14:30"), u("2026-10-03 16:00")]),
    (
        "0,30 2 * * *",
        LORD_HOWE,
        u("2026-10-03 12:00"),
        [u("2026-10-03 15:30"), u("2026-10-04 15:00"), u("2026-10-04 15:30")],
    ),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), DST_CASES)
def test_dst_rules(expr: str, tz: str, after: dt.datetime, expected: list[dt.datetime]) -> None:
    assert upcoming_fires(expr, tz, after, len(expected)) == expected
    assert cronsim_fires(expr, tz, after, len(expected)) == expected  # Debian agrees


# Vectors of cronsim's test suite (TestDstTransitions, Europe/Riga 2021: Mar 28 03:00 EET ->
# 04:00 EEST, Oct 31 04:00 EEST -> 03:00 EET): (expr, local start, fold, next fires, local ISO).
RIGA_CASES = [
    (
        "0 * * * *",
        "2021-03-28T01:30",
        0,
        ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00"],
    ),
    (
        "0 * * * *",
        "2021-10-31T01:30",
        0,
        [
            "2021-10-31T02:00:00+03:00",
            "2021-10-31T03:00:00+03:00",
            "2021-10-31T03:00:00+02:00",
            "2021-10-31T04:00:00+02:00",
        ],
    ),
    (
        "*/30 * * * *",
        "2021-03-28T02:10",
        0,
        ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"],
    ),
    (
        "0 */2 * * *",
        "2021-10-31T01:30",
        0,
        ["2021-10-31T02:00:00+03:00", "2021-10-31T04:00:00+02:00", "2021-10-31T06:00:00+02:00"],
    ),
    (
        "0 */3 * * *",
        "2021-10-31T01:30",
        0,
        ["2021-10-31T03:00:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T06:00:00+02:00"],
    ),
    (
        "0 1,2,3,4,5 * * *",
        "2021-03-28T01:30",
        0,
        ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"],
    ),
    (
        "0 1,2,3,4,5 * * *",
        "2021-10-31T01:30",
        0,
        ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"],
    ),
    (
        "30 1,2,3,4,5 * * *",
        "2021-03-28T01:30",
        0,
        ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"],
    ),
    (
        "0 3 * * *",
        "2021-03-27T01:30",
        0,
        ["2021-03-27T03:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T03:00:00+03:00"],
    ),
    (
        "0 4 * * *",
        "2021-10-30T01:30",
        0,
        ["2021-10-30T04:00:00+03:00", "2021-10-31T04:00:00+02:00", "2021-11-01T04:00:00+02:00"],
    ),
    (
        "15 3 * * *",
        "2021-10-30T00:00",
        0,
        ["2021-10-30T03:15:00+03:00", "2021-10-31T03:15:00+03:00", "2021-11-01T03:15:00+02:00"],
    ),
    (
        "0 1-5 * * *",
        "2021-10-31T01:30",
        0,
        ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"],
    ),
    (
        "* * * * *",
        "2021-03-28T02:58",
        0,
        ["2021-03-28T02:59:00+02:00", "2021-03-28T04:00:00+03:00"],
    ),
    (
        "* 1-6 * * *",
        "2021-10-31T03:58",
        0,
        ["2021-10-31T03:59:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T03:01:00+02:00"],
    ),
    (  # from inside the second copy, a fixed-time job waits for the next day
        "15 3 * * *",
        "2021-10-31T03:20",
        1,
        ["2021-11-01T03:15:00+02:00"],
    ),
]


@pytest.mark.parametrize(("expr", "start", "fold", "expected"), RIGA_CASES)
def test_cronsim_dst_vectors(expr: str, start: str, fold: int, expected: list[str]) -> None:
    zone = ZoneInfo("Europe/Riga")
    after = dt.datetime.fromisoformat(start).replace(tzinfo=zone, fold=fold)
    fires = upcoming_fires(expr, "Europe/Riga", after, len(expected))
    assert [f.astimezone(zone).isoformat() for f in fires] == expected


# The examples of Vixie's and Debian's crontab(5), and what the page says they mean.
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("5 0 * * *", ["2026-01-01 00:05", "2026-01-02 00:05"]),  # five past midnight, daily
        ("15 14 1 * *", ["2026-01-01 14:15", "2026-02-01 14:15"]),  # 14:15 on the 1st
        ("0 22 * * 1-5", ["2026-01-01 22:00", "2026-01-02 22:00", "2026-01-05 22:00"]),  # weekdays
        ("23 0-23/2 * * *", ["2026-01-01 00:23", "2026-01-01 02:23", "2026-01-01 04:23"]),
        ("5 4 * * sun", ["2026-01-04 04:05", "2026-01-11 04:05"]),
        (  # "4:30 am on the 1st and 15th of each month, plus every Friday"
            "30 4 1,15 * 5",
            ["2026-01-01 04:30", "2026-01-02 04:30", "2026-01-09 04:30", "2026-01-15 04:30"],
        ),
    ],
)
def test_debian_crontab_examples(expr: str, expected: list[str]) -> None:
    fires = upcoming_fires(
        expr, "UTC", u("2026-01-01 00:00") - dt.timedelta(seconds=1), len(expected)
    )
    assert [f"{f:%Y-%m-%d %H:%M}" for f in fires] == expected


def days(expr: str, after: str, n: int) -> list[str]:
    """The dates of the next `n` fires in UTC."""
    return [f"{f:%Y-%m-%d}" for f in upcoming_fires(expr, "UTC", u(after), n)]


# 2026-01-01 is a Thursday.
DAY_CASES = [
    # a field starting with `*` counts as unrestricted: AND (the vector)
    ("0 16 */2 * sat", ["2026-01-03", "2026-01-17", "2026-01-31", "2026-02-07"]),
    # neither starts with `*`: OR
    ("0 16 1-31/2 * sat", ["2026-01-01", "2026-01-03", "2026-01-05", "2026-01-07", "2026-01-09"]),
    ("0 0 1,15 * 3", ["2026-01-07", "2026-01-14", "2026-01-15", "2026-01-21", "2026-01-28"]),
    ("0 0 13 * 5", ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"]),
    ("0 0 1-31 * 1", ["2026-01-02", "2026-01-03", "2026-01-04"]),
    # one field `*`: the other decides
    ("0 4 8-14 * *", ["2026-01-08", "2026-01-09", "2026-01-10"]),
    ("0 0 * * 1", ["2026-01-05", "2026-01-12"]),
    ("0 0 1 * *", ["2026-02-01", "2026-03-01"]),
    ("0 0 */1 * 5", ["2026-01-02", "2026-01-09", "2026-01-16"]),
    ("0 0 13 * */7", ["2026-09-13", "2026-12-13"]),
    # cronsim's vectors: first Sunday, first Monday of the month
    ("1 1 1-7 * */7", ["2026-01-04", "2026-02-01", "2026-03-01", "2026-04-05"]),
    ("1 1 */100,1-7 * MON", ["2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06"]),
    # Sunday is 0 and 7
    *[
        (f"0 0 * * {dow}", ["2026-01-04", "2026-01-11", "2026-01-18"])
        for dow in ("0", "7", "sun", "SUN", "0-0", "7-7", "Sun-Sun", "*/7", "0,7", "7-7/3")
    ],
    ("0 0 * * 5-7", ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]),
    ("0 0 * * 6-7", ["2026-01-03", "2026-01-04", "2026-01-10"]),
    ("0 0 * * 0-7", ["2026-01-02", "2026-01-03", "2026-01-04"]),
    ("0 0 * * 1-7/2", ["2026-01-02", "2026-01-04", "2026-01-05", "2026-01-07"]),
    ("0 0 29 2 *", ["2028-02-29", "2032-02-29"]),
    ("0 0 31 * *", ["2026-01-31", "2026-03-31", "2026-05-31"]),
    ("0 0 * Apr-Jun/2 *", ["2026-04-01", "2026-04-02"]),
]


@pytest.mark.parametrize(("expr", "expected"), DAY_CASES)
def test_day_of_month_and_day_of_week(expr: str, expected: list[str]) -> None:
    assert days(expr, "2026-01-01 00:00", len(expected)) == expected
    after = u("2026-01-01 00:00")
    assert cronsim_fires(expr, "UTC", after, len(expected)) == upcoming_fires(
        expr, "UTC", after, len(expected)
    )


@pytest.mark.parametrize(
    ("expr", "normalized", "real_time"),
    [
        ("7 * * * *", "7 * * * *", True),
        ("* 1-6 * * *", "* 1-6 * * *", True),
        ("0 */2 * * *", "0 */2 * * *", True),
        ("*/15 9-17 * * 1-5", "*/15 9-17 * * 1-5", True),
        ("0 1-6 * * *", "0 1-6 * * *", False),  # Vixie: only a leading `*` makes a wildcard
        ("0-59 1 * * *", "0-59 1 * * *", False),
        ("@hourly", "0 * * * *", True),
        ("@DAILY", "0 0 * * *", False),
        ("@midnight", "0 0 * * *", False),
        ("@weekly", "0 0 * * 0", False),
        ("@monthly", "0 0 1 * *", False),
        ("@yearly", "0 0 1 1 *", False),
        ("@annually", "0 0 1 1 *", False),
        ("  05  09 * jan-MAR,Dec mon-Fri ", "05 09 * jan-MAR,Dec mon-Fri", False),
        ("*/90 * * * *", "*/90 * * * *", True),  # a step past the range: the first value only
    ],
)
def test_accepted_syntax(expr: str, normalized: str, real_time: bool) -> None:
    assert validate_cron(expr) == normalized
    assert parse_cron(expr).real_time is real_time


def test_parsed_values() -> None:
    spec = parse_cron("05 09 * jan-MAR,Dec mon-Fri")
    assert (spec.minutes, spec.hours, spec.months) == ({5}, {9}, {1, 2, 3, 12})
    assert spec.weekdays == {1, 2, 3, 4, 5} and spec.day_and
    assert parse_cron("*/90 * * * *").minutes == {0}
    assert parse_cron("0 0 * * 1-7/2").weekdays == {0, 1, 3, 5}
    assert not parse_cron("0 0 1 * 1").day_and


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        # reversed ranges
        ("5-1 * * * *", r"minute field '5-1': reversed range .* write '5-59,0-1'"),
        ("0 0 * Apr-Feb *", r"month field 'Apr-Feb': reversed range \(4 is after 2"),
        ("0 0 * * Fri-Sun", r"day-of-week field 'Fri-Sun': reversed range .* write '5-7'"),
        ("0 22-2 * * *", r"hour field '22-2': reversed range"),
        # non-standard syntax
        ("0 0 L * *", r"day-of-month field 'L': 'L' \(last day, Quartz\) is not standard"),
        ("0 0 LW * *", r"day-of-month field 'LW': 'L'"),
        ("0 0 * * 5L", r"day-of-week field '5L': 'L'"),
        ("0 0 15W * *", r"day-of-month field '15W': 'W' \(nearest weekday"),
        ("0 0 * * MON#2", r"day-of-week field 'MON#2': '#' \(nth weekday"),
        ("0 0 ? * 1", r"day-of-month field '\?': '\?' \(no specific value"),
        ("H * * * *", r"minute field 'H': 'H' \(hashed value, Jenkins\)"),
        ("H/5 * * * *", r"'H' \(hashed value"),
        ("0 0 0 * * *", r"expected 5 fields .* got 6$"),
        ("0 0 0 * * * 2026", r"expected 5 fields .* got 7$"),
        ("@reboot", r"@reboot has no meaning for a scheduled job"),
        ("@every 5m", r"unknown macro"),
        ("5/15 * * * *", r"minute field '5/15': a step needs a range or '\*' \(write '5-59/15'\)"),
        # bad values
        (
            "61 * * * *",
            r"^invalid cron expression '61 \* \* \* \*': minute field '61': .*out of range",
        ),
        ("0 24 * * *", r"hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", r"day-of-month field '0': 0 is out of range 1-31"),
        ("0 0 * 13 *", r"month field '13': 13 is out of range 1-12"),
        ("0 0 * * 8", r"day-of-week field '8': 8 is out of range 0-7"),
        ("0 0 * * monday", r"day-of-week field 'monday': 'monday' is not a number or a day-of"),
        ("0 0 * * thursday", r"'thursday' is not a number or a day-of-week name"),
        ("0 jan * * *", r"hour field 'jan': 'jan' is not a number$"),
        ("-1 * * * *", r"minute field '-1': a number is missing"),
        ("*-5 * * * *", r"minute field '\*-5'"),
        ("*/0 * * * *", r"minute field '\*/0': the step must be a whole number >= 1"),
        ("*/x * * * *", r"the step must be a whole number"),
        ("1,,2 * * * *", r"minute field: empty list element"),
        ("¹ * * * *", r"minute field '¹'"),
        ("0 0 31 2 *", r"day-of-month '31' never occurs in month '2'"),
        ("0 0 30,31 2 *", r"never occurs"),
        ("0 0 31 4,6,9,11 *", r"never occurs"),
        ("", r"got 0$"),
    ],
)
def test_refused_syntax(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_cron(expr)


def test_or_rule_makes_an_impossible_date_fire_on_its_weekday() -> None:
    # Neither field starts with `*`: February 31st never comes, Mondays in February do.
    assert days("0 0 31 2 1", "2026-01-01 00:00", 2) == ["2026-02-02", "2026-02-09"]


# ------------------------------------------------------------------ cross-check against cronsim
ZONES = [
    LONDON,
    NY,
    SYDNEY,
    LORD_HOWE,
    "Europe/Berlin",
    "Pacific/Chatham",
    "UTC",
    "Asia/Kolkata",
    "America/Havana",
    "America/Santiago",
]


def _offset_changes_2026(tz: str) -> list[dt.datetime]:
    """Whole hours of 2026 (UTC) right after which `tz` has another UTC offset."""
    zone, hour = ZoneInfo(tz), dt.timedelta(hours=1)
    hours = [u("2026-01-01 00:00") + i * hour for i in range(365 * 24)]
    return [
        h
        for h in hours
        if h.astimezone(zone).utcoffset() != (h + hour).astimezone(zone).utcoffset()
    ]


CHANGES = {tz: _offset_changes_2026(tz) for tz in ZONES}
FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def elements(draw: st.DrawFn, index: int) -> str:
    low, high = FIELD_RANGES[index]
    names = {3: MONTH_NAMES, 4: DAY_NAMES}.get(index)

    def value(number: int) -> str:
        if names and number - low < len(names) and draw(st.booleans()):
            return names[number - low]
        return str(number)

    kind = draw(st.sampled_from(["*", "*/n", "n", "a-b", "a-b/n"]))
    if kind == "*":
        return "*"
    if kind == "*/n":
        return f"*/{draw(st.integers(1, high - low + 2))}"
    first = draw(st.integers(low, high))
    if kind == "n":
        return value(first)
    last = draw(st.integers(first, high))
    span = f"{value(first)}-{value(last)}"
    if kind == "a-b" or first == last:  # cronsim reads `a-a/n` as `a/n` (a-MAX/n)
        return span
    return f"{span}/{draw(st.integers(1, high - low + 1))}"


@st.composite
def expressions(draw: st.DrawFn) -> str:
    fields = []
    for index in range(5):
        parts = draw(st.lists(elements(index), min_size=1, max_size=3))
        fields.append(",".join(parts))
    return " ".join(fields)


@st.composite
def zones_and_starts(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """A zone, and a start: most often within 4 hours of one of its 2026 offset changes."""
    tz = draw(st.sampled_from(ZONES))
    if CHANGES[tz] and draw(st.integers(0, 3)):
        base = draw(st.sampled_from(CHANGES[tz]))
        return tz, base + dt.timedelta(minutes=draw(st.integers(-240, 240)))
    return tz, u("2025-06-01 00:00") + dt.timedelta(minutes=draw(st.integers(0, 2 * 365 * 1440)))


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(expr=expressions(), zone_and_start=zones_and_starts())
def test_matches_cronsim(expr: str, zone_and_start: tuple[str, dt.datetime]) -> None:
    tz, after = zone_and_start
    try:
        parse_cron(expr)
    except ValueError:
        with pytest.raises(CronSimError):
            CronSim(expr, dt.datetime(2026, 1, 1))
        return
    expected = cronsim_fires(expr, tz, after, 8)
    assert upcoming_fires(expr, tz, after, len(expected)) == expected
