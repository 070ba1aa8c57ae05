"""One execution lifecycle for every actor.

An actor is a plain function of a :class:`JobContext`, registered with :func:`job_actor`::

    @job_actor("post_social")
    def post_social(ctx: JobContext) -> dict: ...

Dramatiq delivers ``(job_id, run_key, epoch)``; :meth:`Runner.execute` then

1. makes the fenced start transition (``processing``, this epoch, not started yet): a duplicate,
   stale or cancelled message matches nothing and does nothing;
2. keeps the lease alive from a heartbeat thread (blocking code in the actor cannot starve it);
3. records the outcome, fenced by the same epoch: ``completed`` (or the next fire of a recurring
   job), a retry with backoff (``pending`` again, same run key), or ``failed``.

Each of these state changes carries its audit entry in the same update (``worker.audit``); the
process's buffered :class:`AuditLog` only holds what actors record with ``ctx.audit``.

The actor function never sees Dramatiq; Dramatiq never retries (see ``worker.broker``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dramatiq.middleware import TimeLimitExceeded

from worker import metrics
from worker.audit import AuditLog, outbox_entry
from worker.clock import wall_clock
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_entry
from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater
from worker.jobtypes import Payload
from worker.redact import redact, redact_text
from worker.retry import decide_retry
from worker.settings import Settings
from worker.states import JobStatus
from worker.validation import InvalidJob, JobSpec, validate_job

__all__ = [
    "HANDLERS",
    "FinishListener",
    "JobContext",
    "LeaseLost",
    "Runner",
    "build_runner",
    "declare_job_actors",
    "entrypoint",
    "get_runner",
    "job_actor",
    "set_runner",
]

log = logging.getLogger(__name__)

Handler = Callable[["JobContext"], Any]
#: Called after a run's outcome is recorded: (job document, final status, result, error).
FinishListener = Callable[[dict[str, Any], str, Any, str | None], None]

#: Job type name -> actor function; filled by ``@job_actor`` when ``worker.actors`` is imported.
HANDLERS: dict[str, Handler] = {}


def job_actor(job_type: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the actor of ``job_type`` (declared on a broker by worker.broker)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[job_type] = fn
        return fn

    return register


class LeaseLost(Exception):
    """This worker no longer owns the run (it was taken over after the lease expired)."""


@dataclass
class _Lease:
    job_id: str
    epoch: int
    valid_until: float  # monotonic
    lost: bool = False


class LeaseKeeper:
    """Extends the leases of the runs of this process from one background thread."""

    def __init__(self, store: JobStore, lease: dt.timedelta, clock: Callable[[], dt.datetime]):
        self._store = store
        self._lease = lease
        self._clock = clock
        self._leases: dict[tuple[str, int], _Lease] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextmanager
    def track(self, job_id: str, epoch: int) -> Iterator[_Lease]:
        entry = _Lease(job_id, epoch, time.monotonic() + self._lease.total_seconds())
        with self._lock:
            self._leases[(job_id, epoch)] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield entry
        finally:
            with self._lock:
                self._leases.pop((job_id, epoch), None)

    def beat(self) -> None:
        """Extend every tracked lease once (called by the thread; tests call it directly)."""
        with self._lock:
            entries = list(self._leases.values())
        for entry in entries:
            started = time.monotonic()
            try:
                owned = self._store.heartbeat(
                    entry.job_id, entry.epoch, self._clock() + self._lease
                )
            except Exception:
                log.exception("lease heartbeat failed for %s", entry.job_id)
                continue
            if owned:
                entry.valid_until = started + self._lease.total_seconds()
            else:
                entry.lost = True

    def _run(self) -> None:
        interval = max(self._lease.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()


@dataclass
class JobContext:
    """What an actor gets: the job, its validated payload and the run's identity."""

    job: dict[str, Any]
    spec: JobSpec
    run_key: str
    db: Database
    settings: Settings
    audit_log: AuditLog
    _lease: _Lease
    _clock: Callable[[], dt.datetime] = field(default=wall_clock)

    @property
    def payload(self) -> Payload:
        return self.spec.payload

    @property
    def job_id(self) -> str:
        return self.job["job_id"]

    @property
    def user_id(self) -> str:
        return self.job["user_id"]

    @property
    def attempt(self) -> int:
        return int(self.job.get("attempts") or 1)

    def now(self) -> dt.datetime:
        return self._clock()

    def ensure_owner(self) -> None:
        """Raise :class:`LeaseLost` if another worker may have taken this run over.

        Call it right before every side effect; a zombie worker then stops before it posts.
        """
        if self._lease.lost or time.monotonic() > self._lease.valid_until:
            raise LeaseLost(f"lease of job {self.job_id} lost; another worker owns the run")

    def audit(
        self,
        action: str,
        resource_type: str,
        resource_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.audit_log.record(
            user_id=self.user_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            details={"job_id": self.job_id, "run_key": self.run_key, **(details or {})},
            timestamp=self.now(),
        )


class Runner:
    """Runs messages of this process: one per worker process (or per test)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = wall_clock,
        audit_log: AuditLog | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.store = JobStore(db)
        self.clock = clock
        self.audit_log = audit_log or AuditLog(db).start()
        self.handlers = HANDLERS if handlers is None else handlers
        self.lease = dt.timedelta(seconds=settings.lease_seconds)
        self.keeper = LeaseKeeper(self.store, self.lease, clock)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.finish_listeners: list[FinishListener] = []

    def close(self) -> None:
        self.keeper.stop()
        self.audit_log.close()

    def execute(self, job_type: str, job_id: str, run_key: str, epoch: int) -> None:
        """Run one delivered message through the lifecycle (never raises for job errors)."""
        now = self.clock()
        job = self.store.start(
            job_id,
            epoch,
            worker=self.worker_id,
            now=now,
            lease=self.lease,
            audit=outbox_entry("job_started", now, run_key=run_key, epoch=epoch),
        )
        if job is None:
            metrics.DUPLICATES_PREVENTED.labels(job_type).inc()
            log.info("job %s epoch %s: duplicate or stale message, nothing to do", job_id, epoch)
            return
        run_at = job.get("run_at") or job["schedule"]["execute_at"]
        metrics.JOBS_STARTED.labels(job_type).inc()
        metrics.SCHEDULE_LAG.labels(job_type).observe(max((now - run_at).total_seconds(), 0))
        try:
            spec = validate_job(job)
        except InvalidJob as exc:  # changed after the claim (hand edit): fail, do not run
            self._finish_failed(job, None, run_key, now, str(exc))
            return
        started = time.monotonic()
        with self.keeper.track(job_id, epoch) as lease:
            ctx = JobContext(
                job=job,
                spec=spec,
                run_key=run_key,
                db=self.db,
                settings=self.settings,
                audit_log=self.audit_log,
                _lease=lease,
                _clock=self.clock,
            )
            metrics.JOBS_IN_PROGRESS.labels(job_type).inc()
            try:
                result = self.handlers[job_type](ctx)
            except LeaseLost as exc:
                log.warning("%s", exc)
                metrics.DUPLICATES_PREVENTED.labels(job_type).inc()
                return
            except (Exception, TimeLimitExceeded) as exc:  # TimeLimitExceeded: BaseException
                self._record_error(job, spec, run_key, exc, time.monotonic() - started)
                return
            finally:
                metrics.JOBS_IN_PROGRESS.labels(job_type).dec()
        self._record_success(job, spec, run_key, result, time.monotonic() - started)

    # ------------------------------------------------------------------ outcomes
    def _record_success(
        self, job: dict[str, Any], spec: JobSpec, run_key: str, result: Any, seconds: float
    ) -> None:
        now = self.clock()
        result = redact(result if isinstance(result, dict) else {"value": result})
        recorded, missed = self.store.end_run(
            job,
            spec,
            outcome=JobStatus.COMPLETED,
            now=now,
            run=run_entry(job, run_key, "completed", now),
            history_limit=self.settings.history_limit,
            result=result,
            retention=dt.timedelta(days=self.settings.retention_days),
            audit=outbox_entry("job_completed", now, run_key=run_key),
        )
        metrics.JOB_DURATION.labels(spec.job_type.name, "completed").observe(seconds)
        if not recorded:
            metrics.DUPLICATES_PREVENTED.labels(spec.job_type.name).inc()
            log.warning("job %s: run finished after a takeover; outcome not recorded", run_key)
            return
        if missed:
            metrics.MISSED_RUNS.labels(spec.job_type.name, "overlap").inc(missed)
        metrics.JOBS_COMPLETED.labels(spec.job_type.name).inc()
        self._notify(job, JobStatus.COMPLETED.value, result, None)

    def _record_error(
        self, job: dict[str, Any], spec: JobSpec, run_key: str, exc: BaseException, seconds: float
    ) -> None:
        now = self.clock()
        error = _describe(exc, spec)
        retryable = not isinstance(exc, PermanentFailure | OutcomeUnknown)
        decision = decide_retry(
            attempts=int(job.get("attempts") or 1),
            max_attempts=spec.max_attempts,
            now=now,
            error=error,
            retryable=retryable,
            requested_delay=exc.delay if isinstance(exc, RetryLater) else None,
            base=self.settings.backoff_base_seconds,
            cap=self.settings.backoff_max_seconds,
        )
        metrics.JOB_DURATION.labels(spec.job_type.name, "error").observe(seconds)
        if decision.retry_at is None:
            self._finish_failed(job, spec, run_key, now, decision.error)
            return
        recorded = self.store.finish(
            job,
            status=JobStatus.PENDING,
            now=now,
            run=run_entry(job, run_key, "retry", now, error=error),
            history_limit=self.settings.history_limit,
            error=error,
            next_due=decision.retry_at,
            keep_run=True,
            audit=outbox_entry(
                "job_retry_scheduled",
                now,
                run_key=run_key,
                error=error,
                retry_at=decision.retry_at.isoformat(),
            ),
        )
        if recorded:
            metrics.JOBS_RETRIED.labels(spec.job_type.name).inc()

    def _finish_failed(
        self,
        job: dict[str, Any],
        spec: JobSpec | None,
        run_key: str,
        now: dt.datetime,
        error: str,
    ) -> None:
        recorded, _ = self.store.end_run(
            job,
            spec,
            outcome=JobStatus.FAILED,
            now=now,
            run=run_entry(job, run_key, "failed", now, error=error),
            history_limit=self.settings.history_limit,
            error=error,
            audit=outbox_entry("job_failed", now, run_key=run_key, error=error),
        )
        if recorded:
            metrics.JOBS_FAILED.labels(str(job.get("job_type")), "error").inc()
            self._notify(job, JobStatus.FAILED.value, None, error)

    def _notify(self, job: dict[str, Any], status: str, result: Any, error: str | None) -> None:
        for listener in self.finish_listeners:
            try:
                listener(job, status, result, error)
            except Exception:
                log.exception("finish listener failed for job %s", job.get("job_id"))


def _describe(exc: BaseException, spec: JobSpec) -> str:
    if isinstance(exc, TimeLimitExceeded):
        return f"time limit of {spec.job_type.time_limit_seconds:g}s exceeded"
    if isinstance(exc, OutcomeUnknown):
        return f"outcome unknown, needs review: {redact_text(str(exc))}"
    if isinstance(exc, JobError):
        return redact_text(str(exc)) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {exc}")


def build_runner(db: Database, settings: Settings) -> Runner:
    """The runner of a worker process, with the standard finish listeners (webhook events)."""
    from worker.webhooks import job_event_listener

    runner = Runner(db, settings)
    runner.finish_listeners.append(job_event_listener(db, settings=settings))
    return runner


def entrypoint(job_type: str) -> Callable[[str, str, int], None]:
    """The Dramatiq actor function of ``job_type``: hands the message to the process's runner."""

    def run(job_id: str, run_key: str, epoch: int) -> None:
        get_runner().execute(job_type, job_id, run_key, epoch)

    run.__name__ = run.__qualname__ = job_type
    return run


def declare_job_actors(broker: Any) -> dict[str, Any]:
    """Declare an actor for every registered handler on ``broker`` (see worker.broker)."""
    from worker.broker import declare_actors

    return declare_actors(broker, {name: entrypoint(name) for name in HANDLERS})


_runner: Runner | None = None
_runner_lock = threading.Lock()


def set_runner(runner: Runner | None) -> None:
    """Install the process's runner (worker boot, ``mmw dev`` and tests)."""
    global _runner
    _runner = runner


def get_runner() -> Runner:
    """The process's runner; built from the environment's settings on first use."""
    global _runner
    if _runner is None:
        with _runner_lock:
            if _runner is None:
                from worker.db.client import get_database
                from worker.settings import get_settings

                settings = get_settings()
                _runner = build_runner(get_database(settings), settings)
    return _runner
