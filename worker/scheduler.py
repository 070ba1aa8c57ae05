"""The polling scheduler: claim due jobs in batches, dispatch them, recover lost runs.

Each :meth:`Scheduler.tick` is one poll at an explicit ``now`` (tests drive time by hand):

1. **claim** up to ``claim_batch_size`` due jobs atomically (``JobStore.claim_due``): replicas split
   a batch, never share it;
2. **judge** each claimed job alone, with pure functions: invalid → ``failed`` with a readable
   error; a one-off later than its ``max_lateness`` → ``failed``; a recurring job's catch-up and
   overlap policies (``worker.schedule``) pick the fire to run or skip. Any exception while
   judging one document fails that document only; the batch and the poll go on;
3. **dispatch** the runs in one broker pipeline; if the broker refuses, the batch is released;
4. **recover** (every ``recovery_interval``) runs that would otherwise wait for their lease:
   prefetched messages of workers whose Dramatiq heartbeat stopped are handed back; unstarted
   claims of a dead scheduler and, after Redis lost its data, every unstarted run are checked and
   re-sent if their message is gone; expired leases of started runs (worker lost) are retried as
   a new attempt. Every recovered run is judged again like a fresh claim;
5. now and then: beat this scheduler's liveness, move job audit outboxes to ``audit_log``, check
   hand-written documents the claim query cannot see, purge finished jobs past retention, and
   refresh the status gauges.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dramatiq import Broker

from worker import metrics
from worker.audit import AuditLog, move_outbox, outbox_entry
from worker.backlog import jobs_needing_review, paused_jobs, queue_backlog
from worker.broker import (
    Dispatch,
    broker_health,
    declare_queues,
    dispatch_many,
    mark_incarnation,
    message_exists,
    requeue_dead_workers,
    requeue_from_dead_workers,
)
from worker.clock import wall_clock
from worker.db import names
from worker.db.engine import Database
from worker.db.jobs import JobStore, run_entry, run_key_for
from worker.db.schedulers import SchedulerRegistry
from worker.decide import judge, scheduler_error
from worker.jobtypes import JOB_TYPES
from worker.schedule import next_fire
from worker.settings import Settings
from worker.states import JobStatus
from worker.validation import InvalidJob, validate_job

__all__ = ["Scheduler", "TickReport"]

log = logging.getLogger(__name__)

#: Jobs whose outboxes one move takes (entries are moved, at most a few per job).
_MOVE_BATCH = 500
#: A run in flight has its audit entries moved once it ends, or once they are this old.
_IN_FLIGHT_SETTLE = dt.timedelta(seconds=30)


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
    audited: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.claimed > 0 or self.recovered > 0


def _started(job: dict[str, Any]) -> bool:
    return bool((job.get("lease") or {}).get("started_at"))


class Scheduler:
    """One scheduler replica; run as many as you like, they never dispatch a run twice."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = wall_clock,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.broker = broker
        self.settings = settings
        self.clock = clock
        self.store = JobStore(db)
        self.registry = SchedulerRegistry(db)
        self.audit = AuditLog(db)
        # The claim owner names this incarnation: a restart under the same scheduler_id must
        # not adopt (and so hide) the claims its killed predecessor never sent.
        base = settings.scheduler_id or f"{socket.gethostname()}:{os.getpid()}"
        self.owner = owner or f"{base}#{uuid.uuid4().hex[:6]}"
        self.queued_lease = dt.timedelta(seconds=settings.queued_lease_seconds)
        self.grace = dt.timedelta(seconds=settings.misfire_grace_seconds)
        self.dead_after = dt.timedelta(seconds=settings.scheduler_dead_after_seconds)
        self._last_intake = self._last_purge = self._last_stats = float("-inf")
        self._last_recovery = self._last_controls = float("-inf")
        self._last_audit = float("-inf")
        self._beat_at: dt.datetime | None = None  # on the scheduler's clock: peers compare it
        self._controls: tuple[list[str], list[str]] = ([], [])
        self._user_timezones: dict[str, str | None] = {}

    # ---------------------------------------------------------------- the poll
    def tick(self, now: dt.datetime | None = None) -> TickReport:
        """One poll: claim, judge, dispatch, recover, housekeeping.

        Each step is guarded on its own: a failure is logged and reported, the others still run.
        """
        now = now or self.clock()
        started = time.perf_counter()
        report = TickReport()
        self._step("liveness", self._beat, now, report)  # before any claim names this owner
        self._step("claim", self._claim_and_send, now, report)
        if time.monotonic() - self._last_recovery >= self.settings.recovery_interval:
            self._last_recovery = time.monotonic()
            self._step("recovery", self._recover, now, report)
        self._step("housekeeping", self._housekeeping, now, report)
        self._step("audit", self._move_outboxes, now, report)
        self._step("audit buffer", lambda now, _: self.audit.flush(), now, report)
        metrics.POLL_DURATION.observe(time.perf_counter() - started)
        metrics.LAST_POLL.set(time.time())
        return report

    def _step(
        self,
        name: str,
        step: Callable[[dt.datetime, TickReport], None],
        now: dt.datetime,
        report: TickReport,
    ) -> None:
        try:
            step(now, report)
        except Exception as exc:
            log.exception("scheduler step %s failed; the poll goes on", name)
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (SIGTERM/SIGINT in ``mmw scheduler``)."""
        declare_queues(self.broker, (t.queue for t in JOB_TYPES.values()))
        log.info("scheduler %s polling every %.2fs", self.owner, self.settings.poll_interval)
        # Liveness from its own thread: a long poll (a big backlog on a slow engine) must not
        # make this scheduler look dead to the others, which would re-send its claims.
        beating = threading.Thread(target=self._keep_beating, args=(stop,), daemon=True)
        beating.start()
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
        self.audit.flush()  # job outboxes are durable: the next scheduler to poll moves them
        beating.join(timeout=10)
        try:  # every claim of this scheduler was sent: nothing for others to check
            self.registry.forget([self.owner])
        except Exception:
            log.exception("could not remove scheduler %s from the liveness list", self.owner)
        log.info("scheduler %s stopped", self.owner)

    def _claim_and_send(self, now: dt.datetime, report: TickReport) -> None:
        users, types = self._paused()
        claimed = self.store.claim_due(
            now,
            owner=self.owner,
            limit=self.settings.claim_batch_size,
            queued_lease=self.queued_lease,
            paused_users=users,
            paused_types=types,
            audit=outbox_entry("job_claimed", now, owner=self.owner),
        )
        report.claimed = len(claimed)
        outgoing: list[tuple[dict[str, Any], Dispatch]] = []
        for job in claimed:
            metrics.JOBS_CLAIMED.labels(str(job.get("job_type"))).inc()
            dispatch = self._judge(job, now, report)
            if dispatch is not None:
                outgoing.append((job, dispatch))
        self._send(outgoing, now, report)

    def _keep_beating(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.scheduler_heartbeat_seconds):
            try:
                self._beat(self.clock(), TickReport())
            except Exception:
                log.exception("scheduler %s could not record its liveness", self.owner)

    def _beat(self, now: dt.datetime, report: TickReport) -> None:
        interval = dt.timedelta(seconds=self.settings.scheduler_heartbeat_seconds)
        if self._beat_at is None or not self._beat_at <= now < self._beat_at + interval:
            self.registry.beat(self.owner, now)
            self._beat_at = now

    def _move_outboxes(self, now: dt.datetime, report: TickReport) -> None:
        """Job outboxes every ``audit_move_interval`` (at once again when a move filled its
        batch: a backlog); the buffered entries are flushed every poll."""
        if time.monotonic() - self._last_audit >= self.settings.audit_move_interval:
            self._last_audit = time.monotonic()
            moved = move_outbox(self.db, _MOVE_BATCH, settled_before=now - _IN_FLIGHT_SETTLE)
            report.audited += moved
            if moved >= _MOVE_BATCH:
                self._last_audit = float("-inf")

    def flush_audit(self) -> int:
        """Move every waiting outbox and flush the buffer now (benchmarks, tests)."""
        moved = total = move_outbox(self.db, _MOVE_BATCH)
        while moved >= _MOVE_BATCH:
            moved = move_outbox(self.db, _MOVE_BATCH)
            total += moved
        self.audit.flush()
        return total

    # ---------------------------------------------------------------- decisions
    def _judge(self, job: dict[str, Any], now: dt.datetime, report: TickReport) -> Dispatch | None:
        """Decide one claimed (or recovered) document alone; never raises.

        A job held by an operator goes back to ``pending``; any exception fails the document with
        a readable error (or, if even that fails, leaves it to lease recovery).
        """
        try:
            if self._held(job):
                report.released += self.store.release_claimed(
                    [job], now, audit=outbox_entry("job_released", now, reason="paused")
                )
                return None
            return self._decide(job, now, report)
        except Exception as exc:  # a bad document or a bug must not stop the batch
            log.exception("scheduler could not handle job %r", job.get("job_id"))
            report.errors.append(str(job.get("job_id")))
            try:
                self._fail(job, scheduler_error(exc), now, "invalid")
            except Exception:
                log.exception("could not fail job %r; its lease will expire", job.get("job_id"))
            return None

    def _held(self, job: dict[str, Any]) -> bool:
        users, types = self._paused()
        return (
            job.get("paused") is True
            or job.get("user_id") in users
            or (job.get("job_type") in types)
        )

    def _decide(self, job: dict[str, Any], now: dt.datetime, report: TickReport) -> Dispatch | None:
        """Carry out the pure verdict (``worker.decide.judge``) for one claimed document."""
        verdict = judge(job, now, grace=self.grace, default_timezone=self._user_timezone(job))
        label = verdict.job_type or "unknown"
        if verdict.decision in ("invalid", "too_late"):
            assert verdict.reason is not None
            self._fail(job, verdict.reason, now, verdict.decision)
            if verdict.decision == "invalid":
                report.invalid += 1
            else:
                metrics.MISSED_RUNS.labels(label, "too_late").inc()
                report.too_late += 1
            return None
        if verdict.missed:
            metrics.MISSED_RUNS.labels(label, "catch_up").inc(verdict.missed)
        if verdict.decision == "skip":
            assert verdict.next_due is not None
            self.store.reschedule_claimed(
                job,
                verdict.next_due,
                now,
                missed=verdict.missed,
                audit=outbox_entry("job_fires_skipped", now, missed=verdict.missed),
            )
            report.skipped += 1
            return None
        assert verdict.run_at is not None and verdict.queue is not None
        if verdict.decision == "spawn":  # overlap "allow": the fire runs as its own job
            assert verdict.next_due is not None
            if self.store.spawn_run(job, verdict.run_at, now):
                report.spawned += 1
            self.store.reschedule_claimed(
                job,
                verdict.next_due,
                now,
                missed=verdict.missed,
                audit=outbox_entry(
                    "job_run_spawned", now, run_at=verdict.run_at, missed=verdict.missed
                ),
            )
            return None
        if job.get("run_at") is None and verdict.run_at != verdict.due_at:  # catch-up's fire
            self.store.set_run_at(job, verdict.run_at, verdict.missed)
            job["run_at"] = verdict.run_at
        return Dispatch(
            job_type=str(verdict.job_type),
            queue=verdict.queue,
            job_id=verdict.job_id,
            run_key=run_key_for(job),
            epoch=int(job["epoch"]),
        )

    def _fail(self, job: dict[str, Any], error: str, now: dt.datetime, reason: str) -> None:
        audit = outbox_entry("job_failed", now, error=error, reason=reason)
        if self.store.fail_claimed(job, error, now, audit=audit):
            metrics.JOBS_FAILED.labels(str(job.get("job_type")), reason).inc()

    # ---------------------------------------------------------------- dispatch & recovery
    def _send(
        self,
        outgoing: list[tuple[dict[str, Any], Dispatch]],
        now: dt.datetime,
        report: TickReport,
    ) -> None:
        if not outgoing:
            return
        try:
            dispatch_many(self.broker, [d for _, d in outgoing])
        except Exception as exc:
            log.error("broker refused %d messages (%s); releasing them", len(outgoing), exc)
            report.released += self.store.release_claimed(
                [job for job, _ in outgoing],
                now,
                audit=outbox_entry("job_released", now, reason="broker refused the message"),
            )
            return
        report.dispatched += len(outgoing)
        for job, item in outgoing:
            metrics.JOBS_DISPATCHED.labels(item.job_type, item.queue).inc()
            # Not a state change of the document (the claim is, and is in its outbox): buffered.
            self.audit.job_event(job, "job_dispatched", now, run_key=item.run_key, epoch=item.epoch)

    def _recover(self, now: dt.datetime, report: TickReport) -> None:
        """Find runs that would otherwise wait for their lease, then recover each alone."""
        health = broker_health(self.broker)
        if health is not None and health.dead_workers:
            # Their prefetched messages go back to the queues; the runs need no MongoDB write.
            requeue_dead_workers(self.broker, health.dead_workers)
        limit = self.settings.claim_batch_size
        self._recover_batch(self.store.expired_leases(now, limit), now, report)
        dead = [o for o in self.registry.dead(now, self.dead_after) if o != self.owner]
        if dead:
            claims = self.store.unstarted(owners=dead, limit=limit)
            # Each of these leaves the dead owners' set (re-sent, or kept queued under this
            # owner), so a longer list is finished page by page on the next checks.
            self._recover_batch(claims, now, report, dead=set(dead))
            if len(claims) < limit:  # every claim of these owners is handled now
                self.registry.forget(dead, silent_since=now - self.dead_after)
        if health is not None and health.data_lost:
            # A flush, a restart without the data, or the first scheduler on this Redis.
            log.warning("no marker of this Redis server's data: checking every queued run")
            # Marked first: a loss during the scan removes the marker again and is seen next time.
            mark_incarnation(self.broker, health.incarnation)
            try:
                self._scan_unstarted(now, report)
            except Exception:
                mark_incarnation(self.broker, None)  # not done: the next check scans again
                raise

    def _scan_unstarted(self, now: dt.datetime, report: TickReport) -> None:
        limit = self.settings.claim_batch_size
        after = None
        while True:
            page = self.store.unstarted(after=after, limit=limit)
            self._recover_batch(page, now, report, scan=True)
            if len(page) < limit:
                return
            after = page[-1]["_id"]

    def _recover_batch(
        self,
        jobs: list[dict[str, Any]],
        now: dt.datetime,
        report: TickReport,
        *,
        dead: set[str] | None = None,
        scan: bool = False,
    ) -> None:
        """Recover a batch: started runs whose lease expired are retried as a new attempt;
        unstarted runs are re-sent (same epoch) when their message is gone or unknowable.

        The batch is expired leases, the unstarted claims of ``dead`` schedulers, or (``scan``)
        unstarted runs after Redis lost its data. A run whose message still exists keeps
        waiting: its lease is extended (and passes to this scheduler) if it expired or its owner
        is dead; a scanned run of a live owner is not written at all.
        """
        dead = dead or set()
        if not jobs:
            return
        unstarted = [j for j in jobs if not _started(j)]
        guesses = [(j, self._dispatch_guess(j)) for j in unstarted]
        known = [(j, d) for j, d in guesses if d is not None]
        exists = dict(
            zip(
                [j["_id"] for j, _ in known],
                message_exists(self.broker, [d for _, d in known]),
                strict=True,
            )
        )
        waiting = [j for j in unstarted if exists.get(j["_id"])]
        stale = [
            j
            for j in waiting
            if not scan and (j["lease"]["until"] < now or j["lease"].get("owner") in dead)
        ]
        if stale:  # a long queue, or a dead worker's prefetch (handed back now): keep waiting
            requeue_from_dead_workers(
                self.broker, {d.queue for j, d in known if exists.get(j["_id"])}
            )
            report.extended += self.store.extend_queued(stale, now + self.queued_lease, self.owner)
        outgoing: list[tuple[dict[str, Any], Dispatch]] = []
        for job in jobs:
            if exists.get(job["_id"]):
                continue
            try:
                fresh = self._take_over(job, exists.get(job["_id"]), now, dead)
            except Exception as exc:
                log.exception("could not recover job %r", job.get("job_id"))
                report.errors.append(str(job.get("job_id")))
                try:
                    self._fail(job, scheduler_error(exc), now, "invalid")
                except Exception:
                    log.exception("could not fail job %r", job.get("job_id"))
                continue
            if fresh is None:
                continue
            report.recovered += 1
            dispatch = self._judge(fresh, now, report)
            if dispatch is not None:
                outgoing.append((fresh, dispatch))
        self._send(outgoing, now, report)

    def _take_over(
        self, job: dict[str, Any], exists: bool | None, now: dt.datetime, dead: set[str]
    ) -> dict[str, Any] | None:
        """Make a lost run this scheduler's again (None: nothing to send, or lost the race)."""
        job_type = str(job.get("job_type"))
        lease = job.get("lease") or {}
        if _started(job):  # the worker died mid-run: that attempt counts
            metrics.LEASE_EXPIRATIONS.labels(job_type).inc()
            if not self._attempts_left(job, now):
                return None
            error = "worker lost during the run (lease expired)"
            fresh = self.store.reclaim(
                job,
                now,
                owner=self.owner,
                queued_lease=self.queued_lease,
                lost=run_entry(job, run_key_for(job), "lost", now, error=error),
                history_limit=self.settings.history_limit,
                audit=outbox_entry("job_recovered", now, reason="worker_lost", error=error),
            )
            reason = "worker_lost"
        else:
            if lease.get("until") is not None and lease["until"] < now:
                metrics.LEASE_EXPIRATIONS.labels(job_type).inc()
                reason = "message_lost" if exists is False else "unknown"
            else:
                reason = "scheduler_lost" if lease.get("owner") in dead else "message_lost"
            fresh = self.store.renew(
                job,
                now,
                owner=self.owner,
                queued_lease=self.queued_lease,
                audit=outbox_entry("job_recovered", now, reason=reason),
            )
        if fresh is not None:
            metrics.JOBS_RECOVERED.labels(job_type, reason).inc()
        return fresh

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
            audit=outbox_entry("job_failed", now, error=error, reason="worker_lost"),
        )
        if ok:
            metrics.JOBS_FAILED.labels(spec.job_type.name, "worker_lost").inc()
        return False

    def _dispatch_guess(self, job: dict[str, Any]) -> Dispatch | None:
        """The message a run was sent as (to ask the broker about it); None if unknowable."""
        job_type = JOB_TYPES.get(str(job.get("job_type")))
        if job_type is None:
            return None
        try:
            return Dispatch(
                job_type=job_type.name,
                queue=job.get("queue") or job_type.queue,
                job_id=str(job["job_id"]),
                run_key=run_key_for(job),
                epoch=int(job["epoch"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):  # a hand-edited document
            return None

    # ---------------------------------------------------------------- housekeeping
    def _housekeeping(self, now: dt.datetime, report: TickReport) -> None:
        mono = time.monotonic()
        if mono - self._last_intake >= self.settings.intake_interval:
            self._last_intake = mono
            self._step("intake", self.intake, now, report)
        if mono - self._last_purge >= 60:
            self._last_purge = mono
            self._step("purge", lambda now, _: self.store.purge_finished(now), now, report)
        if mono - self._last_stats >= self.settings.stats_interval:
            self._last_stats = mono
            self._step("gauges", lambda now, _: self.refresh_gauges(now), now, report)

    def intake(self, now: dt.datetime, report: TickReport) -> None:
        """Check documents the claim query cannot see (written by hand without status/due time).

        Valid ones are adopted (a recurring job gets its first fire), the rest fail with the
        reason; either way they are handled the first time the scheduler sees them. Each
        document alone: any exception fails that one with a readable error, the sweep goes on.
        """
        for job in self.store.find_malformed(self.settings.claim_batch_size):
            try:
                self._intake_one(job, now, report)
            except Exception:
                log.exception("intake could not handle document %r", job.get("_id"))
                report.errors.append(str(job.get("job_id")))

    def _intake_one(self, job: dict[str, Any], now: dt.datetime, report: TickReport) -> None:
        try:
            fields = self._adoption(job, now)
        except Exception as exc:
            error = str(exc) if isinstance(exc, InvalidJob) else scheduler_error(exc)
            audit = outbox_entry("job_failed", now, error=error, reason="invalid")
            if self.store.fail_unclaimed(job, error, now, audit=audit):
                metrics.JOBS_FAILED.labels(str(job.get("job_type")), "invalid").inc()
                report.invalid += 1
            return
        if self.store.adopt(job, fields, audit=outbox_entry("job_adopted", now)):
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
        for kind, count in jobs_needing_review(self.db, now).items():
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
