"""The agent DAG under concurrency: threads racing on the same campaign and task records.

A campaign already executing (t1 done; t2 and t3 after t1; t4 after both) runs its jobs on
worker threads at the same moment, through the real Runner. Whatever the interleaving, the
``agent_tasks`` record decides and the plan mirrors it: a task that started finishes with its
own outcome, a task that had not started when a sibling failed is skipped and never runs.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import worker.actors  # noqa: F401 - registers the actors
from worker.actors.lifecycle import Runner
from worker.agents import team
from worker.agents.orchestrator import Orchestrator
from worker.api import submit
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_key_for
from worker.errors import PermanentFailure
from worker.settings import Settings

USER = "user_r"
AGENT_OF = {"t1": "strategist", "t2": "content_writer", "t3": "analyst", "t4": "email_marketer"}


@pytest.fixture
def runner(tmp_path: Path, db: Database, clock: Any) -> Iterator[Runner]:
    settings = Settings(
        OPENAI_API_KEY=None,
        mongodb_db=db.name,
        embedded_path=tmp_path / "mongo",
        approval_steps=[],
        embedding_dimensions=32,
    )
    runner = Runner(db, settings, clock=clock)
    yield runner
    runner.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Agents that count their runs; t3's analyst fails for good."""
    counted: Counter[str] = Counter()
    lock = threading.Lock()

    def agent(name: str) -> Callable[[team.AgentRun], team.Work]:
        def run(work_run: team.AgentRun) -> team.Work:
            with lock:
                counted[work_run.task["task_id"]] += 1
            if name == "analyst":
                raise PermanentFailure("analytics source unavailable")
            return team.Work({"by": name})

        return run

    for name in AGENT_OF.values():
        monkeypatch.setitem(team.WORKERS, name, agent(name))
    return counted


def executing_campaign(db: Database, clock: Any, campaign_id: str) -> None:
    deps = {"t1": [], "t2": ["t1"], "t3": ["t1"], "t4": ["t2", "t3"]}
    tasks = [
        {
            "task_id": t,
            "agent_assigned": AGENT_OF[t],
            "dependencies": deps[t],
            "description": t,
            "status": "completed" if t == "t1" else "pending",
        }
        for t in AGENT_OF
    ]
    db.campaigns.insert_one(
        {
            "campaign_id": campaign_id,
            "user_id": USER,
            "name": "race",
            "brief": {"product": "p", "channels": ["email"]},
            "status": "executing",
            "plan": {"strategy": "s", "tasks": tasks},
            "results": None,  # as another app may write it
            "created_at": clock.now,
        }
    )
    db.agent_tasks.insert_one(
        {
            "task_id": f"{campaign_id}:t1",
            "campaign_id": campaign_id,
            "user_id": USER,
            "plan_task_id": "t1",
            "agent_name": "strategist",
            "status": "completed",
            "result": {"strategy": "s"},
            "started_at": clock.now,
        }
    )


def run_at_once(db: Database, runner: Runner, clock: Any, job_ids: list[str]) -> None:
    """Claim the jobs and execute them on one thread each, released together."""
    lease = dt.timedelta(minutes=5)
    claimed = JobStore(db).claim_due(clock.now, owner="test", limit=100, queued_lease=lease)
    jobs = {j["job_id"]: j for j in claimed}
    assert set(job_ids) <= set(jobs)
    barrier = threading.Barrier(len(job_ids))

    def execute(job: dict[str, Any]) -> None:
        barrier.wait()
        runner.execute(job["job_type"], job["job_id"], run_key_for(job), job["epoch"])

    threads = [threading.Thread(target=execute, args=(jobs[j],)) for j in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


def campaign_status(db: Database, campaign_id: str) -> str:
    return db.campaigns.find_one({"campaign_id": campaign_id})["status"]


def submit_task(db: Database, clock: Any, campaign_id: str, task_id: str, job_id: str) -> str:
    payload = {"campaign_id": campaign_id, "task_id": task_id}
    submit(db, job_type="agent_task", user_id=USER, payload=payload, job_id=job_id, now=clock.now)
    return job_id


def test_a_failure_skips_only_tasks_that_have_not_started(
    db: Database, runner: Runner, clock: Any, calls: Counter[str]
) -> None:
    for round_ in range(8):  # interleavings differ from round to round
        campaign_id = f"camp_{round_}"
        executing_campaign(db, clock, campaign_id)
        jobs = [
            submit_task(db, clock, campaign_id, t, f"agent_task:{campaign_id}:{t}")
            for t in ("t2", "t3")
        ]
        run_at_once(db, runner, clock, jobs)
        doc = db.campaigns.find_one({"campaign_id": campaign_id})
        assert doc["status"] == "failed"
        assert doc["error"] == "task t3 (analyst) failed: analytics source unavailable"
        records = {r["plan_task_id"]: r for r in db.agent_tasks.find({"campaign_id": campaign_id})}
        plan = {t["task_id"]: t for t in doc["plan"]["tasks"]}
        for task_id, entry in plan.items():
            if task_id in records:  # it started: the plan shows the record's own outcome
                assert entry["status"] == records[task_id]["status"], (round_, task_id)
            else:  # it never started: skipped
                assert entry["status"] == "failed" and entry["error"].startswith("skipped: ")
        assert plan["t3"]["status"] == "failed"
        assert plan["t4"]["error"] == "skipped: dependency t3 failed"
        assert "t4" not in records
        if "t2" in records:  # a sibling that ran completed and kept its result
            assert records["t2"]["status"] == "completed"
            assert doc["results"]["task_results"]["t2"] == {"by": "content_writer"}
    ran = sum(1 for r in db.agent_tasks.find({"plan_task_id": "t2"}))
    assert calls["t2"] == ran and calls["t3"] == 8 and calls["t4"] == 0


def test_a_sibling_that_started_while_another_fails_completes(
    db: Database, runner: Runner, clock: Any, calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """t2 has started (its record exists, its agent has not run yet) when t3 fails: t2 is not
    skipped, and its completion stands in the record and the plan alike."""
    hand_off = Orchestrator._hand_off

    def waits_for_the_failure(self: Orchestrator, task: dict[str, Any]) -> None:
        deadline = time.monotonic() + 10
        while task["task_id"] == "t2" and campaign_status(db, "camp_s") != "failed":
            assert time.monotonic() < deadline, "t3 never failed"
            time.sleep(0.01)
        hand_off(self, task)

    analyst = team.WORKERS["analyst"]

    def fails_once_t2_started(work_run: team.AgentRun) -> team.Work:
        deadline = time.monotonic() + 10
        while db.agent_tasks.find_one({"task_id": "camp_s:t2"}) is None:
            assert time.monotonic() < deadline, "t2 never started"
            time.sleep(0.01)
        return analyst(work_run)

    monkeypatch.setattr(Orchestrator, "_hand_off", waits_for_the_failure)
    monkeypatch.setitem(team.WORKERS, "analyst", fails_once_t2_started)
    executing_campaign(db, clock, "camp_s")
    jobs = [submit_task(db, clock, "camp_s", t, f"agent_task:camp_s:{t}") for t in ("t2", "t3")]
    run_at_once(db, runner, clock, jobs)
    doc = db.campaigns.find_one({"campaign_id": "camp_s"})
    statuses = {t["task_id"]: t["status"] for t in doc["plan"]["tasks"]}
    assert statuses == {"t1": "completed", "t2": "completed", "t3": "failed", "t4": "failed"}
    assert db.agent_tasks.find_one({"task_id": "camp_s:t2"})["status"] == "completed"
    assert doc["results"]["task_results"]["t2"] == {"by": "content_writer"}
    assert doc["status"] == "failed" and calls == {"t2": 1, "t3": 1}
    assert db.scheduled_jobs.count_documents({"job_id": "agent_task:camp_s:t4"}) == 0


def test_two_runs_starting_one_task_make_one_record(
    db: Database, runner: Runner, clock: Any, calls: Counter[str]
) -> None:
    executing_campaign(db, clock, "camp_d")
    jobs = [submit_task(db, clock, "camp_d", "t2", j) for j in ("agent_task:camp_d:t2", "dup")]
    run_at_once(db, runner, clock, jobs)
    assert db.agent_tasks.count_documents({"task_id": "camp_d:t2"}) == 1
    events = Counter(e["event_type"] for e in db.agent_events.find({"data.campaign_id": "camp_d"}))
    assert events["collaboration"] == 1  # the hand-off of the first start only
    assert events["task_completed"] == 1  # completed once (compare-and-set)
    for job_id in jobs:
        assert db.scheduled_jobs.find_one({"job_id": job_id})["status"] == "completed"


def test_a_hand_written_task_id_with_a_dot_fails_clearly(
    db: Database, runner: Runner, clock: Any, calls: Counter[str]
) -> None:
    executing_campaign(db, clock, "camp_x")
    db.campaigns.update_one(
        {"campaign_id": "camp_x"}, {"$set": {"plan.tasks.1.task_id": "1.1"}}
    )  # t2 renamed
    job_id = submit_task(db, clock, "camp_x", "1.1", "agent_task:camp_x:1.1")
    JobStore(db).claim_due(clock.now, owner="t", limit=10, queued_lease=dt.timedelta(minutes=5))
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    runner.execute(job["job_type"], job_id, run_key_for(job), job["epoch"])
    failed = db.scheduled_jobs.find_one({"job_id": job_id})
    assert failed["status"] == "failed"
    assert "task id '1.1' is not 1-64 letters, digits, '_' or '-' (no dots)" in failed["error"]
    assert db.campaigns.find_one({"campaign_id": "camp_x"})["results"] is None
    assert calls == {}
