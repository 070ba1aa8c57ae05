"""What the next scheduler poll would claim and decide, without claiming or sending anything.

``mmw scheduler --once --dry-run`` reads the claim's own query (``JobStore.due_query``, oldest
due first, ``claim_batch_size`` at most) and judges each document with the pure functions the
scheduler decides with (``validate_job``, the one-off's max lateness, ``plan_due`` for catch-up):
:func:`judge` mirrors ``Scheduler._decide`` step for step, but only describes the outcome.
Recovery and housekeeping are not previewed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from worker.db import names
from worker.db.engine import Database
from worker.db.jobs import JobStore
from worker.schedule import Overlap, plan_due
from worker.settings import Settings
from worker.validation import InvalidJob, validate_job

__all__ = ["HELD_COUNT_LIMIT", "PollPreview", "Verdict", "judge", "preview_poll"]

#: What the claim reads of each document (its run history is not needed to decide).
_FIELDS = {"history": 0, "result": 0, names.AUDIT_OUTBOX: 0}


@dataclass(frozen=True)
class Verdict:
    """The scheduler's decision for one due job, as it would be taken at ``now``.

    ``decision``: ``dispatch`` (sent to ``queue`` for the fire ``run_at``), ``spawn`` (overlap
    "allow": the fire runs as its own one-off job), ``skip`` (catch-up gives the missed fires
    up; the job waits for ``next_due``), ``too_late`` or ``invalid`` (the job would be failed
    with ``reason``).
    """

    job_id: str
    job_type: str | None
    due_at: dt.datetime | None
    decision: str
    queue: str | None = None
    run_at: dt.datetime | None = None
    missed: int = 0
    next_due: dt.datetime | None = None
    reason: str | None = None


def judge(
    job: dict[str, Any],
    now: dt.datetime,
    *,
    grace: dt.timedelta,
    default_timezone: str | None = None,
) -> Verdict:
    """The decision ``Scheduler._decide`` takes for a claimed ``job`` at ``now`` (pure)."""
    job_id, job_type = str(job.get("job_id")), job.get("job_type")
    schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
    due = schedule.get("execute_at")
    base = {"job_id": job_id, "job_type": job_type if isinstance(job_type, str) else None}
    base["due_at"] = due if isinstance(due, dt.datetime) else None
    try:
        spec = validate_job(job, default_timezone=default_timezone)
    except InvalidJob as exc:
        return Verdict(**base, decision="invalid", reason=str(exc))
    try:
        queue = job.get("queue") or spec.job_type.queue
        if not spec.recurring:
            due_at = job.get("run_at") or spec.execute_at
            late = now - due_at
            first_attempt = job.get("run_at") is None
            if first_attempt and spec.max_lateness is not None and late > spec.max_lateness:
                return Verdict(
                    **base,
                    decision="too_late",
                    reason=f"due {late} ago, beyond the max lateness of {spec.max_lateness}",
                )
            return Verdict(**base, decision="dispatch", queue=queue, run_at=due_at)
        if job.get("run_at") is not None:  # a retry of a recurring run: same fire
            return Verdict(**base, decision="dispatch", queue=queue, run_at=job["run_at"])
        assert spec.cron is not None and spec.timezone is not None and spec.execute_at
        plan = plan_due(
            spec.cron,
            spec.timezone,
            spec.execute_at,
            now,
            spec.catch_up,
            spec.catch_up_window,
            grace,
        )
        fields = {"missed": plan.missed, "next_due": plan.next_due, "run_at": plan.run_at}
        if plan.run_at is None:
            return Verdict(**base, decision="skip", **fields)
        decision = "spawn" if spec.overlap == Overlap.ALLOW else "dispatch"
        return Verdict(**base, decision=decision, queue=queue, **fields)
    except Exception as exc:  # the scheduler fails such a document as invalid
        return Verdict(**base, decision="invalid", reason=f"scheduler error: {exc}")


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
    verdicts = [
        judge(job, now, grace=grace, default_timezone=zones.get(str(job.get("user_id"))))
        for job in due
    ]
    all_due = {"status": query["status"], "schedule.execute_at": query["schedule.execute_at"]}
    held = jobs.count_documents(all_due, limit=HELD_COUNT_LIMIT) - jobs.count_documents(
        query, limit=HELD_COUNT_LIMIT
    )
    return PollPreview(verdicts, max(held, 0))


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
