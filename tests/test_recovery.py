"""Recovery in seconds, with real processes and the DEFAULT recovery settings.

Each test makes one fault (a SIGKILLed worker group, a scheduler SIGKILLed between claim and
send, FLUSHDB of Redis, a Redis restart that loses the data) and measures the time from the fault
until every run is running again (started by a worker, or done). The times are printed; only a
generous bound is asserted (the queued lease of 600 s stays the last resort, far above it).
Afterwards the audit trail is counted against the state changes the job documents record.
"""

from __future__ import annotations

import collections
import datetime as dt
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import job_doc
from tests.processes import free_port, kill, process_env, start, wait_until

pytestmark = pytest.mark.crash

EXECUTIONS = "test_executions"
BOUND_SECONDS = 90.0

#: The settings recovery times depend on, at their defaults (tests/processes.py shortens some).
DEFAULTS = {
    "MMW_POLL_INTERVAL": "1.0",
    "MMW_LEASE_SECONDS": "60",
    "MMW_QUEUED_LEASE_SECONDS": "600",
    "MMW_WORKER_HEARTBEAT_TIMEOUT_MS": "60000",
    "MMW_RECOVERY_INTERVAL": "2.0",
    "MMW_SCHEDULER_HEARTBEAT_SECONDS": "5.0",
    "MMW_SCHEDULER_DEAD_AFTER_SECONDS": "30.0",
    "MMW_AUDIT_MOVE_INTERVAL": "2.0",
}


def due_jobs(n: int, prefix: str, **payload: float) -> list[dict]:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    return [
        job_doc("record", at=now, payload=dict(payload), max_attempts=5, job_id=f"{prefix}_{i:04d}")
        for i in range(n)
    ]


def starts(db) -> collections.Counter:
    return collections.Counter(e["job_id"] for e in db[EXECUTIONS].find({"event": "start"}))


def started_jobs(db) -> set[str]:
    return set(starts(db))


def done_per_job(db) -> collections.Counter:
    return collections.Counter(e["job_id"] for e in db[EXECUTIONS].find({"event": "done"}))


def measure(what: str, condition: Callable[[], bool], since: float, log: Path) -> float:
    """Seconds from ``since`` (the fault) until ``condition`` holds; printed for the report."""
    deadline = since + BOUND_SECONDS + 30
    while time.monotonic() < deadline:
        if condition():
            elapsed = time.monotonic() - since
            print(f"\n[recovery] {what}: every run running again {elapsed:.1f}s after the fault")
            return elapsed
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"{what}: runs not running again in time; log tail:\n{tail}")


def assert_audit_matches_state_changes(db, n: int, log: Path) -> None:
    """Every start and completion a job document records has its audit_log entry, once.

    Called while the scheduler still runs: it moves the outboxes.
    """
    wait_until(
        lambda: db.scheduled_jobs.count_documents({"audit_outbox.id": {"$exists": True}}) == 0,
        30,
        "audit outboxes moved",
        log,
    )
    audit = collections.Counter(
        (a["resource_id"], a["action"])
        for a in db.audit_log.find({}, {"resource_id": 1, "action": 1})
    )
    jobs = list(db.scheduled_jobs.find({}))
    assert len(jobs) == n
    for job in jobs:
        assert job["status"] == "completed", job
        assert audit[(job["job_id"], "job_started")] == job["attempts"], job["job_id"]
        assert audit[(job["job_id"], "job_completed")] == 1, job["job_id"]
        lost = [h for h in job["history"] if h["status"] == "lost"]
        assert len(lost) == job["attempts"] - 1, job  # every attempt but the last died
    done = done_per_job(db)
    assert len(done) == n and set(done.values()) == {1}, done


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (flushing or restarting it touches no one else)."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def launch() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return proc

    launch.port = port  # type: ignore[attr-defined]
    yield launch
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_killed_worker_group_runs_are_running_again_in_seconds(
    db, settings, redis_broker, tmp_path
):
    # 2 threads prefetch 4: when the kill comes 2 runs are mid-run and 2 wait in its prefetch.
    db.scheduled_jobs.insert_many(due_jobs(8, "wk", sleep_seconds=3))
    env = process_env(settings, **DEFAULTS)
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = start(["worker", "--processes", "1", "--threads", "2"], env, log)
    try:
        wait_until(lambda: len(started_jobs(db)) >= 2, 60, "2 runs started", log)
        kill(worker)  # SIGKILL to the whole group: the Dramatiq parent and its worker process
        fault = time.monotonic()
        at_kill = starts(db)
        unfinished = {j["job_id"] for j in db.scheduled_jobs.find({"status": {"$ne": "completed"}})}
        assert len(unfinished) >= 4
        worker = start(["worker", "--processes", "1", "--threads", "2"], env, log)

        def running_again() -> bool:
            now = starts(db)
            return all(now[j] > at_kill[j] for j in unfinished)

        elapsed = measure("SIGKILLed worker group", running_again, fault, log)
        wait_until(
            lambda: db.scheduled_jobs.count_documents({"status": "completed"}) == 8,
            60,
            "8 completed",
            log,
        )
        assert_audit_matches_state_changes(db, 8, log)
    finally:
        kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
    assert elapsed < BOUND_SECONDS
    lost = [
        j for j in db.scheduled_jobs.find({}) if any(h["status"] == "lost" for h in j["history"])
    ]
    assert lost, "the attempts killed mid-run stay in the run history"


def test_scheduler_killed_between_claim_and_send(db, settings, redis_broker, tmp_path):
    blocked = tmp_path / "blocked"
    env = process_env(settings, **DEFAULTS)
    log = tmp_path / "run.log"
    hooked = {
        **env,
        "MMW_PLUGINS": '["tests.crash_actors", "tests.block_send"]',
        "MMW_TEST_BLOCK_SEND": str(blocked),
    }
    first = start(["scheduler"], hooked, log)
    second = worker = None
    try:
        # Its first poll marks the Redis data as checked; then it claims and blocks in the send.
        marker = f"{settings.broker_namespace}:mmw.incarnation"
        wait_until(lambda: redis_broker.client.exists(marker) == 1, 60, "first poll", log)
        db.scheduled_jobs.insert_many(due_jobs(20, "sk"))
        wait_until(blocked.exists, 60, "claim blocked before the send", log)
        kill(first)
        fault = time.monotonic()
        claimed = db.scheduled_jobs.count_documents({"status": "processing"})
        assert (
            claimed == 20 and redis_broker.client.llen(f"{settings.broker_namespace}:default") == 0
        )
        second = start(["scheduler"], env, log)
        worker = start(["worker", "--processes", "1", "--threads", "4"], env, log)
        elapsed = measure("SIGKILLed scheduler", lambda: len(started_jobs(db)) == 20, fault, log)
        wait_until(
            lambda: db.scheduled_jobs.count_documents({"status": "completed"}) == 20,
            60,
            "20 completed",
            log,
        )
        assert_audit_matches_state_changes(db, 20, log)
    finally:
        for proc in (worker, second, first):
            if proc is not None:
                kill(proc, signal.SIGTERM)
    assert elapsed < BOUND_SECONDS
    assert {j["epoch"] for j in db.scheduled_jobs.find({})} == {1}  # re-sent, never re-claimed
    reasons = collections.Counter(
        a["details"]["reason"] for a in db.audit_log.find({"action": "job_recovered"})
    )
    assert reasons == {"scheduler_lost": 20}


@pytest.mark.parametrize("fault", ["flushdb", "restart"])
def test_redis_data_loss_runs_are_running_again_in_seconds(
    db, settings, private_redis, tmp_path, fault
):
    server = private_redis()
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    client = redis.Redis.from_url(url)
    settings.broker_url = url
    db.scheduled_jobs.insert_many(due_jobs(30, fault))
    env = process_env(settings, **DEFAULTS)
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = None
    try:
        queue = f"{settings.broker_namespace}:default"
        wait_until(lambda: client.llen(queue) == 30, 60, "30 messages queued", log)
        if fault == "flushdb":
            client.flushdb()
        else:  # killed and started again without persistence: an empty server, a new run_id
            server.kill()
            server.wait(timeout=10)
            private_redis()
        moment = time.monotonic()
        worker = start(["worker", "--processes", "1", "--threads", "4"], env, log)
        elapsed = measure(f"Redis {fault}", lambda: len(started_jobs(db)) == 30, moment, log)
        wait_until(
            lambda: db.scheduled_jobs.count_documents({"status": "completed"}) == 30,
            60,
            "30 completed",
            log,
        )
        assert_audit_matches_state_changes(db, 30, log)
    finally:
        if worker is not None:
            kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
    assert elapsed < BOUND_SECONDS
    assert db.audit_log.count_documents({"action": "job_recovered"}) == 30
