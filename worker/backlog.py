"""What is waiting, per queue, and what waits for a person: the numbers on-call acts on.

Each figure is one index-backed read over the jobs that wait (never the whole collection): due
``pending`` jobs (index ``status + schedule.execute_at``) and dispatched runs no worker started yet
(``status + lease.until``). The scheduler exports them as gauges (``worker.metrics``); the console
shows the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from worker.db import names
from worker.db.engine import Database
from worker.db.jobs import JobStore
from worker.jobtypes import JOB_TYPES
from worker.states import JobStatus

__all__ = [
    "EMAIL_UNCONFIRMED",
    "POST_NEEDS_REVIEW",
    "REVIEW_HOLD",
    "QueueBacklog",
    "jobs_needing_review",
    "paused_jobs",
    "queue_backlog",
]


@dataclass(frozen=True)
class QueueBacklog:
    """Jobs of one queue that should be running and are not."""

    queue: str
    due: int  # pending, due, not held by an operator: the next claims take them
    unstarted: int  # dispatched to the broker, no worker started them yet
    oldest_due_at: dt.datetime | None  # the due time of the longest-waiting of both

    def oldest_age(self, now: dt.datetime) -> float:
        """Seconds the longest-waiting job of this queue has been due (0 when none waits)."""
        return max((now - self.oldest_due_at).total_seconds(), 0.0) if self.oldest_due_at else 0.0


def queue_of(job_type: Any, queue: Any) -> str:
    """The Dramatiq queue a job runs on: its own override, else its job type's, else unknown."""
    if isinstance(queue, str) and queue:
        return queue
    known = JOB_TYPES.get(job_type) if isinstance(job_type, str) else None
    return known.queue if known else "unknown"


def queue_backlog(
    db: Database,
    now: dt.datetime,
    *,
    paused_users: Iterable[str] = (),
    paused_types: Iterable[str] = (),
) -> list[QueueBacklog]:
    """Due and dispatched-but-unstarted jobs per queue, with the oldest due time of each."""
    due = JobStore.due_query(now, paused_users, paused_types)
    unstarted = {"status": JobStatus.PROCESSING.value, "lease.started_at": None}
    rows: dict[str, dict[str, Any]] = {}
    for kind, query, when in (
        ("due", due, "$schedule.execute_at"),
        ("unstarted", unstarted, {"$ifNull": ["$run_at", "$schedule.execute_at"]}),
    ):
        for group in db[names.SCHEDULED_JOBS].aggregate(
            [
                {"$match": query},
                {
                    "$group": {
                        "_id": {"job_type": "$job_type", "queue": "$queue"},
                        "n": {"$sum": 1},
                        "oldest": {"$min": when},
                    }
                },
            ]
        ):
            key = group["_id"] or {}
            row = rows.setdefault(
                queue_of(key.get("job_type"), key.get("queue")),
                {"due": 0, "unstarted": 0, "oldest": None},
            )
            row[kind] += int(group["n"])
            oldest = _aware(group.get("oldest"))
            if oldest is not None and (row["oldest"] is None or oldest < row["oldest"]):
                row["oldest"] = oldest
    return [
        QueueBacklog(queue, row["due"], row["unstarted"], row["oldest"])
        for queue, row in sorted(rows.items())
    ]


def paused_jobs(
    db: Database, *, paused_users: Iterable[str] = (), paused_types: Iterable[str] = ()
) -> int:
    """Pending jobs held by an operator: paused one by one, or by a paused user or job type."""
    held: list[dict[str, Any]] = [{"paused": True}]
    users, types = list(paused_users), list(paused_types)
    if users:
        held.append({"user_id": {"$in": users}})
    if types:
        held.append({"job_type": {"$in": types}})
    return db[names.SCHEDULED_JOBS].count_documents(
        {"status": JobStatus.PENDING.value, "$or": held}
    )


#: A social post with a target whose outcome could not be confirmed (``needs_review``).
POST_NEEDS_REVIEW: dict[str, Any] = {"platforms.status": "needs_review"}
#: An email send whose intent was recorded and never confirmed (``send_email``'s stages).
EMAIL_UNCONFIRMED: dict[str, Any] = {"send_intent.stage": {"$in": ["create", "created"]}}
#: An email intent younger than this may still be in flight (``send_email``'s INTENT_HOLD).
REVIEW_HOLD = dt.timedelta(minutes=5)


def jobs_needing_review(db: Database, now: dt.datetime) -> dict[str, int]:
    """Effects whose outcome could not be confirmed, by kind: a person must look at them (the
    console's review queue lists the same documents)."""
    emails = {
        **EMAIL_UNCONFIRMED,
        "status": {"$nin": ["sent", "scheduled"]},
        "$or": [{"send_intent.at": {"$lt": now - REVIEW_HOLD}}, {"send_intent.at": None}],
    }
    return {
        "social_post": db[names.SOCIAL_POSTS].count_documents(POST_NEEDS_REVIEW),
        "email_send": db[names.EMAIL_CAMPAIGNS].count_documents(emails),
    }


def _aware(value: Any) -> dt.datetime | None:
    """Aggregation results of the embedded engine come back naive; MongoDB's are aware (UTC)."""
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
