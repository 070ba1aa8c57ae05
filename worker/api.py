"""The Python API for upstream apps and operators: submit, get, cancel, retry, pause.

Everything here validates with the same rules as the scheduler (``worker.validation``), so a job
that ``submit`` accepts is one the scheduler will run. Apps may also insert documents by hand;
the scheduler checks those the first time it sees them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from worker.audit import move_job_outbox, outbox_entry
from worker.clock import wall_clock
from worker.db import names
from worker.db.engine import Database
from worker.db.rules import type_name
from worker.db.writes import upsert_retrying
from worker.jobtypes import JOB_TYPES
from worker.schedule import next_fire, upcoming_fires
from worker.states import JobStatus
from worker.validation import (
    PLATFORM_ORIGIN,
    PLATFORM_USER,
    InvalidJob,
    require_id,
    validate_job,
)

__all__ = [
    "PLATFORM_JOBS",
    "PLATFORM_USER",
    "InvalidJob",
    "JobConflict",
    "adopt_legacy_internal_jobs",
    "audit",
    "cancel",
    "ensure_platform_jobs",
    "get",
    "list_jobs",
    "pause",
    "preview_fires",
    "resume",
    "retry",
    "submit",
    "submit_platform_job",
]

log = logging.getLogger(__name__)


class JobConflict(ValueError):
    """The idempotency key already names a different job, or the job cannot change state."""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or wall_clock()


def _user_timezone(db: Database, user_id: str) -> str | None:
    user = db[names.USERS].find_one({"user_id": user_id}, {"preferences": 1})
    return ((user or {}).get("preferences") or {}).get("timezone")


def submit(
    db: Database,
    *,
    job_type: str,
    user_id: str,
    payload: dict[str, Any] | None = None,
    execute_at: dt.datetime | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    catch_up: Literal["once", "skip", "all"] | None = None,
    overlap: Literal["skip", "buffer", "allow"] | None = None,
    max_lateness_seconds: float | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    job_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Create a job (one-off at ``execute_at``, default now; or recurring with ``cron``).

    With ``idempotency_key``, submitting again returns the job this user created with it the
    first time (keys are per user). Raises :class:`InvalidJob` with a readable message when
    anything does not validate, including internal job types (``JobType.internal``): those
    only the platform creates (:func:`submit_platform_job`).
    """
    return _create(
        db,
        origin=None,
        job_type=job_type,
        user_id=user_id,
        payload=payload,
        execute_at=execute_at,
        cron=cron,
        timezone=timezone,
        catch_up=catch_up,
        overlap=overlap,
        max_lateness_seconds=max_lateness_seconds,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        job_id=job_id,
        now=now,
    )


def submit_platform_job(db: Database, **job: Any) -> dict[str, Any]:
    """Create a job as the platform itself (``origin: "platform"``): the only way to an internal
    job type. For platform code (webhook events, ``ensure_platform_jobs``), never for requests
    of users; same arguments as :func:`submit`."""
    return _create(db, origin=PLATFORM_ORIGIN, **job)


#: The recurring jobs the platform runs for itself (``mmw db init`` creates them).
PLATFORM_JOBS: tuple[dict[str, Any], ...] = (
    {
        "job_id": "platform:refresh_zoho_tokens",
        "job_type": "refresh_zoho_tokens",
        "user_id": PLATFORM_USER,
        "cron": "*/10 * * * *",
        "timezone": "UTC",
    },
)


def ensure_platform_jobs(db: Database, *, now: dt.datetime | None = None) -> list[str]:
    """Create the platform's recurring jobs that do not exist yet (idempotent); their ids."""
    created = []
    for job in PLATFORM_JOBS:
        try:
            submit_platform_job(db, now=now, **job)
        except JobConflict:
            continue  # already there
        created.append(job["job_id"])
    return created


def adopt_legacy_internal_jobs(db: Database, *, now: dt.datetime | None = None) -> int:
    """Mark unfinished jobs of internal types written before ``origin`` existed as the
    platform's (a one-time migration in ``mmw db init``), so deliveries queued across the upgrade
    are not failed as forged; returns how many. A legacy ``refresh_zoho_tokens`` of a user now
    refreshes that user's token only."""
    internal = [name for name, job_type in JOB_TYPES.items() if job_type.internal]
    result = db[names.SCHEDULED_JOBS].update_many(
        {
            "job_type": {"$in": internal},
            "origin": {"$exists": False},
            "status": {"$in": [JobStatus.PENDING.value, JobStatus.PROCESSING.value]},
        },
        {"$set": {"origin": PLATFORM_ORIGIN, "updated_at": _now(now)}},
    )
    return int(result.modified_count)


def _schedule(
    execute_at: Any, cron: Any, timezone: Any, options: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    if execute_at is not None and not isinstance(execute_at, dt.datetime):
        raise InvalidJob(
            f"field 'schedule.execute_at' must be a datetime, got {type(execute_at).__name__}"
        )
    if cron is None and execute_at is None:
        execute_at = now
    if execute_at is not None and execute_at.tzinfo is None:
        raise InvalidJob("execute_at must be timezone-aware (e.g. datetime.now(UTC))")
    schedule: dict[str, Any] = {"execute_at": execute_at, "recurring": cron is not None}
    if cron is not None:
        schedule["cron_expression"] = cron
        if timezone is not None:
            schedule["timezone"] = timezone
    schedule.update({k: v for k, v in options.items() if v is not None})
    return schedule


def _create(
    db: Database,
    *,
    origin: str | None,
    job_type: str,
    user_id: str,
    payload: dict[str, Any] | None = None,
    execute_at: dt.datetime | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    catch_up: str | None = None,
    overlap: str | None = None,
    max_lateness_seconds: float | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    job_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    now = _now(now)
    require_id(user_id, "user_id")  # before it is used in a query
    if idempotency_key is not None:
        require_id(idempotency_key, "idempotency_key")
    schedule = _schedule(
        execute_at,
        cron,
        timezone,
        {
            "catch_up": catch_up,
            "overlap": overlap,
            "max_lateness_seconds": max_lateness_seconds,
        },
        now,
    )
    doc: dict[str, Any] = {
        "job_id": f"job_{uuid.uuid4().hex}" if job_id is None else job_id,
        "user_id": user_id,
        "job_type": job_type,
        "payload": {} if payload is None else payload,
        "schedule": schedule,
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
        "updated_at": now,
        "epoch": 0,
    }
    if origin is not None:
        doc["origin"] = origin
    default_timezone = (
        _user_timezone(db, user_id) if cron is not None and timezone is None else None
    )
    spec = validate_job(doc, default_timezone=default_timezone)
    doc["payload"] = spec.payload.model_dump(mode="json")
    doc["max_attempts"] = spec.max_attempts
    if spec.recurring:
        schedule["timezone"] = spec.timezone
        if execute_at is None:
            schedule["execute_at"] = next_fire(spec.cron, spec.timezone, now)
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
    try:
        db[names.SCHEDULED_JOBS].insert_one(doc)
    except DuplicateKeyError:
        if idempotency_key is None:
            raise JobConflict(f"a job with job_id {doc['job_id']!r} already exists") from None
        existing = db[names.SCHEDULED_JOBS].find_one(
            {"user_id": user_id, "idempotency_key": idempotency_key}
        )
        if existing is None or existing.get("job_type") != job_type:
            raise JobConflict(
                f"idempotency key {idempotency_key!r} already names another job"
                if existing is not None
                else f"a job with job_id {doc['job_id']!r} already exists"
            ) from None
        return existing
    return doc


def get(db: Database, job_id: str) -> dict[str, Any] | None:
    return db[names.SCHEDULED_JOBS].find_one({"job_id": job_id})


def list_jobs(
    db: Database,
    *,
    status: str | None = None,
    job_type: str | None = None,
    user_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest due first; filters combine."""
    query = {
        k: v
        for k, v in (("status", status), ("job_type", job_type), ("user_id", user_id))
        if v is not None
    }
    return db[names.SCHEDULED_JOBS].find(
        query,
        {"payload": 0, "history": 0},
        sort=[("schedule.execute_at", -1)],
        limit=limit,
    )


def cancel(
    db: Database,
    job_id: str,
    *,
    now: dt.datetime | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Cancel a job that has not started; a cancelled job never starts.

    A job whose run already started on a worker cannot be cancelled (its side effects may be
    under way); :class:`JobConflict` says so.
    """
    now = _now(now)
    job = db[names.SCHEDULED_JOBS].find_one_and_update(
        {
            "job_id": job_id,
            "$or": [
                {"status": JobStatus.PENDING.value},
                {"status": JobStatus.PROCESSING.value, "lease.started_at": None},
            ],
        },
        {
            "$set": {"status": JobStatus.CANCELLED.value, "updated_at": now, "finished_at": now},
            **_outbox_push("job_cancelled", now, actor, reason),
        },
    )
    if job is None:
        current = get(db, job_id)
        if current is None:
            raise JobConflict(f"no job {job_id!r}")
        raise JobConflict(
            f"job {job_id!r} is {current.get('status')}"
            + (" and already running" if current.get("status") == "processing" else "")
            + "; only pending or not yet started jobs can be cancelled"
        )
    _publish_audit(db, job)
    return job


def retry(
    db: Database,
    job_id: str,
    *,
    now: dt.datetime | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Requeue a failed job now, with a fresh attempt budget and the same run key."""
    now = _now(now)
    current = get(db, job_id)
    if current is None:
        raise JobConflict(f"no job {job_id!r}")
    if current.get("status") != JobStatus.FAILED.value:
        raise JobConflict(f"job {job_id!r} is {current.get('status')}; only failed jobs retry")
    schedule = current.get("schedule")
    if not isinstance(schedule, dict):
        # ``schedule.execute_at`` cannot be set under a non-object (MongoDB: code 28), and
        # replacing what the document's author wrote would hide the mistake.
        raise JobConflict(
            f"job {job_id!r} has a malformed schedule ({type_name(schedule)}, not an "
            "object): fix the document, then retry"
        )
    run_at = current.get("run_at") or schedule.get("execute_at")
    updated = db[names.SCHEDULED_JOBS].find_one_and_update(
        {"job_id": job_id, "status": JobStatus.FAILED.value, "schedule": {"$type": "object"}},
        {
            "$set": {
                "status": JobStatus.PENDING.value,
                "attempts": 0,
                "schedule.execute_at": now,
                "run_at": run_at,
                "updated_at": now,
            },
            "$unset": {"purge_at": ""},
            **_outbox_push("job_requeued", now, actor, reason),
        },
    )
    if updated is None:
        raise JobConflict(f"job {job_id!r} changed while retrying; try again")
    _publish_audit(db, updated)
    return updated


def pause(
    db: Database,
    *,
    job_id: str | None = None,
    user_id: str | None = None,
    job_type: str | None = None,
    reason: str | None = None,
    paused: bool = True,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> None:
    """Hold (or with ``paused=False`` release) one job, a user's jobs or a job type's jobs.

    Paused jobs are simply not claimed; running ones finish. Exactly one target is named.
    ``actor`` (the operator) is kept as ``set_by`` with the ``reason`` and in the audit entry.
    """
    now = _now(now)
    targets = [t for t in (job_id, user_id, job_type) if t is not None]
    if len(targets) != 1:
        raise ValueError("name exactly one of job_id, user_id, job_type")
    action = "jobs_paused" if paused else "jobs_resumed"
    if job_id is not None:  # a change of the job document: its entry travels with it
        job = db[names.SCHEDULED_JOBS].find_one_and_update(
            {"job_id": job_id},
            {
                "$set": {
                    "paused": paused,
                    "pause": {"reason": reason, "set_by": actor, "at": now},
                    "updated_at": now,
                },
                **_outbox_push(action, now, actor, reason),
            },
            projection={"_id": 1, "job_id": 1},
        )
        if job is None:
            raise JobConflict(f"no job {job_id!r}")
        _publish_audit(db, job)
        return
    kind, value = ("user", user_id) if user_id is not None else ("job_type", job_type)
    upsert_retrying(
        db[names.JOB_CONTROLS].update_one,
        {"kind": kind, "value": value},
        {"$set": {"paused": paused, "reason": reason, "set_by": actor, "updated_at": now}},
        upsert=True,
    )
    _audit(
        db,
        user_id=user_id,
        action=action,
        resource_id=f"{kind}:{value}",
        details=_operator_details(actor, reason),
        now=now,
    )


def resume(
    db: Database, *, actor: str | None = None, reason: str | None = None, **target: str
) -> None:
    pause(db, paused=False, actor=actor, reason=reason, **target)


def preview_fires(
    job: dict[str, Any], n: int, *, now: dt.datetime | None = None
) -> list[dt.datetime]:
    """The next ``n`` fires of a recurring job (``mmw jobs next``)."""
    spec = validate_job(job)
    if not spec.recurring:
        raise InvalidJob(f"job {spec.job_id!r} is not recurring")
    after = (
        max(_now(now), spec.execute_at - dt.timedelta(microseconds=1))
        if spec.execute_at
        else _now(now)
    )
    return upcoming_fires(spec.cron, spec.timezone, after, n)


def audit(
    db: Database,
    *,
    user_id: str | None,
    action: str,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any],
    now: dt.datetime,
    user_agent: str = "mmw-api",
) -> None:
    """An operator's action, written at once (the API has no batching audit log).

    ``details.actor`` names the operator and ``details.reason`` the reason they gave.
    """
    db[names.AUDIT_LOG].insert_one(
        {
            "user_id": user_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "details": details,
            "user_agent": user_agent,
            "timestamp": now,
        }
    )


def _audit(
    db: Database,
    *,
    user_id: str | None,
    action: str,
    resource_id: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> None:
    audit(
        db,
        user_id=user_id,
        action=action,
        resource_type="scheduled_job",
        resource_id=resource_id,
        details=details,
        now=now,
    )


def _operator_details(actor: str | None, reason: str | None) -> dict[str, Any]:
    """``reason`` always; ``actor``: the operator who acted (console, CLI), when one is named."""
    details: dict[str, Any] = {"reason": reason}
    if actor is not None:
        details["actor"] = actor
    return details


def _outbox_push(
    action: str, now: dt.datetime, actor: str | None, reason: str | None
) -> dict[str, Any]:
    """The ``$push`` that makes a state change carry its own audit entry (``audit_outbox``):
    a crash right after the update cannot lose it."""
    details = _operator_details(actor, reason) if actor is not None or reason is not None else {}
    return {"$push": {names.AUDIT_OUTBOX: outbox_entry(action, now, **details)}}


def _publish_audit(db: Database, job: dict[str, Any]) -> None:
    """Show the entry in ``audit_log`` at once; if this fails the scheduler moves it later."""
    try:
        move_job_outbox(db, job["_id"])
    except Exception:
        log.exception("audit entry of job %s left for the scheduler's move", job.get("job_id"))
