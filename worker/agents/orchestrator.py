"""Runs a campaign as jobs: plan (``run_campaign``), then one ``agent_task`` job per plan task.

Both jobs are re-entrant: they read the state in MongoDB and do the next step, so a crashed or
duplicated run repeats nothing that completed.

``run_campaign``::

    draft ─▶ planning (plan stored; waits for the plan/budget approval requests)
          ─▶ executing (ready tasks submitted) ─▶ completed | failed

``agent_task`` (the state is the ``agent_tasks`` document ``<campaign_id>:<task_id>``)::

    pending ─▶ in_progress ─▶ completed
                  │   └────▶ in_progress + approval_request_id ─▶ (approved) completed
                  └──▶ failed                                  └▶ (rejected / expired) failed

When a task completes, the dependents that became ready are submitted as ``agent_task`` jobs
with ids ``agent_task:<campaign_id>:<task_id>`` (a second submit returns the first job, so no
task is ever queued twice). A failed task fails the campaign (reason in ``campaigns.error``)
and skips every task that has not started (plan entry ``failed`` with ``error: "skipped: …"``);
a task already running is left to finish. Starting (plan entry pending → in_progress while the
campaign is executing) and skipping are guarded updates of the one campaign document, so they
cannot both win. Only the schema's statuses are written.
Waiting for an approval never holds a worker: the job ends and a check job, due
``approval_poll_seconds`` later (id ``…:check:<due time>``), looks at the decision again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pymongo import ReturnDocument

from worker import api
from worker.actors.lifecycle import JobContext, LeaseLost
from worker.agents import approvals, plan
from worker.agents.brief import brief_problems
from worker.agents.embeddings import build_embedder
from worker.agents.llm import LLM, LLMRequest, build_llm, render_context
from worker.agents.memory import MemoryStore
from worker.agents.plan import PlanError, validate_plan
from worker.agents.schemas import AGENTS, CampaignPlan
from worker.agents.team import PUBLISHERS, WORKERS, AgentRun, brief_text
from worker.db import names
from worker.db.writes import set_nested, upsert_retrying
from worker.errors import PermanentFailure

__all__ = ["Orchestrator"]

log = logging.getLogger(__name__)

R = TypeVar("R")

PLANNER = "strategist"
_OPEN = [plan.PENDING, plan.IN_PROGRESS]

#: What :meth:`Orchestrator._start_record` found: no record (this run created it), an open one
#: (a re-run), a completed or failed one (do not run).
Start = Literal["first", "again", "final"]


class Orchestrator:
    """One job's view of one campaign, scoped to the job's user."""

    def __init__(self, ctx: JobContext, campaign_id: str, *, llm: LLM | None = None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.settings = ctx.settings
        self.user_id = ctx.user_id
        self.campaign_id = campaign_id
        self.now = ctx.now()
        self.llm = llm or build_llm(ctx.settings)
        self.memory = MemoryStore(ctx.db, build_embedder(ctx.settings), ctx.settings, now=ctx.now)
        self.campaign = self._load()

    # --- shared ---------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        campaign = self.db[names.CAMPAIGNS].find_one(
            {"campaign_id": self.campaign_id, "user_id": self.user_id}
        )
        if campaign is None:
            raise PermanentFailure(
                f"campaign {self.campaign_id!r} does not exist or belongs to another user"
            )
        return campaign

    def _set_campaign(self, expected: list[str], **fields: Any) -> bool:
        result = self.db[names.CAMPAIGNS].update_one(
            {"campaign_id": self.campaign_id, "user_id": self.user_id, "status": {"$in": expected}},
            {"$set": {**fields, "updated_at": self.now}},
        )
        self.campaign = self._load()
        return result.modified_count == 1

    def event(self, agent: str, event_type: str, data: dict[str, Any]) -> None:
        self.db[names.AGENT_EVENTS].insert_one(
            {
                "event_id": uuid.uuid4().hex,
                "conversation_id": self.campaign.get("conversation_id"),
                "user_id": self.user_id,
                "agent_name": agent,
                "event_type": event_type,
                "data": {"campaign_id": self.campaign_id, **data},
                "timestamp": self.now,
            }
        )

    def submit(
        self, job_type: str, payload: dict[str, Any], execute_at: dt.datetime, job_id: str
    ) -> None:
        """Submit once: the job id is the idempotency key, a repeat returns the first job."""
        self.ctx.ensure_owner()
        api.submit(
            self.db,
            job_type=job_type,
            user_id=self.user_id,
            payload=payload,
            execute_at=execute_at,
            job_id=job_id,
            idempotency_key=job_id,
            now=self.now,
        )

    def _schedule_check(self, job_type: str, base_id: str, payload: dict[str, Any]) -> str:
        due = self.now + dt.timedelta(seconds=self.settings.approval_poll_seconds)
        job_id = f"{base_id}:check:{due.strftime('%Y%m%dT%H%M%S.%f')}"
        self.submit(job_type, payload, due, job_id)
        return job_id

    def _approval(
        self,
        step: str,
        request_type: str,
        agent: str,
        content: dict[str, Any],
        resume: dict[str, Any],
    ) -> dict[str, Any]:
        return approvals.request_approval(
            self.db,
            request_id=f"{self.campaign_id}:{step}",
            user_id=self.user_id,
            campaign_id=self.campaign_id,
            conversation_id=self.campaign.get("conversation_id"),
            request_type=request_type,
            content=content,
            requested_by=agent,
            now=self.now,
            timeout=dt.timedelta(hours=self.settings.approval_timeout_hours),
            resume=resume,
        )

    def _decide(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        decided = approvals.decision(request, self.now)
        if decided == "expired" and request.get("status") == "pending":
            request = approvals.expire(self.db, request, self.now)
            decided = approvals.decision(request, self.now)
        return decided, request

    # --- run_campaign ---------------------------------------------------------------------------
    def run_campaign(self) -> dict[str, Any]:
        status = self.campaign.get("status") or "draft"
        if status in ("completed", "failed"):
            return {"campaign_id": self.campaign_id, "status": status, "note": "already finished"}
        if status == "draft":
            self._set_campaign(["draft", None], status="planning")
        if not (self.campaign.get("plan") or {}).get("tasks"):
            self._make_plan()
        else:  # a run that stopped between storing the plan and closing its record
            tasks = self.campaign["plan"]["tasks"]
            self._finish_record(
                f"{self.campaign_id}:plan", plan.COMPLETED, result={"tasks": len(tasks)}
            )
        if self.campaign["status"] == "planning":
            waiting = self._plan_approvals()
            if waiting is not None:
                return waiting
            if self.campaign["status"] == "failed":
                return {"campaign_id": self.campaign_id, "status": "failed"}
            self._set_campaign(["planning"], status="executing")
        submitted = self._submit_ready()
        return {
            "campaign_id": self.campaign_id,
            "status": self.campaign["status"],
            "submitted": submitted,
        }

    def _brief(self) -> dict[str, Any]:
        """``campaigns.brief``, else the chat's ``conversations.context.campaign_brief`` (then
        copied to the campaign, so every agent reads the same brief)."""
        brief = self.campaign.get("brief")
        if brief:
            self._check_brief(brief)
            return brief
        conversation = self.db[names.CONVERSATIONS].find_one(
            {"conversation_id": self.campaign.get("conversation_id"), "user_id": self.user_id}
        )
        brief = ((conversation or {}).get("context") or {}).get("campaign_brief") or {}
        if not brief:
            reason = (
                f"campaign {self.campaign_id!r} has no brief (campaigns.brief or "
                "conversations.context.campaign_brief)"
            )
            self._set_campaign(["planning"], status="failed", error=reason)
            raise PermanentFailure(reason)
        self._check_brief(brief)
        self._set_campaign(["planning"], brief=brief)
        return brief

    def _check_brief(self, brief: Any) -> None:
        """A brief over the limits (``agents.brief``) fails the campaign before any agent."""
        problems = brief_problems(brief)
        if problems:
            reason = f"campaign {self.campaign_id!r} brief over the limits: " + "; ".join(problems)
            self._set_campaign(["planning"], status="failed", error=reason)
            raise PermanentFailure(reason)

    def _make_plan(self) -> None:
        brief = self._brief()
        settings_doc = self.db[names.SETTINGS].find_one({"user_id": self.user_id}) or {}
        branding = settings_doc.get("branding") or {}
        record_id = f"{self.campaign_id}:plan"
        self._start_record(record_id, PLANNER, None, {"brief": brief})
        instructions = (
            "You are the strategist who plans marketing campaigns for a team of agents: "
            + ", ".join(AGENTS)
            + ". Return a strategy, tasks (unique task_id, agent_assigned, dependencies by "
            "task_id, no cycles), a timeline and KPIs."
        )
        try:
            query = brief_text(brief)
            memories = [m.content for m in self.memory.recall_user(self.user_id, query)]
            memories += [m.content for m in self.memory.recall_agent(PLANNER, query)]
            memories += [m.content for m in self.memory.recall_global(query)]
            context = {"brief": brief, "branding": branding, "memories": memories}
            answer = self.llm.complete(
                LLMRequest(
                    agent=PLANNER,
                    schema=CampaignPlan,
                    instructions=instructions,
                    prompt=f"Plan this campaign.\n{render_context(context)}",
                    context=context,
                )
            )
            tasks = [{**t.model_dump(), "status": plan.PENDING} for t in answer.output.tasks]
            validate_plan(tasks, AGENTS)
        except (PlanError, PermanentFailure) as exc:
            reason = f"planning failed: {exc}"
            self._fail_planning(record_id, reason)
            raise PermanentFailure(reason) from exc
        except LeaseLost:
            raise
        except Exception as exc:
            if self._last_attempt():
                self._fail_planning(record_id, f"planning failed: {exc} (last attempt)")
            raise
        document = {
            **answer.output.model_dump(mode="json"),
            "tasks": tasks,
            "metadata": {**answer.metadata(), "prompt": instructions},
        }
        self.ctx.ensure_owner()
        self._set_campaign(["planning"], plan=document, branding=branding)
        self._finish_record(
            record_id,
            plan.COMPLETED,
            result={"tasks": len(tasks), "memories": memories, "llm": answer.metadata()},
        )

    def _fail_planning(self, record_id: str, reason: str) -> None:
        self._finish_record(record_id, plan.FAILED, error=reason)
        self._set_campaign(["planning"], status="failed", error=reason)

    def _last_attempt(self) -> bool:
        """Whether a retryable error now ends the job (the lifecycle will not retry it)."""
        return self.ctx.attempt >= self.ctx.spec.max_attempts

    def _plan_approvals(self) -> dict[str, Any] | None:
        """None when every plan-stage request is approved (or none is needed); else the job's
        result while waiting. A rejected or expired request fails the campaign."""
        steps = self.settings.approval_steps
        wanted: list[tuple[str, str, dict[str, Any]]] = []
        document = self.campaign["plan"]
        if "campaign_plan" in steps:
            wanted.append(("plan", "campaign_plan", {"plan": document}))
        budget = (self.campaign.get("brief") or {}).get("budget")
        if "budget" in steps and budget:
            wanted.append(("budget", "budget", {"budget": budget, "kpis": document.get("kpis")}))
        pending = []
        for step, request_type, content in wanted:
            resume = {"job_type": "run_campaign", "payload": {"campaign_id": self.campaign_id}}
            request = self._approval(step, request_type, PLANNER, content, resume)
            decided, request = self._decide(request)
            if decided in ("rejected", "expired"):
                why = request.get("rejection_reason") or "no reason given"
                reason = f"{request_type} {decided}: {why}"
                self._set_campaign(["planning"], status="failed", error=reason)
                self.event(
                    PLANNER, "message", {"approval": request["request_id"], "outcome": reason}
                )
                return None
            if decided == "pending":
                pending.append(request["request_id"])
        if not pending:
            return None
        check = self._schedule_check(
            "run_campaign", f"run_campaign:{self.campaign_id}", {"campaign_id": self.campaign_id}
        )
        return {"campaign_id": self.campaign_id, "waiting_approval": pending, "check_job": check}

    def _submit_ready(self) -> list[str]:
        if self.campaign.get("status") != "executing":
            return []
        tasks = self.campaign["plan"]["tasks"]
        ready = plan.ready_tasks(tasks)
        for task_id in ready:
            self.submit(
                "agent_task",
                {"campaign_id": self.campaign_id, "task_id": task_id},
                self.now,
                f"agent_task:{self.campaign_id}:{task_id}",
            )
        if plan.plan_outcome(tasks) == plan.COMPLETED and self._set_campaign(
            ["executing"], status="completed", completed_at=self.now
        ):
            log.info("campaign %s completed", self.campaign_id)
        return ready

    # --- agent_tasks records ---------------------------------------------------------------------
    def _start_record(
        self, record_id: str, agent: str, task_id: str | None, input_: dict[str, Any]
    ) -> Start:
        """Create the task's record as in_progress and log task_started.

        One upsert on the unique ``task_id`` with ``$setOnInsert`` only: of two starts at once
        exactly one creates the record ("first"); a record already there is left as it is
        ("again" when it is open, "final" when it is completed or failed: do not run).
        """
        records = self.db[names.AGENT_TASKS]
        before = upsert_retrying(
            records.find_one_and_update,
            {"task_id": record_id},
            {
                "$setOnInsert": {
                    "task_id": record_id,
                    "campaign_id": self.campaign_id,
                    "user_id": self.user_id,
                    "plan_task_id": task_id,
                    "agent_name": agent,
                    "status": plan.IN_PROGRESS,
                    "input": input_,
                    "started_at": self.now,
                    "updated_at": self.now,
                }
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        if before is not None and before.get("status") not in _OPEN:
            return "final"
        if before is not None and before.get("status") == plan.PENDING:  # written by the app
            records.update_one(
                {"task_id": record_id, "status": plan.PENDING},
                {"$set": {"status": plan.IN_PROGRESS, "input": input_, "updated_at": self.now}},
            )
        self.event(agent, "task_started", {"task_id": task_id or "plan", "job_id": self.ctx.job_id})
        return "first" if before is None else "again"

    def _finish_record(
        self,
        record_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        expected: list[str] | None = None,
    ) -> bool:
        """Move the record to a final status once (compare-and-set on its status: the events
        are written by the one call that did); True when this call did."""
        records = self.db[names.AGENT_TASKS]
        record = records.find_one({"task_id": record_id}) or {}
        started = record.get("started_at") or self.now
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        fields: dict[str, Any] = {
            "status": status,
            "completed_at": self.now,
            "duration_ms": int((self.now - started).total_seconds() * 1000),
            "updated_at": self.now,
        }
        if result is not None:
            fields["result"] = result
        if error is not None:
            fields["error"] = error
        changed = records.update_one(
            {"task_id": record_id, "status": {"$in": expected or [plan.IN_PROGRESS]}},
            {"$set": fields},
        )
        if changed.modified_count != 1:
            return False
        agent = record.get("agent_name", PLANNER)
        event = "task_completed" if status == plan.COMPLETED else "message"
        self.event(
            agent,
            event,
            {"task_id": record.get("plan_task_id") or "plan", "status": status, "error": error},
        )
        return True

    def _record_status(self, task_id: str) -> str | None:
        record = self.db[names.AGENT_TASKS].find_one(
            {"task_id": f"{self.campaign_id}:{task_id}"}, {"status": 1}
        )
        return None if record is None else record.get("status")

    def _enter(self, task_id: str) -> bool:
        """Move the task's plan entry to in_progress while the campaign is executing (a re-run
        finds it in_progress already). One guarded update of the campaign document, the same
        document :meth:`fail_task` closes and skips on: a start and a skip cannot both win."""
        result = self.db[names.CAMPAIGNS].update_one(
            {
                "campaign_id": self.campaign_id,
                "user_id": self.user_id,
                "status": "executing",
                "plan.tasks": {"$elemMatch": {"task_id": task_id, "status": {"$in": _OPEN}}},
            },
            {"$set": {"plan.tasks.$.status": plan.IN_PROGRESS, "updated_at": self.now}},
        )
        self.campaign = self._load()
        return result.matched_count == 1

    def _mirror(self, task_id: str, status: str, result: dict[str, Any] | None = None) -> None:
        """Copy a final record status (and result) to ``plan.tasks[]`` / ``results``."""
        query = {
            "campaign_id": self.campaign_id,
            "user_id": self.user_id,
            "plan.tasks.task_id": task_id,
        }
        fields = {"plan.tasks.$.status": status, "updated_at": self.now}
        campaigns = self.db[names.CAMPAIGNS]
        if result is None:
            campaigns.update_one(query, {"$set": fields})
        else:  # ``results`` may be null on a campaign written elsewhere (MongoDB: code 28)
            set_nested(campaigns, query, f"results.task_results.{task_id}", result, also=fields)
        self.campaign = self._load()

    def _skip(self, task_id: str, reason: str, statuses: list[str] | None = None) -> None:
        """Fail a task that has not started (its plan entry still ``pending``): one guarded
        update, so a task that started meanwhile is left to finish."""
        self.db[names.CAMPAIGNS].update_one(
            {
                "campaign_id": self.campaign_id,
                "user_id": self.user_id,
                "plan.tasks": {
                    "$elemMatch": {
                        "task_id": task_id,
                        "status": {"$in": statuses or [plan.PENDING]},
                    }
                },
            },
            {
                "$set": {
                    "plan.tasks.$.status": plan.FAILED,
                    "plan.tasks.$.error": f"skipped: {reason}",
                    "updated_at": self.now,
                }
            },
        )
        self.campaign = self._load()

    # --- agent_task -------------------------------------------------------------------------------
    def agent_task(self, task_id: str) -> dict[str, Any]:
        if not plan.TASK_ID.fullmatch(task_id):  # a plan written by hand, or by an older version
            raise PermanentFailure(
                f"task id {task_id!r} is not 1-64 letters, digits, '_' or '-' (no dots)"
            )
        tasks = {t["task_id"]: t for t in (self.campaign.get("plan") or {}).get("tasks") or []}
        task = tasks.get(task_id)
        if task is None:
            raise PermanentFailure(f"campaign {self.campaign_id!r} has no task {task_id!r}")
        record_id = f"{self.campaign_id}:{task_id}"
        record = self.db[names.AGENT_TASKS].find_one({"task_id": record_id}) or {}
        status = record.get("status", plan.PENDING)
        if status == plan.COMPLETED:
            # A re-run after a crash between completing and releasing: repair and release.
            self._mirror(task_id, plan.COMPLETED, record.get("result"))
            return {"task_id": task_id, "status": status, "released": self._release(task)}
        if status == plan.FAILED:
            self._mirror(task_id, plan.FAILED)
            return {"task_id": task_id, "status": status}
        if not self._enter(task_id):
            return self._stopped(task, record)
        if record.get("approval_request_id"):
            return self._resume_after_approval(task, record)
        return self._work(task, record_id)

    def _stopped(self, task: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """The task may not run: the campaign stopped executing, or the task was skipped."""
        task_id = task["task_id"]
        campaign_status = self.campaign.get("status")
        if campaign_status == "executing":
            entry = next(t for t in self.campaign["plan"]["tasks"] if t["task_id"] == task_id)
            return {"task_id": task_id, "status": entry.get("status"), "reason": entry.get("error")}
        reason = f"campaign is {campaign_status}"
        if record:  # it started before the campaign stopped: this run ends it
            if self._finish_record(record["task_id"], plan.FAILED, error=f"skipped: {reason}"):
                self._mirror(task_id, plan.FAILED)
        else:
            self._skip(task_id, reason, _OPEN)
        return {"task_id": task_id, "status": plan.FAILED, "reason": f"skipped: {reason}"}

    def _run_for(self, task: dict[str, Any]) -> AgentRun:
        settings_doc = self.db[names.SETTINGS].find_one({"user_id": self.user_id}) or {}
        return AgentRun(
            db=self.db,
            settings=self.settings,
            llm=self.llm,
            memory=self.memory,
            campaign=self.campaign,
            task=task,
            branding=settings_doc.get("branding") or self.campaign.get("branding") or {},
            now=self.now,
            submit=self.submit,
            upstream=dict((self.campaign.get("results") or {}).get("task_results") or {}),
        )

    def _work(self, task: dict[str, Any], record_id: str) -> dict[str, Any]:
        task_id, agent = task["task_id"], task["agent_assigned"]
        upstream = {
            d: ((self.campaign.get("results") or {}).get("task_results") or {}).get(d)
            for d in task.get("dependencies") or []
        }
        self.ctx.ensure_owner()
        start = self._start_record(record_id, agent, task_id, {"task": task, "upstream": upstream})
        if start == "final":  # finished by another run meanwhile
            return {"task_id": task_id, "status": self._record_status(task_id)}
        if start == "first":
            self._hand_off(task)
        run = self._run_for(task)
        work = self._guarded(task, lambda: WORKERS[agent](run))
        if work.publish is not None and agent in PUBLISHERS:
            if "publish" in self.settings.approval_steps:
                return self._wait_for_publish(task, record_id, work.result, work.publish)
            work.result.update(self._guarded(task, lambda: PUBLISHERS[agent](run, work.result)))
        return self._complete(task, record_id, work.result, [plan.IN_PROGRESS])

    def _guarded(self, task: dict[str, Any], step: Callable[[], R]) -> R:
        """Run an agent step: a permanent error (or the last attempt's) fails the task and the
        campaign; a transient one is noted on the record and the job retries."""
        try:
            return step()
        except LeaseLost:
            raise  # another worker owns the run now: write nothing
        except PermanentFailure as exc:
            self.fail_task(task, str(exc))
            raise
        except Exception as exc:
            if self._last_attempt():
                self.fail_task(task, f"{exc} (after {self.ctx.attempt} attempts)")
            else:
                self.db[names.AGENT_TASKS].update_one(
                    {"task_id": f"{self.campaign_id}:{task['task_id']}"},
                    {"$set": {"error": str(exc), "updated_at": self.now}},
                )
            raise

    def _wait_for_publish(
        self, task: dict[str, Any], record_id: str, result: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        task_id = task["task_id"]
        resume = {
            "job_type": "agent_task",
            "payload": {"campaign_id": self.campaign_id, "task_id": task_id},
        }
        request = self._approval(
            f"{task_id}:publish", "publish", task["agent_assigned"], content, resume
        )
        self.db[names.AGENT_TASKS].update_one(
            {"task_id": record_id, "status": plan.IN_PROGRESS},
            {
                "$set": {
                    "result": result,
                    "approval_request_id": request["request_id"],
                    "updated_at": self.now,
                }
            },
        )
        record = self.db[names.AGENT_TASKS].find_one({"task_id": record_id}) or {}
        return self._resume_after_approval(task, record)

    def _resume_after_approval(
        self, task: dict[str, Any], record: dict[str, Any]
    ) -> dict[str, Any]:
        task_id = task["task_id"]
        request = self.db[names.APPROVAL_REQUESTS].find_one(
            {"request_id": record["approval_request_id"], "user_id": self.user_id}
        )
        if request is None:
            raise PermanentFailure(f"approval request {record['approval_request_id']!r} is gone")
        decided, request = self._decide(request)
        if decided == "pending":
            log.info(
                "task %s:%s waits for approval %s", self.campaign_id, task_id, request["request_id"]
            )
            check = self._schedule_check(
                "agent_task",
                f"agent_task:{self.campaign_id}:{task_id}",
                {"campaign_id": self.campaign_id, "task_id": task_id},
            )
            return {
                "task_id": task_id,
                "waiting_approval": request["request_id"],
                "check_job": check,
            }
        if decided != "approved":
            reason = f"publish {decided}: {request.get('rejection_reason') or 'no reason given'}"
            self.fail_task(task, reason)
            return {"task_id": task_id, "status": plan.FAILED, "reason": reason}
        result = dict(record.get("result") or {})
        publish = PUBLISHERS[task["agent_assigned"]]
        result.update(self._guarded(task, lambda: publish(self._run_for(task), result)))
        result["approved_by"] = request.get("approved_by")
        return self._complete(task, record["task_id"], result, [plan.IN_PROGRESS])

    def _complete(
        self, task: dict[str, Any], record_id: str, result: dict[str, Any], expected: list[str]
    ) -> dict[str, Any]:
        self.ctx.ensure_owner()
        if not self._finish_record(record_id, plan.COMPLETED, result=result, expected=expected):
            # Finished by someone else (e.g. failed when its campaign stopped): the record
            # decides, the plan mirrors it; nothing is overwritten.
            final = self._record_status(task["task_id"])
            if final == plan.FAILED:
                self._mirror(task["task_id"], plan.FAILED)
            return {"task_id": task["task_id"], "status": final}
        self._mirror(task["task_id"], plan.COMPLETED, result)
        released = self._release(task)
        return {"task_id": task["task_id"], "status": plan.COMPLETED, "released": released}

    def _release(self, task: dict[str, Any]) -> list[str]:
        """Submit the tasks that became ready; complete the campaign when none is left."""
        if self.campaign.get("status") != "executing":
            return []
        by_id = {t["task_id"]: t for t in self.campaign["plan"]["tasks"]}
        submitted = self._submit_ready()
        return [t for t in submitted if task["task_id"] in by_id[t].get("dependencies", [])]

    def _hand_off(self, task: dict[str, Any]) -> None:
        """On a task's first start, a ``collaboration`` event from each task it builds on."""
        by_id = {t["task_id"]: t for t in self.campaign["plan"]["tasks"]}
        for source in task.get("dependencies") or []:
            self.event(
                by_id[source]["agent_assigned"],
                "collaboration",
                {
                    "from_task": source,
                    "to_task": task["task_id"],
                    "to_agent": task["agent_assigned"],
                },
            )

    def fail_task(self, task: dict[str, Any], reason: str) -> None:
        """The task failed for good: fail the campaign, skip every task that has not started.

        The campaign leaves ``executing`` first, so no task can start after this (see
        :meth:`_enter`); each skip is guarded on the entry still being ``pending``, so a task
        that started already (a running sibling) is left to finish and its own outcome is kept.
        """
        task_id = task["task_id"]
        record_id = f"{self.campaign_id}:{task_id}"
        failed = self._finish_record(
            record_id, plan.FAILED, error=reason, expected=[plan.IN_PROGRESS, plan.PENDING]
        )
        if not failed and self._record_status(task_id) != plan.FAILED:
            return  # completed meanwhile by another run: that outcome stands
        self._mirror(task_id, plan.FAILED)
        error = f"task {task_id} ({task['agent_assigned']}) failed: {reason}"
        if self._set_campaign(["executing"], status="failed", error=error, completed_at=self.now):
            log.warning("campaign %s failed: %s", self.campaign_id, error)
        tasks = self.campaign["plan"]["tasks"]
        dependents = set(plan.blocked_tasks(tasks))
        for other in tasks:
            if other.get("status") == plan.PENDING:
                why = f"dependency {task_id} failed" if other["task_id"] in dependents else None
                self._skip(other["task_id"], why or "campaign failed")
