"""What an operator may do from the console (or the CLI), each action audited with their name.

Every function takes the acting :class:`~worker.console.auth.Operator` and the reason they gave;
a viewer gets :class:`NotAllowed`, a missing reason or a target in the wrong state gets
:class:`ActionError` (one readable line). Job actions reuse ``worker.api`` (cancel, retry, pause,
resume) and approvals ``worker.agents.approvals.resolve``, so the rules are the same everywhere;
the audit entry carries ``details.actor`` and ``details.reason``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from worker import api
from worker.agents.approvals import ApprovalConflict, resolve
from worker.console.auth import Operator
from worker.console.queries import REVIEW_HOLD, JobFilter, failed_query
from worker.db import names
from worker.db.engine import Database

__all__ = [
    "BULK_LIMIT",
    "ActionError",
    "NotAllowed",
    "cancel_job",
    "decide_approval",
    "mark_email_sent",
    "mark_target_published",
    "pause",
    "resume",
    "retry_email",
    "retry_job",
    "retry_matching",
    "retry_target",
]

#: Most jobs one "retry all matching" requeues (run it again for more).
BULK_LIMIT = 10_000
_AGENT = "mmw-console"


class ActionError(ValueError):
    """The action cannot be done as asked (bad input, or the target is not in that state)."""


class NotAllowed(PermissionError):
    """The operator's role does not allow actions."""


def _check(op: Operator, reason: str | None) -> str:
    if not op.may_act:
        raise NotAllowed(f"{op.name} is a {op.role}; only operators act")
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("give a reason (it is kept in the audit log)")
    return reason


def _details(op: Operator, reason: str, **extra: Any) -> dict[str, Any]:
    return {"actor": op.name, "reason": reason, **extra}


# ----------------------------------------------------------------------------- jobs
def retry_job(db: Database, op: Operator, job_id: str, reason: str, now: dt.datetime) -> dict:
    reason = _check(op, reason)
    try:
        return api.retry(db, job_id, now=now, actor=op.name, reason=reason)
    except api.JobConflict as exc:
        raise ActionError(str(exc)) from None


def cancel_job(db: Database, op: Operator, job_id: str, reason: str, now: dt.datetime) -> dict:
    reason = _check(op, reason)
    try:
        return api.cancel(db, job_id, now=now, actor=op.name, reason=reason)
    except api.JobConflict as exc:
        raise ActionError(str(exc)) from None


def retry_matching(
    db: Database,
    op: Operator,
    filt: JobFilter,
    reason: str,
    now: dt.datetime,
    *,
    expected: int | None = None,
) -> dict[str, Any]:
    """Requeue the failed jobs matching ``filt`` (at most :data:`BULK_LIMIT`).

    ``expected`` is the count the operator was shown (the preview); when more jobs match now,
    nothing is done, so a bulk action never touches more than was confirmed.
    """
    reason = _check(op, reason)
    try:
        query = failed_query(filt, BULK_LIMIT)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    matching = query.count(db)
    if expected is not None and matching > expected:
        raise ActionError(
            f"{matching} failed jobs match now, more than the {expected} previewed; preview again"
        )
    requeued, skipped = 0, []
    for row in query.find(db):
        try:
            api.retry(db, row["job_id"], now=now, actor=op.name, reason=reason)
            requeued += 1
        except api.JobConflict as exc:  # changed since the count: report, go on
            skipped.append(str(exc))
    return {"matched": matching, "requeued": requeued, "skipped": skipped}


def _target(kind: str, value: str) -> dict[str, str]:
    keys = {"job": "job_id", "user": "user_id", "job_type": "job_type"}
    if kind not in keys:
        raise ActionError(f"pause target kind must be one of {', '.join(keys)}")
    if not value.strip():
        raise ActionError("name what to pause")
    return {keys[kind]: value}


def pause(db: Database, op: Operator, kind: str, value: str, reason: str, now: dt.datetime) -> None:
    """Hold a job, a user's jobs or a job type's jobs (``kind``: job, user, job_type)."""
    reason = _check(op, reason)
    try:
        api.pause(db, reason=reason, now=now, actor=op.name, **_target(kind, value))
    except api.JobConflict as exc:
        raise ActionError(str(exc)) from None


def resume(
    db: Database, op: Operator, kind: str, value: str, reason: str, now: dt.datetime
) -> None:
    reason = _check(op, reason)
    try:
        api.pause(db, paused=False, reason=reason, now=now, actor=op.name, **_target(kind, value))
    except api.JobConflict as exc:
        raise ActionError(str(exc)) from None


# ----------------------------------------------------------------------------- approvals
def decide_approval(
    db: Database, op: Operator, request_id: str, approved: bool, reason: str, now: dt.datetime
) -> dict[str, Any]:
    """Approve or reject an agent's request; the waiting work is released at once."""
    reason = _check(op, reason)
    request = db[names.APPROVAL_REQUESTS].find_one({"request_id": request_id}, {"user_id": 1})
    if request is None:
        raise ActionError(f"no approval request {request_id!r}")
    try:
        decided = resolve(
            db,
            request_id=request_id,
            user_id=request["user_id"],
            approved=approved,
            by=op.name,
            notes=reason,
            now=now,
        )
    except ApprovalConflict as exc:
        raise ActionError(str(exc)) from None
    api.audit(
        db,
        user_id=request["user_id"],
        action="approval_approved" if approved else "approval_rejected",
        resource_type="approval_request",
        resource_id=request_id,
        details=_details(op, reason),
        now=now,
        user_agent=_AGENT,
    )
    return decided


# ----------------------------------------------------------------------------- the review queue
def _review_target(
    db: Database, post_id: str, platform: str, account_id: str | None
) -> tuple[int, dict[str, Any]]:
    post = db[names.SOCIAL_POSTS].find_one({"post_id": post_id}, {"platforms": 1})
    if post is None:
        raise ActionError(f"no social post {post_id!r}")
    for index, target in enumerate(post.get("platforms") or []):
        if target.get("platform") == platform and target.get("account_id") == account_id:
            if target.get("status") != "needs_review":
                raise ActionError(
                    f"the {platform} target is {target.get('status')}, not needs_review"
                )
            return index, target
    raise ActionError(f"post {post_id!r} has no {platform} target for account {account_id!r}")


def _set_target(
    db: Database, post_id: str, index: int, platform: str, fields: dict[str, Any]
) -> None:
    """Write ``platforms[index]`` only while it still is the same target in needs_review."""
    done = db[names.SOCIAL_POSTS].update_one(
        {
            "post_id": post_id,
            f"platforms.{index}.platform": platform,
            f"platforms.{index}.status": "needs_review",
        },
        {"$set": {f"platforms.{index}.{k}": v for k, v in fields.items()}},
    )
    if done.modified_count != 1:
        raise ActionError("the target changed meanwhile; reload and look again")


def mark_target_published(
    db: Database,
    op: Operator,
    post_id: str,
    platform: str,
    account_id: str | None,
    reason: str,
    now: dt.datetime,
    *,
    platform_post_id: str | None = None,
    url: str | None = None,
) -> None:
    """The operator found the post on the platform: record it as published (never re-posted)."""
    reason = _check(op, reason)
    index, _ = _review_target(db, post_id, platform, account_id)
    fields: dict[str, Any] = {
        "status": "published",
        "published_at": now,
        "reviewed": {"by": op.name, "at": now, "reason": reason},
    }
    if platform_post_id:
        fields["platform_post_id"] = platform_post_id
    if url:
        fields["url"] = url
    _set_target(db, post_id, index, platform, fields)
    api.audit(
        db,
        user_id=None,
        action="review_marked_published",
        resource_type="social_post",
        resource_id=post_id,
        now=now,
        user_agent=_AGENT,
        details=_details(
            op, reason, platform=platform, account_id=account_id, platform_post_id=platform_post_id
        ),
    )


def retry_target(
    db: Database,
    op: Operator,
    post_id: str,
    platform: str,
    account_id: str | None,
    reason: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The operator checked the post is absent: publish that target again (a new job)."""
    reason = _check(op, reason)
    index, target = _review_target(db, post_id, platform, account_id)
    post = db[names.SOCIAL_POSTS].find_one({"post_id": post_id}, {"user_id": 1})
    _set_target(
        db,
        post_id,
        index,
        platform,
        {
            "status": "retrying",
            "attempt": {**(target.get("attempt") or {}), "outcome": "absent"},
            "reviewed": {"by": op.name, "at": now, "reason": reason},
        },
    )
    job = _resubmit(db, "post_social", (post or {}).get("user_id"), {"post_id": post_id}, now)
    api.audit(
        db,
        user_id=(post or {}).get("user_id"),
        action="review_retried",
        resource_type="social_post",
        resource_id=post_id,
        now=now,
        user_agent=_AGENT,
        details=_details(
            op, reason, platform=platform, account_id=account_id, job_id=job["job_id"]
        ),
    )
    return job


def _resubmit(
    db: Database, job_type: str, user_id: str | None, payload: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    if not user_id:
        raise ActionError("the document names no user_id; cannot submit a job for it")
    key = f"{job_type}:{next(iter(payload.values()))}:review:{now.isoformat()}"
    try:
        return api.submit(
            db,
            job_type=job_type,
            user_id=user_id,
            payload=payload,
            execute_at=now,
            job_id=key,
            idempotency_key=key,
            now=now,
        )
    except (api.InvalidJob, api.JobConflict) as exc:
        raise ActionError(str(exc)) from None


def _unconfirmed_email(db: Database, campaign_id: str, now: dt.datetime) -> dict[str, Any]:
    doc = db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": campaign_id})
    if doc is None:
        raise ActionError(f"no email campaign {campaign_id!r}")
    intent = doc.get("send_intent") or {}
    if intent.get("stage") not in ("create", "created") or doc.get("status") in (
        "sent",
        "scheduled",
    ):
        raise ActionError(f"email campaign {campaign_id!r} has no unconfirmed send")
    if intent.get("at") and now - intent["at"] < REVIEW_HOLD:
        raise ActionError("the send may still be in flight; look again in a few minutes")
    return doc


def mark_email_sent(
    db: Database, op: Operator, campaign_id: str, reason: str, now: dt.datetime
) -> None:
    """The operator saw the send in Zoho: record it as sent (it is never sent again)."""
    reason = _check(op, reason)
    doc = _unconfirmed_email(db, campaign_id, now)
    stage = doc["send_intent"]["stage"]
    done = db[names.EMAIL_CAMPAIGNS].update_one(
        {"campaign_id": campaign_id, "send_intent.stage": stage},
        {
            "$set": {
                "status": "sent",
                "sent_at": now,
                "send_intent.stage": "done",
                "updated_at": now,
                "reviewed": {"by": op.name, "at": now, "reason": reason},
            }
        },
    )
    if done.modified_count != 1:
        raise ActionError("the campaign changed meanwhile; reload and look again")
    api.audit(
        db,
        user_id=doc.get("user_id"),
        action="review_marked_sent",
        resource_type="email_campaign",
        resource_id=campaign_id,
        details=_details(op, reason),
        now=now,
        user_agent=_AGENT,
    )


def retry_email(
    db: Database, op: Operator, campaign_id: str, reason: str, now: dt.datetime
) -> dict[str, Any]:
    """Run the send again: the new run reconciles with Zoho by the intent's marker first, so a
    campaign that did go out is recorded, not sent twice."""
    reason = _check(op, reason)
    doc = _unconfirmed_email(db, campaign_id, now)
    job = _resubmit(db, "send_email", doc.get("user_id"), {"campaign_id": campaign_id}, now)
    api.audit(
        db,
        user_id=doc.get("user_id"),
        action="review_retried",
        resource_type="email_campaign",
        resource_id=campaign_id,
        details=_details(op, reason, job_id=job["job_id"]),
        now=now,
        user_agent=_AGENT,
    )
    return job
