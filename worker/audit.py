"""Buffered writes to ``audit_log``: every job state change, without a round trip each.

The scheduler flushes once per poll; workers flush from a background thread every
``interval`` seconds (or when ``max_buffer`` entries wait). Details are redacted before they
are buffered, so no secret reaches MongoDB. A process killed with SIGKILL loses at most the
entries of its last interval; the job records themselves are never buffered.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from worker.db import names
from worker.db.engine import Database
from worker.redact import redact

__all__ = ["AuditLog"]

log = logging.getLogger(__name__)


class AuditLog:
    """Collects audit entries and writes them with one ``insert_many`` per flush."""

    def __init__(self, db: Database, *, interval: float = 0.5, max_buffer: int = 500) -> None:
        self._db = db
        self._interval = interval
        self._max_buffer = max_buffer
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
        entry = {
            "user_id": user_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "details": redact(details or {}),
            "ip_address": None,
            "user_agent": "mmw-worker",
            "timestamp": timestamp or dt.datetime.now(dt.UTC),
        }
        with self._lock:
            self._buffer.append(entry)
            full = len(self._buffer) >= self._max_buffer
        if full and self._thread is None:
            self.flush()

    def job_event(self, job: dict[str, Any], action: str, now: dt.datetime, **details: Any) -> None:
        """An audit entry for a state change of a ``scheduled_job``."""
        self.record(
            user_id=job.get("user_id"),
            action=action,
            resource_type="scheduled_job",
            resource_id=str(job.get("job_id")),
            details={"job_type": job.get("job_type"), **details},
            timestamp=now,
        )

    def flush(self) -> int:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            self._db[names.AUDIT_LOG].insert_many(batch, ordered=False)
        except Exception:  # audit must never fail a job; keep the entries for the next flush
            log.exception("audit_log write failed; will retry %d entries", len(batch))
            with self._lock:
                self._buffer[:0] = batch
            return 0
        return len(batch)

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
