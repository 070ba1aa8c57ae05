"""A job inserted into MongoDB runs once on a real Redis broker with real worker threads."""

from __future__ import annotations

import datetime as dt
import time

import dramatiq
import pytest

import worker.actors  # noqa: F401 - registers handlers
from worker.actors.lifecycle import Runner, declare_job_actors, set_runner
from worker.api import submit
from worker.scheduler import Scheduler

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def running(db, settings, redis_broker, clock):
    runner = Runner(db, settings, clock=clock)
    set_runner(runner)
    declare_job_actors(redis_broker)
    worker = dramatiq.Worker(redis_broker, worker_threads=4, worker_timeout=50)
    worker.start()
    yield Scheduler(db, redis_broker, settings, clock=clock)
    worker.stop()
    runner.close()
    set_runner(None)


def test_one_off_job_runs_once_and_is_recorded(db, running, clock):
    job = submit(db, job_type="noop", user_id="u1", execute_at=clock.now)
    report = running.tick()
    assert report.claimed == 1 and report.dispatched == 1
    wait_for(lambda: db.scheduled_jobs.find_one({"job_id": job["job_id"]})["status"] == "completed")
    done = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert done["result"] == {"ok": True}
    assert done["attempts"] == 1
    assert [h["status"] for h in done["history"]] == ["completed"]
    assert running.tick().claimed == 0


def test_recurring_job_runs_each_fire_and_keeps_history(db, running, clock):
    job = submit(db, job_type="noop", user_id="u1", cron="*/5 * * * *", now=clock.now)
    assert job["schedule"]["execute_at"] == clock.advance(minutes=5)
    for fire in range(1, 4):
        assert running.tick().dispatched == 1
        wait_for(
            lambda n=fire: (
                len(db.scheduled_jobs.find_one({"job_id": job["job_id"]}).get("history", [])) == n
            )
        )
        stored = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
        assert stored["status"] == "pending"
        assert stored["schedule"]["execute_at"] == clock.now + dt.timedelta(minutes=5)
        clock.advance(minutes=5)
    keys = [h["run_key"] for h in stored["history"]]
    assert len(set(keys)) == 3 and all(h["status"] == "completed" for h in stored["history"])


def test_failing_job_retries_with_backoff_then_fails(db, running, clock, settings):
    from worker.actors.lifecycle import HANDLERS

    def always_fails(ctx):
        raise RuntimeError("the platform is down")

    original = HANDLERS["noop"]
    HANDLERS["noop"] = always_fails
    try:
        job = submit(db, job_type="noop", user_id="u1", max_attempts=3, now=clock.now)
        for attempt in range(1, 4):
            assert running.tick().dispatched == 1
            wait_for(
                lambda n=attempt: (
                    db.scheduled_jobs.find_one({"job_id": job["job_id"]})["attempts"] == n
                    and db.scheduled_jobs.find_one({"job_id": job["job_id"]})["status"]
                    != "processing"
                )
            )
            stored = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
            if attempt < 3:
                delay = (stored["schedule"]["execute_at"] - clock.now).total_seconds()
                assert settings.backoff_base_seconds * 2 ** (attempt - 1) / 2 <= delay
                clock.advance(seconds=delay)
    finally:
        HANDLERS["noop"] = original
    assert stored["status"] == "failed"
    assert stored["error"] == "RuntimeError: the platform is down (gave up after 3 attempts)"
    assert [h["status"] for h in stored["history"]] == ["retry", "retry", "failed"]
