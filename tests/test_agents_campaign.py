"""A campaign end to end on the job lifecycle: brief -> plan -> tasks -> approvals -> scheduled
posts and email, with the offline provider (and the OpenAI sandbox for a bad plan).

Jobs run through the real Runner (fenced start, outcome recording) driven synchronously: each
round claims every due job, as the scheduler does, and executes them. Jobs claimed in the same
round are ones a real deployment runs in parallel on different workers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import worker.actors  # noqa: F401 - registers the actors
from worker.actors.lifecycle import Runner
from worker.agents import team
from worker.agents.approvals import ApprovalConflict, resolve
from worker.agents.offline import OfflineLLM
from worker.api import submit
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_key_for
from worker.db.models import COLLECTION_MODELS
from worker.errors import PermanentFailure
from worker.sandbox.openai import OpenAISandbox
from worker.settings import Settings

USER = "user_a"
PUBLISHING = ("post_social", "send_email")  # other issues' actors: left pending here


class WorkerDied(BaseException):
    """Stands for a killed worker process: escapes the lifecycle like a SIGKILL would."""


@pytest.fixture
def agent_settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(
        OPENAI_API_KEY=None,
        mongodb_db=db.name,
        embedded_path=tmp_path / "mongo",
        approval_poll_seconds=60,
        approval_timeout_hours=24,
        lease_seconds=30,
        embedding_dimensions=128,
    )


@pytest.fixture
def runner(db: Database, agent_settings: Settings, clock: Any) -> Iterator[Runner]:
    runner = Runner(db, agent_settings, clock=clock)
    yield runner
    runner.close()


def drain(db: Database, runner: Runner, clock: Any, rounds: int = 30) -> list[list[str]]:
    """Run due agent jobs until none is due; returns the job ids run in each round."""
    store = JobStore(db)
    history: list[list[str]] = []
    for _ in range(rounds):
        for job in store.expired_leases(clock.now, 100):  # crashed runs, as the scheduler does
            store.reclaim(job, clock.now, owner="test", queued_lease=dt.timedelta(minutes=5))
        claimed = store.claim_due(
            clock.now,
            owner="test",
            limit=100,
            queued_lease=dt.timedelta(minutes=5),
            paused_types=PUBLISHING,
        )
        claimed += [
            j
            for j in db.scheduled_jobs.find({"status": "processing", "lease.started_at": None})
            if j["job_id"] not in {c["job_id"] for c in claimed}
        ]
        if not claimed:
            return history
        history.append(sorted(j["job_id"] for j in claimed))
        for job in claimed:
            with contextlib.suppress(WorkerDied):
                runner.execute(job["job_type"], job["job_id"], run_key_for(job), job["epoch"])
    raise AssertionError(f"jobs still due after {rounds} rounds: {history[-1]}")


def seed(db: Database, clock: Any, *, campaign_id: str = "camp_1", user: str = USER, **brief: Any):
    db.settings.insert_one(
        {"user_id": user, "branding": {"company_name": "Acme", "tone_of_voice": "bold"}}
    )
    for platform in ("instagram", "twitter"):
        db.social_accounts.insert_one(
            {
                "user_id": user,
                "platform": platform,
                "account_id": f"{user}-{platform}",
                "status": "active",
            }
        )
    db.campaigns.insert_one(
        {
            "campaign_id": campaign_id,
            "user_id": user,
            "conversation_id": f"conv_{campaign_id}",
            "name": "Spring launch",
            "brief": {
                "product": "Trailblazer shoes",
                "target_audience": "weekend hikers",
                "objective": "generate leads",
                "budget": "5000 USD",
                "timeline": "4 weeks",
                "channels": ["instagram", "x", "email"],
                "additional_context": "",
                **brief,
            },
            "status": "draft",
            "created_at": clock.now,
        }
    )
    return submit(
        db,
        job_type="run_campaign",
        user_id=user,
        payload={"campaign_id": campaign_id},
        now=clock.now,
    )


def decide(db: Database, request_id: str, approve: bool, clock: Any, reason: str = "") -> None:
    """What the product app does: update the request document."""
    fields: dict[str, Any] = {
        "status": "approved" if approve else "rejected",
        "approved_by": USER if approve else None,
        "resolved_at": clock.now,
    }
    if not approve:
        fields["rejection_reason"] = reason
    assert db.approval_requests.update_one(
        {"request_id": request_id}, {"$set": fields}
    ).matched_count


def campaign(db: Database, campaign_id: str = "camp_1") -> dict[str, Any]:
    return db.campaigns.find_one({"campaign_id": campaign_id})


def statuses(db: Database, campaign_id: str = "camp_1") -> dict[str, str]:
    return {t["task_id"]: t["status"] for t in campaign(db, campaign_id)["plan"]["tasks"]}


def test_brief_to_scheduled_posts_and_email(db: Database, runner: Runner, clock: Any) -> None:
    seed(db, clock)
    db.analytics_data.insert_many(
        [
            {
                "user_id": USER,
                "campaign_id": "camp_1",
                "date": clock.now - dt.timedelta(days=i),  # one rollup per day (unique)
                "metrics": {
                    "social": {"total_reach": 1000 * i, "total_engagement": 40},
                    "crm": {"revenue": 750.0},
                    "ppc": {"ad_spend": 250.0},
                },
            }
            for i in (1, 2)
        ]
    )
    drain(db, runner, clock)

    # Planning: the plan is stored and waits for the plan and budget approvals.
    doc = campaign(db)
    assert doc["status"] == "planning"
    assert [t["agent_assigned"] for t in doc["plan"]["tasks"]] == [
        "strategist",
        "content_writer",
        "social_media_manager",
        "email_marketer",
        "analyst",
    ]
    assert doc["plan"]["metadata"]["model"] == "offline-template-v1"
    requests = {r["request_type"]: r for r in db.approval_requests.find({"campaign_id": "camp_1"})}
    assert set(requests) == {"campaign_plan", "budget"}
    assert all(r["status"] == "pending" and r["user_id"] == USER for r in requests.values())
    assert requests["budget"]["content"]["budget"] == "5000 USD"
    waiting = db.scheduled_jobs.find({"job_type": "run_campaign", "status": "pending"})
    assert len(waiting) == 1 and waiting[0]["schedule"]["execute_at"] > clock.now

    # Approval releases the plan at the next check; nothing runs before.
    decide(db, "camp_1:plan", True, clock)
    decide(db, "camp_1:budget", True, clock)
    assert drain(db, runner, clock) == []
    clock.advance(seconds=60)
    rounds = drain(db, runner, clock)
    assert rounds[1] == ["agent_task:camp_1:t1"]
    assert rounds[2] == ["agent_task:camp_1:t2"]
    assert rounds[3] == ["agent_task:camp_1:t3", "agent_task:camp_1:t4"]  # in parallel
    assert statuses(db) == {
        "t1": "completed",
        "t2": "completed",
        "t3": "in_progress",  # waiting for the publish approval, on no worker
        "t4": "in_progress",
        "t5": "pending",
    }
    # Drafts exist, nothing is scheduled to publish before the publish approval.
    posts = db.social_posts.find({"campaign_id": "camp_1"})
    assert {p["platforms"][0]["platform"] for p in posts} == {"instagram", "twitter"}
    assert all(p["schedule"]["scheduled"] is False for p in posts)
    assert all("status" not in p["platforms"][0] for p in posts)
    assert db.agent_tasks.find_one({"task_id": "camp_1:t3"})["approval_request_id"] == (
        "camp_1:t3:publish"
    )
    assert db.scheduled_jobs.count_documents({"job_type": {"$in": list(PUBLISHING)}}) == 0

    # Through the API the decision releases the task at once; a document update waits for the
    # next check.
    resolve(db, request_id="camp_1:t3:publish", user_id=USER, approved=True, by=USER, now=clock.now)
    decide(db, "camp_1:t4:publish", True, clock)
    drain(db, runner, clock)
    assert statuses(db)["t3"] == "completed" and statuses(db)["t4"] == "in_progress"
    with pytest.raises(ApprovalConflict):  # decided already
        resolve(db, request_id="camp_1:t3:publish", user_id=USER, approved=False, by=USER)
    clock.advance(seconds=60)
    drain(db, runner, clock)

    doc = campaign(db)
    assert doc["status"] == "completed" and doc["completed_at"] == clock.now
    assert set(statuses(db).values()) == {"completed"}
    assert set(doc["results"]["task_results"]) == {"t1", "t2", "t3", "t4", "t5"}
    assert doc["results"]["roi"] == 2.0  # (1500 - 500) / 500
    assert doc["results"]["analytics"]["total_reach"] == 3000
    assert "ROI 2.00" in doc["results"]["performance_summary"]

    # Content library: one item per format, with prompt and model.
    content = db.content_library.find({"campaign_id": "camp_1"})
    assert sorted(c["content_type"] for c in content) == [
        "ad_copy",
        "blog",
        "email",
        "social_post",
        "social_post",
    ]
    for item in content:
        assert item["user_id"] == USER
        assert item["content"]["metadata"]["model_used"] == "offline-template-v1"
        assert "Trailblazer shoes" in item["content"]["metadata"]["prompt"]  # the brief it saw
        assert item["content"]["metadata"]["prompt"].startswith("You are a marketing copywriter")

    # Posts and email scheduled as jobs of the publishing actors, at the planned times.
    for post in db.social_posts.find({"campaign_id": "camp_1"}):
        assert post["schedule"]["scheduled"] is True
        assert post["platforms"][0]["status"] == "scheduled"
        job = db.scheduled_jobs.find_one({"job_id": f"post_social:{post['post_id']}"})
        assert job["payload"] == {"post_id": post["post_id"]}
        assert job["schedule"]["execute_at"] == post["schedule"]["publish_at"]
        assert job["user_id"] == USER and job["status"] == "pending"
    (email,) = db.email_campaigns.find({"marketing_campaign_id": "camp_1"})
    assert email["status"] == "scheduled" and email["content"]["from_name"] == "Acme"
    job = db.scheduled_jobs.find_one({"job_id": f"send_email:{email['campaign_id']}"})
    assert job["payload"] == {"campaign_id": email["campaign_id"]}

    # Task records and events.
    records = {r["task_id"]: r for r in db.agent_tasks.find({"campaign_id": "camp_1"})}
    assert set(records) == {f"camp_1:{t}" for t in ("plan", "t1", "t2", "t3", "t4", "t5")}
    for record in records.values():
        assert record["status"] == "completed" and record["user_id"] == USER
        assert record["completed_at"] >= record["started_at"]
        assert record["duration_ms"] == int(
            (record["completed_at"] - record["started_at"]).total_seconds() * 1000
        )
    assert records["camp_1:t3"]["duration_ms"] == 0  # approved at once
    assert records["camp_1:t4"]["duration_ms"] == 60_000  # includes the wait for approval
    assert records["camp_1:t3"]["result"]["approved_by"] == USER
    events = Counter(e["event_type"] for e in db.agent_events.find({"user_id": USER}))
    assert events["task_started"] == 6 and events["task_completed"] == 6
    assert events["collaboration"] == 5  # t1->t2, t2->t3, t2->t4, t3->t5, t4->t5
    assert all(
        e["conversation_id"] == "conv_camp_1" for e in db.agent_events.find({"user_id": USER})
    )
    # Memory: the strategist (insight, positioning) and the analyst remembered for this user
    # only; shared memory receives nothing from a user's run.
    assert db.user_memory.count_documents({"user_id": USER}) == 3
    assert db.user_memory.count_documents({"user_id": {"$ne": USER}}) == 0
    assert db.agent_memory.count_documents({}) == 0 == db.global_memory.count_documents({})
    # Every document written loads with the collections' models (the schema's statuses only).
    for name, model in COLLECTION_MODELS.items():
        for document in db[name].find({}):
            model.model_validate(document)
    # Every job of the run completed once.
    for job in db.scheduled_jobs.find({"job_type": {"$in": ["run_campaign", "agent_task"]}}):
        assert job["status"] == "completed", job
        assert job["attempts"] == 1


def approve_plan(db: Database, runner: Runner, clock: Any) -> None:
    drain(db, runner, clock)
    decide(db, "camp_1:plan", True, clock)
    decide(db, "camp_1:budget", True, clock)
    clock.advance(seconds=60)
    drain(db, runner, clock)


def test_rejected_publish_ends_the_task_and_the_campaign(
    db: Database, runner: Runner, clock: Any
) -> None:
    seed(db, clock)
    approve_plan(db, runner, clock)
    decide(db, "camp_1:t3:publish", False, clock, reason="off-brand images")
    decide(db, "camp_1:t4:publish", True, clock)
    clock.advance(seconds=60)
    drain(db, runner, clock)
    doc = campaign(db)
    assert doc["status"] == "failed"
    assert doc["error"] == (
        "task t3 (social_media_manager) failed: publish rejected: off-brand images"
    )
    assert statuses(db) == {
        "t1": "completed",
        "t2": "completed",
        "t3": "failed",
        "t4": "failed",  # approved, but the campaign failed before its check ran
        "t5": "failed",
    }
    record = db.agent_tasks.find_one({"task_id": "camp_1:t3"})
    assert record["error"] == "publish rejected: off-brand images"
    assert db.scheduled_jobs.count_documents({"job_type": {"$in": list(PUBLISHING)}}) == 0
    assert {e["status"] for e in db.email_campaigns.find({})} == {"draft"}
    assert (
        db.scheduled_jobs.count_documents({"job_type": "agent_task", "job_id": {"$regex": "t5"}})
        == 0
    )


def test_rejected_plan_fails_the_campaign(db: Database, runner: Runner, clock: Any) -> None:
    seed(db, clock)
    drain(db, runner, clock)
    decide(db, "camp_1:plan", False, clock, reason="too broad")
    clock.advance(seconds=60)
    drain(db, runner, clock)
    doc = campaign(db)
    assert doc["status"] == "failed"
    assert doc["error"] == "campaign_plan rejected: too broad"
    assert db.agent_tasks.count_documents({"plan_task_id": {"$ne": None}}) == 0


def test_unanswered_request_expires(db: Database, runner: Runner, clock: Any) -> None:
    seed(db, clock, budget="")  # no budget: only the plan needs approval
    drain(db, runner, clock)
    assert {r["request_type"] for r in db.approval_requests.find({})} == {"campaign_plan"}
    for _ in range(3):  # checks keep coming while nobody answers
        clock.advance(seconds=60)
        assert len(drain(db, runner, clock)) == 1
    assert campaign(db)["status"] == "planning"
    clock.advance(hours=24)
    drain(db, runner, clock)
    request = db.approval_requests.find_one({"request_id": "camp_1:plan"})
    assert request["status"] == "rejected"
    assert request["rejection_reason"] == "expired: no decision within 24 h"
    assert campaign(db)["error"] == "campaign_plan rejected: expired: no decision within 24 h"
    assert db.scheduled_jobs.count_documents({"status": "pending"}) == 0


def no_approvals(settings: Settings) -> Settings:
    return settings.model_copy(update={"approval_steps": []})


def test_failed_task_stops_its_dependents(
    db: Database, agent_settings: Settings, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(run: team.AgentRun) -> team.Work:
        raise PermanentFailure("content policy violation")

    monkeypatch.setitem(team.WORKERS, "content_writer", broken)
    runner = Runner(db, no_approvals(agent_settings), clock=clock)
    seed(db, clock)
    drain(db, runner, clock)
    runner.close()
    doc = campaign(db)
    assert doc["status"] == "failed"
    assert doc["error"] == "task t2 (content_writer) failed: content policy violation"
    assert statuses(db) == {
        "t1": "completed",
        "t2": "failed",
        "t3": "failed",
        "t4": "failed",
        "t5": "failed",
    }
    job = db.scheduled_jobs.find_one({"job_id": "agent_task:camp_1:t2"})
    assert job["status"] == "failed" and "content policy violation" in job["error"]
    assert db.agent_tasks.find_one({"task_id": "camp_1:t2"})["error"] == "content policy violation"
    # Never-started tasks have no record; their plan entries say failed.
    assert db.agent_tasks.count_documents({"campaign_id": "camp_1"}) == 3


def test_killed_worker_resumes_without_rerunning_completed_tasks(
    db: Database, agent_settings: Settings, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    original = OfflineLLM.complete

    def counting(self: OfflineLLM, request: Any) -> Any:
        calls[request.agent] += 1
        return original(self, request)

    monkeypatch.setattr(OfflineLLM, "complete", counting)
    real_writer = team.WORKERS["content_writer"]
    deaths = []

    def dies_once(run: team.AgentRun) -> team.Work:
        work = real_writer(run)  # its drafts are written ...
        if not deaths:
            deaths.append(run.now)
            raise WorkerDied  # ... then the process is killed before the task completes
        return work

    monkeypatch.setitem(team.WORKERS, "content_writer", dies_once)
    runner = Runner(db, no_approvals(agent_settings), clock=clock)
    seed(db, clock)
    drain(db, runner, clock)
    assert statuses(db)["t2"] == "in_progress"
    assert db.scheduled_jobs.find_one({"job_id": "agent_task:camp_1:t2"})["status"] == "processing"
    clock.advance(seconds=agent_settings.lease_seconds + 1)  # the lease runs out
    drain(db, runner, clock)
    runner.close()
    assert campaign(db)["status"] == "completed"
    assert calls == {
        "strategist": 2,  # the plan and t1, once each
        "content_writer": 2,  # killed run + resumed run
        "social_media_manager": 1,
        "email_marketer": 1,
        "analyst": 1,
    }
    assert db.content_library.count_documents({"campaign_id": "camp_1"}) == 5  # not duplicated
    job = db.scheduled_jobs.find_one({"job_id": "agent_task:camp_1:t2"})
    assert job["status"] == "completed" and job["attempts"] == 2
    assert db.scheduled_jobs.count_documents({"job_type": "agent_task"}) == 5


def test_rerun_of_a_completed_task_only_releases(
    db: Database, agent_settings: Settings, clock: Any
) -> None:
    runner = Runner(db, no_approvals(agent_settings), clock=clock)
    seed(db, clock)
    drain(db, runner, clock)
    before = db.content_library.find({}, sort=[("content_id", 1)])
    # A duplicate delivery of t2's job (e.g. an operator retry) finds the task completed.
    submit(
        db,
        job_type="agent_task",
        user_id=USER,
        payload={"campaign_id": "camp_1", "task_id": "t2"},
        job_id="dup",
        now=clock.now,
    )
    drain(db, runner, clock)
    runner.close()
    assert db.scheduled_jobs.find_one({"job_id": "dup"})["result"]["status"] == "completed"
    assert db.content_library.find({}, sort=[("content_id", 1)]) == before
    assert db.scheduled_jobs.count_documents({"job_type": "agent_task"}) == 6


def test_cyclic_plan_from_a_model_is_rejected(
    db: Database, agent_settings: Settings, clock: Any
) -> None:
    sandbox = OpenAISandbox(clock=clock)
    task = {"description": "x", "requirements": [], "estimated_duration": "1h"}
    sandbox.queue_answer(
        {
            "strategy": "s",
            "tasks": [
                {"task_id": "a", "agent_assigned": "strategist", "dependencies": ["b"], **task},
                {"task_id": "b", "agent_assigned": "poet", "dependencies": ["a"], **task},
            ],
            "timeline": {"duration_days": 7, "milestones": []},
            "kpis": [],
        }
    )
    with sandbox.server() as server:
        settings = agent_settings.model_copy(
            update={"openai_api_key": sandbox.api_key, "openai_base_url": f"{server.url}/v1"}
        )
        runner = Runner(db, settings, clock=clock)
        job = seed(db, clock)
        drain(db, runner, clock)
        runner.close()
    doc = campaign(db)
    assert doc["status"] == "failed"
    assert "task 'b' is assigned to unknown agent 'poet'" in doc["error"]
    assert "dependency cycle: a -> b -> a" in doc["error"]
    failed = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert failed["status"] == "failed" and "dependency cycle: a -> b -> a" in failed["error"]
    assert db.agent_tasks.find_one({"task_id": "camp_1:plan"})["status"] == "failed"
    assert sandbox.chat_requests[0]["model"] == "gpt-4o-mini"


def test_a_job_of_another_user_cannot_touch_the_campaign(
    db: Database, runner: Runner, clock: Any
) -> None:
    seed(db, clock)
    intruder = submit(
        db,
        job_type="run_campaign",
        user_id="user_b",
        payload={"campaign_id": "camp_1"},
        job_id="intruder",
        now=clock.now,
    )
    drain(db, runner, clock)
    failed = db.scheduled_jobs.find_one({"job_id": intruder["job_id"]})
    assert failed["status"] == "failed"
    assert "does not exist or belongs to another user" in failed["error"]
    assert db.agent_events.count_documents({"user_id": "user_b"}) == 0


def offline_plan_json(db: Database, clock: Any) -> dict[str, Any]:
    """The plan the offline planner makes for the seeded brief (a valid plan to script)."""
    from worker.agents.llm import LLMRequest
    from worker.agents.schemas import CampaignPlan

    brief = db.campaigns.find_one({"campaign_id": "camp_1"})["brief"]
    request = LLMRequest(
        agent="strategist",
        schema=CampaignPlan,
        instructions="",
        prompt="",
        context={"brief": brief},
    )
    return OfflineLLM().complete(request).output.model_dump(mode="json")


def test_campaign_on_an_openai_compatible_server(
    db: Database, agent_settings: Settings, clock: Any
) -> None:
    sandbox = OpenAISandbox(clock=clock)
    seed(db, clock)
    sandbox.queue_answer(offline_plan_json(db, clock))  # the rest: schema-conforming answers
    with sandbox.server() as server:
        settings = agent_settings.model_copy(
            update={
                "openai_api_key": sandbox.api_key,
                "openai_base_url": f"{server.url}/v1",
                "agent_models": {"content_writer": "gpt-4o"},
                "approval_steps": [],
            }
        )
        runner = Runner(db, settings, clock=clock)
        drain(db, runner, clock)
        runner.close()
    assert campaign(db)["status"] == "completed"
    models = [r["model"] for r in sandbox.chat_requests]
    assert models.count("gpt-4o") == 1 and len(models) == 6  # plan + 5 tasks
    assert {r["response_format"]["json_schema"]["name"] for r in sandbox.chat_requests} == {
        "CampaignPlan",
        "StrategyBrief",
        "ContentBatch",
        "SocialSchedule",
        "EmailPlan",
        "AnalysisReport",
    }
    # Memories were embedded by the server (base64 on the wire, decoded by the SDK).
    assert {r["encoding_format"] for r in sandbox.embedding_requests} == {"base64"}
    memory = db.user_memory.find_one({"user_id": USER})
    assert memory["embedding_model"] == "openai:text-embedding-3-small:128"
    assert len(memory["embedding"]) == 128
    for record in db.agent_tasks.find({"campaign_id": "camp_1"}):
        llm = record["result"]["llm"]
        assert llm["provider"] == "openai" and llm["usage"]["total_tokens"] > 0
    item = db.content_library.find_one({"campaign_id": "camp_1"})
    assert item["content"]["metadata"]["model_used"] == "gpt-4o"


def test_planning_that_keeps_failing_fails_the_campaign(
    db: Database, agent_settings: Settings, clock: Any
) -> None:
    from worker.sandbox.server import Faults

    sandbox = OpenAISandbox(clock=clock)
    job = seed(db, clock)
    with sandbox.server(Faults(server_error=1.0)) as server:
        settings = agent_settings.model_copy(
            update={
                "openai_api_key": sandbox.api_key,
                "openai_base_url": f"{server.url}/v1",
                "llm_max_attempts": 1,
            }
        )
        runner = Runner(db, settings, clock=clock)
        for _ in range(3):  # the job's attempts, each after its backoff
            drain(db, runner, clock)
            assert campaign(db)["status"] in ("planning", "failed")
            clock.advance(hours=2)
        runner.close()
    doc = campaign(db)
    assert doc["status"] == "failed"
    assert doc["error"].startswith("planning failed: embeddings (text-embedding-3-small): HTTP 500")
    assert doc["error"].endswith("(last attempt)")
    failed = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert failed["status"] == "failed" and failed["attempts"] == 3


def test_brief_from_the_conversation(db: Database, runner: Runner, clock: Any) -> None:
    job = seed(db, clock)
    brief = campaign(db)["brief"]
    db.campaigns.update_one({"campaign_id": "camp_1"}, {"$unset": {"brief": ""}})
    db.conversations.insert_one(
        {"conversation_id": "conv_camp_1", "user_id": USER, "context": {"campaign_brief": brief}}
    )
    drain(db, runner, clock)
    doc = campaign(db)
    assert doc["brief"] == brief and doc["status"] == "planning"
    assert db.scheduled_jobs.find_one({"job_id": job["job_id"]})["status"] == "completed"


def test_no_brief_anywhere_fails_clearly(db: Database, runner: Runner, clock: Any) -> None:
    job = seed(db, clock)
    brief = campaign(db)["brief"]
    db.campaigns.update_one({"campaign_id": "camp_1"}, {"$set": {"brief": {}}})
    # A conversation of the same id but another user's is never read.
    db.conversations.insert_one(
        {
            "conversation_id": "conv_camp_1",
            "user_id": "user_b",
            "context": {"campaign_brief": brief},
        }
    )
    drain(db, runner, clock)
    failed = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert failed["status"] == "failed"
    assert (
        "has no brief (campaigns.brief or conversations.context.campaign_brief)" in failed["error"]
    )
    assert campaign(db)["status"] == "failed" and "has no brief" in campaign(db)["error"]
