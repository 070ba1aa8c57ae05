"""Pure decisions of the publish-once protocol (no I/O; the ``post_social`` actor applies them).

Each entry of ``social_posts.platforms[]`` (a *target*) moves through these statuses::

    scheduled ──▶ publishing ──▶ published
        ▲  │          │   └────▶ failed / needs_review
        │  ▼          ▼
      retrying ◀── (reconcile: not found after the grace period)

``publishing`` means an intent was recorded (``attempt``) and the outcome is not known: the
platform may hold the post. Such a target is never posted again before a lookup
(``find_recent``) says the post is absent; a lookup that cannot be made marks it
``needs_review`` for a person. ``retrying`` means the platform certainly did not take the post.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.errors import JobError, PermanentFailure, RetryLater

__all__ = [
    "Settlement",
    "Step",
    "TargetStatus",
    "final_status",
    "job_outcome",
    "next_step",
    "settle_duplicate",
    "settle_lookup",
    "settle_lookup_failure",
    "summarize",
]


class TargetStatus(StrEnum):
    SCHEDULED = "scheduled"  # the schema's initial value (a missing status means the same)
    PUBLISHING = "publishing"  # intent recorded, outcome unknown
    RETRYING = "retrying"  # certainly not accepted; publish again
    PUBLISHED = "published"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"  # may or may not be on the platform: a person decides


FINAL = frozenset({TargetStatus.PUBLISHED, TargetStatus.FAILED, TargetStatus.NEEDS_REVIEW})
OPEN = frozenset({TargetStatus.PUBLISHING, TargetStatus.RETRYING, TargetStatus.SCHEDULED})


class Step(StrEnum):
    PUBLISH = "publish"
    RECONCILE = "reconcile"
    DONE = "done"


def status_of(target: Mapping[str, Any]) -> TargetStatus:
    """The target's status; unknown values (an app's own) count as not yet published."""
    try:
        return TargetStatus(target.get("status") or TargetStatus.SCHEDULED)
    except ValueError:
        return TargetStatus.SCHEDULED


def next_step(target: Mapping[str, Any]) -> Step:
    """May this target be published (again)?

    Final targets are done; a recorded intent without outcome must be reconciled first; anything
    else (never tried, or certainly refused) is published.
    """
    status = status_of(target)
    if status in FINAL:
        return Step.DONE
    if status is TargetStatus.PUBLISHING:
        return Step.RECONCILE
    return Step.PUBLISH


@dataclass(frozen=True)
class Settlement:
    """What a reconciliation means for the target.

    ``published`` (the post was found: ``post_id``), ``republish`` (certainly absent),
    ``wait`` (ask again after ``delay`` seconds), ``review`` (cannot be settled: a person
    decides) or ``fail`` (the platform refused it for good).
    """

    kind: str
    post_id: str | None = None
    delay: float | None = None
    reason: str = ""


def settle_lookup(
    *, found: str | None, started_at: dt.datetime, now: dt.datetime, grace_seconds: float
) -> Settlement:
    """Meaning of a successful lookup for an intent started at ``started_at``.

    A post that is not found yet may still appear (platforms index new posts with a delay), so
    absence only counts once ``grace_seconds`` have passed since the intent.
    """
    if found:
        return Settlement("published", post_id=found, reason="found on the platform")
    waited = (now - started_at).total_seconds()
    if waited < grace_seconds:
        return Settlement("wait", delay=grace_seconds - waited, reason="not visible yet")
    return Settlement("republish", reason="not found on the platform")


def settle_lookup_failure(error: JobError, *, lookups: int, max_lookups: int) -> Settlement:
    """Meaning of a lookup that failed, the ``lookups``-th failed one for this intent."""
    if isinstance(error, PermanentFailure):  # includes TokenExpired
        return Settlement("review", reason=f"cannot look the post up: {error}")
    if lookups >= max_lookups:
        return Settlement("review", reason=f"lookup failed {lookups} times: {error}")
    delay = error.delay if isinstance(error, RetryLater) else None
    return Settlement("wait", delay=delay, reason=f"lookup failed: {error}")


def settle_duplicate(*, found: str | None, error: JobError, earlier_intent: bool) -> Settlement:
    """Meaning of a "duplicate content" refusal after looking for our own post.

    Found: it was ours, published. Not found, but an earlier attempt of ours may have gone out:
    only a person can tell. Not found and no earlier attempt: the text was posted by someone
    else before (the user), a permanent failure.
    """
    if found:
        return Settlement("published", post_id=found, reason="duplicate of our own post")
    if earlier_intent:
        return Settlement("review", reason=f"platform reports a duplicate we cannot find: {error}")
    return Settlement("fail", reason=str(error))


def final_status(status: TargetStatus) -> tuple[TargetStatus, str] | None:
    """On the job's last attempt, where an open target ends (None: it is final already)."""
    if status is TargetStatus.PUBLISHING:
        return TargetStatus.NEEDS_REVIEW, "outcome unknown and no attempts left"
    if status in OPEN:
        return TargetStatus.FAILED, "no attempts left"
    return None


def summarize(targets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The job result: counts per status and one line per target (no credentials)."""
    rows = [
        {
            "platform": t.get("platform"),
            "account_id": t.get("account_id"),
            "status": status_of(t).value,
            "platform_post_id": t.get("platform_post_id"),
            "error": t.get("error"),
        }
        for t in targets
    ]
    counts = Counter(row["status"] for row in rows)
    if counts[TargetStatus.NEEDS_REVIEW]:
        overall = "needs_review"
    elif counts[TargetStatus.PUBLISHED] == len(rows):
        overall = "published"
    elif counts[TargetStatus.PUBLISHED]:
        overall = "partial"
    elif counts[TargetStatus.FAILED] == len(rows):
        overall = "failed"
    else:
        overall = "pending"
    return {"status": overall, "counts": dict(sorted(counts.items())), "targets": rows}


def job_outcome(targets: Iterable[Mapping[str, Any]]) -> str:
    """``retry`` while any target is open, ``fail`` when every target failed, else ``complete``."""
    statuses = [status_of(t) for t in targets]
    if any(s in OPEN for s in statuses):
        return "retry"
    if statuses and all(s is TargetStatus.FAILED for s in statuses):
        return "fail"
    return "complete"
