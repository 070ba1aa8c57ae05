"""The polling scheduler: claim due jobs in batches, dispatch them, recover lost runs.

Each :meth:`Scheduler.tick` is one poll at an explicit ``now`` (tests drive time by hand):

1. **claim** up to ``claim_batch_size`` due jobs atomically (``JobStore.claim_due``): replicas split
   a batch, never share it;
2. **decide** each claimed job with pure functions: invalid → ``failed`` with a readable error;
   a one-off later than its ``max_lateness`` → ``failed``; a recurring job's catch-up and
   overlap policies (``worker.schedule``) pick the fire to run or skip;
3. **dispatch** the runs in one broker pipeline; if the broker refuses, the batch is released;
4. **recover** runs whose lease expired: a started run (worker lost) is retried as a new attempt;
   an unstarted one is re-sent only if its message is gone from the broker (lost with Redis);
5. now and then: check hand-written documents the claim query cannot see, purge finished jobs
   past retention, and refresh the status gauges.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dramatiq import Broker

from worker import metrics
from worker.audit import AuditLog
from worker.backlog import jobs_needing_review, paused_jobs, queue_backlog
from worker.broker import (
    Dispatch,
    declare_queues,
    dispatch_many,
    message_exists,
    requeue_from_dead_workers,
)
from worker.db import names
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_entry, run_key_for
from worker.jobtypes import JOB_TYPES
from worker.schedule import Overlap, next_due_after_run, next_fire, plan_due
from worker.settings import Settings
from worker.states import JobStatus
from worker.validation import InvalidJob, JobSpec, validate_job

__all__ = ["Scheduler", "TickReport"]

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class TickReport:
    """What one poll did (logged, and asserted by tests)."""

    claimed: int = 0
    dispatched: int = 0
    invalid: int = 0
    too_late: int = 0
    skipped: int = 0
    spawned: int = 0
    adopted: int = 0
    recovered: int = 0
    extended: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.claimed > 0 or self.recovered > 0


class Scheduler:
    """One scheduler replica; run as many as you like, they never dispatch a run twice."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.broker = broker
        self.settings = settings
        self.clock = clock
        self.store = JobStore(db)
        self.audit = AuditLog(db)
        self.owner = owner or settings.scheduler_id or f"{socket.gethostname()}:{os.getpid()}"
        self.queued_lease = dt.timedelta(seconds=settings.queued_lease_seconds)
        self.grace = dt.timedelta(seconds=settings.misfire_grace_seconds)
        self._last_intake = self._last_purge = self._last_stats = float("-inf")
        self._last_recovery = self._last_controls = float("-inf")
        self._controls: tuple[list[str], list[str]] = ([], [])
        self._user_timezones: dict[str, str | None] = {}

    # ---------------------------------------------------------------- the poll
    def tick(self, now: dt.datetime | None = None) -> TickReport:
        """One poll: claim, decide, dispatch, recover, housekeeping."""
        now = now or self.clock()
        started = time.perf_counter()
        report = TickReport()
        users, types = self._paused()
        claimed = self.store.claim_due(
            now,
            owner=self.owner,
            limit=self.settings.claim_batch_size,
            queued_lease=self.queued_lease,
            paused_users=users,
            paused_types=types,
        )
        report.claimed = len(claimed)
        outgoing: list[Dispatch] = []
        for job in claimed:
            metrics.JOBS_CLAIMED.labels(str(job.get("job_type"))).inc()
            try:
                dispatch = self._decide(job, now, report)
            except Exception as exc:  # a bug must not stop the loop or delay other jobs
                log.exception("scheduler could not handle job %s", job.get("job_id"))
                self.store.fail_claimed(job, f"scheduler error: {type(exc).__name__}: {exc}", now)
                report.errors.append(str(job.get("job_id")))
                continue
            if dispatch is not None:
                outgoing.append(dispatch)
        self._send(outgoing, claimed, now, report, action="job_dispatched")
        if time.monotonic() - self._last_recovery >= self.settings.recovery_interval:
            self._last_recovery = time.monotonic()
            self._recover(now, report)
        self._housekeeping(now, report)
        self.audit.flush()
        metrics.POLL_DURATION.observe(time.perf_counter() - started)
        metrics.LAST_POLL.set(time.time())
        return report

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (SIGTERM/SIGINT in ``mmw scheduler``)."""
        declare_queues(self.broker, (t.queue for t in JOB_TYPES.values()))
        log.info("scheduler %s polling every %.2fs", self.owner, self.settings.poll_interval)
        while not stop.is_set():
            began = time.monotonic()
            try:
                report = self.tick()
            except Exception:
                log.exception("poll failed; retrying after the poll interval")
                report = TickReport()
            if report.busy:
                log.info(
                    "claimed %d, dispatched %d, invalid %d, late %d, recovered %d",
                    report.claimed,
                    report.dispatched,
                    report.invalid,
                    report.too_late,
                    report.recovered,
                )
            full = report.claimed >= self.settings.claim_batch_size
            if not full:  # a full batch means a backlog: poll again at once
                stop.wait(max(0.0, self.settings.poll_interval - (time.monotonic() - began)))
        self.audit.flush()
        log.info("scheduler %s stopped", self.owner)

    # ---------------------------------------------------------------- decisions
    def _decide(self, job: dict[str, Any], now: dt.datetime, report: TickReport) -> Dispatch | None:
        try:
            spec = validate_job(job, default_timezone=self._user_timezone(job))
        except InvalidJob as exc:
            self._fail(job, str(exc), now, "invalid")
            report.invalid += 1
            return None
        if not spec.recurring:
            return self._decide_one_off(job, spec, now, report)
        if job.get("run_at") is not None:  # a retry of a recurring run: same fire, same key
            return self._dispatch_for(job, spec)
        due_at = spec.execute_at
        assert due_at is not None
        if spec.overlap == Overlap.ALLOW:
            return self._spawn(job, spec, due_at, now, report)
        plan = plan_due(
            spec.cron, spec.timezone, due_at, now, spec.catch_up, spec.catch_up_window, self.grace
        )
        if plan.missed:
            metrics.MISSED_RUNS.labels(spec.job_type.name, "catch_up").inc(plan.missed)
        if plan.run_at is None:
            self.store.reschedule_claimed(job, plan.next_due, now, missed=plan.missed)
            self.audit.job_event(job, "job_fires_skipped", now, missed=plan.missed)
            report.skipped += 1
            return None
        if plan.run_at != due_at:
            self.store.set_run_at(job, plan.run_at, plan.missed)
            job["run_at"] = plan.run_at
        return self._dispatch_for(job, spec)

    def _decide_one_off(
        self, job: dict[str, Any], spec: JobSpec, now: dt.datetime, report: TickReport
    ) -> Dispatch | None:
        due_at = job.get("run_at") or spec.execute_at
        first_attempt = job.get("run_at") is None
        if first_attempt and spec.max_lateness is not None and now - due_at > spec.max_lateness:
            late = now - due_at
            self._fail(
                job,
                f"too late: due at {due_at.isoformat()}, claimed {_human(late)} later, beyond "
                f"the job type's max lateness of {_human(spec.max_lateness)}; not run (set "
                "schedule.max_lateness_seconds to allow a later run)",
                now,
                "too_late",
            )
            metrics.MISSED_RUNS.labels(spec.job_type.name, "too_late").inc()
            report.too_late += 1
            return None
        return self._dispatch_for(job, spec)

    def _spawn(
        self,
        job: dict[str, Any],
        spec: JobSpec,
        due_at: dt.datetime,
        now: dt.datetime,
        report: TickReport,
    ) -> None:
        """Overlap "allow": each fire runs as its own one-off job; the parent waits for the next."""
        plan = plan_due(
            spec.cron, spec.timezone, due_at, now, spec.catch_up, spec.catch_up_window, self.grace
        )
        next_due = plan.next_due
        if plan.run_at is not None:
            if self.store.spawn_run(job, plan.run_at, now):
                report.spawned += 1
            next_due, _ = next_due_after_run(
                spec.cron,
                spec.timezone,
                plan.run_at,
                now,
                Overlap.SKIP,
                spec.catch_up,
                spec.catch_up_window,
            )
        self.store.reschedule_claimed(job, next_due, now, missed=plan.missed)
        return None

    def _dispatch_for(self, job: dict[str, Any], spec: JobSpec) -> Dispatch:
        return Dispatch(
            job_type=spec.job_type.name,
            queue=job.get("queue") or spec.job_type.queue,
            job_id=spec.job_id,
            run_key=run_key_for(job),
            epoch=int(job["epoch"]),
        )

    def _fail(self, job: dict[str, Any], error: str, now: dt.datetime, reason: str) -> None:
        if self.store.fail_claimed(job, error, now):
            metrics.JOBS_FAILED.labels(str(job.get("job_type")), reason).inc()
            self.audit.job_event(job, "job_failed", now, error=error, reason=reason)

    # ---------------------------------------------------------------- dispatch & recovery
    def _send(
        self,
        outgoing: list[Dispatch],
        jobs: list[dict[str, Any]],
        now: dt.datetime,
        report: TickReport,
        *,
        action: str,
    ) -> None:
        if not outgoing:
            return
        try:
            dispatch_many(self.broker, outgoing)
        except Exception as exc:
            log.error("broker refused %d messages (%s); releasing them", len(outgoing), exc)
            sent_ids = {d.job_id for d in outgoing}
            report.released += self.store.release_claimed(
                [j for j in jobs if j["job_id"] in sent_ids], now
            )
            return
        report.dispatched += len(outgoing)
        by_id = {j["job_id"]: j for j in jobs}
        for item in outgoing:
            metrics.JOBS_DISPATCHED.labels(item.job_type, item.queue).inc()
            self.audit.job_event(
                by_id[item.job_id], action, now, run_key=item.run_key, epoch=item.epoch
            )

    def _recover(self, now: dt.datetime, report: TickReport) -> None:
        expired = self.store.expired_leases(now, self.settings.claim_batch_size)
        if not expired:
            return
        unstarted = [j for j in expired if not (j.get("lease") or {}).get("started_at")]
        dispatches = {j["job_id"]: self._dispatch_guess(j) for j in unstarted}
        alive = message_exists(self.broker, [d for d in dispatches.values() if d is not None])
        alive_by_id = dict(
            zip([k for k, d in dispatches.items() if d is not None], alive, strict=True)
        )
        # Still in the broker: a long queue, or held by a worker that may be dead (Dramatiq hands
        # those back when asked). Either way they wait; one update extends them all.
        waiting = [j for j in unstarted if alive_by_id.get(j["job_id"])]
        if waiting:
            requeue_from_dead_workers(self.broker, {dispatches[j["job_id"]].queue for j in waiting})
            report.extended += self.store.extend_queued(waiting, now + self.queued_lease)
        resend: list[Dispatch] = []
        resent_jobs: list[dict[str, Any]] = []
        for job in expired:
            if alive_by_id.get(job["job_id"]):
                continue
            job_type = str(job.get("job_type"))
            metrics.LEASE_EXPIRATIONS.labels(job_type).inc()
            started = bool((job.get("lease") or {}).get("started_at"))
            if started and not self._attempts_left(job, now):
                continue
            fresh = self.store.reclaim(job, now, owner=self.owner, queued_lease=self.queued_lease)
            if fresh is None:
                continue  # another replica recovered it first
            reason = "worker_lost" if started else "message_lost"
            metrics.JOBS_RECOVERED.labels(job_type, reason).inc()
            item = self._dispatch_guess(fresh)
            if item is None:
                self._fail(fresh, "cannot recover: unknown job_type", now, "invalid")
                continue
            report.recovered += 1
            resend.append(item)
            resent_jobs.append(fresh)
        self._send(resend, resent_jobs, now, report, action="job_recovered")

    def _attempts_left(self, job: dict[str, Any], now: dt.datetime) -> bool:
        """A run lost with its worker counts as an attempt; out of attempts, it ends here."""
        try:
            spec = validate_job(job, default_timezone=self._user_timezone(job))
        except InvalidJob as exc:
            self._fail(job, str(exc), now, "invalid")
            return False
        attempts = int(job.get("attempts") or 0)
        if attempts < spec.max_attempts:
            return True
        error = f"worker lost during the run (lease expired) after {attempts} attempts"
        ok, _ = self.store.end_run(
            job,
            spec,
            outcome=JobStatus.FAILED,
            now=now,
            run=run_entry(job, run_key_for(job), "failed", now, error=error),
            history_limit=self.settings.history_limit,
            error=error,
        )
        if ok:
            metrics.JOBS_FAILED.labels(spec.job_type.name, "worker_lost").inc()
            self.audit.job_event(job, "job_failed", now, error=error, reason="worker_lost")
        return False

    def _dispatch_guess(self, job: dict[str, Any]) -> Dispatch | None:
        job_type = JOB_TYPES.get(str(job.get("job_type")))
        if job_type is None:
            return None
        return Dispatch(
            job_type=job_type.name,
            queue=job.get("queue") or job_type.queue,
            job_id=job["job_id"],
            run_key=run_key_for(job),
            epoch=int(job["epoch"]),
        )

    # ---------------------------------------------------------------- housekeeping
    def _housekeeping(self, now: dt.datetime, report: TickReport) -> None:
        mono = time.monotonic()
        if mono - self._last_intake >= self.settings.intake_interval:
            self._last_intake = mono
            self.intake(now, report)
        if mono - self._last_purge >= 60:
            self._last_purge = mono
            self.store.purge_finished(now)
        if mono - self._last_stats >= self.settings.stats_interval:
            self._last_stats = mono
            self.refresh_gauges(now)

    def intake(self, now: dt.datetime, report: TickReport) -> None:
        """Check documents the claim query cannot see (written by hand without status/due time).

        Valid ones are adopted (a recurring job gets its first fire), the rest fail with the
        reason; either way they are handled the first time the scheduler sees them.
        """
        for job in self.store.find_malformed(self.settings.claim_batch_size):
            try:
                fields = self._adoption(job, now)
            except InvalidJob as exc:
                if self.store.fail_unclaimed(job, str(exc), now):
                    metrics.JOBS_FAILED.labels(str(job.get("job_type")), "invalid").inc()
                    self.audit.job_event(job, "job_failed", now, error=str(exc), reason="invalid")
                    report.invalid += 1
                continue
            if self.store.adopt(job, fields):
                self.audit.job_event(job, "job_adopted", now)
                report.adopted += 1

    def _adoption(self, job: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        """The fields that make a hand-written document claimable; InvalidJob if it cannot be."""
        status = job.get("status")
        if status not in (None, JobStatus.PENDING.value):
            raise InvalidJob(
                f"status {status!r} cannot be scheduled (write 'pending', or leave it out); "
                "'processing' is only set by the scheduler"
            )
        schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else None
        first_fire = (
            schedule is not None
            and schedule.get("cron_expression") is not None
            and (not isinstance(schedule.get("execute_at"), dt.datetime))
        )
        checked = {**job, "schedule": {**schedule, "execute_at": None}} if first_fire else job
        spec = validate_job(checked, default_timezone=self._user_timezone(job))
        fields: dict[str, Any] = {"status": JobStatus.PENDING.value, "attempts": 0}
        if first_fire:
            fields["schedule.execute_at"] = next_fire(spec.cron, spec.timezone, now)
            fields["schedule.timezone"] = spec.timezone
            fields["schedule.recurring"] = True
        return fields

    def refresh_gauges(self, now: dt.datetime) -> None:
        counts = self.store.count_by_status()
        for status in JobStatus:
            metrics.JOBS_BY_STATUS.labels(status.value).set(counts.get(status.value, 0))
        users, types = self._paused()
        backlog = queue_backlog(self.db, now, paused_users=users, paused_types=types)
        metrics.DUE_NOT_DISPATCHED.set(sum(row.due for row in backlog))
        metrics.export_backlog(backlog, now, queues={t.queue for t in JOB_TYPES.values()})
        metrics.JOBS_PAUSED.set(paused_jobs(self.db, paused_users=users, paused_types=types))
        for kind, count in jobs_needing_review(self.db).items():
            metrics.JOBS_NEEDING_REVIEW.labels(kind).set(count)

    def _paused(self) -> tuple[list[str], list[str]]:
        """Users and job types an operator paused (re-read every ``controls_interval``)."""
        if time.monotonic() - self._last_controls >= self.settings.controls_interval:
            self._last_controls = time.monotonic()
            rows = self.db[names.JOB_CONTROLS].find({"paused": True}, {"kind": 1, "value": 1})
            users = [r["value"] for r in rows if r.get("kind") == "user"]
            types = [r["value"] for r in rows if r.get("kind") == "job_type"]
            self._controls = (users, types)
        return self._controls

    def _user_timezone(self, job: dict[str, Any]) -> str | None:
        """The user's ``preferences.timezone``, only looked up for recurring jobs that lack one."""
        schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
        if not schedule.get("cron_expression") or schedule.get("timezone"):
            return None
        user_id = job.get("user_id")
        if not isinstance(user_id, str):
            return None
        if user_id not in self._user_timezones:
            user = self.db[names.USERS].find_one({"user_id": user_id}, {"preferences": 1})
            self._user_timezones[user_id] = ((user or {}).get("preferences") or {}).get("timezone")
        return self._user_timezones[user_id]


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    return f"{seconds / 3600:.1f}h"
