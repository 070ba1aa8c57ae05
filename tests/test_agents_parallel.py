"""Independent tasks run at the same time on different worker threads (real Redis broker and
scheduler), and the task that depends on both is submitted exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import dramatiq
import pytest

import worker.actors  # noqa: F401 - registers the actors
from tests.test_agents_campaign import USER, seed
from worker.actors.lifecycle import Runner, declare_job_actors, set_runner
from worker.agents import team
from worker.scheduler import Scheduler

pytestmark = pytest.mark.integration


def test_parallel_branches_and_a_single_join(
    db: Any, settings: Any, redis_broker: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans: dict[str, tuple[float, float]] = {}
    lock = threading.Lock()

    def timed(agent: str) -> Any:
        real = team.WORKERS[agent]

        def run(work_run: team.AgentRun) -> team.Work:
            started = time.monotonic()
            time.sleep(0.4)  # long enough for the other branch to start meanwhile
            work = real(work_run)
            with lock:
                spans[agent] = (started, time.monotonic())
            return work

        return run

    for agent in ("social_media_manager", "email_marketer"):
        monkeypatch.setitem(team.WORKERS, agent, timed(agent))
    agent_settings = settings.model_copy(
        update={"approval_steps": [], "openai_api_key": None, "embedding_dimensions": 64}
    )
    runner = Runner(db, agent_settings, clock=clock)
    set_runner(runner)
    declare_job_actors(redis_broker)
    worker = dramatiq.Worker(redis_broker, worker_threads=4, worker_timeout=50)
    worker.start()
    scheduler = Scheduler(db, redis_broker, agent_settings, clock=clock)
    try:
        seed(db, clock)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scheduler.tick()
            doc = db.campaigns.find_one({"campaign_id": "camp_1"})
            if doc.get("status") in ("completed", "failed"):
                break
            time.sleep(0.05)
    finally:
        worker.stop()
        runner.close()
        set_runner(None)

    doc = db.campaigns.find_one({"campaign_id": "camp_1"})
    assert doc["status"] == "completed", doc.get("error")
    (social_start, social_end), (email_start, email_end) = (
        spans["social_media_manager"],
        spans["email_marketer"],
    )
    assert social_start < email_end and email_start < social_end  # the branches overlapped
    jobs = Counter(j["job_id"] for j in db.scheduled_jobs.find({"job_type": "agent_task"}))
    assert jobs == {f"agent_task:camp_1:t{i}": 1 for i in range(1, 6)}
    assert db.scheduled_jobs.find_one({"job_id": "agent_task:camp_1:t5"})["attempts"] == 1
    handoffs = sorted(
        (e["data"]["from_task"], e["data"]["to_task"])
        for e in db.agent_events.find({"user_id": USER, "event_type": "collaboration"})
    )
    assert handoffs == [("t1", "t2"), ("t2", "t3"), ("t2", "t4"), ("t3", "t5"), ("t4", "t5")]
