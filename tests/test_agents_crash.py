"""A worker process killed (SIGKILL) in the middle of an agent task: the run is taken over when
its lease expires, the task completes once, completed tasks do not run again and no draft is
duplicated. On the embedded engine, or on a real server with ``MONGODB_TEST_URL``."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import MONGODB_TEST_URL
from tests.test_agents_campaign import PUBLISHING, USER, drain, seed, statuses
from worker.actors.lifecycle import Runner
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_key_for
from worker.settings import Settings

pytestmark = pytest.mark.crash

LEASE = 1.5

CHILD = """
import sys, time
import worker.actors
from worker.actors.lifecycle import Runner
from worker.agents import team
from worker.db.client import open_embedded, open_mongodb
from worker.db.jobs import run_key_for
from worker.settings import Settings

url, location, name, job_id, epoch = sys.argv[1:6]
db = open_mongodb(url, name) if url else open_embedded(location, name)
real = team.WORKERS["content_writer"]

def killed_midway(run):
    work = real(run)  # the drafts are written ...
    print("WROTE", flush=True)
    time.sleep(60)  # ... and the process is killed here, before the task completes
    return work

team.WORKERS["content_writer"] = killed_midway
settings = Settings(
    OPENAI_API_KEY=None, approval_steps=[], lease_seconds=float(sys.argv[6]),
    embedding_dimensions=128,
)
job = db.scheduled_jobs.find_one({"job_id": job_id})
Runner(db, settings).execute(job["job_type"], job_id, run_key_for(job), int(epoch))
"""


class RealClock:
    """The wall clock with the ``now`` attribute the drain helper reads."""

    @property
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_sigkilled_agent_task_resumes_once(db: Database, db_location: dict[str, str]) -> None:
    clock = RealClock()
    settings = Settings(
        OPENAI_API_KEY=None,
        approval_steps=[],
        lease_seconds=LEASE,
        embedding_dimensions=128,
    )
    runner = Runner(db, settings, clock=clock)
    seed(db, clock)
    claimed = run_until_claimed(db, runner, clock, "agent_task:camp_1:t2")

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            MONGODB_TEST_URL or "",
            db_location["folder"],
            db.name,
            claimed["job_id"],
            str(claimed["epoch"]),
            str(LEASE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "WROTE", child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert statuses(db)["t2"] == "in_progress"
    assert db.content_library.count_documents({"campaign_id": "camp_1"}) == 5

    time.sleep(LEASE + 0.2)  # the dead worker's lease runs out
    drain(db, runner, clock)
    runner.close()

    assert db.campaigns.find_one({"campaign_id": "camp_1"})["status"] == "completed"
    job = db.scheduled_jobs.find_one({"job_id": "agent_task:camp_1:t2"})
    assert job["status"] == "completed" and job["attempts"] == 2
    assert db.content_library.count_documents({"campaign_id": "camp_1"}) == 5
    completed = Counter(
        e["data"]["task_id"]
        for e in db.agent_events.find({"user_id": USER, "event_type": "task_completed"})
    )
    assert completed == dict.fromkeys(["plan", "t1", "t2", "t3", "t4", "t5"], 1)
    started = Counter(
        e["data"]["task_id"]
        for e in db.agent_events.find({"user_id": USER, "event_type": "task_started"})
    )
    assert started["t1"] == 1 and started["t2"] == 2  # killed run + resumed run
    assert db.scheduled_jobs.count_documents({"job_type": "agent_task"}) == 5


def run_until_claimed(db: Database, runner: Runner, clock: RealClock, job_id: str) -> dict:
    """Run due jobs until ``job_id`` is claimed; return it claimed but not run."""
    store = JobStore(db)
    for _ in range(10):
        for job in store.claim_due(
            clock.now,
            owner="test",
            limit=100,
            queued_lease=dt.timedelta(minutes=5),
            paused_types=PUBLISHING,
        ):
            if job["job_id"] == job_id:
                return job
            runner.execute(job["job_type"], job["job_id"], run_key_for(job), job["epoch"])
    raise AssertionError(f"{job_id} never came due")
