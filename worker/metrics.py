"""Prometheus metrics of the scheduler and the workers (names used by ``ops/``).

The processes of one ``mmw worker`` instance (supervisor and worker processes) share one
multiprocess directory, set before ``prometheus_client`` is imported, so these metrics and
Dramatiq's own are served together by the supervisor (``worker.supervisor``; under a plain
``dramatiq`` CLI, by Dramatiq's exposition server). ``mmw scheduler`` and ``mmw dev`` serve the
default registry with :func:`serve`.

Every ``job_type`` label value passes through :func:`job_type_label`: a name that is not a
registered job type (a hand-written document can carry any string) counts as ``unknown``, so
the number of series stays bounded by the registry.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from worker.backlog import QueueBacklog
from worker.db.engine import operations
from worker.jobtypes import JOB_TYPES

__all__ = [
    "UNKNOWN_JOB_TYPE",
    "JobCounter",
    "JobGauge",
    "JobHistogram",
    "export_backlog",
    "job_type_label",
    "serve",
]

UNKNOWN_JOB_TYPE = "unknown"


def job_type_label(value: object) -> str:
    """``value`` if it names a registered job type (plugins included), else ``unknown``."""
    name = str(value)
    return name if name in JOB_TYPES else UNKNOWN_JOB_TYPE


class _BoundedJobType:
    """A metric whose ``job_type`` label is always a registered job type or ``unknown``."""

    _labelnames: tuple[str, ...]

    def labels(self, *values: Any, **named: Any) -> Any:
        if "job_type" in named:
            named["job_type"] = job_type_label(named["job_type"])
        elif "job_type" in self._labelnames and len(values) == len(self._labelnames):
            index = self._labelnames.index("job_type")
            values = (*values[:index], job_type_label(values[index]), *values[index + 1 :])
        return super().labels(*values, **named)  # type: ignore[misc]


class JobCounter(_BoundedJobType, Counter):
    """A Counter with a bounded ``job_type`` label."""


class JobGauge(_BoundedJobType, Gauge):
    """A Gauge with a bounded ``job_type`` label."""


class JobHistogram(_BoundedJobType, Histogram):
    """A Histogram with a bounded ``job_type`` label."""


# A `_created` series per counter and histogram doubles the series count and no rule uses it.
disable_created_metrics()

_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

JOBS_CLAIMED = JobCounter("mmw_jobs_claimed_total", "Jobs claimed by a scheduler.", ["job_type"])
JOBS_DISPATCHED = JobCounter(
    "mmw_jobs_dispatched_total", "Messages sent to the broker.", ["job_type", "queue"]
)
JOBS_STARTED = JobCounter("mmw_jobs_started_total", "Runs started by a worker.", ["job_type"])
JOBS_COMPLETED = JobCounter("mmw_jobs_completed_total", "Runs completed.", ["job_type"])
JOBS_FAILED = JobCounter(
    "mmw_jobs_failed_total",
    "Jobs ended as failed (reason: error, invalid, too_late, worker_lost).",
    ["job_type", "reason"],
)
JOBS_RETRIED = JobCounter(
    "mmw_jobs_retried_total", "Failed attempts scheduled again.", ["job_type"]
)
JOBS_RECOVERED = JobCounter(
    "mmw_jobs_recovered_total",
    "Runs dispatched again (reason: worker_lost, message_lost, scheduler_lost, unknown).",
    ["job_type", "reason"],
)
LEASE_EXPIRATIONS = JobCounter(
    "mmw_lease_expirations_total", "Leases found expired by a scheduler.", ["job_type"]
)
DUPLICATES_PREVENTED = JobCounter(
    "mmw_duplicates_prevented_total",
    "Messages that found their run already started, finished or taken over, and did nothing.",
    ["job_type"],
)
MISSED_RUNS = JobCounter(
    "mmw_missed_runs_total",
    "Fires of recurring jobs not run (reason: catch_up, overlap), and late one-offs (too_late).",
    ["job_type", "reason"],
)
SCHEDULE_LAG = JobHistogram(
    "mmw_schedule_lag_seconds",
    "From a run's due time to its start on a worker.",
    ["job_type"],
    buckets=_LAG_BUCKETS,
)
JOB_DURATION = JobHistogram(
    "mmw_job_duration_seconds",
    "Run time of a job on a worker.",
    ["job_type", "outcome"],
    buckets=_DURATION_BUCKETS,
)
JOBS_IN_PROGRESS = JobGauge(
    "mmw_jobs_in_progress",
    "Runs executing on workers now.",
    ["job_type"],
    multiprocess_mode="livesum",
)
JOBS_BY_STATUS = Gauge(
    "mmw_jobs_by_status",
    "scheduled_jobs documents by status.",
    ["status"],
    multiprocess_mode="max",
)
DUE_NOT_DISPATCHED = Gauge(
    "mmw_jobs_due_not_dispatched",
    "Pending jobs whose due time has passed (measured after each poll's claim).",
    multiprocess_mode="max",
)
QUEUE_BACKLOG = Gauge(
    "mmw_queue_backlog",
    "Jobs waiting per queue (state: due = pending and due, not paused; unstarted = dispatched, "
    "no worker started them yet).",
    ["queue", "state"],
    multiprocess_mode="max",
)
OLDEST_DUE_AGE = Gauge(
    "mmw_queue_oldest_due_age_seconds",
    "Seconds the longest-waiting due or unstarted job of a queue has been due (0: none waits).",
    ["queue"],
    multiprocess_mode="max",
)
JOBS_PAUSED = Gauge(
    "mmw_jobs_paused",
    "Pending jobs held by an operator (paused jobs, users or job types).",
    multiprocess_mode="max",
)
JOBS_NEEDING_REVIEW = Gauge(
    "mmw_jobs_needing_review",
    "Effects whose outcome could not be confirmed and wait for a person "
    "(kind: social_post, email_send).",
    ["kind"],
    multiprocess_mode="max",
)
BUILD_INFO = Gauge(
    "mmw_build_info",
    "Always 1; the labels say which release and runtime export these metrics.",
    ["version", "python", "dramatiq"],
    multiprocess_mode="max",
)
POLL_DURATION = Histogram(
    "mmw_poll_duration_seconds",
    "One scheduler poll: claim, validate, dispatch, recover.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAST_POLL = Gauge(
    "mmw_scheduler_last_poll_timestamp_seconds",
    "Unix time of the last completed poll (no live scheduler when it stops moving).",
    multiprocess_mode="max",
)
WEBHOOKS_DEACTIVATED = Counter(
    "mmw_webhooks_deactivated_total",
    "Webhooks switched off (reason: gone, failures, invalid_secret).",
    ["reason"],
)
WORKER_PROCESS_RESTARTS = Counter(
    "mmw_worker_process_restarts_total",
    "Worker processes of an mmw worker instance that died and are started again.",
)
WORKER_PROCESSES_READY = Gauge(
    "mmw_worker_processes_ready",
    "Worker processes of an mmw worker instance consuming messages now.",
    multiprocess_mode="livesum",
)
AUDIT_DROPPED = Counter(
    "mmw_audit_dropped_total",
    "Buffered audit entries dropped because the buffer was full (audit_log unwritable).",
)
MONGO_OPERATIONS = Counter(
    "mmw_mongo_operations_total",
    "MongoDB operations (round trips) by collection and operation.",
    ["collection", "operation"],
)
PLAINTEXT_SECRETS_READ = Counter(
    "mmw_plaintext_secrets_read_total",
    "Secrets read in clear text (legacy, not yet sealed: run `mmw keys migrate`).",
    ["collection", "field"],
)


def _build_labels() -> tuple[str, str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return installed("marketing-minds-worker"), platform.python_version(), installed("dramatiq")


BUILD_INFO.labels(*_build_labels()).set(1)

operations.listeners.append(lambda coll, op: MONGO_OPERATIONS.labels(coll, op).inc())


def export_backlog(rows: Iterable[QueueBacklog], now: dt.datetime, *, queues: set[str]) -> None:
    """Set the backlog gauges; ``queues`` that have nothing waiting read 0, not their last value."""
    seen = {row.queue: row for row in rows}
    for queue in sorted(queues | set(seen)):
        row = seen.get(queue, QueueBacklog(queue, 0, 0, None))
        QUEUE_BACKLOG.labels(queue, "due").set(row.due)
        QUEUE_BACKLOG.labels(queue, "unstarted").set(row.unstarted)
        OLDEST_DUE_AGE.labels(queue).set(row.oldest_age(now))


def serve(host: str, port: int, registry: CollectorRegistry | None = None) -> None:
    """Serve /metrics on ``host:port`` from a daemon thread (multiprocess-aware if configured)."""
    if registry is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    if registry is None:
        start_http_server(port, addr=host)
    else:
        start_http_server(port, addr=host, registry=registry)
