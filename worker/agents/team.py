"""The agents: what each one asks the LLM and which documents it writes.

Every agent is a function of an :class:`AgentRun` returning :class:`Work`. Writes use ids derived
from the campaign and task (``content_id``, ``post_id``, email ``campaign_id``, job ids), so a
task that runs again after a crash overwrites its own drafts instead of duplicating them. Every
read and write is filtered by the campaign's ``user_id``.

Publishing agents (social media manager, email marketer) work in two steps: ``work`` drafts
(``social_posts`` / ``email_campaigns`` not yet scheduled) and returns the content of a
``publish`` approval request; ``publish`` (run once the request is approved, or at once when
publishing needs no approval) schedules the ``post_social`` / ``send_email`` jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from worker.agents.channels import social_platforms
from worker.agents.llm import LLM, LLMResult, T, render_context
from worker.agents.llm import LLMRequest as Request
from worker.agents.memory import MemoryStore
from worker.agents.schemas import (
    AnalysisReport,
    ContentBatch,
    EmailPlan,
    SocialSchedule,
    StrategyBrief,
)
from worker.db import names
from worker.db.engine import Database
from worker.db.writes import upsert_retrying
from worker.settings import Settings

__all__ = [
    "PUBLISHERS",
    "WORKERS",
    "AgentRun",
    "Submit",
    "Work",
    "brief_text",
    "compute_roi",
    "totals_of",
]

#: (job_type, payload, execute_at, job_id): submit a job idempotently.
Submit = Callable[[str, dict[str, Any], dt.datetime, str], None]


@dataclass
class AgentRun:
    db: Database
    settings: Settings
    llm: LLM
    memory: MemoryStore
    campaign: dict[str, Any]
    task: dict[str, Any]
    branding: dict[str, Any]
    now: dt.datetime
    submit: Submit
    #: Results of the campaign's completed tasks, by plan task id.
    upstream: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.campaign["user_id"]

    @property
    def campaign_id(self) -> str:
        return self.campaign["campaign_id"]

    @property
    def brief(self) -> dict[str, Any]:
        return self.campaign.get("brief") or {}

    def prompt_for(self, context: Mapping[str, Any]) -> str:
        """The user prompt of this run's task: the task, its requirements and the context."""
        task = self.task
        return (
            f"Task {task['task_id']}: {task.get('description', '')}\n"
            f"Requirements: {', '.join(task.get('requirements') or []) or 'none'}\n"
            f"Context:\n{render_context(context)}"
        )

    def ask(self, schema: type[T], instructions: str, context: Mapping[str, Any]) -> LLMResult[T]:
        """Ask this run's agent for ``schema`` with :meth:`prompt_for` ``context``."""
        return self.llm.complete(
            Request(
                agent=self.task["agent_assigned"],
                schema=schema,
                instructions=instructions,
                prompt=self.prompt_for(context),
                context=context,
            )
        )


@dataclass
class Work:
    result: dict[str, Any]
    #: Content of the ``publish`` approval request this step needs before ``publish``.
    publish: dict[str, Any] | None = None


#: ``content_library.platform`` values; ad copy and the like have none.
_CONTENT_PLATFORMS = ("facebook", "instagram", "twitter", "linkedin", "blog", "email")


def _llm_record(answer: LLMResult[Any]) -> dict[str, Any]:
    return answer.metadata()


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# --- strategist ----------------------------------------------------------------------------------
def strategist(run: AgentRun) -> Work:
    memories = [m.content for m in run.memory.recall_user(run.user_id, brief_text(run.brief))]
    answer = run.ask(
        StrategyBrief,
        "You are a marketing strategist. Position the product, set key messages and state one "
        "reusable insight about this customer's marketing.",
        {"brief": run.brief, "branding": run.branding, "memories": memories},
    )
    brief = answer.output
    run.memory.remember_user(
        run.user_id,
        brief.insight,
        memory_type="insight",
        agent_name="strategist",
        metadata={"category": "strategy", "campaign_id": run.campaign_id},
    )
    # The positioning is this customer's text: it is a learning of this user's only. Shared
    # memory (agent_memory, global_memory) never receives anything from a user's run.
    run.memory.remember_user(
        run.user_id,
        f"Objective '{run.brief.get('objective', '')}': {brief.positioning}",
        memory_type="insight",
        agent_name="strategist",
        metadata={"category": "positioning", "campaign_id": run.campaign_id},
    )
    return Work({"strategy": _dump(brief), "llm": _llm_record(answer)})


# --- content writer ------------------------------------------------------------------------------
def content_writer(run: AgentRun) -> Work:
    strategy = next(
        (r["strategy"] for r in run.upstream.values() if isinstance(r, dict) and "strategy" in r),
        {},
    )
    context = {"brief": run.brief, "branding": run.branding, "strategy": strategy}
    instructions = (
        "You are a marketing copywriter. Write one social post per social channel, an email if "
        "email is a channel, a blog post and an ad copy, in the brand's tone."
    )
    answer = run.ask(ContentBatch, instructions, context)
    prompt = run.prompt_for(context)
    ids = []
    for index, piece in enumerate(answer.output.pieces):
        content_id = f"{run.campaign_id}-{run.task['task_id']}-{index}"
        upsert_retrying(
            run.db[names.CONTENT_LIBRARY].update_one,
            {"content_id": content_id, "user_id": run.user_id},
            {
                "$set": {
                    "campaign_id": run.campaign_id,
                    "type": "text",
                    "content_type": piece.content_type,
                    "content": {
                        "text": piece.text,
                        "title": piece.title,
                        "metadata": {
                            "prompt": f"{instructions}\n\n{prompt}",
                            "model_used": answer.model,
                            "generation_params": {
                                "provider": answer.provider,
                                "usage": answer.usage.as_dict(),
                                "task_id": run.task["task_id"],
                            },
                        },
                    },
                    "platform": piece.platform if piece.platform in _CONTENT_PLATFORMS else None,
                    "status": "draft",
                    "tags": piece.hashtags,
                    "created_by": "content_writer",
                    "updated_at": run.now,
                    "used_in": [run.campaign_id],
                },
                "$setOnInsert": {"created_at": run.now},
            },
            upsert=True,
        )
        ids.append(content_id)
    return Work({"content_ids": ids, "llm": _llm_record(answer)})


def _campaign_content(run: AgentRun, content_type: str) -> list[dict[str, Any]]:
    rows = run.db[names.CONTENT_LIBRARY].find(
        {"user_id": run.user_id, "campaign_id": run.campaign_id, "content_type": content_type},
        {"_id": 0, "content_id": 1, "content_type": 1, "platform": 1, "content": 1, "tags": 1},
        sort=[("content_id", 1)],
    )
    return [
        {
            "content_id": r["content_id"],
            "content_type": r["content_type"],
            "platform": r.get("platform"),
            "title": (r.get("content") or {}).get("title"),
            "text": (r.get("content") or {}).get("text"),
            "hashtags": r.get("tags") or [],
        }
        for r in rows
    ]


# --- social media manager ------------------------------------------------------------------------
def social_media_manager(run: AgentRun) -> Work:
    content = _campaign_content(run, "social_post")
    answer = run.ask(
        SocialSchedule,
        "You are a social media manager. Turn the written posts into a posting schedule: "
        "platform, final message, hashtags and hours from now to publish.",
        {
            "brief": run.brief,
            "content": content,
            "platforms": social_platforms(run.brief.get("channels")),
        },
    )
    accounts = {
        a["platform"]: a["account_id"]
        for a in run.db[names.SOCIAL_ACCOUNTS].find(
            {"user_id": run.user_id, "status": "active"}, {"platform": 1, "account_id": 1}
        )
    }
    post_ids, skipped = [], []
    for index, draft in enumerate(answer.output.posts):
        account_id = accounts.get(draft.platform)
        if account_id is None:
            skipped.append(draft.platform)
            continue
        post_id = f"{run.campaign_id}-{run.task['task_id']}-{index}"
        upsert_retrying(
            run.db[names.SOCIAL_POSTS].update_one,
            {"post_id": post_id, "user_id": run.user_id},
            {
                "$set": {
                    "campaign_id": run.campaign_id,
                    "platforms": [{"platform": draft.platform, "account_id": account_id}],
                    "content": {
                        "message": draft.message,
                        "images": [],
                        "videos": [],
                        "link": None,
                        "hashtags": draft.hashtags,
                    },
                    "schedule": {
                        "scheduled": False,
                        "publish_at": run.now + dt.timedelta(hours=draft.publish_in_hours),
                    },
                    "updated_at": run.now,
                },
                "$setOnInsert": {"created_at": run.now},
            },
            upsert=True,
        )
        post_ids.append(post_id)
    result = {"post_ids": post_ids, "skipped_platforms": skipped, "llm": _llm_record(answer)}
    publish = {"social_posts": post_ids} if post_ids else None
    return Work(result, publish)


def publish_social(run: AgentRun, result: dict[str, Any]) -> dict[str, Any]:
    jobs = []
    for post_id in result.get("post_ids") or []:
        post = run.db[names.SOCIAL_POSTS].find_one({"post_id": post_id, "user_id": run.user_id})
        if post is None:
            continue
        platforms = [{**p, "status": "scheduled"} for p in post["platforms"]]
        run.db[names.SOCIAL_POSTS].update_one(
            {"post_id": post_id, "user_id": run.user_id},
            {
                "$set": {
                    "platforms": platforms,
                    "schedule.scheduled": True,
                    "updated_at": run.now,
                }
            },
        )
        job_id = f"post_social:{post_id}"
        run.submit(
            "post_social",
            {"post_id": post_id},
            max(post["schedule"]["publish_at"], run.now),
            job_id,
        )
        jobs.append(job_id)
    return {"scheduled_jobs": jobs}


# --- email marketer ------------------------------------------------------------------------------
def email_marketer(run: AgentRun) -> Work:
    content = _campaign_content(run, "email")
    answer = run.ask(
        EmailPlan,
        "You are an email marketer. Turn the written email into a campaign: name, subject, HTML "
        "and text bodies, and hours from now to send.",
        {"brief": run.brief, "branding": run.branding, "content": content},
    )
    sender = run.branding.get("company_name") or ""
    ids = []
    for index, draft in enumerate(answer.output.emails):
        email_id = f"{run.campaign_id}-{run.task['task_id']}-{index}"
        upsert_retrying(
            run.db[names.EMAIL_CAMPAIGNS].update_one,
            {"campaign_id": email_id, "user_id": run.user_id},
            {
                "$set": {
                    "marketing_campaign_id": run.campaign_id,
                    "name": draft.name,
                    "type": "one_time",
                    "status": "draft",
                    "recipients": {
                        "list_key": run.brief.get("email_list_key"),
                        "segment": {},
                        "count": 0,
                    },
                    "content": {
                        "subject": draft.subject,
                        "from_email": run.branding.get("from_email"),
                        "from_name": sender,
                        "reply_to": run.branding.get("reply_to"),
                        "html_content": draft.html_content,
                        "text_content": draft.text_content,
                        "attachments": [],
                    },
                    "schedule": {
                        "scheduled": False,
                        "send_at": run.now + dt.timedelta(hours=draft.send_in_hours),
                    },
                    "updated_at": run.now,
                },
                "$setOnInsert": {"created_at": run.now},
            },
            upsert=True,
        )
        ids.append(email_id)
    return Work({"email_campaign_ids": ids, "llm": _llm_record(answer)}, {"email_campaigns": ids})


def publish_email(run: AgentRun, result: dict[str, Any]) -> dict[str, Any]:
    jobs = []
    for email_id in result.get("email_campaign_ids") or []:
        email = run.db[names.EMAIL_CAMPAIGNS].find_one(
            {"campaign_id": email_id, "user_id": run.user_id}
        )
        if email is None:
            continue
        run.db[names.EMAIL_CAMPAIGNS].update_one(
            {"campaign_id": email_id, "user_id": run.user_id},
            {"$set": {"status": "scheduled", "schedule.scheduled": True, "updated_at": run.now}},
        )
        job_id = f"send_email:{email_id}"
        run.submit(
            "send_email",
            {"campaign_id": email_id},
            max(email["schedule"]["send_at"], run.now),
            job_id,
        )
        jobs.append(job_id)
    return {"scheduled_jobs": jobs}


# --- analyst -------------------------------------------------------------------------------------
_SUMS = {
    "posts_published": ("social", "posts_published"),
    "total_reach": ("social", "total_reach"),
    "total_engagement": ("social", "total_engagement"),
    "total_impressions": ("social", "total_impressions"),
    "emails_delivered": ("email", "emails_delivered"),
    "email_conversions": ("email", "conversions"),
    "new_leads": ("crm", "new_leads"),
    "revenue": ("crm", "revenue"),
    "ad_spend": ("ppc", "ad_spend"),
    "ad_conversions": ("ppc", "conversions"),
}


def totals_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Sums of the analytics_data metrics the analyst reports (pure)."""
    totals = dict.fromkeys(_SUMS, 0.0)
    for row in rows:
        metrics = row.get("metrics") or {}
        for key, (group, name) in _SUMS.items():
            value = (metrics.get(group) or {}).get(name)
            if isinstance(value, int | float):
                totals[key] += value
    return totals


def compute_roi(revenue: float, spend: float) -> float | None:
    """Return on spend, ``(revenue - spend) / spend``; None when nothing was spent (pure)."""
    return round((revenue - spend) / spend, 4) if spend > 0 else None


def analyst(run: AgentRun) -> Work:
    rows = run.db[names.ANALYTICS_DATA].find(
        {"user_id": run.user_id, "campaign_id": run.campaign_id}, {"_id": 0, "metrics": 1}
    )
    totals = totals_of(rows)
    roi = compute_roi(totals["revenue"], totals["ad_spend"])
    answer = run.ask(
        AnalysisReport,
        "You are a marketing analyst. Summarise the campaign's performance against its KPIs "
        "from the totals given; do not invent numbers.",
        {
            "brief": run.brief,
            "totals": totals,
            "roi": roi,
            "kpis": (run.campaign.get("plan") or {}).get("kpis") or [],
        },
    )
    report = answer.output
    run.db[names.CAMPAIGNS].update_one(
        {"campaign_id": run.campaign_id, "user_id": run.user_id},
        {
            "$set": {
                "results.analytics": {**totals, "days_of_data": len(rows)},
                "results.roi": roi,
                "results.performance_summary": report.performance_summary,
                "updated_at": run.now,
            }
        },
    )
    if report.insights:
        run.memory.remember_user(
            run.user_id,
            report.insights[0],
            memory_type="insight",
            agent_name="analyst",
            metadata={"category": "performance", "campaign_id": run.campaign_id},
        )
    return Work({"report": _dump(report), "totals": totals, "roi": roi, "llm": _llm_record(answer)})


def brief_text(brief: Mapping[str, Any]) -> str:
    """The brief as one query string for memory retrieval."""
    words = [str(v) for v in brief.values() if isinstance(v, str | int | float)]
    return " ".join([*words, *(brief.get("channels") or [])])


WORKERS: dict[str, Callable[[AgentRun], Work]] = {
    "strategist": strategist,
    "content_writer": content_writer,
    "social_media_manager": social_media_manager,
    "email_marketer": email_marketer,
    "analyst": analyst,
}
PUBLISHERS: dict[str, Callable[[AgentRun, dict[str, Any]], dict[str, Any]]] = {
    "social_media_manager": publish_social,
    "email_marketer": publish_email,
}
