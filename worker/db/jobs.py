"""Every MongoDB operation on ``scheduled_jobs``, each one conditional and atomic per document.

The decisions (what is due, which fire to run, retry or fail) live in pure modules
(``worker.schedule``, ``worker.validation``, ``worker.retry``); this module only turns them into
guarded updates. Two guards make "nothing twice" hold:

* **status**: a claim only takes ``pending`` documents, so racing schedulers split a batch;
* **epoch** (fencing token): every claim increments it and every later write of that run names it,
  so a duplicate message, a stale message or a zombie worker after a takeover matches nothing.

Every state change takes an ``audit`` entry (``worker.audit.outbox_entry``) and pushes it onto the
job's ``audit_outbox`` in the same update: the audit trail cannot be lost between the change and
a later write, and costs no extra round trip.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from pymongo import ReturnDocument

from worker.db import names
from worker.db.engine import Database
from worker.schedule import next_due_after_run
from worker.states import JobStatus
from worker.validation import JobSpec

__all__ = ["JobStore", "run_entry", "run_key_for"]

_CLAIM_FIELDS = {"history": 0, "result": 0, names.AUDIT_OUTBOX: 0}
Entry = dict[str, Any] | None


def _audited(update: dict[str, Any], audit: Entry) -> dict[str, Any]:
    """``update`` with ``audit`` pushed onto the outbox (same atomic write as the change)."""
    if audit is not None:
        update.setdefault("$push", {})[names.AUDIT_OUTBOX] = audit
    return update


def run_key_for(job: dict[str, Any]) -> str:
    """The run's unique key: job id (the parent's, for spawned runs) + the run's scheduled time.

    It is the Dramatiq message id and the idempotency key of side effects; it stays the same
    across retries of one run because ``run_at`` is kept until the run ends.
    """
    run_at = job.get("run_at") or job["schedule"]["execute_at"]
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=dt.UTC)
    stamp = run_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{job.get('parent_job_id') or job['job_id']}@{stamp}"


def run_entry(
    job: dict[str, Any], run_key: str, status: str, now: dt.datetime, **extra: Any
) -> dict[str, Any]:
    """One element of the job's bounded ``history``: how an attempt of a run ended."""
    started = job.get("started_at") or (job.get("lease") or {}).get("started_at") or now
    return {
        "run_key": run_key,
        "run_at": job.get("run_at") or job["schedule"]["execute_at"],
        "started_at": started,
        "finished_at": now,
        "status": status,
        "attempts": job.get("attempts"),
        "duration_ms": int((now - started).total_seconds() * 1000),
        **extra,
    }


class JobStore:
    """Guarded reads and writes of ``scheduled_jobs``; one instance per process is fine."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.jobs = db[names.SCHEDULED_JOBS]

    # ---------------------------------------------------------------- scheduler side
    def claim_due(
        self,
        now: dt.datetime,
        *,
        owner: str,
        limit: int,
        queued_lease: dt.timedelta,
        paused_users: Iterable[str] = (),
        paused_types: Iterable[str] = (),
        audit: Entry = None,
    ) -> list[dict[str, Any]]:
        """Atomically move up to ``limit`` due jobs to ``processing``, oldest due first.

        Three operations per batch: read the ids in due order, update those still pending (the
        status guard splits races between schedulers), read back exactly the ones this claim won
        (its unique ``claim_id``).
        """
        query = self.due_query(now, paused_users, paused_types)
        due = self.jobs.find(query, {"_id": 1}, sort=[("schedule.execute_at", 1)], limit=limit)
        if not due:
            return []
        claim_id = uuid.uuid4().hex
        self.jobs.update_many(
            {"_id": {"$in": [d["_id"] for d in due]}, "status": JobStatus.PENDING.value},
            _audited(
                {
                    "$set": {
                        "status": JobStatus.PROCESSING.value,
                        "claim_id": claim_id,
                        "lease": {"owner": owner, "until": now + queued_lease, "started_at": None},
                        "updated_at": now,
                    },
                    "$inc": {"epoch": 1},
                },
                audit,
            ),
        )
        return self.jobs.find(
            {"claim_id": claim_id}, _CLAIM_FIELDS, sort=[("schedule.execute_at", 1)]
        )

    def find_malformed(self, limit: int) -> list[dict[str, Any]]:
        """Documents the claim query can never select: no/unknown status, or no due date."""
        known = [s.value for s in JobStatus]
        return self.jobs.find(
            {
                "$or": [
                    {"status": {"$exists": False}},
                    {"status": {"$nin": known}},
                    {
                        "status": JobStatus.PENDING.value,
                        "schedule.execute_at": {"$not": {"$type": "date"}},
                    },
                    # the same for a non-object `schedule` (spelled out for the embedded engine)
                    {"status": JobStatus.PENDING.value, "schedule.execute_at": {"$exists": False}},
                ]
            },
            limit=limit,
        )

    def adopt(self, job: dict[str, Any], fields: dict[str, Any], audit: Entry = None) -> bool:
        """Complete a hand-written document (status, first due time), guarded by its status."""
        result = self.jobs.update_one(
            {"_id": job["_id"], "status": job.get("status")}, _audited({"$set": fields}, audit)
        )
        return result.modified_count == 1

    def fail_unclaimed(
        self, job: dict[str, Any], error: str, now: dt.datetime, audit: Entry = None
    ) -> bool:
        """Fail a malformed document found outside a claim (guarded by its current status)."""
        result = self.jobs.update_one(
            {"_id": job["_id"], "status": job.get("status")},
            _audited({"$set": self._failed_fields(error, now)}, audit),
        )
        return result.modified_count == 1

    def fail_claimed(
        self, job: dict[str, Any], error: str, now: dt.datetime, audit: Entry = None
    ) -> bool:
        """End a claimed run as failed without running it (invalid document, too late)."""
        result = self.jobs.update_one(
            {"_id": job["_id"], "epoch": job.get("epoch"), "status": JobStatus.PROCESSING.value},
            _audited(
                {
                    "$set": self._failed_fields(error, now),
                    "$unset": {"lease": "", "claim_id": ""},
                },
                audit,
            ),
        )
        return result.modified_count == 1

    def reschedule_claimed(
        self,
        job: dict[str, Any],
        execute_at: dt.datetime,
        now: dt.datetime,
        *,
        missed: int = 0,
        error: str | None = None,
        audit: Entry = None,
    ) -> bool:
        """Put a claimed recurring job back to ``pending`` at ``execute_at`` without running."""
        update: dict[str, Any] = {
            "$set": {
                "status": JobStatus.PENDING.value,
                "schedule.execute_at": execute_at,
                "updated_at": now,
                "attempts": 0,
            },
            "$unset": {"lease": "", "claim_id": "", "run_at": ""},
            "$inc": {"missed_runs": missed},
        }
        if error is not None:
            update["$set"]["error"] = error
        result = self.jobs.update_one(
            {"_id": job["_id"], "epoch": job["epoch"], "status": JobStatus.PROCESSING.value},
            _audited(update, audit),
        )
        return result.modified_count == 1

    def set_run_at(self, job: dict[str, Any], run_at: dt.datetime, missed: int) -> bool:
        """Record which fire a claimed recurring job runs (catch-up chose another than due)."""
        result = self.jobs.update_one(
            {"_id": job["_id"], "epoch": job["epoch"], "status": JobStatus.PROCESSING.value},
            {"$set": {"run_at": run_at}, "$inc": {"missed_runs": missed}},
        )
        return result.modified_count == 1

    def spawn_run(self, parent: dict[str, Any], run_at: dt.datetime, now: dt.datetime) -> bool:
        """Insert one run of a recurring job as its own one-off job (overlap policy "allow").

        Its ``job_id`` is the run key, so a second scheduler spawning the same fire fails on the
        unique index instead of creating a second run.
        """
        from pymongo.errors import DuplicateKeyError

        child = {
            "job_id": "",
            "parent_job_id": parent["job_id"],
            "user_id": parent["user_id"],
            "job_type": parent["job_type"],
            "payload": parent.get("payload") or {},
            "schedule": {"execute_at": run_at, "recurring": False},
            "run_at": run_at,
            "status": JobStatus.PENDING.value,
            "attempts": 0,
            "max_attempts": parent.get("max_attempts"),
            "created_at": now,
            "epoch": 0,
        }
        child["job_id"] = run_key_for(child)
        try:
            self.jobs.insert_one(child)
        except DuplicateKeyError:
            return False
        return True

    def release_claimed(
        self, jobs: list[dict[str, Any]], now: dt.datetime, audit: Entry = None
    ) -> int:
        """Give claimed jobs back (the broker refused the batch, or the job is paused); they are
        claimed again later. A started run lost with its worker keeps its ``run_at`` (a retry).
        """
        if not jobs:
            return 0
        result = self.jobs.update_many(
            {
                "$or": [{"_id": j["_id"], "epoch": j["epoch"]} for j in jobs],
                "status": JobStatus.PROCESSING.value,
            },
            _audited(
                {
                    "$set": {"status": JobStatus.PENDING.value, "updated_at": now},
                    "$unset": {"lease": "", "claim_id": ""},
                },
                audit,
            ),
        )
        return result.modified_count

    def expired_leases(self, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
        """Jobs in ``processing`` whose lease ran out: a crashed worker or a lost message."""
        return self.jobs.find(
            {"status": JobStatus.PROCESSING.value, "lease.until": {"$lt": now}},
            _CLAIM_FIELDS,
            sort=[("lease.until", 1)],
            limit=limit,
        )

    def reclaim(
        self,
        job: dict[str, Any],
        now: dt.datetime,
        *,
        owner: str,
        queued_lease: dt.timedelta,
        lost: dict[str, Any] | None = None,
        history_limit: int = 20,
        audit: Entry = None,
    ) -> dict[str, Any] | None:
        """Take over a run whose worker died: new epoch (fences the zombie), fresh lease.

        ``lost`` is the history entry of the attempt that died; the run keeps its ``run_at`` so
        the next attempt is a retry of the same run (same run key). None if someone else did
        first.
        """
        update: dict[str, Any] = {
            "$set": {
                "lease": {"owner": owner, "until": now + queued_lease, "started_at": None},
                "updated_at": now,
                "run_at": job.get("run_at") or job["schedule"]["execute_at"],
            },
            "$inc": {"epoch": 1},
            "$unset": {"claim_id": ""},
        }
        if lost is not None:
            update["$push"] = {"history": {"$each": [lost], "$slice": -history_limit}}
        return self.jobs.find_one_and_update(
            {"_id": job["_id"], "epoch": job["epoch"], "status": JobStatus.PROCESSING.value},
            _audited(update, audit),
            projection=_CLAIM_FIELDS,
            return_document=ReturnDocument.AFTER,
        )

    def renew(
        self,
        job: dict[str, Any],
        now: dt.datetime,
        *,
        owner: str,
        queued_lease: dt.timedelta,
        audit: Entry = None,
    ) -> dict[str, Any] | None:
        """Take over a run that never started, keeping its epoch, to send its message again.

        The epoch stays: if the first message still exists somewhere (a broker that cannot be
        asked, a dead worker's prefetch), both copies are valid and the first start wins (the
        start is fenced on ``lease.started_at``), so a re-send never makes a queued message
        stale. The lease as read is the compare-and-set guard: of two racing schedulers only one
        renews. None if the run started, changed or was renewed by someone else meanwhile.
        """
        lease = job.get("lease") or {}
        return self.jobs.find_one_and_update(
            {
                "_id": job["_id"],
                "epoch": job["epoch"],
                "status": JobStatus.PROCESSING.value,
                "lease.started_at": None,
                "lease.owner": lease.get("owner"),
                "lease.until": lease.get("until"),
            },
            _audited(
                {
                    "$set": {
                        "lease": {"owner": owner, "until": now + queued_lease, "started_at": None},
                        "updated_at": now,
                    },
                    "$unset": {"claim_id": ""},
                },
                audit,
            ),
            projection=_CLAIM_FIELDS,
            return_document=ReturnDocument.AFTER,
        )

    def unstarted(
        self,
        *,
        owners: Iterable[str] | None = None,
        after: Any = None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Dispatched runs not started yet, in ``_id`` order from ``after``; only those claimed
        by ``owners`` when given (a dead scheduler's claims)."""
        query: dict[str, Any] = {"status": JobStatus.PROCESSING.value, "lease.started_at": None}
        if owners is not None:
            query["lease.owner"] = {"$in": list(owners)}
        if after is not None:
            query["_id"] = {"$gt": after}
        return self.jobs.find(query, _CLAIM_FIELDS, sort=[("_id", 1)], limit=limit)

    def extend_queued(self, jobs: list[dict[str, Any]], until: dt.datetime, owner: str) -> int:
        """Their messages are still in the broker's queue: keep waiting for a worker.

        One update for the whole set; extending a lease that another replica just renewed only
        postpones the next check, so the epoch need not be matched here. The lease passes to
        ``owner`` (a live scheduler) so a dead scheduler's sent claims are not checked again.
        """
        if not jobs:
            return 0
        result = self.jobs.update_many(
            {
                "_id": {"$in": [j["_id"] for j in jobs]},
                "status": JobStatus.PROCESSING.value,
                "lease.started_at": None,
            },
            {"$set": {"lease.until": until, "lease.owner": owner}},
        )
        return result.modified_count

    def purge_finished(self, now: dt.datetime) -> int:
        """The retention policy on the embedded engine (a TTL index does it on MongoDB)."""
        return self.jobs.delete_many({"purge_at": {"$lt": now}}).deleted_count

    def count_by_status(self) -> dict[str, int]:
        rows = self.jobs.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {str(r["_id"]): r["n"] for r in rows}

    @staticmethod
    def due_query(
        now: dt.datetime, paused_users: Iterable[str] = (), paused_types: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Due, pending and not held by an operator: what the next claim takes."""
        query: dict[str, Any] = {
            "status": JobStatus.PENDING.value,
            "schedule.execute_at": {"$lte": now},
            "paused": {"$ne": True},
        }
        users, types = list(paused_users), list(paused_types)
        if users:
            query["user_id"] = {"$nin": users}
        if types:
            query["job_type"] = {"$nin": types}
        return query

    # ---------------------------------------------------------------- worker side
    def start(
        self,
        job_id: str,
        epoch: int,
        *,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        audit: Entry = None,
    ) -> dict[str, Any] | None:
        """The fenced start transition; None means duplicate, stale or cancelled: do nothing."""
        return self.jobs.find_one_and_update(
            {
                "job_id": job_id,
                "epoch": epoch,
                "status": JobStatus.PROCESSING.value,
                "lease.started_at": None,
            },
            _audited(
                {
                    "$set": {
                        "lease.started_at": now,
                        "lease.worker": worker,
                        "lease.until": now + lease,
                        "started_at": now,
                    },
                    "$inc": {"attempts": 1},
                },
                audit,
            ),
            projection={"history": 0, names.AUDIT_OUTBOX: 0},
            return_document=ReturnDocument.AFTER,
        )

    def heartbeat(self, job_id: str, epoch: int, until: dt.datetime) -> bool:
        """Extend a running job's lease; False means this worker no longer owns it."""
        result = self.jobs.update_one(
            {"job_id": job_id, "epoch": epoch, "status": JobStatus.PROCESSING.value},
            {"$set": {"lease.until": until}},
        )
        return result.matched_count == 1

    def finish(
        self,
        job: dict[str, Any],
        *,
        status: JobStatus,
        now: dt.datetime,
        run: dict[str, Any],
        history_limit: int,
        result: Any = None,
        error: str | None = None,
        next_due: dt.datetime | None = None,
        keep_run: bool = False,
        missed: int = 0,
        purge_at: dt.datetime | None = None,
        audit: Entry = None,
    ) -> bool:
        """Record the end of an attempt, fenced by the run's epoch.

        ``status`` is the job's next status: completed/failed end a one-off job; pending with
        ``next_due`` either retries this run (``keep_run``: same run key) or, for a recurring
        job, waits for its next fire.
        """
        fields: dict[str, Any] = {"status": status.value, "updated_at": now, "finished_at": now}
        unset: dict[str, str] = {"lease": "", "claim_id": ""}
        if result is not None:
            fields["result"] = result
            fields["executed_at"] = now
        fields["error"] = error
        if next_due is not None:
            fields["schedule.execute_at"] = next_due
        if keep_run:
            fields["run_at"] = job.get("run_at") or job["schedule"]["execute_at"]
        else:
            unset["run_at"] = ""
            if status == JobStatus.PENDING:
                fields["attempts"] = 0
        if purge_at is not None:
            fields["purge_at"] = purge_at
        update: dict[str, Any] = {
            "$set": fields,
            "$unset": unset,
            "$push": {"history": {"$each": [run], "$slice": -history_limit}},
        }
        if missed:
            update["$inc"] = {"missed_runs": missed}
        outcome = self.jobs.update_one(
            {"_id": job["_id"], "epoch": job["epoch"], "status": JobStatus.PROCESSING.value},
            _audited(update, audit),
        )
        return outcome.modified_count == 1

    def end_run(
        self,
        job: dict[str, Any],
        spec: JobSpec | None,
        *,
        outcome: JobStatus,
        now: dt.datetime,
        run: dict[str, Any],
        history_limit: int,
        result: Any = None,
        error: str | None = None,
        retention: dt.timedelta | None = None,
        audit: Entry = None,
    ) -> tuple[bool, int]:
        """End a run (fenced): a one-off job takes ``outcome`` (completed or failed); a
        recurring job records the run and waits for its next fire. Returns (recorded, missed).
        ``spec`` is None for a document that no longer validates: it ends like a one-off.
        """
        if spec is not None and spec.recurring:
            assert spec.cron is not None and spec.timezone is not None
            next_due, missed = next_due_after_run(
                spec.cron,
                spec.timezone,
                run["run_at"],
                now,
                spec.overlap,
                spec.catch_up,
                spec.catch_up_window,
            )
            recorded = self.finish(
                job,
                status=JobStatus.PENDING,
                now=now,
                run=run,
                history_limit=history_limit,
                result=result,
                error=error,
                next_due=next_due,
                missed=missed,
                audit=audit,
            )
            return recorded, missed
        purge_at = now + retention if retention and outcome == JobStatus.COMPLETED else None
        recorded = self.finish(
            job,
            status=outcome,
            now=now,
            run=run,
            history_limit=history_limit,
            result=result,
            error=error,
            purge_at=purge_at,
            audit=audit,
        )
        return recorded, 0

    @staticmethod
    def _failed_fields(error: str, now: dt.datetime) -> dict[str, Any]:
        return {
            "status": JobStatus.FAILED.value,
            "error": error,
            "finished_at": now,
            "updated_at": now,
        }
