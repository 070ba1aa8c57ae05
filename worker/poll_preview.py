"""What the next scheduler poll would claim and decide, without claiming or sending anything.

``mmw scheduler --once --dry-run`` reads the claim's own query (``JobStore.due_query``, oldest
due first, ``claim_batch_size`` at most) and judges each document with the pure functions the
scheduler decides with: ``worker.decide.judge``, whose verdicts the scheduler carries out and
this preview only describes.
Recovery and housekeeping are not previewed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from worker.db import names
from worker.db.engine import Database
from worker.db.jobs import JobStore
from worker.decide import Verdict, judge, scheduler_error
from worker.settings import Settings

__all__ = ["HELD_COUNT_LIMIT", "PollPreview", "preview_poll"]

#: What the claim reads of each document (its run history is not needed to decide).
_FIELDS = {"history": 0, "result": 0, names.AUDIT_OUTBOX: 0}


@dataclass(frozen=True)
class PollPreview:
    """The next claim's jobs with their verdicts, and how many due jobs pauses hold back."""

    verdicts: list[Verdict]
    held: int


#: Most due jobs counted as held by pauses (an index count; beyond it "at least").
HELD_COUNT_LIMIT = 100_000


def preview_poll(db: Database, settings: Settings, now: dt.datetime) -> PollPreview:
    """The jobs the next claim would take (paused ones are not taken) and each decision."""
    controls = db[names.JOB_CONTROLS].find({"paused": True}, {"kind": 1, "value": 1})
    users = [c["value"] for c in controls if c.get("kind") == "user"]
    types = [c["value"] for c in controls if c.get("kind") == "job_type"]
    jobs = db[names.SCHEDULED_JOBS]
    query = JobStore.due_query(now, users, types)
    due = jobs.find(
        query, _FIELDS, sort=[("schedule.execute_at", 1)], limit=settings.claim_batch_size
    )
    zones = _user_timezones(db, due)
    grace = dt.timedelta(seconds=settings.misfire_grace_seconds)
    verdicts = [_judged(job, now, grace, zones.get(str(job.get("user_id")))) for job in due]
    all_due = {"status": query["status"], "schedule.execute_at": query["schedule.execute_at"]}
    held = jobs.count_documents(all_due, limit=HELD_COUNT_LIMIT) - jobs.count_documents(
        query, limit=HELD_COUNT_LIMIT
    )
    return PollPreview(verdicts, max(held, 0))


def _judged(
    job: dict[str, Any], now: dt.datetime, grace: dt.timedelta, zone: str | None
) -> Verdict:
    """The verdict, or ``invalid`` where judging raises (the scheduler fails such a job)."""
    try:
        return judge(job, now, grace=grace, default_timezone=zone)
    except Exception as exc:
        return Verdict(str(job.get("job_id")), None, None, "invalid", reason=scheduler_error(exc))


def _user_timezones(db: Database, jobs: list[dict[str, Any]]) -> dict[str, str | None]:
    """Users' ``preferences.timezone`` for the recurring jobs that name no zone."""
    wanted = {
        job["user_id"]
        for job in jobs
        if isinstance(job.get("schedule"), dict)
        and job["schedule"].get("cron_expression")
        and not job["schedule"].get("timezone")
        and isinstance(job.get("user_id"), str)
    }
    if not wanted:
        return {}
    users = db[names.USERS].find(
        {"user_id": {"$in": sorted(wanted)}}, {"user_id": 1, "preferences": 1}
    )
    return {u["user_id"]: (u.get("preferences") or {}).get("timezone") for u in users}
