"""A job inserted into MongoDB runs once on a real Redis broker with real worker threads."""

from __future__ import annotations

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
