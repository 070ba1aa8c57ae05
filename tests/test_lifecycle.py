"""The execution lifecycle, driven directly (no broker): fencing, retries, outcomes, leases."""

from __future__ import annotations

import datetime as dt

import pytest
from dramatiq.middleware import TimeLimitExceeded

from tests.helpers import job_doc
from worker.actors.lifecycle import JobContext, Runner
from worker.audit import move_outbox
from worker.db.jobs import JobStore
from worker.errors import OutcomeUnknown, PermanentFailure, RetryLater
from worker.scheduler import Scheduler


class Script:
    """An actor whose behaviour per attempt is scripted; records every call."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[JobContext] = []

    def __call__(self, ctx: JobContext) -> object:
        self.calls.append(ctx)
        outcome = self.outcomes.pop(0) if self.outcomes else {"ok": True}
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def runner(db, settings, clock, script):
    r = Runner(db, settings, clock=clock, handlers={"noop": script, "sync_analytics": script})
    yield r
    r.close()


@pytest.fixture
def scheduler(db, stub_broker, settings, clock):
    from worker.broker import declare_queues
    from worker.jobtypes import JOB_TYPES

    declare_queues(stub_broker, (t.queue for t in JOB_TYPES.values()))
    return Scheduler(db, stub_broker, settings, clock=clock)


def claim_one(db, scheduler, clock, **fields):
    doc = job_doc(at=clock.now, **fields)
    db.scheduled_jobs.insert_one(doc)
    report = scheduler.tick()
    assert report.dispatched == 1, report
    job = db.scheduled_jobs.find_one({"job_id": doc["job_id"]})
    return job, JobStore(db)


def message_args(job):
    from worker.db.jobs import run_key_for

    return job["job_id"], run_key_for(job), job["epoch"]


def test_success_records_result_history_and_audit(db, scheduler, runner, clock, script):
    job, _ = claim_one(db, scheduler, clock)
    runner.execute("noop", *message_args(job))
    done = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert done["status"] == "completed"
    assert done["result"] == {"ok": True}
    assert done["executed_at"] == clock.now
    assert done["purge_at"] > clock.now
    assert "lease" not in done
    assert len(script.calls) == 1 and script.calls[0].run_key.startswith(job["job_id"] + "@")
    assert move_outbox(db) == 3  # the scheduler moves a run's entries once it has ended
    actions = [a["action"] for a in db.audit_log.find({"resource_id": job["job_id"]})]
    # job_dispatched was buffered and written by the poll itself
    assert actions == ["job_dispatched", "job_claimed", "job_started", "job_completed"]
    assert db.scheduled_jobs.find_one({"job_id": job["job_id"]})["audit_outbox"] == []


def test_duplicate_and_stale_messages_do_nothing(db, scheduler, runner, clock, script):
    job, _ = claim_one(db, scheduler, clock)
    args = message_args(job)
    runner.execute("noop", *args)
    runner.execute("noop", *args)  # duplicate delivery
    runner.execute("noop", args[0], args[1], args[2] - 1)  # stale epoch
    assert len(script.calls) == 1


def test_error_retries_with_backoff_then_fails(db, scheduler, runner, clock, script, settings):
    script.outcomes = [RuntimeError("boom 1"), RuntimeError("boom 2"), RuntimeError("boom 3")]
    job, _ = claim_one(db, scheduler, clock, max_attempts=3)
    first_key = message_args(job)[1]
    for attempt in (1, 2):
        runner.execute("noop", *message_args(job))
        job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
        assert job["status"] == "pending" and job["attempts"] == attempt
        delay = (job["schedule"]["execute_at"] - clock.now).total_seconds()
        ceiling = min(
            settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1)
        )
        assert ceiling / 2 <= delay <= ceiling
        assert scheduler.tick().dispatched == 0  # not due yet
        clock.advance(seconds=delay)
        assert scheduler.tick().dispatched == 1
        job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
        assert message_args(job)[1] == first_key  # same run, same key
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "failed"
    assert "boom 3" in job["error"] and "gave up after 3 attempts" in job["error"]
    assert [h["status"] for h in job["history"]] == ["retry", "retry", "failed"]


def test_retry_later_delay_is_honoured(db, scheduler, runner, clock, script):
    script.outcomes = [RetryLater("rate limited", delay=120)]
    job, _ = claim_one(db, scheduler, clock)
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["schedule"]["execute_at"] - clock.now >= dt.timedelta(seconds=120)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (PermanentFailure("bad content"), "bad content"),
        (OutcomeUnknown("post may exist"), "outcome unknown, needs review: post may exist"),
    ],
)
def test_permanent_outcomes_fail_at_once(db, scheduler, runner, clock, script, exc, text):
    script.outcomes = [exc]
    job, _ = claim_one(db, scheduler, clock, max_attempts=5)
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "failed" and job["error"] == text and job["attempts"] == 1


def test_time_limit_is_a_retryable_error(db, scheduler, runner, clock, script):
    script.outcomes = [TimeLimitExceeded()]
    job, _ = claim_one(db, scheduler, clock)
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "pending" and "time limit of 3600s exceeded" in job["error"]


def test_secrets_never_reach_results_or_errors(db, scheduler, runner, clock, script):
    script.outcomes = [{"access_token": "sekrit", "ok": 1}]
    job, _ = claim_one(db, scheduler, clock)
    runner.execute("noop", *message_args(job))
    assert db.scheduled_jobs.find_one({"job_id": job["job_id"]})["result"] == {
        "access_token": "[redacted]",
        "ok": 1,
    }
    script.outcomes = [RuntimeError("401 for Authorization: Bearer abc.def")]
    job, _ = claim_one(db, scheduler, clock)
    runner.execute("noop", *message_args(job))
    error = db.scheduled_jobs.find_one({"job_id": job["job_id"]})["error"]
    assert "abc.def" not in error and "[redacted]" in error


def test_zombie_worker_cannot_write_after_takeover(db, scheduler, runner, clock, script, settings):
    job, _ = claim_one(db, scheduler, clock)
    old_args = message_args(job)

    def slow(ctx: JobContext) -> dict:
        # While this worker "hangs", its lease expires and another scheduler takes over.
        clock.advance(seconds=settings.lease_seconds + 1)
        assert scheduler.tick().recovered == 1
        return {"zombie": True}

    runner.handlers["noop"] = slow
    runner.execute("noop", *old_args)
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "processing" and job["epoch"] == old_args[2] + 1
    assert "result" not in job  # the zombie's outcome was fenced off
    runner.handlers["noop"] = script
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "completed" and job["result"] == {"ok": True}


def test_ensure_owner_raises_after_heartbeat_finds_takeover(db, scheduler, runner, clock):
    job, _ = claim_one(db, scheduler, clock)
    seen = {}

    def actor(ctx: JobContext) -> dict:
        db.scheduled_jobs.update_one({"job_id": ctx.job_id}, {"$inc": {"epoch": 1}})
        runner.keeper.beat()
        try:
            ctx.ensure_owner()
        except Exception as exc:
            seen["exc"] = type(exc).__name__
            raise
        return {}

    runner.handlers["noop"] = actor
    runner.execute("noop", *message_args(job))
    assert seen["exc"] == "LeaseLost"


def test_heartbeat_extends_the_lease(db, scheduler, runner, clock, settings):
    job, _ = claim_one(db, scheduler, clock)

    def actor(ctx: JobContext) -> dict:
        clock.advance(seconds=settings.lease_seconds * 0.9)
        runner.keeper.beat()
        doc = db.scheduled_jobs.find_one({"job_id": ctx.job_id})
        assert doc["lease"]["until"] == clock.now + dt.timedelta(seconds=settings.lease_seconds)
        return {}

    runner.handlers["noop"] = actor
    runner.execute("noop", *message_args(job))
    assert db.scheduled_jobs.find_one({"job_id": job["job_id"]})["status"] == "completed"


def test_recurring_job_waits_for_next_fire(db, scheduler, runner, clock):
    clock.now = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
    job, _ = claim_one(
        db,
        scheduler,
        clock,
        schedule={
            "execute_at": clock.now,
            "recurring": True,
            "cron_expression": "0 9 * * *",
            "timezone": "Europe/Berlin",
        },
    )
    runner.execute("noop", *message_args(job))
    job = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert job["status"] == "pending" and job["attempts"] == 0
    assert job["schedule"]["execute_at"] == dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    assert job["result"] == {"ok": True}


def test_cancelled_job_never_starts(db, scheduler, runner, clock, script):
    from worker.api import cancel

    job, _ = claim_one(db, scheduler, clock)
    cancel(db, job["job_id"], now=clock.now)
    runner.execute("noop", *message_args(job))
    assert script.calls == []
    assert db.scheduled_jobs.find_one({"job_id": job["job_id"]})["status"] == "cancelled"
