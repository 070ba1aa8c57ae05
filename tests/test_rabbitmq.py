"""The RabbitMQ option (`BROKER_URL=amqp://…`): a job dispatched by the scheduler runs once.

Uses the local RabbitMQ (guest/guest on 5672, or MMW_TEST_AMQP_URL) on a queue of its own, which
it deletes afterwards. Skipped where no RabbitMQ answers, unless MMW_TEST_AMQP_URL names one
(then a missing server fails the test, as in the GitHub workflow).
"""

from __future__ import annotations

import os
import time
import uuid

import dramatiq
import pytest

from worker.actors.lifecycle import Runner, entrypoint, set_runner
from worker.actors.noop import noop
from worker.api import submit
from worker.broker import build_broker, declare_actors, declare_queues
from worker.jobtypes import JOB_TYPES, JobType, NoopPayload
from worker.scheduler import Scheduler

pytestmark = pytest.mark.integration

REQUIRED = "MMW_TEST_AMQP_URL" in os.environ
AMQP_URL = os.environ.get("MMW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _rabbitmq_reachable() -> bool:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL + "?socket_timeout=2")).close()
    except Exception:
        return False
    return True


@pytest.fixture
def amqp_settings(settings):
    if not _rabbitmq_reachable():
        if REQUIRED:
            pytest.fail(f"MMW_TEST_AMQP_URL is set but no RabbitMQ answers at {AMQP_URL}")
        pytest.skip(f"no RabbitMQ at {AMQP_URL}")
    return settings.model_copy(update={"broker_url": AMQP_URL})


def test_job_runs_once_through_rabbitmq(db, amqp_settings, clock):
    suffix = uuid.uuid4().hex[:8]
    job_type = JobType(f"noop_amqp_{suffix}", NoopPayload, f"mmwtest-{suffix}")
    JOB_TYPES[job_type.name] = job_type
    broker = build_broker(amqp_settings)
    runner = Runner(db, amqp_settings, clock=clock, handlers={job_type.name: noop})
    set_runner(runner)

    declare_actors(broker, {job_type.name: entrypoint(job_type.name)})
    declare_queues(broker, [job_type.queue])
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        job = submit(db, job_type=job_type.name, user_id="u1", now=clock.now)
        report = Scheduler(db, broker, amqp_settings, clock=clock).tick()
        assert report.dispatched == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
            if done["status"] == "completed":
                break
            time.sleep(0.05)
        assert done["status"] == "completed" and done["attempts"] == 1
        assert [h["status"] for h in done["history"]] == ["completed"]
    finally:
        worker.stop()
        runner.close()
        set_runner(None)
        del JOB_TYPES[job_type.name]
        channel = broker.channel
        for name in (job_type.queue, f"{job_type.queue}.DQ", f"{job_type.queue}.XQ"):
            channel.queue_delete(name)
        broker.close()


def test_queue_older_than_a_lease_is_never_made_stale(db, amqp_settings, clock):
    """RabbitMQ cannot be asked whether a message exists: re-sends keep the epoch, first wins."""
    suffix = uuid.uuid4().hex[:8]
    job_type = JobType(f"noop_amqp_{suffix}", NoopPayload, f"mmwtest-{suffix}")
    JOB_TYPES[job_type.name] = job_type
    broker = build_broker(amqp_settings)
    runner = Runner(db, amqp_settings, clock=clock, handlers={job_type.name: noop})
    set_runner(runner)
    declare_actors(broker, {job_type.name: entrypoint(job_type.name)})
    declare_queues(broker, [job_type.queue])
    worker = None
    try:
        jobs = [submit(db, job_type=job_type.name, user_id="u1", now=clock.now) for _ in range(3)]
        scheduler = Scheduler(db, broker, amqp_settings, clock=clock)
        assert scheduler.tick().dispatched == 3
        # No worker for two queued leases: each lease expiry re-sends, and nothing gets stale.
        for _ in range(2):
            clock.advance(seconds=amqp_settings.queued_lease_seconds + 1)
            report = scheduler.tick()
            assert (report.recovered, report.dispatched) == (3, 3)
        assert {d["epoch"] for d in db.scheduled_jobs.find({})} == {1}
        deadline = time.monotonic() + 10  # publishes are not confirmed: let them land
        while broker.get_queue_message_counts(job_type.queue)[0] < 9 and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert broker.get_queue_message_counts(job_type.queue)[0] == 9  # three copies of each
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        deadline = time.monotonic() + 20
        ids = [j["job_id"] for j in jobs]
        while time.monotonic() < deadline:
            if (
                db.scheduled_jobs.count_documents({"job_id": {"$in": ids}, "status": "completed"})
                == 3
            ):
                break
            time.sleep(0.05)
        broker.join(job_type.queue, timeout=20_000)
        for job in db.scheduled_jobs.find({"job_id": {"$in": ids}}):
            # The first copy started the run (epoch 1, one attempt); the other two did nothing.
            assert job["status"] == "completed" and job["attempts"] == 1 and job["epoch"] == 1
            assert [h["status"] for h in job["history"]] == ["completed"]
    finally:
        if worker is not None:
            worker.stop()
        runner.close()
        set_runner(None)
        del JOB_TYPES[job_type.name]
        channel = broker.channel
        for name in (job_type.queue, f"{job_type.queue}.DQ", f"{job_type.queue}.XQ"):
            channel.queue_delete(name)
        broker.close()
