"""Writes to ``audit_log``: job state changes through an outbox, everything else buffered.

* **Job state changes** never wait in memory. The entry (:func:`outbox_entry`) is pushed onto the
  job document's ``audit_outbox`` array *in the same update* as the state change, so a process
  SIGKILLed right after the change loses nothing and no round trip is added. The scheduler moves
  outboxes to ``audit_log`` in batches (:func:`move_outbox`): one read, one ``insert_many``, one
  ``$pull``. Each ``audit_log`` row carries ``entry_id`` (unique index): a crash between the insert
  and the pull, or two schedulers moving the same outbox, never writes an entry twice.
* **Other entries** (an actor's ``ctx.audit``, the scheduler's ``job_dispatched``) are buffered
  and written with one ``insert_many`` per flush. The buffer is bounded (``max_pending``; the
  oldest are dropped and counted in ``mmw_audit_dropped_total``); a partial ``BulkWriteError``
  drops what was written and keeps the rest for the next flush.

Details are redacted before they are stored, so no secret reaches MongoDB.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import Any

from pymongo.errors import BulkWriteError

from worker.clock import wall_clock
from worker.db import names
from worker.db.engine import Database
from worker.redact import redact

__all__ = ["AuditLog", "move_job_outbox", "move_outbox", "outbox_entry"]

log = logging.getLogger(__name__)

OUTBOX = names.AUDIT_OUTBOX
_DUPLICATE_KEY = 11000
_JOB = "scheduled_job"
_AGENT = "mmw-worker"


def outbox_entry(action: str, now: dt.datetime, **details: Any) -> dict[str, Any]:
    """One element of ``audit_outbox``: pushed by the update that makes the state change.

    ``{id, action, timestamp, details}``; the job's ``user_id``, ``job_id`` and ``job_type`` are
    added when it is moved (one entry may be pushed onto a whole claimed batch).
    """
    return {
        "id": uuid.uuid4().hex,
        "action": action,
        "timestamp": now,
        "details": redact(details),
    }


def _row(
    entry_id: str,
    user_id: Any,
    action: str,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any],
    timestamp: dt.datetime,
) -> dict[str, Any]:
    return {
        "entry_id": entry_id,
        "user_id": user_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "details": details,
        "ip_address": None,
        "user_agent": _AGENT,
        "timestamp": timestamp,
    }


def _insert(db: Database, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``rows`` (unordered); returns the rows that were not written and may be retried.

    A duplicate ``entry_id`` means the row was written before (a retried batch): it counts as
    written. Any other exception than a partial bulk failure leaves every row to retry.
    """
    try:
        db[names.AUDIT_LOG].insert_many(rows, ordered=False)
    except BulkWriteError as exc:
        failed = {
            e["index"]
            for e in exc.details.get("writeErrors", [])
            if e.get("code") != _DUPLICATE_KEY
        }
        return [row for i, row in enumerate(rows) if i in failed]
    return []


def move_outbox(
    db: Database,
    limit: int = 500,
    *,
    settled_before: dt.datetime | None = None,
) -> int:
    """Move up to ``limit`` jobs' outboxes to ``audit_log``; returns the entries moved.

    Idempotent and safe to run from several schedulers at once: rows are keyed by
    ``<job _id>:<entry id>`` (the claim pushes one entry onto many jobs), and the ``$pull``
    removes only the entries this call saw, never ones pushed meanwhile.

    With ``settled_before``, a run still ``processing`` is left until its oldest entry is older
    than that: it will soon push more (start, outcome), and each move rewrites the document, so
    a short run is moved once, after it ends.
    """
    query: dict[str, Any] = {f"{OUTBOX}.id": {"$exists": True}}
    if settled_before is not None:
        query["$or"] = [
            {"status": {"$ne": "processing"}},
            {f"{OUTBOX}.timestamp": {"$lt": settled_before}},
        ]
    docs = db[names.SCHEDULED_JOBS].find(
        query, {OUTBOX: 1, "job_id": 1, "user_id": 1, "job_type": 1}, limit=limit
    )
    return _move(db, docs)


def move_job_outbox(db: Database, job_oid: Any) -> int:
    """Move one job's outbox now: an operator's action shows in ``audit_log`` at once (its
    entry is already durable in the job; a failure here leaves it for the scheduler's move)."""
    docs = db[names.SCHEDULED_JOBS].find(
        {"_id": job_oid, f"{OUTBOX}.id": {"$exists": True}},
        {OUTBOX: 1, "job_id": 1, "user_id": 1, "job_type": 1},
        limit=1,
    )
    return _move(db, docs)


def _move(db: Database, docs: list[dict[str, Any]]) -> int:
    """Write the outbox entries of ``docs`` (as read) to ``audit_log``, then pull them."""
    if not docs:
        return 0
    jobs = db[names.SCHEDULED_JOBS]
    rows = []
    for doc in docs:
        resource_id = str(doc.get("job_id") or doc["_id"])
        for entry in doc.get(OUTBOX) or []:
            rows.append(
                _row(
                    f"{doc['_id']}:{entry['id']}",
                    doc.get("user_id"),
                    entry["action"],
                    _JOB,
                    resource_id,
                    {"job_type": doc.get("job_type"), **(entry.get("details") or {})},
                    entry["timestamp"],
                )
            )
    left = _insert(db, rows)
    if left:
        log.error("audit_log refused %d outbox entries; they stay on their jobs", len(left))
    moved = {row["entry_id"].rsplit(":", 1)[1] for row in rows} - {
        row["entry_id"].rsplit(":", 1)[1] for row in left
    }
    jobs.update_many(
        {"_id": {"$in": [d["_id"] for d in docs]}},
        {"$pull": {OUTBOX: {"id": {"$in": sorted(moved)}}}},
    )
    return len(rows) - len(left)


class AuditLog:
    """Collects entries that are not job state changes; one ``insert_many`` per flush."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 0.5,
        max_buffer: int = 500,
        max_pending: int = 10_000,
    ) -> None:
        self._db = db
        self._interval = interval
        self._max_buffer = max_buffer
        self._max_pending = max_pending
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self,
        *,
        user_id: str | None,
        action: str,
        resource_type: str,
        resource_id: str,
        details: dict[str, Any] | None = None,
        timestamp: dt.datetime | None = None,
    ) -> None:
        row = _row(
            uuid.uuid4().hex,
            user_id,
            action,
            resource_type,
            resource_id,
            redact(details or {}),
            timestamp or wall_clock(),
        )
        with self._lock:
            self._buffer.append(row)
            self._bound()
            full = len(self._buffer) >= self._max_buffer
        if full and self._thread is None:
            self.flush()

    def job_event(self, job: dict[str, Any], action: str, now: dt.datetime, **details: Any) -> None:
        """A buffered entry about a job that is not a state change of its document."""
        self.record(
            user_id=job.get("user_id"),
            action=action,
            resource_type=_JOB,
            resource_id=str(job.get("job_id")),
            details={"job_type": job.get("job_type"), **details},
            timestamp=now,
        )

    def flush(self) -> int:
        """Write the buffer; returns the rows written. Rows refused stay for the next flush."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            left = _insert(self._db, batch)
        except Exception:  # audit must never fail a job; the rows (with their ids) are retried
            log.exception("audit_log write failed; will retry %d entries", len(batch))
            left = batch
        if left:
            with self._lock:
                self._buffer[:0] = left
                self._bound()
        return len(batch) - len(left)

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def _bound(self) -> None:
        """Drop the oldest rows beyond ``max_pending`` (called with the lock held)."""
        excess = len(self._buffer) - self._max_pending
        if excess > 0:
            del self._buffer[:excess]
            from worker import metrics  # not at import: the CLI must not load prometheus_client

            metrics.AUDIT_DROPPED.inc(excess)
            log.error("audit buffer full: dropped the %d oldest entries", excess)

    def start(self) -> AuditLog:
        """Flush in the background (workers); the scheduler calls :meth:`flush` itself."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
