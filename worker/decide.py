"""The scheduler's decision for one claimed job, as a pure function of the document and ``now``.

:func:`judge` validates the document and applies the one-off's max lateness and a recurring
job's catch-up and overlap policies (``worker.schedule``). The scheduler carries the verdict out
(fail, reschedule, spawn, send); ``mmw scheduler --once --dry-run`` only prints it. Both read the
same function, so the preview cannot drift from what a poll does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from worker.schedule import Overlap, next_due_after_run, plan_due
from worker.validation import InvalidJob, validate_job

__all__ = ["Verdict", "judge", "scheduler_error"]


@dataclass(frozen=True)
class Verdict:
    """What to do with one due job at ``now``.

    ``decision``: ``dispatch`` (send the fire ``run_at`` to ``queue``; ``run_at`` differs from
    the due time when catch-up picked a later fire), ``spawn`` (overlap "allow": the fire runs as
    its own one-off job, the job waits for ``next_due``), ``skip`` (catch-up gives the missed fires
    up; the job waits for ``next_due``), ``too_late`` or ``invalid`` (fail the job with
    ``reason``). ``missed``: fires given up by this decision.
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


def scheduler_error(exc: BaseException) -> str:
    """The error a job gets when judging it raised (a bug or an unexpected value)."""
    return f"scheduler error: {type(exc).__name__}: {exc}"[:500]


def judge(
    job: dict[str, Any],
    now: dt.datetime,
    *,
    grace: dt.timedelta,
    default_timezone: str | None = None,
) -> Verdict:
    """The verdict for a claimed ``job`` at ``now`` (pure; an unexpected value may raise)."""
    job_id, job_type = str(job.get("job_id")), job.get("job_type")
    schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
    due = schedule.get("execute_at")
    base: dict[str, Any] = {
        "job_id": job_id,
        "job_type": job_type if isinstance(job_type, str) else None,
        "due_at": due if isinstance(due, dt.datetime) else None,
    }
    try:
        spec = validate_job(job, default_timezone=default_timezone)
    except InvalidJob as exc:
        return Verdict(**base, decision="invalid", reason=str(exc))
    base["due_at"] = spec.execute_at  # time-zone aware once validated
    queue = job.get("queue") or spec.job_type.queue
    if not spec.recurring:
        due_at = job.get("run_at") or spec.execute_at
        late = now - due_at
        first_attempt = job.get("run_at") is None
        if first_attempt and spec.max_lateness is not None and late > spec.max_lateness:
            return Verdict(
                **base,
                decision="too_late",
                reason=(
                    f"too late: due at {due_at.isoformat()}, claimed {_human(late)} later, beyond "
                    f"the job type's max lateness of {_human(spec.max_lateness)}; not run (set "
                    "schedule.max_lateness_seconds to allow a later run)"
                ),
            )
        return Verdict(**base, decision="dispatch", queue=queue, run_at=due_at)
    if job.get("run_at") is not None:  # a retry of a recurring run: same fire, same run key
        return Verdict(**base, decision="dispatch", queue=queue, run_at=job["run_at"])
    assert spec.cron is not None and spec.timezone is not None and spec.execute_at is not None
    plan = plan_due(
        spec.cron, spec.timezone, spec.execute_at, now, spec.catch_up, spec.catch_up_window, grace
    )
    if plan.run_at is None:
        return Verdict(**base, decision="skip", missed=plan.missed, next_due=plan.next_due)
    if spec.overlap == Overlap.ALLOW:
        next_due, _ = next_due_after_run(
            spec.cron,
            spec.timezone,
            plan.run_at,
            now,
            Overlap.SKIP,
            spec.catch_up,
            spec.catch_up_window,
        )
        return Verdict(
            **base,
            decision="spawn",
            queue=queue,
            run_at=plan.run_at,
            missed=plan.missed,
            next_due=next_due,
        )
    return Verdict(**base, decision="dispatch", queue=queue, run_at=plan.run_at, missed=plan.missed)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    return f"{seconds / 3600:.1f}h"
