"""Approval requests: create them idempotently, read their decision, expire the unanswered.

The product app decides by updating the document (``status: approved|rejected``, ``approved_by``,
``approval_notes`` / ``rejection_reason``, ``resolved_at``). An unanswered request expires: it is
stored as ``rejected`` (the schema's statuses) with ``rejection_reason: "expired: …"``.
Waiting work never holds a worker:
the job that created a request ends, and a check job scheduled ``approval_poll_seconds`` later
reads :func:`decision` and either continues, ends the work, or schedules the next check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pymongo import ReturnDocument

from worker import api
from worker.clock import wall_clock
from worker.db import names
from worker.db.engine import Database
from worker.db.writes import upsert_retrying

__all__ = ["ApprovalConflict", "Decision", "decision", "expire", "request_approval", "resolve"]

Decision = Literal["pending", "approved", "rejected", "expired"]


def decision(request: dict[str, Any], now: dt.datetime) -> Decision:
    """What the waiting work should do about ``request`` at ``now`` (pure)."""
    status = request.get("status")
    if status in ("approved", "rejected"):
        return status  # type: ignore[return-value]
    expires_at = request.get("expires_at")
    if expires_at is not None and now >= expires_at:
        return "expired"
    return "pending"


def request_approval(
    db: Database,
    *,
    request_id: str,
    user_id: str,
    campaign_id: str,
    conversation_id: str | None,
    request_type: str,
    content: dict[str, Any],
    requested_by: str,
    now: dt.datetime,
    timeout: dt.timedelta,
    resume: dict[str, Any],
) -> dict[str, Any]:
    """The request named ``request_id``, created pending if it does not exist yet (a re-run
    of the step finds the first one and its decision). ``resume`` (``job_type``, ``payload``)
    is the job that continues the waiting work; :func:`resolve` submits it at once."""
    collection = db[names.APPROVAL_REQUESTS]
    upsert_retrying(
        collection.update_one,
        {"request_id": request_id},
        {
            "$setOnInsert": {
                "request_id": request_id,
                "user_id": user_id,
                "campaign_id": campaign_id,
                "conversation_id": conversation_id,
                "request_type": request_type,
                "content": content,
                "status": "pending",
                "requested_by": requested_by,
                "created_at": now,
                "expires_at": now + timeout,
                "resume": resume,
            }
        },
        upsert=True,
    )
    found = collection.find_one({"request_id": request_id, "user_id": user_id})
    if found is None:
        raise ValueError(f"approval request {request_id!r} belongs to another user")
    return found


def expire(db: Database, request: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Reject a pending request as expired; returns the current document (which may have been
    decided in the meantime)."""
    hours = (request["expires_at"] - request["created_at"]).total_seconds() / 3600
    db[names.APPROVAL_REQUESTS].update_one(
        {"request_id": request["request_id"], "status": "pending"},
        {
            "$set": {
                "status": "rejected",
                "rejection_reason": f"expired: no decision within {hours:g} h",
                "resolved_at": now,
            }
        },
    )
    return db[names.APPROVAL_REQUESTS].find_one({"request_id": request["request_id"]}) or request


class ApprovalConflict(ValueError):
    """The request does not exist for this user, or is no longer pending."""


def resolve(
    db: Database,
    *,
    request_id: str,
    user_id: str,
    approved: bool,
    by: str,
    notes: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Decide a pending request and release the waiting work now (not at its next check).

    For apps using the Python API; a plain document update works too, acted on within
    ``approval_poll_seconds``. ``notes`` is the ``approval_notes`` or the ``rejection_reason``.
    """
    now = now or wall_clock()
    fields: dict[str, Any] = {
        "status": "approved" if approved else "rejected",
        "approved_by": by if approved else None,
        "resolved_at": now,
        ("approval_notes" if approved else "rejection_reason"): notes,
    }
    request = db[names.APPROVAL_REQUESTS].find_one_and_update(
        {"request_id": request_id, "user_id": user_id, "status": "pending"},
        {"$set": fields},
        return_document=ReturnDocument.AFTER,
    )
    if request is None:
        raise ApprovalConflict(f"no pending approval request {request_id!r} for this user")
    resume = request.get("resume")
    if resume:
        job_id = f"{resume['job_type']}:{request_id}:resolved"
        api.submit(
            db,
            job_type=resume["job_type"],
            user_id=user_id,
            payload=resume["payload"],
            execute_at=now,
            job_id=job_id,
            idempotency_key=job_id,
            now=now,
        )
    return request
