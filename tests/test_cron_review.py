"""`mmw jobs check-cron`: stored expressions whose meaning changed with standard cron."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from click.testing import CliRunner

from worker.cli import main
from worker.cron_review import cron_changes, review_stored_jobs
from worker.settings import get_settings

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expr", "tz", "reason"),
    [
        # refused now
        ("5-1 * * * *", "UTC", r"^refused now: .*minute field '5-1': reversed range"),
        ("0 0 * Apr-Feb *", "UTC", r"^refused now: .*month field 'Apr-Feb'"),
        ("0 0 L * *", "UTC", r"^refused now: .*'L' \(last day"),
        ("0 0 ? * 1", "UTC", r"^refused now: .*'\?'"),
        ("0 0 * * MON#2", "UTC", r"^refused now: .*'#'"),
        ("H * * * *", "UTC", r"^refused now: .*'H'"),
        ("0 0 0 * * *", "UTC", r"^refused now: .*got 6$"),
        ("5/15 * * * *", "UTC", r"^refused now: .*a step needs a range"),
        ("0 9 * * *", "Mars/Base", r"^refused now: unknown time zone 'Mars/Base'$"),
        # Sunday ranges croniter read as every day
        ("0 0 * * 0-0", "UTC", r"^day-of-week '0-0' now means 0, was 0,1,2,3,4,5,6$"),
        ("0 0 * * 7-7", "UTC", r"^day-of-week '7-7' now means 0, was 0,1,2,3,4,5,6$"),
        ("0 0 * * Sun-Sun", "UTC", r"^day-of-week 'Sun-Sun' now means 0, was"),
        # croniter read any one-value range as the whole field
        ("0 0 14-14 * *", "UTC", r"^day-of-month '14-14' now means 14, was 1,2,3,.*,31$"),
        ("0 9-9 * 8-8 *", "UTC", r"^hour '9-9' now means 9, was 0,1,.*; month '8-8'"),
        # the `*` prefix makes the day fields combine with AND
        (
            "0 16 */2 * sat",
            "UTC",
            r"^day-of-month '\*/2' and day-of-week 'sat' now combine with AND .*, was OR$",
        ),
        ("0 0 1,15 * */2", "UTC", r"now combine with AND"),
        # DST: real time now (no fire at the end of the gap; both copies of a repeated hour)
        (
            "7 * * * *",
            "Europe/London",
            r"^DST change of 2026-03-29 in Europe/London: runs in real time .*; "
            r"no longer at 01:00Z$",
        ),
        (
            "* 1-6 * * *",
            "Europe/London",
            r"^DST change of 2026-10-25 .*now also at 01:00Z 01:01Z 01:02Z \(\+57 more\)$",
        ),
        ("0 */2 * * *", "America/New_York", r"^DST change of 2026-03-08 .*no longer at 07:00Z$"),
        ("0 * * * *", "Australia/Lord_Howe", r"^DST change of 2026-10-04 .*no longer at 15:30Z$"),
    ],
)
def test_changed_meaning(expr: str, tz: str, reason: str) -> None:
    assert re.search(reason, "; ".join(cron_changes(expr, tz, NOW)))


@pytest.mark.parametrize(
    ("expr", "tz"),
    [
        ("30 9 * * 1-5", "America/New_York"),
        ("30 1 * * *", "Europe/London"),  # fixed time: the same rules as before
        ("0 * * * *", "Europe/London"),  # the gap's end 02:00 BST is a fire anyway
        ("*/15 * * * *", "America/New_York"),
        ("7 * * * *", "UTC"),  # no DST, no difference
        ("0 0 * * 5-7", "UTC"),
        ("0 0 1-31 * 1", "UTC"),
        ("0 0 */2 * *", "UTC"),
        ("@weekly", "Europe/Berlin"),
        ("0 0 * * 0,7", "UTC"),
        ("*,5 * * * *", "UTC"),  # croniter lists "*" beside the other values
        ("0 0 * * *,1", "UTC"),
    ],
)
def test_unchanged_meaning(expr: str, tz: str) -> None:
    assert cron_changes(expr, tz, NOW) == []


def test_several_reasons_for_one_expression() -> None:
    # 2026-03-29 is an odd Sunday: the job fires on the day London springs forward.
    reasons = cron_changes("30 * */2 * 0-0", "Europe/London", NOW)
    assert [r.split(" ")[0] for r in reasons] == ["day-of-week", "DST"]
    reasons = cron_changes("30 * 1-31/2 * */7", "Europe/London", NOW)
    assert [r.split(" ")[0] for r in reasons] == ["day-of-month", "DST"]
    assert "now combine with AND" in reasons[0]


def test_dst_is_looked_for_in_the_year_after_now() -> None:
    later = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)  # after the spring change
    assert cron_changes("7 * * * *", "Europe/London", later) == [
        "DST change of 2027-03-28 in Europe/London: runs in real time (its minute or hour "
        "field starts with '*'); no longer at 01:00Z"
    ]


def _job(job_id: str, cron: object, tz: str | None = None, user: str = "u1") -> dict:
    schedule: dict = {"recurring": True, "cron_expression": cron, "execute_at": NOW}
    if tz:
        schedule["timezone"] = tz
    return {
        "job_id": job_id,
        "user_id": user,
        "job_type": "noop",
        "status": "pending",
        "schedule": schedule,
    }


def _seed(db) -> None:
    db.users.insert_one({"user_id": "london", "preferences": {"timezone": "Europe/London"}})
    db.scheduled_jobs.insert_many(
        [
            _job("ok", "30 9 * * *", "Europe/Berlin"),
            _job("reversed", "5-1 * * * *", "UTC"),
            _job("sunday", "0 0 * * 7-7", "UTC"),
            _job("user_zone", "7 * * * *", user="london"),  # the user's zone applies
            _job("no_zone", "7 * * * *", user="nobody"),  # UTC: no DST
            _job("not_a_string", 42, "UTC"),
            {
                "job_id": "one_off",
                "user_id": "u1",
                "job_type": "noop",
                "status": "pending",
                "schedule": {"execute_at": NOW},
            },
        ]
    )


def test_review_stored_jobs(db) -> None:
    _seed(db)
    rows = review_stored_jobs(db, NOW)
    assert [r["job_id"] for r in rows] == ["not_a_string", "reversed", "sunday", "user_zone"]
    by_id = {r["job_id"]: r for r in rows}
    assert by_id["user_zone"]["timezone"] == "Europe/London"
    assert by_id["user_zone"]["reasons"][0].startswith("DST change of 2026-03-29")
    assert by_id["reversed"]["status"] == "pending"
    assert by_id["not_a_string"]["reasons"] == [
        "refused now: cron_expression 42 / timezone 'UTC' is not a string"
    ]


@pytest.fixture
def mmw(settings, monkeypatch):
    monkeypatch.setenv("MMW_EMBEDDED_PATH", str(settings.embedded_path))
    monkeypatch.setenv("MMW_MONGODB_DB", settings.mongodb_db)
    if settings.mongodb_url:
        monkeypatch.setenv("MONGODB_URL", settings.mongodb_url)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def test_check_cron_command(mmw, db) -> None:
    # Wall time (the command's clock): every listed reason here holds on any date.
    result = mmw("jobs", "check-cron")
    assert (result.exit_code, result.output) == (0, "no stored cron expression changed meaning\n")
    _seed(db)
    result = mmw("jobs", "check-cron")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1].startswith(
        "reversed  '5-1 * * * *' (UTC): refused now: invalid cron expression '5-1 * * * *': "
        "minute field '5-1': reversed range"
    )
    assert (
        lines[2] == "sunday  '0 0 * * 7-7' (UTC): day-of-week '7-7' now means 0, was 0,1,2,3,4,5,6"
    )
    assert lines[3].startswith("user_zone  '7 * * * *' (Europe/London): DST change of ")
    result = mmw("jobs", "check-cron", "--json")
    assert result.exit_code == 1
    rows = json.loads(result.output)
    assert [r["job_id"] for r in rows] == ["not_a_string", "reversed", "sunday", "user_zone"]
    assert rows[2] == {
        "job_id": "sunday",
        "user_id": "u1",
        "status": "pending",
        "cron_expression": "0 0 * * 7-7",
        "timezone": "UTC",
        "reasons": ["day-of-week '7-7' now means 0, was 0,1,2,3,4,5,6"],
    }
