"""The submission API: validation, idempotency, cancel, retry, pause, fire previews."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from worker import api


def test_submit_one_off_and_recurring(db, clock):
    job = api.submit(
        db,
        job_type="post_social",
        user_id="u1",
        payload={"post_id": "p1"},
        execute_at=clock.now,
        now=clock.now,
    )
    stored = api.get(db, job["job_id"])
    assert stored["status"] == "pending" and stored["max_attempts"] == 6
    assert stored["schedule"] == {"execute_at": clock.now, "recurring": False}
    db.users.insert_one({"user_id": "u2", "preferences": {"timezone": "Australia/Sydney"}})
    rec = api.submit(db, job_type="sync_analytics", user_id="u2", cron="0 6 * * *", now=clock.now)
    assert rec["schedule"]["timezone"] == "Australia/Sydney"
    local = clock.now.astimezone(ZoneInfo("Australia/Sydney"))
    six = local.replace(hour=6, minute=0, second=0, microsecond=0)
    six += dt.timedelta(days=1) if six <= local else dt.timedelta(0)  # wall-clock days
    assert rec["schedule"]["execute_at"] == six.astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_type": "nope"}, "unknown job_type 'nope'"),
        ({"job_type": "post_social", "payload": {}}, "payload.post_id: Field required"),
        ({"job_type": "noop", "cron": "every day"}, "invalid cron expression 'every day'"),
        ({"job_type": "noop", "cron": "0 9 * * *", "timezone": "Nowhere"}, "unknown time zone"),
        (
            {"job_type": "noop", "max_attempts": 0},
            "'max_attempts' must be a whole number from 1 to 100",
        ),
        ({"job_type": "noop", "execute_at": dt.datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_submit_rejects_invalid_jobs(db, kwargs, message):
    with pytest.raises(api.InvalidJob, match=message):
        api.submit(db, user_id="u1", **kwargs)
    assert db.scheduled_jobs.count_documents({}) == 0


def test_idempotency_key_creates_one_job(db, clock):
    first = api.submit(db, job_type="noop", user_id="u1", idempotency_key="k1", now=clock.now)
    again = api.submit(db, job_type="noop", user_id="u1", idempotency_key="k1", now=clock.now)
    assert again["job_id"] == first["job_id"]
    assert db.scheduled_jobs.count_documents({}) == 1
    with pytest.raises(api.JobConflict, match="already names another job"):
        api.submit(db, job_type="sync_analytics", user_id="u1", idempotency_key="k1")


def test_cancel_only_before_start(db, clock):
    job = api.submit(db, job_type="noop", user_id="u1", now=clock.now)
    api.cancel(db, job["job_id"], now=clock.now)
    assert api.get(db, job["job_id"])["status"] == "cancelled"
    with pytest.raises(api.JobConflict, match="is cancelled"):
        api.cancel(db, job["job_id"])
    running = api.submit(db, job_type="noop", user_id="u1", now=clock.now)
    db.scheduled_jobs.update_one(
        {"job_id": running["job_id"]},
        {"$set": {"status": "processing", "lease": {"started_at": clock.now}}},
    )
    with pytest.raises(api.JobConflict, match="already running"):
        api.cancel(db, running["job_id"])


def test_retry_requeues_failed_job_with_same_run(db, clock):
    job = api.submit(db, job_type="noop", user_id="u1", execute_at=clock.now, now=clock.now)
    db.scheduled_jobs.update_one(
        {"job_id": job["job_id"]}, {"$set": {"status": "failed", "attempts": 3, "error": "x"}}
    )
    later = clock.advance(hours=1)
    api.retry(db, job["job_id"], now=later)
    requeued = api.get(db, job["job_id"])
    assert requeued["status"] == "pending" and requeued["attempts"] == 0
    assert requeued["schedule"]["execute_at"] == later
    assert requeued["run_at"] == job["schedule"]["execute_at"]  # same run key as before
    with pytest.raises(api.JobConflict, match="only failed jobs retry"):
        api.retry(db, job["job_id"])
    actions = {a["action"] for a in db.audit_log.find({"resource_id": job["job_id"]})}
    assert "job_requeued" in actions


def test_pause_needs_exactly_one_target(db):
    with pytest.raises(ValueError, match="exactly one"):
        api.pause(db, user_id="u1", job_type="noop")
    with pytest.raises(api.JobConflict, match="no job"):
        api.pause(db, job_id="missing")


def test_preview_fires_across_dst(db, clock):
    clock.now = dt.datetime(2026, 10, 30, 12, 0, tzinfo=dt.UTC)
    job = api.submit(
        db,
        job_type="noop",
        user_id="u1",
        cron="30 1 * * *",
        timezone="America/New_York",
        now=clock.now,
    )
    fires = api.preview_fires(job, 4, now=clock.now)
    assert fires == [
        dt.datetime(2026, 10, 31, 5, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC),  # once, in the first 01:30 (EDT)
        dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 3, 6, 30, tzinfo=dt.UTC),
    ]
